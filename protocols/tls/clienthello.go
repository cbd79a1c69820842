package tls

import (
	"bytes"
	"strings"
)

// Status is the outcome of looking at a client stream prefix.
type Status uint8

const (
	// NeedMore: the prefix is consistent with a TLS ClientHello but is not
	// complete yet; call again with a longer prefix.
	NeedMore Status = iota
	// OK: a complete ClientHello was parsed.
	OK
	// NotTLS: the prefix is not a TLS ClientHello (or is malformed, or is
	// larger than MaxHelloLen). Further data will not change the verdict.
	NotTLS
)

func (s Status) String() string {
	switch s {
	case NeedMore:
		return "need-more"
	case OK:
		return "ok"
	case NotTLS:
		return "not-tls"
	}
	return "unknown"
}

// MaxHelloLen bounds the ClientHello handshake body we are willing to buffer
// and parse. Real hellos, even post-quantum ones with several key shares, are
// a few KiB; anything claiming more is treated as not TLS so a peer cannot
// make the caller hold arbitrary amounts of data.
const MaxHelloLen = 64 << 10

// MaxPrefixLen bounds how much of a stream a caller has to keep while
// ParseClientHello says NeedMore: a hello cut into tiny records carries 5
// bytes of record header per fragment, so a record starting beyond this
// offset ends the attempt with NotTLS.
const MaxPrefixLen = 2 * MaxHelloLen

const (
	recordHeaderLen    = 5
	handshakeHeaderLen = 4
	// maxRecordLen is the TLSCiphertext bound (2^14 + 2048). A plaintext
	// handshake record should not exceed 2^14, but some stacks are sloppy and
	// the looser bound costs nothing.
	maxRecordLen = 16384 + 2048

	contentHandshake   = 0x16
	typeClientHello    = 1
	typeServerHello    = 2
	maxALPNValues      = 16
	extServerName      = 0x0000
	extALPN            = 0x0010
	extSignatureAlgs   = 0x000d
	extSupportedVersio = 0x002b
)

// ClientHello holds what a passive observer learns from a ClientHello.
type ClientHello struct {
	// SNI is the first host_name in the server_name extension, lower-cased,
	// without a trailing dot; empty when absent.
	SNI string
	// ALPN lists the offered protocols in order (at most 16 are kept).
	ALPN []string
	// Version is the highest version the client offers: the largest
	// non-GREASE entry of supported_versions, else the legacy version field.
	Version uint16
	// JA4 is the FoxIO JA4 fingerprint (TLS over TCP, so it starts with "t").
	JA4 string
	// CipherCount and ExtCount are the non-GREASE cipher suite and extension
	// counts, not capped at 99 as they are inside JA4.
	CipherCount, ExtCount int
}

// checkRecordHeader validates as much of a record header as b holds.
// It returns NeedMore when b is a consistent but short header, NotTLS when it
// cannot be a handshake record, and OK when all 5 bytes are present and sane.
func checkRecordHeader(b []byte) Status {
	if len(b) >= 1 && b[0] != contentHandshake {
		return NotTLS
	}
	if len(b) >= 2 && b[1] != 3 {
		return NotTLS
	}
	if len(b) >= 3 && b[2] > 4 {
		return NotTLS
	}
	if len(b) < recordHeaderLen {
		return NeedMore
	}
	n := int(b[3])<<8 | int(b[4])
	if n == 0 || n > maxRecordLen {
		// Zero-length handshake fragments are forbidden (RFC 8446 5.1).
		return NotTLS
	}
	return OK
}

// LooksLikeTLS reports whether a stream prefix starts like a TLS handshake
// record carrying a ClientHello or ServerHello. It needs at least 3 bytes
// (content type and record version) and checks the record length and
// handshake type when those bytes are present. It is meant for labelling a
// connection's application protocol, typically from the server direction.
func LooksLikeTLS(stream []byte) bool {
	if len(stream) < 3 {
		return false
	}
	if checkRecordHeader(stream) == NotTLS {
		return false
	}
	if len(stream) > recordHeaderLen {
		t := stream[recordHeaderLen]
		return t == typeClientHello || t == typeServerHello
	}
	return true
}

// ParseClientHello parses the client-direction stream prefix: TLS records,
// possibly with the ClientHello fragmented over several records and several
// TCP segments (the caller passes the contiguous prefix seen so far). It
// returns NeedMore until the whole hello is present. It does not allocate
// except for the returned strings, plus one buffer when the hello spans
// several records.
func ParseClientHello(stream []byte) (ClientHello, Status) { return parseClientHello(stream, nil) }

// Parser is ParseClientHello keeping the strings it returns (server names, JA4s, ALPN
// values) and ALPN lists in bounded tables, so a hello like one parsed before (the same
// client software, the same service) allocates none of them again: per TLS flow these were
// most of replay's allocations. The zero value is ready; it is not safe for concurrent use.
type Parser struct{ in interner }

// ParseClientHello is the package's ParseClientHello. The ALPN slice it returns may be
// shared with earlier results: read it, do not modify it.
func (p *Parser) ParseClientHello(stream []byte) (ClientHello, Status) {
	return parseClientHello(stream, &p.in)
}

// maxInterned bounds each table of a Parser; a full table starts over, so a stream of
// one-off values costs what it would without one, and no more memory.
const maxInterned = 4096

// interner holds a Parser's tables; a nil *interner allocates every value.
type interner struct {
	strs map[string]string
	alpn map[string][]string // by the extension's raw protocol list
	ja4  map[string]string   // by fingerprint.key
	key  []byte              // fingerprint.key's buffer
}

// str is b as a string, the one kept if b was seen before.
func (in *interner) str(b []byte) string {
	if in == nil {
		return string(b)
	}
	if s, ok := in.strs[string(b)]; ok { // a lookup by string(b) does not allocate
		return s
	}
	if in.strs == nil || len(in.strs) >= maxInterned {
		in.strs = make(map[string]string)
	}
	s := string(b)
	in.strs[s] = s
	return s
}

func parseClientHello(stream []byte, in *interner) (ClientHello, Status) {
	var hdr [handshakeHeaderLen]byte
	nhdr := 0
	need := -1 // handshake body length, once the header has been seen
	got := 0   // handshake body bytes available so far
	off := 0
	for need < 0 || got < need {
		if off >= len(stream) {
			return ClientHello{}, NeedMore
		}
		if off > MaxPrefixLen {
			return ClientHello{}, NotTLS
		}
		rest := stream[off:]
		if st := checkRecordHeader(rest); st != OK {
			return ClientHello{}, st
		}
		rl := int(rest[3])<<8 | int(rest[4])
		end := recordHeaderLen + rl
		complete := end <= len(rest)
		if !complete {
			end = len(rest)
		}
		p := rest[recordHeaderLen:end]
		for nhdr < handshakeHeaderLen && len(p) > 0 {
			hdr[nhdr] = p[0]
			nhdr++
			p = p[1:]
			if hdr[0] != typeClientHello {
				return ClientHello{}, NotTLS
			}
		}
		if nhdr == handshakeHeaderLen && need < 0 {
			need = int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			if need > MaxHelloLen {
				return ClientHello{}, NotTLS
			}
		}
		got += len(p)
		if !complete {
			break
		}
		off += recordHeaderLen + rl
	}
	if need < 0 || got < need {
		return ClientHello{}, NeedMore
	}

	var body []byte
	if firstLen := int(stream[3])<<8 | int(stream[4]); firstLen >= handshakeHeaderLen+need {
		// Common case: the whole hello sits in the first record; parse in place.
		start := recordHeaderLen + handshakeHeaderLen
		body = stream[start : start+need]
	} else {
		body = assemble(stream, need)
	}
	return parseBody(body, in)
}

// assemble concatenates the handshake payload of consecutive records (already
// validated by ParseClientHello) and returns the hello body.
func assemble(stream []byte, need int) []byte {
	buf := make([]byte, 0, handshakeHeaderLen+need)
	for off := 0; len(buf) < cap(buf); {
		rl := int(stream[off+3])<<8 | int(stream[off+4])
		end := min(off+recordHeaderLen+rl, len(stream))
		p := stream[off+recordHeaderLen : end]
		buf = append(buf, p[:min(len(p), cap(buf)-len(buf))]...)
		off = end
	}
	return buf[handshakeHeaderLen:]
}

// reader is a bounds-checked cursor; every accessor reports failure instead
// of panicking so malformed input falls out as NotTLS.
type reader struct{ b []byte }

func (r *reader) u8() (int, bool) {
	if len(r.b) < 1 {
		return 0, false
	}
	v := int(r.b[0])
	r.b = r.b[1:]
	return v, true
}

func (r *reader) u16() (int, bool) {
	if len(r.b) < 2 {
		return 0, false
	}
	v := int(r.b[0])<<8 | int(r.b[1])
	r.b = r.b[2:]
	return v, true
}

func (r *reader) bytes(n int) ([]byte, bool) {
	if n < 0 || len(r.b) < n {
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}

// vec8 and vec16 read a length-prefixed vector.
func (r *reader) vec8() ([]byte, bool) {
	n, ok := r.u8()
	if !ok {
		return nil, false
	}
	return r.bytes(n)
}

func (r *reader) vec16() ([]byte, bool) {
	n, ok := r.u16()
	if !ok {
		return nil, false
	}
	return r.bytes(n)
}

// isGREASE reports RFC 8701 values: 0x0a0a, 0x1a1a, ..., 0xfafa.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

func parseBody(body []byte, in *interner) (ClientHello, Status) {
	var h ClientHello
	r := reader{body}
	legacy, ok := r.u16()
	if !ok {
		return h, NotTLS
	}
	if _, ok := r.bytes(32); !ok { // random
		return h, NotTLS
	}
	if sid, ok := r.vec8(); !ok || len(sid) > 32 {
		return h, NotTLS
	}
	suites, ok := r.vec16()
	if !ok || len(suites) == 0 || len(suites)%2 != 0 {
		return h, NotTLS
	}
	if comp, ok := r.vec8(); !ok || len(comp) == 0 {
		return h, NotTLS
	}
	var exts []byte
	if len(r.b) > 0 { // extensions are optional before TLS 1.2
		if exts, ok = r.vec16(); !ok || len(r.b) != 0 {
			return h, NotTLS
		}
	}

	var f fingerprint
	f.ciphers, f.exts = f.cipherBuf[:0], f.extBuf[:0]
	sigSeen := false
	for i := 0; i < len(suites); i += 2 {
		c := uint16(suites[i])<<8 | uint16(suites[i+1])
		if !isGREASE(c) {
			f.ciphers = append(f.ciphers, c)
		}
	}
	h.Version = uint16(legacy)

	var alpnFirst []byte
	haveALPN := false
	er := reader{exts}
	for len(er.b) > 0 {
		typ, ok := er.u16()
		if !ok {
			return ClientHello{}, NotTLS
		}
		data, ok := er.vec16()
		if !ok {
			return ClientHello{}, NotTLS
		}
		t := uint16(typ)
		if isGREASE(t) {
			continue
		}
		f.exts = append(f.exts, t)
		switch t {
		case extServerName:
			f.sni = true
			if h.SNI == "" {
				h.SNI = parseSNI(data, in)
			}
		case extALPN:
			if !haveALPN {
				haveALPN = true
				h.ALPN, alpnFirst = parseALPN(data, in)
			}
		case extSignatureAlgs:
			if !sigSeen {
				sigSeen = true
				f.sigalgs = parseU16List(data, f.sigalgBuf[:0])
			}
		case extSupportedVersio:
			if v, ok := maxSupportedVersion(data); ok {
				h.Version = v
			}
		}
	}
	h.CipherCount = len(f.ciphers)
	h.ExtCount = len(f.exts)
	h.JA4 = f.ja4(h.Version, alpnFirst, in)
	return h, OK
}

func parseSNI(data []byte, in *interner) string {
	r := reader{data}
	list, ok := r.vec16()
	if !ok {
		return ""
	}
	lr := reader{list}
	for len(lr.b) > 0 {
		typ, ok := lr.u8()
		if !ok {
			return ""
		}
		name, ok := lr.vec16()
		if !ok {
			return ""
		}
		if typ == 0 && len(name) > 0 { // host_name
			name = bytes.TrimSuffix(name, []byte("."))
			if in == nil {
				// Lower-case while copying so this costs one allocation.
				var sb strings.Builder
				sb.Grow(len(name))
				for _, c := range name {
					if 'A' <= c && c <= 'Z' {
						c += 'a' - 'A'
					}
					sb.WriteByte(c)
				}
				return sb.String()
			}
			var buf [256]byte // a DNS name fits; a longer one spills to the heap
			low := buf[:0]
			for _, c := range name {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				low = append(low, c)
			}
			return in.str(low)
		}
	}
	return ""
}

// parseALPN returns the protocol list and the raw first value (which JA4
// needs byte-exact, even when it is not printable).
func parseALPN(data []byte, in *interner) ([]string, []byte) {
	r := reader{data}
	list, ok := r.vec16()
	if !ok {
		return nil, nil
	}
	var first []byte
	n := 0
	for lr := (reader{list}); len(lr.b) > 0; n++ {
		p, ok := lr.vec8()
		if !ok {
			break
		}
		if n == 0 {
			first = p
		}
	}
	if n == 0 {
		return nil, nil
	}
	if in != nil {
		if out, ok := in.alpn[string(list)]; ok {
			return out, first
		}
	}
	out := make([]string, 0, min(n, maxALPNValues))
	for lr := (reader{list}); len(lr.b) > 0 && len(out) < maxALPNValues; {
		p, ok := lr.vec8()
		if !ok {
			break
		}
		out = append(out, in.str(p))
	}
	if in != nil {
		if in.alpn == nil || len(in.alpn) >= maxInterned {
			in.alpn = make(map[string][]string)
		}
		in.alpn[string(list)] = out[:len(out):len(out)] // full: an append by a reader copies
	}
	return out, first
}

func parseU16List(data []byte, dst []uint16) []uint16 {
	r := reader{data}
	list, ok := r.vec16()
	if !ok {
		return dst
	}
	for i := 0; i+1 < len(list); i += 2 {
		v := uint16(list[i])<<8 | uint16(list[i+1])
		if !isGREASE(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

func maxSupportedVersion(data []byte) (uint16, bool) {
	r := reader{data}
	list, ok := r.vec8()
	if !ok {
		return 0, false
	}
	var best uint16
	found := false
	for i := 0; i+1 < len(list); i += 2 {
		v := uint16(list[i])<<8 | uint16(list[i+1])
		if isGREASE(v) {
			continue
		}
		// DTLS versions count down (0xfeff is 1.0, 0xfefc is 1.3), but over
		// TCP only TLS versions are meaningful, so a plain max is right.
		if !found || v > best {
			best, found = v, true
		}
	}
	return best, found
}
