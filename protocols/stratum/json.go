package stratum

import "unicode/utf8"

// This file holds a small allocation-free JSON walker. It never builds a
// tree: callers iterate the members of one object (or the elements of one
// array) and get back byte spans into the line. It is deliberately more
// lenient than RFC 8259 (trailing commas, any run of number characters,
// raw control bytes inside strings) so that input a lenient pool parser
// accepts is never rejected here; otherwise an attacker could hide behind
// our strictness.

// maxDepth bounds recursion; deeper nesting is treated as invalid JSON.
const maxDepth = 64

// span is a half-open byte range [s,e) of one JSON value inside a line.
// For strings it includes the quotes.
type span struct{ s, e int }

func (v span) ok() bool { return v.e > v.s }

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// scanString expects b[i]=='"' and returns the index just past the closing
// quote and whether the literal contains escapes.
func scanString(b []byte, i int) (end int, esc bool, ok bool) {
	i++
	for i < len(b) {
		switch b[i] {
		case '"':
			return i + 1, esc, true
		case '\\':
			esc = true
			i += 2
			continue
		}
		i++
	}
	return len(b), esc, false
}

func isNumChar(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// skipValue returns the end of the value starting at or after i.
func skipValue(b []byte, i, depth int) (int, bool) {
	i = skipWS(b, i)
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		e, _, ok := scanString(b, i)
		return e, ok
	case c == '{':
		return skipObject(b, i, depth+1)
	case c == '[':
		return skipArray(b, i, depth+1)
	case c == 't':
		return i + 4, hasLiteral(b, i, "true")
	case c == 'f':
		return i + 5, hasLiteral(b, i, "false")
	case c == 'n':
		return i + 4, hasLiteral(b, i, "null")
	case isNumChar(c):
		for i < len(b) && isNumChar(b[i]) {
			i++
		}
		return i, true
	}
	return i, false
}

func skipObject(b []byte, i, depth int) (int, bool) {
	it := objIter{b: b, i: i, depth: depth}
	if !it.open() {
		return it.i, false
	}
	for {
		if _, _, _, more := it.next(); !more {
			return it.i, !it.bad
		}
	}
}

func skipArray(b []byte, i, depth int) (int, bool) {
	it := arrIter{b: b, i: i, depth: depth}
	if !it.open() {
		return it.i, false
	}
	for {
		if _, more := it.next(); !more {
			return it.i, !it.bad
		}
	}
}

// objIter walks the members of one object. After next reports false, bad
// tells whether the object was malformed, and i is just past '}'.
type objIter struct {
	b     []byte
	i     int
	depth int
	bad   bool
	done  bool
}

func (it *objIter) open() bool {
	it.i = skipWS(it.b, it.i)
	if it.depth > maxDepth || it.i >= len(it.b) || it.b[it.i] != '{' {
		it.bad, it.done = true, true
		return false
	}
	it.i++
	return true
}

// next returns the raw key body (without quotes), whether the key contains
// escapes, and the value span.
func (it *objIter) next() (key []byte, keyEsc bool, val span, more bool) {
	if it.done {
		return nil, false, span{}, false
	}
	b := it.b
	i := skipWS(b, it.i)
	if i < len(b) && b[i] == '}' {
		it.i, it.done = i+1, true
		return nil, false, span{}, false
	}
	if i >= len(b) || b[i] != '"' {
		return it.fail(i)
	}
	ke, esc, ok := scanString(b, i)
	if !ok {
		return it.fail(ke)
	}
	key, keyEsc = b[i+1:ke-1], esc
	i = skipWS(b, ke)
	if i >= len(b) || b[i] != ':' {
		return it.fail(i)
	}
	vs := skipWS(b, i+1)
	ve, ok := skipValue(b, vs, it.depth)
	if !ok {
		return it.fail(ve)
	}
	i = skipWS(b, ve)
	switch {
	case i < len(b) && b[i] == ',':
		i++
	case i < len(b) && b[i] == '}':
	default:
		return it.fail(i)
	}
	it.i = i
	return key, keyEsc, span{vs, ve}, true
}

func (it *objIter) fail(i int) ([]byte, bool, span, bool) {
	it.i, it.bad, it.done = i, true, true
	return nil, false, span{}, false
}

// arrIter walks the elements of one array.
type arrIter struct {
	b     []byte
	i     int
	depth int
	bad   bool
	done  bool
}

func (it *arrIter) open() bool {
	it.i = skipWS(it.b, it.i)
	if it.depth > maxDepth || it.i >= len(it.b) || it.b[it.i] != '[' {
		it.bad, it.done = true, true
		return false
	}
	it.i++
	return true
}

func (it *arrIter) next() (val span, more bool) {
	if it.done {
		return span{}, false
	}
	b := it.b
	i := skipWS(b, it.i)
	if i < len(b) && b[i] == ']' {
		it.i, it.done = i+1, true
		return span{}, false
	}
	vs := i
	ve, ok := skipValue(b, vs, it.depth)
	if !ok {
		it.i, it.bad, it.done = ve, true, true
		return span{}, false
	}
	i = skipWS(b, ve)
	switch {
	case i < len(b) && b[i] == ',':
		i++
	case i < len(b) && b[i] == ']':
	default:
		it.i, it.bad, it.done = i, true, true
		return span{}, false
	}
	it.i = i
	return span{vs, ve}, true
}

// kind returns the first byte of the value: '"', '{', '[', 't', 'f', 'n' or
// a number character; 0 for an empty span.
func kind(b []byte, v span) byte {
	if !v.ok() || v.s >= len(b) {
		return 0
	}
	return b[v.s]
}

// strBody returns the raw body of a string value and whether it has escapes.
func strBody(b []byte, v span) (raw []byte, esc, ok bool) {
	if kind(b, v) != '"' || v.e-v.s < 2 || v.e > len(b) {
		return nil, false, false
	}
	raw = b[v.s+1 : v.e-1]
	for _, c := range raw {
		if c == '\\' {
			return raw, true, true
		}
	}
	return raw, false, true
}

// unquote decodes a JSON string body into dst. It reports false if dst is
// too small. Unknown escapes decode to the escaped byte, as lenient parsers do.
func unquote(dst []byte, raw []byte) (int, bool) {
	n := 0
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			if n >= len(dst) {
				return n, false
			}
			dst[n] = c
			n++
			i++
			continue
		}
		if i+1 >= len(raw) {
			return n, false
		}
		e := raw[i+1]
		i += 2
		var r rune
		switch e {
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			var ok bool
			r, ok = hex4(raw, i)
			if !ok {
				return n, false
			}
			i += 4
			if hi := r; hi >= 0xD800 && hi < 0xDC00 {
				r = utf8.RuneError
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if lo, ok := hex4(raw, i+2); ok && lo >= 0xDC00 && lo < 0xE000 {
						r = 0x10000 + (hi-0xD800)<<10 + (lo - 0xDC00)
						i += 6
					}
				}
			} else if r >= 0xDC00 && r < 0xE000 {
				r = utf8.RuneError
			}
		default:
			r = rune(e)
		}
		if n+utf8.RuneLen(r) > len(dst) {
			return n, false
		}
		n += utf8.EncodeRune(dst[n:], r)
	}
	return n, true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// nameBuf holds a decoded key or method name; longer names are never
// interesting, so they simply fail to decode.
type nameBuf [64]byte

// decodeName decodes a raw string body into buf and returns the bytes.
func decodeName(buf *nameBuf, raw []byte, esc bool) ([]byte, bool) {
	if !esc {
		return raw, true
	}
	n, ok := unquote(buf[:], raw)
	return buf[:n], ok
}

// strEq compares a string value with s after decoding escapes.
func strEq(b []byte, v span, s string) bool {
	raw, esc, ok := strBody(b, v)
	if !ok {
		return false
	}
	var buf nameBuf
	name, ok := decodeName(&buf, raw, esc)
	return ok && string(name) == s
}

// field returns the value of the first member named key (exact, after
// unescaping) of the object at v.
func field(b []byte, v span, key string) (span, bool) {
	if kind(b, v) != '{' {
		return span{}, false
	}
	it := objIter{b: b[:v.e], i: v.s}
	if !it.open() {
		return span{}, false
	}
	var buf nameBuf
	for {
		k, esc, val, more := it.next()
		if !more {
			return span{}, false
		}
		if name, ok := decodeName(&buf, k, esc); ok && string(name) == key {
			return val, true
		}
	}
}

// elem returns element idx of the array at v and the array length seen so
// far (stops after idx unless count is set).
func elem(b []byte, v span, idx int) (span, bool) {
	if kind(b, v) != '[' {
		return span{}, false
	}
	it := arrIter{b: b[:v.e], i: v.s}
	if !it.open() {
		return span{}, false
	}
	for n := 0; ; n++ {
		val, more := it.next()
		if !more {
			return span{}, false
		}
		if n == idx {
			return val, true
		}
	}
}

// arrayLen counts the elements of the array at v (-1 if not an array).
func arrayLen(b []byte, v span) int {
	if kind(b, v) != '[' {
		return -1
	}
	it := arrIter{b: b[:v.e], i: v.s}
	if !it.open() {
		return -1
	}
	n := 0
	for {
		if _, more := it.next(); !more {
			return n
		}
		n++
	}
}

// decodeString returns the decoded value of a string span, capped at max
// bytes. It allocates and is only used when building a Match result.
func decodeString(b []byte, v span, max int) string {
	raw, esc, ok := strBody(b, v)
	if !ok {
		return ""
	}
	if !esc {
		if len(raw) > max {
			raw = raw[:max]
		}
		return string(raw)
	}
	dst := make([]byte, len(raw))
	n, _ := unquote(dst, raw)
	if n > max {
		n = max
	}
	return string(dst[:n])
}

func isHex(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
			return false
		}
	}
	return true
}

// hexString reports whether v is a string of hex digits, with an optional
// 0x prefix, whose digit count is at least min.
func hexString(b []byte, v span, min int) bool {
	raw, esc, ok := strBody(b, v)
	if !ok || esc {
		return false
	}
	if len(raw) >= 2 && raw[0] == '0' && (raw[1] == 'x' || raw[1] == 'X') {
		raw = raw[2:]
	}
	return len(raw) >= min && isHex(raw)
}
