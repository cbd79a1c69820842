package proxy

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	socks5Greet      = []byte{5, 1, 0}
	socks5Choose     = []byte{5, 0}
	socks5ConnDomain = cat([]byte{5, 1, 0, 3, 16}, []byte("pool.example.com"), []byte{0x0d, 0x05})
	socks5ConnIPv4   = []byte{5, 1, 0, 1, 203, 0, 113, 7, 0x0d, 0x05}
	socks5ConnIPv6   = cat([]byte{5, 1, 0, 4}, []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, []byte{0x01, 0xbb})
	socks5Reply      = []byte{5, 0, 0, 1, 10, 0, 0, 1, 0x90, 0x1f}
	stratum          = []byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n")
	poolHello        = []byte(`{"id":1,"result":[[["mining.notify","1"]],"ab",4]}` + "\n")
)

type detectCase struct {
	name           string
	client, server []byte
	status         Status
	want           Tunnel
}

var detectCases = []detectCase{
	{"socks5 domain", cat(socks5Greet, socks5ConnDomain, stratum), cat(socks5Choose, socks5Reply, poolHello), Done,
		Tunnel{Kind: SOCKS5, Target: "pool.example.com:3333", ClientSkip: 3 + len(socks5ConnDomain), ServerSkip: 2 + len(socks5Reply)}},
	{"socks5 ipv4 (xmrig)", cat(socks5Greet, socks5ConnIPv4), cat(socks5Choose, socks5Reply), Done,
		Tunnel{Kind: SOCKS5, Target: "203.0.113.7:3333", ClientSkip: 3 + 10, ServerSkip: 12}},
	{"socks5 ipv6", cat([]byte{5, 2, 0, 2}, socks5ConnIPv6), cat(socks5Choose, socks5Reply), Done,
		Tunnel{Kind: SOCKS5, Target: "[2001:db8::1]:443", ClientSkip: 4 + len(socks5ConnIPv6), ServerSkip: 12}},
	{"socks5 user/pass", cat([]byte{5, 2, 0, 2}, []byte{1, 1, 'u', 2, 'p', 'w'}, socks5ConnIPv4), cat([]byte{5, 2}, []byte{1, 0}, socks5Reply), Done,
		Tunnel{Kind: SOCKS5, Target: "203.0.113.7:3333", ClientSkip: 4 + 6 + 10, ServerSkip: 4 + 10}},
	{"socks5 waiting for reply", cat(socks5Greet, socks5ConnIPv4), socks5Choose, NeedMore, Tunnel{}},
	{"socks5 refused", cat(socks5Greet, socks5ConnIPv4), cat(socks5Choose, []byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}), NotProxy, Tunnel{}},
	{"socks5 no acceptable method", socks5Greet, []byte{5, 0xff}, NotProxy, Tunnel{}},
	{"socks5 udp associate", cat(socks5Greet, []byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0}), socks5Choose, NotProxy, Tunnel{}},
	{"socks4", cat([]byte{4, 1, 0x0d, 0x05, 198, 51, 100, 9}, []byte("user\x00")), []byte{0, 0x5a, 0, 0, 0, 0, 0, 0}, Done,
		Tunnel{Kind: SOCKS4, Target: "198.51.100.9:3333", ClientSkip: 13, ServerSkip: 8}},
	{"socks4a", cat([]byte{4, 1, 0x0d, 0x05, 0, 0, 0, 1}, []byte("\x00xmr.pool.example\x00")), []byte{0, 0x5a, 0, 0, 0, 0, 0, 0}, Done,
		Tunnel{Kind: SOCKS4, Target: "xmr.pool.example:3333", ClientSkip: 9 + 17, ServerSkip: 8}},
	{"socks4 rejected", cat([]byte{4, 1, 0x0d, 0x05, 1, 2, 3, 4}, []byte("\x00")), []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}, NotProxy, Tunnel{}},
	{"http connect", []byte("CONNECT pool.example:443 HTTP/1.1\r\nHost: pool.example:443\r\nProxy-Connection: keep-alive\r\n\r\n\x16\x03\x01"),
		[]byte("HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03"), Done,
		Tunnel{Kind: HTTPConnect, Target: "pool.example:443", ClientSkip: 91, ServerSkip: 39}},
	{"http connect 407", []byte("CONNECT pool.example:443 HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"), NotProxy, Tunnel{}},
	{"http connect partial", []byte("CONNECT pool.exa"), nil, NeedMore, Tunnel{}},
	{"websocket", []byte("GET /proxy?pool=1 HTTP/1.1\r\nHost: ws.example.net\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
		[]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), Done,
		Tunnel{Kind: WebSocket, Host: "ws.example.net", Path: "/proxy?pool=1", ClientSkip: 165, ServerSkip: 129}},
	{"websocket refused", []byte("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"), []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), NotProxy, Tunnel{}},
	{"plain GET", []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), nil, NotProxy, Tunnel{}},
	{"stratum direct", stratum, poolHello, NotProxy, Tunnel{}},
	{"tls", []byte{0x16, 3, 1, 0, 200}, nil, NotProxy, Tunnel{}},
	{"empty", nil, nil, NeedMore, Tunnel{}},
}

func TestDetect(t *testing.T) {
	for _, tc := range detectCases {
		t.Run(tc.name, func(t *testing.T) {
			got, st := Detect(tc.client, tc.server)
			if st != tc.status {
				t.Fatalf("status = %v, want %v (%+v)", st, tc.status, got)
			}
			if st == Done && got != tc.want {
				t.Fatalf("tunnel\n got %+v\nwant %+v", got, tc.want)
			}
			// Every shorter prefix must say NeedMore or the same verdict,
			// never Done early.
			for n := 0; n < len(tc.client); n++ {
				if _, st := Detect(tc.client[:n], tc.server); st == Done && tc.status == Done && n < tc.want.ClientSkip {
					t.Fatalf("Done with only %d client bytes", n)
				}
			}
		})
	}
}

func TestDetectSkipsLandOnTunnel(t *testing.T) {
	c := cat(socks5Greet, socks5ConnDomain, stratum)
	s := cat(socks5Choose, socks5Reply, poolHello)
	tun, st := Detect(c, s)
	if st != Done || !bytes.Equal(c[tun.ClientSkip:], stratum) || !bytes.Equal(s[tun.ServerSkip:], poolHello) {
		t.Fatalf("skips do not land on tunnelled data: %+v %v", tun, st)
	}
}

// wsFrame builds one frame; mask nil means unmasked (server).
func wsFrame(fin bool, op byte, payload []byte, mask []byte, rsv1 bool) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	var h []byte
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		h = []byte{b0, m | byte(n)}
	case n < 1<<16:
		h = []byte{b0, m | 126, byte(n >> 8), byte(n)}
	default:
		h = []byte{b0, m | 127, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	p := append([]byte(nil), payload...)
	if mask != nil {
		h = append(h, mask...)
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return append(h, p...)
}

var (
	auth    = []byte(`{"type":"auth","params":{"site_key":"k","type":"anonymous","user":null,"goal":0}}`)
	big     = bytes.Repeat([]byte("x"), 70000)
	mid     = bytes.Repeat([]byte("y"), 300)
	maskKey = []byte{0x37, 0xfa, 0x21, 0x3d}
)

func wsStream() ([]byte, []byte) {
	in := cat(
		wsFrame(true, 1, auth, maskKey, false),
		wsFrame(true, 9, []byte("ping"), maskKey, false),              // control, skipped
		wsFrame(false, 1, []byte(`{"type":"sub`), maskKey, false),     // fragment 1
		wsFrame(true, 10, nil, maskKey, false),                        // control between fragments
		wsFrame(true, 0, []byte(`mit","params":{}}`), maskKey, false), // fragment 2
		wsFrame(true, 2, mid, nil, false),                             // 16-bit length, unmasked
		wsFrame(true, 1, []byte("compressed"), maskKey, true),         // skipped
		wsFrame(true, 1, big, maskKey, false),                         // 64-bit length
		wsFrame(true, 1, nil, nil, false),                             // empty message
	)
	want := cat(auth, []byte("\n"), []byte(`{"type":"submit","params":{}}`+"\n"), mid, []byte("\n"), big, []byte("\n\n"))
	return in, want
}

func TestWSDecode(t *testing.T) {
	in, want := wsStream()
	for _, step := range []int{len(in), 1, 3, 1000} {
		var d WSDecoder
		var out []byte
		buf := make([]byte, 0, 4096)
		pending := []byte{}
		for off := 0; off < len(in) || len(pending) > 0; {
			end := min(off+step, len(in))
			pending = append(pending, in[off:end]...)
			off = end
			o, n, err := d.Decode(buf[:0], pending)
			if err != nil {
				t.Fatal(err)
			}
			if len(o) > cap(buf) {
				t.Fatal("wrote past cap(dst)")
			}
			out = append(out, o...)
			pending = pending[n:]
			if off == len(in) && n == 0 && len(o) == 0 {
				break
			}
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("step %d: decoded %d bytes, want %d; prefix %q", step, len(out), len(want), out[:min(len(out), 120)])
		}
		if d.Compressed != 1 {
			t.Fatalf("compressed = %d, want 1", d.Compressed)
		}
		if len(pending) != 0 {
			t.Fatalf("step %d: %d bytes left unconsumed", step, len(pending))
		}
	}
}

func TestWSDecodeErrors(t *testing.T) {
	for name, in := range map[string][]byte{
		"reserved opcode":     {0x83, 0},
		"fragmented control":  {0x09, 0},
		"long control":        {0x89, 126, 0, 200},
		"orphan continuation": {0x80, 0},
		"message in message":  cat([]byte{0x01, 1, 'a'}, []byte{0x81, 0}),
		"huge length":         {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0},
	} {
		var d WSDecoder
		if _, _, err := d.Decode(make([]byte, 0, 64), in); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, _, err := d.Decode(nil, []byte{0x81, 0}); err == nil {
			t.Errorf("%s: error not sticky", name)
		}
	}
}

func TestWSDecodeAllocs(t *testing.T) {
	in, _ := wsStream()
	buf := make([]byte, 0, 1<<17)
	allocs := testing.AllocsPerRun(20, func() {
		var d WSDecoder
		if _, _, err := d.Decode(buf[:0], in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("allocs = %v, want 0", allocs)
	}
}

func TestDetectNeedMoreAllocs(t *testing.T) {
	c := cat(socks5Greet, socks5ConnIPv4)
	cc, cs := []byte("CONNECT pool.example:443 HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\n")
	allocs := testing.AllocsPerRun(50, func() {
		if _, st := Detect(c, socks5Choose); st != NeedMore {
			t.Fatal(st)
		}
		if _, st := Detect(cc, cs); st != NeedMore {
			t.Fatal(st)
		}
		if _, st := Detect(stratum, nil); st != NotProxy {
			t.Fatal(st)
		}
	})
	if allocs != 0 {
		t.Fatalf("allocs = %v, want 0", allocs)
	}
}

// TestDetectPlainHTTPAllocs: a plain HTTP request, the usual flow that reaches the header
// walk, is judged without allocating; a WebSocket upgrade allocates only its Tunnel's strings.
func TestDetectPlainHTTPAllocs(t *testing.T) {
	get := []byte("GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n")
	if n := testing.AllocsPerRun(50, func() {
		if _, st := Detect(get, nil); st != NotProxy {
			t.Fatal(st)
		}
	}); n != 0 {
		t.Fatalf("allocs = %v, want 0", n)
	}
}

// containsFold is bytes.Contains of the lowered bytes, non-ASCII included (the Kelvin sign
// lowers to k).
func TestContainsFold(t *testing.T) {
	for _, v := range []string{"websocket", "WebSocket", "h2c, WEBSOCKET", "websock", "", "web socket",
		"WEBSOC\u212aET", "websoc\u212aet, x", "\xffwebsocket", "websocke\xff", "ſ websocket", "WEBSOCKETS"} {
		want := bytes.Contains(bytes.ToLower([]byte(v)), []byte("websocket"))
		if got := containsFold([]byte(v), "websocket"); got != want {
			t.Errorf("containsFold(%q) = %v, want %v", v, got, want)
		}
	}
}

func FuzzDetect(f *testing.F) {
	for _, tc := range detectCases {
		f.Add(tc.client, tc.server)
	}
	f.Fuzz(func(t *testing.T, c, s []byte) {
		tun, st := Detect(c, s)
		if st == Done && (tun.ClientSkip > len(c) || tun.ServerSkip > len(s) || tun.ClientSkip <= 0 || tun.ServerSkip <= 0) {
			t.Fatalf("skips out of range: %+v (len %d/%d)", tun, len(c), len(s))
		}
	})
}

func FuzzWSDecode(f *testing.F) {
	in, _ := wsStream()
	f.Add(in[:400], uint8(7), uint16(64))
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1}, uint8(1), uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, seed uint8, room uint16) {
		rng := rand.New(rand.NewSource(int64(seed)))
		var d WSDecoder
		buf := make([]byte, 0, int(room)+1)
		pending := []byte{}
		for off := 0; off < len(in); {
			end := min(off+1+rng.Intn(64), len(in))
			pending = append(pending, in[off:end]...)
			off = end
			for {
				o, n, err := d.Decode(buf[:0], pending)
				if len(o) > cap(buf) || n < 0 || n > len(pending) {
					t.Fatalf("bounds: out %d cap %d consumed %d of %d", len(o), cap(buf), n, len(pending))
				}
				pending = pending[n:]
				if err != nil {
					return
				}
				if n == 0 && len(o) == 0 {
					break
				}
			}
		}
	})
}

func BenchmarkWSDecode(b *testing.B) {
	in, _ := wsStream()
	buf := make([]byte, 0, 1<<17)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var d WSDecoder
		d.Decode(buf[:0], in)
	}
}

func BenchmarkDetect(b *testing.B) {
	c := cat(socks5Greet, socks5ConnDomain, stratum)
	s := cat(socks5Choose, socks5Reply, poolHello)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Detect(c, s)
	}
}
