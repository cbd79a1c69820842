package stratum

import (
	"bytes"
	"encoding/base64"
)

// getwork and getblocktemplate travel as HTTP JSON-RPC. We read the first
// request (or response) of a direction: its headers, then its body when a
// Content-Length or a first chunk makes it available.

type prefixMatch uint8

const (
	prefixNo prefixMatch = iota
	prefixPartial
	prefixYes
)

var httpStarts = [...]string{"POST ", "GET ", "PUT ", "HEAD ", "OPTIONS ", "DELETE ", "PATCH ", "HTTP/1."}

// httpStart reports whether b begins an HTTP/1 request or response.
func httpStart(b []byte) prefixMatch {
	res := prefixNo
	for _, p := range httpStarts {
		if len(b) >= len(p) {
			if string(b[:len(p)]) == p {
				return prefixYes
			}
		} else if string(b) == p[:len(b)] {
			res = prefixPartial
		}
	}
	return res
}

// minerAgents are User-Agent prefixes of mining software (lower case).
var minerAgents = [...]string{
	"cgminer", "bfgminer", "cpuminer", "poclbm", "xmrig", "ccminer", "sgminer",
	"ethminer", "phoenixminer", "nbminer", "t-rex", "lolminer", "srbminer",
	"gminer", "teamredminer", "claymore", "minerd", "bminer", "nanominer",
	"xmr-stak", "cryptodredge", "wildrig", "bzminer", "rigel", "diablominer",
	"guiminer", "minergate", "nheqminer", "excavator", "cudaminer", "multiminer",
	"easyminer", "btcminer", "50miner", "bitminter", "ufasoft", "xmr-node-proxy",
}

func isMinerAgent(ua []byte) bool {
	for _, p := range minerAgents {
		if len(ua) < len(p) || !bytes.EqualFold(ua[:len(p)], []byte(p)) {
			continue
		}
		if len(ua) == len(p) {
			return true
		}
		if c := ua[len(p)]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return true
		}
	}
	return false
}

type httpState struct {
	scan     int    // where to resume looking for the end of headers
	hdrEnd   int    // just past the blank line; 0 until found
	response bool   // direction carries responses
	signal   string // header that alone marks mining ("" if none)
	ua       span
	auth     span // base64 of Basic credentials
	clen     int  // -1 when absent
	chunked  bool
}

// scanHTTP reads the headers of the first HTTP message; false means need
// more. The body, if any, is then judged by the JSON message framer.
func (s *Scanner) scanHTTP(data []byte) bool {
	h := &s.http
	if !h.findEnd(data) {
		if len(data) > MaxLine {
			s.Overflows++
			s.finish(NotMining, Result{})
			return true
		}
		s.pos = len(data)
		return false
	}
	h.parseHeaders(data[:h.hdrEnd])
	s.pos = h.hdrEnd
	if h.clen == 0 || (!h.response && h.clen < 0 && !h.chunked) {
		s.httpDecide(data)
		return true
	}
	s.httpBody = true
	s.mode = modeLines
	return true
}

// httpDecide settles an HTTP stream whose body (if any) was not mining.
func (s *Scanner) httpDecide(data []byte) {
	h := &s.http
	if h.signal == "" {
		s.finish(NotMining, Result{})
		return
	}
	s.finish(Match, h.decorate(data, Result{Variant: VariantGetwork, Method: h.signal}))
}

// decorate adds what the headers tell about the peer.
func (h *httpState) decorate(data []byte, r Result) Result {
	r.Side = SideClient
	if h.response {
		r.Side = SidePool
	}
	if r.Agent == "" && h.ua.ok() {
		r.Agent = string(capBytes(data[h.ua.s:h.ua.e], maxField))
	}
	if r.Login == "" && h.auth.ok() {
		enc := data[h.auth.s:h.auth.e]
		dst := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		if n, err := base64.StdEncoding.Decode(dst, enc); err == nil {
			user := dst[:n]
			if i := bytes.IndexByte(user, ':'); i >= 0 {
				user = user[:i]
			}
			r.Login = string(capBytes(user, maxField))
		}
	}
	return r
}

func capBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (h *httpState) findEnd(data []byte) bool {
	for {
		j := bytes.IndexByte(data[h.scan:], '\n')
		if j < 0 {
			h.scan = len(data)
			return false
		}
		j += h.scan
		k := j + 1
		if k < len(data) && data[k] == '\r' {
			k++
		}
		if k >= len(data) {
			h.scan = j // look at this newline again when more arrives
			return false
		}
		if data[k] == '\n' {
			h.hdrEnd = k + 1
			return true
		}
		h.scan = j + 1
	}
}

func trimSpace(b []byte, s, e int) (int, int) {
	for s < e && (b[s] == ' ' || b[s] == '\t') {
		s++
	}
	for e > s && (b[e-1] == ' ' || b[e-1] == '\t' || b[e-1] == '\r') {
		e--
	}
	return s, e
}

// headerIs reports whether name is the header name lower under bytes.EqualFold. A header
// line is tested against every name of interest and most differ in length, so an ASCII name
// (ascii: the caller checked once per line) of another length is refused without comparing;
// a non-ASCII one is compared, as Unicode folding can match byte strings of two lengths.
func headerIs(name []byte, ascii bool, lower string) bool {
	if ascii && len(name) != len(lower) {
		return false
	}
	return bytes.EqualFold(name, []byte(lower))
}

// isASCII reports whether b is all ASCII.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func (h *httpState) parseHeaders(hdr []byte) {
	h.clen = -1
	h.response = bytes.HasPrefix(hdr, []byte("HTTP/"))
	i := bytes.IndexByte(hdr, '\n') + 1 // skip the request/status line
	for i > 0 && i < len(hdr) {
		e := bytes.IndexByte(hdr[i:], '\n')
		if e < 0 {
			e = len(hdr)
		} else {
			e += i
		}
		line := hdr[i:e]
		next := e + 1
		c := bytes.IndexByte(line, ':')
		if c > 0 {
			name := line[:c]
			vs, ve := trimSpace(hdr, i+c+1, e)
			val := hdr[vs:ve]
			ascii := isASCII(name)
			switch {
			case headerIs(name, ascii, "user-agent"):
				h.ua = span{vs, ve}
				if isMinerAgent(val) && h.signal == "" {
					h.signal = "user-agent"
				}
			case headerIs(name, ascii, "x-mining-extensions"):
				h.signal = "x-mining-extensions"
			case headerIs(name, ascii, "x-mining-hashrate"):
				h.signal = "x-mining-hashrate"
			case headerIs(name, ascii, "x-stratum"):
				h.signal = "x-stratum"
			case headerIs(name, ascii, "x-long-polling"):
				h.signal = "x-long-polling"
			case headerIs(name, ascii, "x-roll-ntime"):
				h.signal = "x-roll-ntime"
			case headerIs(name, ascii, "content-length"):
				h.clen = atoi(val)
			case headerIs(name, ascii, "transfer-encoding"):
				h.chunked = containsFold(val, "chunked")
			case headerIs(name, ascii, "authorization"):
				if len(val) > 6 && bytes.EqualFold(val[:6], []byte("basic ")) {
					as, ae := trimSpace(hdr, vs+6, ve)
					h.auth = span{as, ae}
				}
			}
		}
		i = next
	}
}

func atoi(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(s)], []byte(s)) {
			return true
		}
	}
	return false
}
