package tls

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// specHello rebuilds the ClientHello of FoxIO's worked example
// (technical_details/JA4.md, "JA4_ro": Chrome with 15 ciphers, 16 extensions,
// ALPN h2) and sprinkles GREASE into every list, which JA4 must ignore.
func specHello() []byte {
	ciphers := []uint16{0x3a3a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
		0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	sigs := []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}
	exts := []ext{
		{0xdada, nil}, // GREASE
		{0x001b, []byte{2, 0, 2}},
		sniExt("www.Example.com."),
		{0x0033, []byte{0, 0}},
		alpnExt("h2", "http/1.1"),
		{0x4469, []byte{0, 3, 2, 'h', '2'}},
		{0x0017, nil},
		versionsExt(0x7a7a, 0x0304, 0x0303),
		u16ListExt(extSignatureAlgs, sigs...),
		{0x0005, []byte{1, 0, 0, 0, 0}},
		{0x0023, nil},
		{0x0012, nil},
		{0x002d, []byte{1, 1}}, // spec order lists 002d before 000d; order must not matter
		{0xff01, []byte{0}},
		u16ListExt(0x000b, 0x0100),
		u16ListExt(0x000a, 0x2a2a, 0x001d, 0x0017),
		{0x0015, make([]byte, 10)},
		{0x1a1a, []byte{0}}, // GREASE
	}
	return buildHello(0x0303, ciphers, exts)
}

func TestSpecExample(t *testing.T) {
	const want = "t13d1516h2_8daaf6152771_e5627efa2ab1" // JA4.md "Example"
	for _, frag := range []int{1 << 14, 100, 1} {
		h, st := ParseClientHello(records(specHello(), frag))
		if st != OK {
			t.Fatalf("frag %d: status %v", frag, st)
		}
		if h.JA4 != want {
			t.Errorf("frag %d: JA4 %s, want %s", frag, h.JA4, want)
		}
		if h.SNI != "www.example.com" || !slices.Equal(h.ALPN, []string{"h2", "http/1.1"}) ||
			h.Version != 0x0304 || h.CipherCount != 15 || h.ExtCount != 16 {
			t.Errorf("frag %d: got %+v", frag, h)
		}
	}
}

// TestSpecHashes checks the intermediate hashes JA4.md publishes, including
// the no-signature-algorithms form, which ends without "_".
func TestSpecHashes(t *testing.T) {
	ciphers := []uint16{0x002f, 0x0035, 0x009c, 0x009d, 0x1301, 0x1302, 0x1303, 0xc013, 0xc014, 0xc02b,
		0xc02c, 0xc02f, 0xc030, 0xcca8, 0xcca9}
	exts := []uint16{0x0005, 0x000a, 0x000b, 0x000d, 0x0012, 0x0015, 0x0017, 0x001b, 0x0023, 0x002b,
		0x002d, 0x0033, 0x4469, 0xff01}
	sigs := []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}
	for _, tc := range []struct {
		list, sig []uint16
		withSig   bool
		want      string
	}{
		{ciphers, nil, false, "8daaf6152771"},
		{exts, sigs, true, "e5627efa2ab1"},
		{exts, nil, true, "6d807ffa2a79"},
		{nil, sigs, true, "000000000000"},
	} {
		if got := string(appendHash(nil, tc.list, tc.sig, tc.withSig)); got != tc.want {
			t.Errorf("hash(%04x, %04x) = %s, want %s", tc.list, tc.sig, got, tc.want)
		}
	}
}

func TestALPNTag(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{nil, "00"},
		{[]byte("h2"), "h2"},
		{[]byte("http/1.1"), "h1"},
		{[]byte("h"), "hh"},
		{[]byte("stratum"), "sm"},
		// Examples from JA4.md "ALPN Extension Value".
		{[]byte{0xab}, "ab"},
		{[]byte{0xab, 0xcd}, "ad"},
		{[]byte{0x30, 0xab}, "3b"},
		{[]byte{0x30, 0x31, 0xab, 0xcd}, "3d"},
		{[]byte{0x30, 0xab, 0xcd, 0x31}, "01"},
	} {
		if got := string(appendALPN(nil, tc.in)); got != tc.want {
			t.Errorf("ALPN tag of %x = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEdgeCases(t *testing.T) {
	noExt := buildHello(0x0301, []uint16{0x002f, 0x00ff}, nil)
	emptyALPN := buildHello(0x0303, []uint16{0x1301}, []ext{alpnExt(""), versionsExt(0x0304)})
	onlySNIandALPN := buildHello(0x0303, []uint16{0x1301}, []ext{sniExt("a.b"), alpnExt("x")})
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		ver  uint16
	}{
		// TLS 1.0 hello without an extensions block: "i", zero extensions, empty hash.
		{"no-extensions", records(noExt, 1<<14), "t10i020000_" + string(appendHash(nil, []uint16{0x002f, 0x00ff}, nil, false)) + "_000000000000", 0x0301},
		{"empty-alpn-value", records(emptyALPN, 1<<14), "", 0x0304},
		// Extensions left after dropping SNI and ALPN: none, so part c is zeros.
		{"only-sni-alpn", records(onlySNIandALPN, 1<<14), "", 0x0303},
	} {
		h, st := ParseClientHello(tc.in)
		if st != OK {
			t.Fatalf("%s: status %v", tc.name, st)
		}
		if tc.want != "" && h.JA4 != tc.want {
			t.Errorf("%s: JA4 %s, want %s", tc.name, h.JA4, tc.want)
		}
		if h.Version != tc.ver {
			t.Errorf("%s: version %#x, want %#x", tc.name, h.Version, tc.ver)
		}
	}
	h, _ := ParseClientHello(records(emptyALPN, 1<<14))
	if h.JA4[8:10] != "00" {
		t.Errorf("empty first ALPN value: JA4 %s, want 00 tag", h.JA4)
	}
	h, _ = ParseClientHello(records(onlySNIandALPN, 1<<14))
	if h.JA4[:10] != "t12d0102xx" || h.JA4[24:] != "000000000000" {
		t.Errorf("only SNI+ALPN: JA4 %s", h.JA4)
	}
}

func TestNotTLS(t *testing.T) {
	good := records(specHello(), 1<<14)
	hello := specHello()
	bigHello := append([]byte{typeClientHello, 0x01, 0x00, 0x01}, make([]byte, 10)...) // 65537-byte body
	truncatedBody := append([]byte(nil), hello[:len(hello)-3]...)
	truncatedBody[3] -= 3 // consistent lengths, but the last extension is cut
	mixed := append(records(hello[:50], 50), 0x15, 3, 3, 0, 2, 2, 40)
	mixed = append(mixed, records(hello[50:], 1<<14)...)

	for _, tc := range []struct {
		name string
		in   []byte
		want Status
	}{
		{"empty", nil, NeedMore},
		{"one-byte", []byte{0x16}, NeedMore},
		{"header-only", good[:5], NeedMore},
		{"http", []byte("GET / HTTP/1.1\r\n"), NotTLS},
		{"stratum", []byte(`{"id":1,"method":"mining.subscribe"}`), NotTLS},
		{"ssl2-compat", []byte{0x80, 0x2e, 0x01, 0x00, 0x02}, NotTLS},
		{"bad-major", []byte{0x16, 0x02}, NotTLS},
		{"bad-minor", []byte{0x16, 0x03, 0x09}, NotTLS},
		{"zero-record", []byte{0x16, 3, 1, 0, 0}, NotTLS},
		{"huge-record", []byte{0x16, 3, 1, 0xff, 0xff}, NotTLS},
		{"server-hello", []byte{0x16, 3, 3, 0, 4, typeServerHello, 0, 0, 0}, NotTLS},
		{"over-64k", records(bigHello, 1<<14), NotTLS},
		{"truncated-body", records(truncatedBody, 1<<14), NotTLS},
		{"alert-between-fragments", mixed, NotTLS},
		// A 40 KiB hello in 1-byte records needs 240 KiB of stream.
		{"tiny-records-over-prefix-bound", records(buildHello(0x0303, make([]uint16, 20000), nil), 1)[:MaxPrefixLen+100], NotTLS},
		{"tiny-records-within-bound", records(specHello(), 1), OK},
		{"ok", good, OK},
	} {
		if _, st := ParseClientHello(tc.in); st != tc.want {
			t.Errorf("%s: status %v, want %v", tc.name, st, tc.want)
		}
	}
}

func TestLooksLikeTLS(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want bool
	}{
		{nil, false},
		{[]byte{0x16, 3}, false},
		{[]byte{0x16, 3, 3}, true},
		{[]byte{0x16, 3, 3, 0, 0x7a}, true},
		{[]byte{0x16, 3, 3, 0, 0x7a, typeServerHello, 0, 0}, true},
		{[]byte{0x16, 3, 1, 2, 0, typeClientHello}, true},
		{[]byte{0x16, 3, 3, 0, 0x7a, 0x0b}, false}, // certificate first: not a hello
		{[]byte{0x17, 3, 3, 0, 10}, false},
		{[]byte("HTTP/1.1 200 OK"), false},
		{[]byte(`{"id":1,"result":true}`), false},
	} {
		if got := LooksLikeTLS(tc.in); got != tc.want {
			t.Errorf("LooksLikeTLS(% x) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestAllocs(t *testing.T) {
	bare := records(buildHello(0x0303, []uint16{0x1301, 0x1302}, []ext{versionsExt(0x0304)}), 1<<14)
	full := records(specHello(), 1<<14)
	for _, tc := range []struct {
		name string
		in   []byte
		max  float64
	}{
		{"need-more", full[:len(full)-1], 0},
		{"not-tls", []byte("GET / HTTP/1.1\r\n\r\n"), 0},
		{"no-sni-no-alpn", bare, 1},                  // the JA4 string
		{"sni-and-alpn", full, 5},                    // JA4, SNI, ALPN slice and its two strings
		{"fragmented", records(specHello(), 200), 6}, // plus the reassembly buffer
	} {
		got := testing.AllocsPerRun(100, func() { ParseClientHello(tc.in) })
		if got > tc.max {
			t.Errorf("%s: %v allocs, want <= %v", tc.name, got, tc.max)
		}
		// A Parser that has seen the hello keeps its strings: only the reassembly buffer of a
		// fragmented hello is left.
		var p Parser
		p.ParseClientHello(tc.in)
		want := 0.0
		if tc.name == "fragmented" {
			want = 1
		}
		if got := testing.AllocsPerRun(100, func() { p.ParseClientHello(tc.in) }); got != want {
			t.Errorf("%s: %v allocs with a Parser, want %v", tc.name, got, want)
		}
	}
}

// TestParserInterns: a Parser gives what ParseClientHello gives, hello after hello, and its
// tables stay within maxInterned entries.
func TestParserInterns(t *testing.T) {
	var p Parser
	for i := range 2*maxInterned + 5 {
		name := fmt.Sprintf("Host%d.Example.", i%(maxInterned+3))
		in := records(buildHello(0x0303, []uint16{0x1301, uint16(i % 7)}, []ext{sniExt(name), alpnExt("h2", fmt.Sprint(i%5000)), versionsExt(0x0304)}), 1<<14)
		want, wst := ParseClientHello(in)
		got, st := p.ParseClientHello(in)
		if st != wst || st != OK || got.SNI != want.SNI || got.JA4 != want.JA4 || !slices.Equal(got.ALPN, want.ALPN) || got.Version != want.Version {
			t.Fatalf("hello %d: Parser %v %+v, ParseClientHello %v %+v", i, st, got, wst, want)
		}
		if len(p.in.strs) > maxInterned || len(p.in.alpn) > maxInterned {
			t.Fatalf("hello %d: %d strings, %d ALPN lists kept", i, len(p.in.strs), len(p.in.alpn))
		}
	}
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(records(specHello(), 1<<14))
	f.Add(records(specHello(), 37))
	f.Add(records(buildHello(0x0301, []uint16{0x002f}, nil), 1<<14))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	paths, _ := filepath.Glob("testdata/*.hello")
	for _, p := range paths {
		raw, _ := readCapture(f, p)
		f.Add(raw)
	}
	var p Parser // reused across inputs, as an engine reuses it across flows
	f.Fuzz(func(t *testing.T, b []byte) {
		h, st := ParseClientHello(b)
		if ph, pst := p.ParseClientHello(b); pst != st || ph.SNI != h.SNI || ph.JA4 != h.JA4 || !slices.Equal(ph.ALPN, h.ALPN) ||
			ph.Version != h.Version || ph.CipherCount != h.CipherCount || ph.ExtCount != h.ExtCount {
			t.Fatalf("Parser %v %+v, ParseClientHello %v %+v", pst, ph, st, h)
		}
		if st != OK {
			if h.JA4 != "" || h.SNI != "" || h.ALPN != nil {
				t.Fatalf("status %v but fields set: %+v", st, h)
			}
			return
		}
		if len(h.JA4) != 36 || h.JA4[0] != 't' || h.JA4[10] != '_' || h.JA4[23] != '_' {
			t.Fatalf("malformed JA4 %q", h.JA4)
		}
		// A complete hello stays complete, and unchanged, with more data behind it.
		h2, st2 := ParseClientHello(append(bytes.Clone(b), 0x17, 3, 3, 0, 1, 0))
		if st2 != OK || h2.JA4 != h.JA4 || h2.SNI != h.SNI {
			t.Fatalf("appending data changed the result: %v %+v vs %+v", st2, h2, h)
		}
	})
}

func BenchmarkParseClientHello(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"chrome-like", records(specHello(), 1<<14)},
		{"fragmented", records(specHello(), 200)},
		{"not-tls", []byte(`{"id":1,"method":"mining.subscribe","params":["XMRig/6.21.0"]}`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				ParseClientHello(bc.in)
			}
		})
		// A Parser that has seen the hello (the same client software again): no strings,
		// no hashing.
		b.Run(bc.name+"/parser", func(b *testing.B) {
			var p Parser
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				p.ParseClientHello(bc.in)
			}
		})
	}
}
