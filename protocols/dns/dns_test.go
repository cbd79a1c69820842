package dns

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// hdr is a 12-byte DNS header.
func hdr(id, flags, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 0, 12)
	for _, v := range []uint16{id, flags, qd, an, ns, ar} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// handCompressed is a response written byte by byte: the answer's owner is a
// pointer to the question name (c00c), the CNAME target reuses the
// "pool.example" suffix (c010), and the A record's owner points into the
// CNAME target's RDATA.
var handCompressed = cat(
	hdr(0xbeef, 0x8180, 1, 2, 0, 0),
	mustHex("03 78 6d 72 04 70 6f 6f 6c 07 65 78 61 6d 70 6c 65 00 0001 0001"), // xmr.pool.example A IN @12
	// xmr.pool.example CNAME eu.pool.example, TTL 60; RDATA "eu" + ptr to "pool.example" @16.
	mustHex("c00c 0005 0001 0000003c 0005 02 65 75 c010"),
	// eu.pool.example (pointer to the RDATA at @46) A 192.0.2.7, TTL 30.
	mustHex("c02e 0001 0001 0000001e 0004 c0000207"),
)

func TestParseCompressed(t *testing.T) {
	m, err := Parse(handCompressed)
	if err != nil {
		t.Fatal(err)
	}
	want := Message{
		ID: 0xbeef, Response: true,
		Questions: []Question{{"xmr.pool.example", mdns.TypeA}},
		Answers: []Answer{
			{Name: "xmr.pool.example", Type: mdns.TypeCNAME, TTL: 60, Target: "eu.pool.example"},
			{Name: "eu.pool.example", Type: mdns.TypeA, TTL: 30, Addr: netip.MustParseAddr("192.0.2.7")},
		},
	}
	if m.ID != want.ID || m.Response != want.Response || m.Rcode != 0 ||
		!slices.Equal(m.Questions, want.Questions) || !slices.Equal(m.Answers, want.Answers) {
		t.Errorf("got %+v\nwant %+v", m, want)
	}
	got := m.AddrNames()
	wantAN := []AddrName{{Addr: netip.MustParseAddr("192.0.2.7"), Name: "xmr.pool.example",
		CNAMEs: []string{"eu.pool.example"}, TTL: 30}}
	if !slices.EqualFunc(got, wantAN, eqAddrName) {
		t.Errorf("AddrNames = %+v, want %+v", got, wantAN)
	}
}

// TestParseMalformed covers the classes of input that crashed or hung
// gopacket's DNS decoder over the years (its layers/dns_test.go
// TestDNSMalformedPacket*, TestMalformedDNS*, TestDNSNameTooLongThroughPointers),
// rebuilt here by hand: each must be rejected with ErrNotDNS, not panic.
func TestParseMalformed(t *testing.T) {
	// A question name made of hops of 62-octet labels joined by pointers: each
	// hop is legal, the whole name is > 255 octets.
	longChain := hdr(1, 0x0100, 1, 0, 0, 0)
	for range 5 {
		longChain = append(longChain, 62)
		longChain = append(longChain, bytes.Repeat([]byte{'a'}, 62)...)
		next := len(longChain) + 2
		longChain = append(longChain, 0xc0|byte(next>>8), byte(next))
	}
	longChain = append(longChain, 1, 'b', 0, 0, 1, 0, 1)

	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short-header", hdr(1, 0, 0, 0, 0, 0)[:11]},
		{"self-pointer-loop", cat(hdr(1, 0x0100, 1, 0, 0, 0), mustHex("c00c 0001 0001"))},
		{"two-pointer-loop", cat(hdr(1, 0x0100, 1, 0, 0, 0), mustHex("c00e c00c 0001 0001"))},
		{"pointer-past-end", cat(hdr(1, 0x0100, 1, 0, 0, 0), mustHex("c0ff 0001 0001"))},
		{"pointer-high-bits-past-end", cat(hdr(1, 0x0100, 1, 0, 0, 0), mustHex("ffff 0001 0001"))},
		{"name-too-long-through-pointers", longChain},
		{"label-past-end", cat(hdr(1, 0x0100, 1, 0, 0, 0), mustHex("3f 616263"))},
		{"reserved-label-type", cat(hdr(1, 0x0100, 1, 0, 0, 0), mustHex("40 00 0001 0001"))},
		{"a-rdlength-3", cat(hdr(1, 0x8180, 0, 1, 0, 0), mustHex("00 0001 0001 0000003c 0003 010203"))},
		{"rdlength-past-end", cat(hdr(1, 0x8180, 0, 1, 0, 0), mustHex("00 0001 0001 0000003c 0004 0102"))},
		// OPT whose option length runs past its RDATA (gopacket TestMalformedDNSOPT).
		{"malformed-opt", cat(hdr(1, 0x0100, 0, 0, 0, 1), mustHex("00 0029 1000 00008000 0008 0003 0010 4f70656e"))},
		// HTTP sent to port 53 (gopacket TestDNSMalformedPacket).
		{"http-on-53", []byte("\x08\x32GET / HTTP/1.1\r\nHost: www\r\n\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			if !errors.Is(err, ErrNotDNS) {
				t.Errorf("error %v does not wrap ErrNotDNS", err)
			}
		})
	}
}

// TestParseCountLie: a header claiming 65535 answers with none present is
// read as the empty truncated message it is (miekg/dns stops at the end of
// the data instead of trusting the count), without allocating for the count.
func TestParseCountLie(t *testing.T) {
	b := hdr(1, 0x8180, 0, 0xffff, 0, 0)
	m, err := Parse(b)
	if err != nil || len(m.Answers) != 0 {
		t.Errorf("got %+v, %v", m, err)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = Parse(b) }); n > 10 {
		t.Errorf("%v allocations for an empty message", n)
	}
}

// TestParseNilRdata: an UPDATE-style CNAME with class NONE and no RDATA
// (gopacket's testPacketDNSNilRdata class) decodes without a target, and so
// links nothing.
func TestParseNilRdata(t *testing.T) {
	b := cat(hdr(7, 0x8400, 1, 1, 0, 0),
		mustHex("04 706f6f6c 07 6578616d706c65 00 0001 0001"),
		mustHex("c00c 0005 00fe 00000000 0000"))
	m, err := Parse(b)
	if err != nil {
		t.Skipf("rejected, which is also fine: %v", err)
	}
	if len(m.Answers) != 1 || m.Answers[0].Target != "" || m.AddrNames() != nil {
		t.Errorf("got %+v", m)
	}
}

func TestParseEDNSExtendedRcode(t *testing.T) {
	m := new(mdns.Msg).SetQuestion("pool.example.", mdns.TypeA)
	m.Response = true
	m.SetEdns0(1232, true)
	m.Rcode = mdns.RcodeBadCookie // 23: needs the OPT extended bits
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rcode != mdns.RcodeBadCookie {
		t.Errorf("rcode %d, want %d", got.Rcode, mdns.RcodeBadCookie)
	}
}

func frame(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}

func TestSplitTCP(t *testing.T) {
	a, b := handCompressed, hdr(9, 0x0100, 0, 0, 0, 0)
	stream := frame(a, nil, b, a)
	wantEnds := []int{2 + len(a), 2 + len(a) + 2, 2 + len(a) + 2 + 2 + len(b), len(stream)}
	// Every prefix: exactly the complete messages are delivered, once each,
	// across repeated calls that resume at the returned offset.
	for cut := 0; cut <= len(stream); cut++ {
		var got [][]byte
		next := SplitTCP(stream[:cut], 0, func(m []byte) { got = append(got, m) })
		wantNext := 0
		for _, e := range wantEnds {
			if e <= cut {
				wantNext = e
			}
		}
		if next != wantNext {
			t.Fatalf("cut %d: next %d, want %d", cut, next, wantNext)
		}
		next = SplitTCP(stream, next, func(m []byte) { got = append(got, m) })
		if next != len(stream) || len(got) != 3 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) || !bytes.Equal(got[2], a) {
			t.Fatalf("cut %d: resumed to %d with %d messages", cut, next, len(got))
		}
	}
	if n := SplitTCP(stream, len(stream)+5, func([]byte) { t.Fatal("called past end") }); n != len(stream)+5 {
		t.Errorf("from past end: %d", n)
	}
	if n := SplitTCP(stream[:1], -3, func([]byte) { t.Fatal("called on 1 byte") }); n != 0 {
		t.Errorf("negative from: %d", n)
	}
}

func aRR(name string, ttl uint32, ip string) Answer {
	return Answer{Name: name, Type: mdns.TypeA, TTL: ttl, Addr: netip.MustParseAddr(ip)}
}

func cnameRR(name string, ttl uint32, target string) Answer {
	return Answer{Name: name, Type: mdns.TypeCNAME, TTL: ttl, Target: target}
}

func TestAddrNames(t *testing.T) {
	q := []Question{{"pool.example", mdns.TypeA}}
	for _, tc := range []struct {
		name string
		m    Message
		want []AddrName
	}{
		{"direct", Message{Response: true, Questions: q, Answers: []Answer{aRR("pool.example", 60, "1.1.1.1"), aRR("pool.example", 30, "1.1.1.2")}},
			[]AddrName{{netip.MustParseAddr("1.1.1.1"), "pool.example", nil, 60}, {netip.MustParseAddr("1.1.1.2"), "pool.example", nil, 30}}},
		{"chain-min-ttl", Message{Response: true, Questions: q, Answers: []Answer{
			cnameRR("pool.example", 20, "a.cdn.example"), cnameRR("a.cdn.example", 300, "b.cdn.example"), aRR("b.cdn.example", 600, "2.2.2.2")}},
			[]AddrName{{netip.MustParseAddr("2.2.2.2"), "pool.example", []string{"a.cdn.example", "b.cdn.example"}, 20}}},
		{"chain-out-of-order", Message{Response: true, Questions: q, Answers: []Answer{
			aRR("b.cdn.example", 600, "2.2.2.2"), cnameRR("a.cdn.example", 300, "b.cdn.example"), cnameRR("pool.example", 400, "a.cdn.example")}},
			[]AddrName{{netip.MustParseAddr("2.2.2.2"), "pool.example", []string{"a.cdn.example", "b.cdn.example"}, 300}}},
		{"unlinked-answer-dropped", Message{Response: true, Questions: q, Answers: []Answer{
			aRR("pool.example", 60, "1.1.1.1"), aRR("bank.example", 60, "6.6.6.6")}},
			[]AddrName{{netip.MustParseAddr("1.1.1.1"), "pool.example", nil, 60}}},
		{"cname-loop", Message{Response: true, Questions: q, Answers: []Answer{
			cnameRR("pool.example", 60, "x.example"), cnameRR("x.example", 60, "pool.example"), aRR("x.example", 60, "3.3.3.3")}},
			// The loop is walked at most maxChain times; the address is seen
			// once per visit of x.example, always for the queried name.
			nil},
		{"mapped-v4-unmapped", Message{Response: true, Questions: q, Answers: []Answer{{Name: "pool.example", Type: mdns.TypeAAAA, TTL: 5, Addr: netip.MustParseAddr("::ffff:4.4.4.4")}}},
			[]AddrName{{netip.MustParseAddr("4.4.4.4"), "pool.example", nil, 5}}},
		{"query-ignored", Message{Response: false, Questions: q, Answers: []Answer{aRR("pool.example", 60, "1.1.1.1")}}, nil},
		{"servfail-ignored", Message{Response: true, Rcode: 2, Questions: q, Answers: []Answer{aRR("pool.example", 60, "1.1.1.1")}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.m.AddrNames()
			if tc.name == "cname-loop" {
				if len(got) == 0 || len(got) > maxChain {
					t.Fatalf("loop gave %d entries", len(got))
				}
				for _, g := range got {
					if g.Name != "pool.example" || g.Addr != netip.MustParseAddr("3.3.3.3") || len(g.CNAMEs) > maxChain {
						t.Fatalf("loop entry %+v", g)
					}
				}
				return
			}
			if !slices.EqualFunc(got, tc.want, eqAddrName) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(handCompressed)
	f.Add(cat(hdr(1, 0x0100, 1, 0, 0, 0), mustHex("c00c 0001 0001")))
	f.Add(cat(hdr(1, 0x0100, 0, 0, 0, 1), mustHex("00 0029 1000 00008000 0008 0003 0010 4f70656e")))
	q := new(mdns.Msg).SetQuestion("pool.example.", mdns.TypeA)
	q.SetEdns0(4096, true)
	b, _ := q.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		for _, q := range m.Questions {
			// miekg escapes a dot inside a label as `\.`; only the root dot is trimmed.
			if strings.HasSuffix(q.Name, ".") && !strings.HasSuffix(q.Name, `\.`) || strings.ToLower(q.Name) != q.Name {
				t.Fatalf("question name not normalised: %q", q.Name)
			}
		}
		for _, a := range m.AddrNames() {
			if !a.Addr.IsValid() || a.Addr.Is4In6() || len(a.CNAMEs) > maxChain {
				t.Fatalf("bad AddrName %+v", a)
			}
		}
	})
}

func FuzzSplitTCP(f *testing.F) {
	f.Add(frame(handCompressed, nil, hdr(9, 0, 0, 0, 0, 0)), 0)
	f.Add([]byte{0xff, 0xff, 1, 2, 3}, 0)
	f.Add([]byte{0, 1}, 5)
	f.Fuzz(func(t *testing.T, b []byte, from int) {
		total := 0
		next := SplitTCP(b, from, func(m []byte) {
			total += 2 + len(m)
			_, _ = Parse(m)
		})
		start := max(from, 0)
		if start > len(b) {
			if next != from {
				t.Fatalf("from %d past end: next %d", from, next)
			}
			return
		}
		if next < start || next > len(b) || next-start < total || len(b)-next > 1 && 2+int(binary.BigEndian.Uint16(b[next:])) <= len(b)-next {
			t.Fatalf("from %d len %d: next %d after %d bytes of messages", from, len(b), next, total)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	resp := new(mdns.Msg).SetQuestion("alias.minepool.example.", mdns.TypeA)
	resp.Response = true
	resp.Compress = true
	resp.Answer = []mdns.RR{
		&mdns.CNAME{Hdr: mdns.RR_Header{Name: "alias.minepool.example.", Rrtype: mdns.TypeCNAME, Class: mdns.ClassINET, Ttl: 60}, Target: "eu.minepool.example."},
		&mdns.A{Hdr: mdns.RR_Header{Name: "eu.minepool.example.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(5, 6, 7, 8)},
		&mdns.A{Hdr: mdns.RR_Header{Name: "eu.minepool.example.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(5, 6, 7, 9)},
	}
	resp.SetEdns0(1232, false)
	raw, err := resp.Pack()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		m, err := Parse(raw)
		if err != nil || len(m.AddrNames()) != 2 {
			b.Fatal(err)
		}
	}
}
