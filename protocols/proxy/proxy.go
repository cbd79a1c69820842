package proxy

import (
	"bytes"
	"net/netip"
	"strconv"
	"unicode/utf8"
)

// Kind is the kind of tunnel preamble.
type Kind uint8

const (
	None Kind = iota
	SOCKS5
	SOCKS4
	HTTPConnect
	WebSocket
)

func (k Kind) String() string {
	switch k {
	case SOCKS5:
		return "socks5"
	case SOCKS4:
		return "socks4"
	case HTTPConnect:
		return "http-connect"
	case WebSocket:
		return "websocket"
	}
	return ""
}

// Status is Detect's verdict.
type Status uint8

const (
	NeedMore Status = iota
	Done            // preamble recognised; Tunnel fields are valid
	NotProxy
)

func (s Status) String() string {
	switch s {
	case NeedMore:
		return "need-more"
	case Done:
		return "done"
	case NotProxy:
		return "not-proxy"
	}
	return "unknown"
}

// Tunnel describes a recognised preamble.
type Tunnel struct {
	Kind Kind
	// Target is the host:port requested (domain or IP literal); "" for
	// WebSocket, whose destination is Host + Path.
	Target string
	// Host and Path are the WebSocket upgrade's Host header and request
	// path ("" for other kinds).
	Host, Path string
	// ClientSkip and ServerSkip are how many bytes of each direction
	// belong to the preamble; tunnelled data starts there.
	ClientSkip int
	ServerSkip int
}

// maxHeader bounds an HTTP preamble. Detect is stateless and re-reads the
// prefix on each call, so this also bounds the work per call.
const maxHeader = 8 << 10

// Detect looks at the start of both directions (the whole contiguous
// prefixes seen so far) and reports whether they open a proxy tunnel.
func Detect(client, server []byte) (Tunnel, Status) {
	if len(client) == 0 {
		return Tunnel{}, NeedMore
	}
	switch client[0] {
	case 5:
		return socks5(client, server)
	case 4:
		return socks4(client, server)
	case 'C':
		switch prefix(client, "CONNECT ") {
		case NeedMore:
			return Tunnel{}, NeedMore
		case Done:
			return httpConnect(client, server)
		}
	case 'G':
		switch prefix(client, "GET ") {
		case NeedMore:
			return Tunnel{}, NeedMore
		case Done:
			return webSocket(client, server)
		}
	}
	return Tunnel{}, NotProxy
}

func prefix(b []byte, p string) Status {
	if len(b) < len(p) {
		if string(b) == p[:len(b)] {
			return NeedMore
		}
		return NotProxy
	}
	if string(b[:len(p)]) == p {
		return Done
	}
	return NotProxy
}

// socksAddr parses ATYP + address + port at b[0:], returning the target
// and the bytes used; n == 0 means more bytes are needed, n < 0 invalid.
func socksAddr(b []byte, build bool) (target string, n int) {
	if len(b) < 1 {
		return "", 0
	}
	var alen int
	switch b[0] {
	case 1:
		alen = 4
	case 4:
		alen = 16
	case 3:
		if len(b) < 2 {
			return "", 0
		}
		alen = 1 + int(b[1])
		if b[1] == 0 {
			return "", -1
		}
	default:
		return "", -1
	}
	n = 1 + alen + 2
	if len(b) < n {
		return "", 0
	}
	if !build {
		return "", n
	}
	port := int(b[n-2])<<8 | int(b[n-1])
	var host string
	switch b[0] {
	case 1:
		host = netip.AddrFrom4([4]byte(b[1:5])).String()
	case 4:
		host = "[" + netip.AddrFrom16([16]byte(b[1:17])).String() + "]"
	case 3:
		host = string(b[2 : 2+int(b[1])])
	}
	return host + ":" + strconv.Itoa(port), n
}

func socks5(c, s []byte) (Tunnel, Status) {
	// Greeting: VER NMETHODS METHODS...
	if len(c) < 2 {
		return Tunnel{}, NeedMore
	}
	nm := int(c[1])
	if nm == 0 {
		return Tunnel{}, NotProxy
	}
	co := 2 + nm
	if len(c) < co {
		return Tunnel{}, NeedMore
	}
	// Method selection: VER METHOD.
	if len(s) < 2 {
		if len(s) == 1 && s[0] != 5 {
			return Tunnel{}, NotProxy
		}
		return Tunnel{}, NeedMore
	}
	if s[0] != 5 || bytes.IndexByte(c[2:co], s[1]) < 0 {
		return Tunnel{}, NotProxy
	}
	so := 2
	switch s[1] {
	case 0:
	case 2:
		// RFC 1929 username/password: VER ULEN UNAME PLEN PASSWD.
		if len(c) < co+2 {
			return Tunnel{}, NeedMore
		}
		if c[co] != 1 {
			return Tunnel{}, NotProxy
		}
		ul := int(c[co+1])
		if len(c) < co+2+ul+1 {
			return Tunnel{}, NeedMore
		}
		pl := int(c[co+2+ul])
		co += 3 + ul + pl
		if len(c) < co {
			return Tunnel{}, NeedMore
		}
		if len(s) < so+2 {
			return Tunnel{}, NeedMore
		}
		if s[so] != 1 || s[so+1] != 0 {
			return Tunnel{}, NotProxy
		}
		so += 2
	default:
		// No acceptable method, or one (GSSAPI) whose framing we cannot follow.
		return Tunnel{}, NotProxy
	}
	// Request: VER CMD RSV ATYP DST.ADDR DST.PORT, CONNECT only.
	if len(c) < co+3 {
		return Tunnel{}, NeedMore
	}
	if c[co] != 5 || c[co+1] != 1 || c[co+2] != 0 {
		return Tunnel{}, NotProxy
	}
	_, an := socksAddr(c[co+3:], false)
	switch {
	case an == 0:
		return Tunnel{}, NeedMore
	case an < 0:
		return Tunnel{}, NotProxy
	}
	// Reply: VER REP RSV ATYP BND.ADDR BND.PORT.
	if len(s) < so+3 {
		return Tunnel{}, NeedMore
	}
	if s[so] != 5 || s[so+1] != 0 {
		return Tunnel{}, NotProxy
	}
	_, bn := socksAddr(s[so+3:], false)
	switch {
	case bn == 0:
		return Tunnel{}, NeedMore
	case bn < 0:
		return Tunnel{}, NotProxy
	}
	target, _ := socksAddr(c[co+3:], true)
	return Tunnel{Kind: SOCKS5, Target: target, ClientSkip: co + 3 + an, ServerSkip: so + 3 + bn}, Done
}

func socks4(c, s []byte) (Tunnel, Status) {
	// VN=4 CD=1 DSTPORT(2) DSTIP(4) USERID NUL [DOMAIN NUL if 0.0.0.x].
	if len(c) < 2 {
		return Tunnel{}, NeedMore
	}
	if c[1] != 1 {
		return Tunnel{}, NotProxy
	}
	if len(c) < 9 {
		return Tunnel{}, NeedMore
	}
	end := bytes.IndexByte(c[8:], 0)
	if end < 0 {
		if len(c)-8 > 255 {
			return Tunnel{}, NotProxy
		}
		return Tunnel{}, NeedMore
	}
	co := 8 + end + 1
	ip := [4]byte(c[4:8])
	port := int(c[2])<<8 | int(c[3])
	var host string
	socks4a := ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0
	if socks4a {
		d := bytes.IndexByte(c[co:], 0)
		if d < 0 {
			if len(c)-co > 255 {
				return Tunnel{}, NotProxy
			}
			return Tunnel{}, NeedMore
		}
		if d == 0 {
			return Tunnel{}, NotProxy
		}
		co += d + 1
	}
	// Reply: VN=0 CD=0x5A(granted) PORT(2) IP(4).
	if len(s) < 8 {
		if len(s) >= 1 && s[0] != 0 {
			return Tunnel{}, NotProxy
		}
		return Tunnel{}, NeedMore
	}
	if s[0] != 0 || s[1] != 0x5A {
		return Tunnel{}, NotProxy
	}
	if socks4a {
		host = string(c[8+end+1 : co-1])
	} else {
		host = netip.AddrFrom4(ip).String()
	}
	return Tunnel{Kind: SOCKS4, Target: host + ":" + strconv.Itoa(port), ClientSkip: co, ServerSkip: 8}, Done
}

// headerEnd returns the index just past the blank line ending an HTTP
// header block, 0 if not there yet, -1 if it is too long.
func headerEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		k := i + j + 1
		if k < len(b) && b[k] == '\r' {
			k++
		}
		if k < len(b) && b[k] == '\n' {
			if k+1 > maxHeader {
				return -1
			}
			return k + 1
		}
		i += j + 1
		if i > maxHeader {
			return -1
		}
	}
	if len(b) > maxHeader {
		return -1
	}
	return 0
}

// statusCode parses "HTTP/1.x NNN" at the start of a response.
func statusCode(b []byte) (int, Status) {
	if len(b) < 12 {
		if prefix(b, "HTTP/1.") == NotProxy {
			return 0, NotProxy
		}
		return 0, NeedMore
	}
	if prefix(b, "HTTP/1.") != Done || b[8] != ' ' {
		return 0, NotProxy
	}
	code := 0
	for _, ch := range b[9:12] {
		if ch < '0' || ch > '9' {
			return 0, NotProxy
		}
		code = code*10 + int(ch-'0')
	}
	return code, Done
}

// requestTarget returns the second token of the request line and the
// header block, once complete.
func request(c []byte) (target []byte, hdr []byte, st Status) {
	ce := headerEnd(c)
	switch {
	case ce < 0:
		return nil, nil, NotProxy
	case ce == 0:
		return nil, nil, NeedMore
	}
	hdr = c[:ce]
	line := hdr[:bytes.IndexByte(hdr, '\n')]
	sp1 := bytes.IndexByte(line, ' ')
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 || !bytes.HasPrefix(rest[sp2+1:], []byte("HTTP/1.")) {
		return nil, nil, NotProxy
	}
	return rest[:sp2], hdr, Done
}

// response waits for a complete response header block with the wanted
// status class and returns its length.
func response(s []byte, ok func(int) bool) (int, Status) {
	code, st := statusCode(s)
	if st != Done {
		return 0, st
	}
	if !ok(code) {
		return 0, NotProxy
	}
	se := headerEnd(s)
	switch {
	case se < 0:
		return 0, NotProxy
	case se == 0:
		return 0, NeedMore
	}
	return se, Done
}

func httpConnect(c, s []byte) (Tunnel, Status) {
	target, hdr, st := request(c)
	if st != Done {
		return Tunnel{}, st
	}
	if bytes.LastIndexByte(target, ':') <= 0 {
		return Tunnel{}, NotProxy
	}
	se, st := response(s, func(code int) bool { return code >= 200 && code < 300 })
	if st != Done {
		return Tunnel{}, st
	}
	return Tunnel{Kind: HTTPConnect, Target: string(target), ClientSkip: len(hdr), ServerSkip: se}, Done
}

// containsFold reports whether bytes.ToLower(b) contains lower (lower-case ASCII) without
// lowering a copy when b is ASCII; otherwise it lowers, as Unicode case mapping may map a
// non-ASCII letter to an ASCII one (the Kelvin sign to k).
func containsFold(b []byte, lower string) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return bytes.Contains(bytes.ToLower(b), []byte(lower))
		}
	}
	for i := 0; i+len(lower) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(lower)], []byte(lower)) {
			return true
		}
	}
	return false
}

func webSocket(c, s []byte) (Tunnel, Status) {
	path, hdr, st := request(c)
	if st != Done {
		return Tunnel{}, st
	}
	var host []byte
	upgrade := false
	// The header lines after the request line, walked in place (a bytes.Split here was a
	// slice per HTTP request replayed).
	_, rest, more := bytes.Cut(hdr, []byte("\n"))
	for more {
		var line []byte
		line, rest, more = bytes.Cut(rest, []byte("\n"))
		col := bytes.IndexByte(line, ':')
		if col <= 0 {
			continue
		}
		name := bytes.TrimSpace(line[:col])
		val := bytes.TrimSpace(line[col+1:])
		switch {
		case bytes.EqualFold(name, []byte("upgrade")):
			upgrade = containsFold(val, "websocket")
		case bytes.EqualFold(name, []byte("host")):
			host = val
		}
	}
	if !upgrade {
		return Tunnel{}, NotProxy
	}
	se, st := response(s, func(code int) bool { return code == 101 })
	if st != Done {
		return Tunnel{}, st
	}
	return Tunnel{Kind: WebSocket, Host: string(host), Path: string(path), ClientSkip: len(hdr), ServerSkip: se}, Done
}
