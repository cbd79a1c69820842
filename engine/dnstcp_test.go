package engine

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"github.com/minerguard/minerguard/flow"
)

// dnsAnswerN is an answer to A? name with n A records 10.50.x.y (compressed: 16 bytes each).
func dnsAnswerN(t testing.TB, name string, n int, id uint16) []byte {
	return dnsAnswerNet(t, name, n, id, 50)
}

// dnsAnswerNet is dnsAnswerN with records 10.<octet>.x.y.
func dnsAnswerNet(t testing.TB, name string, n int, id uint16, octet byte) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q.Id = id
	m := new(dns.Msg)
	m.SetReply(q)
	m.Compress = true
	for i := range n {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A:   net.IPv4(10, octet, byte(i>>8), byte(i)),
		})
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// framed prefixes each message with its 2-byte length, as DNS over TCP sends it.
func framed(msgs ...[]byte) string {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return string(b)
}

// serverSeg sends payload from the server in segments of at most seg bytes.
func (x *session) serverSeg(payload string, seg int) {
	for len(payload) > 0 {
		n := min(seg, len(payload))
		x.server(payload[:n])
		payload = payload[n:]
	}
}

func (x *session) fin() {
	x.frames = append(x.frames,
		tcpFrame(x.t, x.c, x.s, x.cseq, x.sseq, false, true, true, nil),
		tcpFrame(x.t, x.s, x.c, x.sseq, x.cseq+1, false, true, true, nil))
}

var resolverTCP = endpoint{"10.0.0.53", 53}

// poolAddr is the address of answer record i (see dnsAnswerN).
func poolAddr(i int) endpoint { return endpoint{fmt.Sprintf("10.50.%d.%d", byte(i>>8), byte(i)), 3333} }

// A DNS-over-TCP answer spanning many segments (of any size, the length prefix split or
// not) is reassembled, cached up to the per-name cap, and the flows to the pool's addresses
// that follow get pool-ip; the query gets pool-dns.
func TestDNSOverTCPSegments(t *testing.T) {
	const name = "pool.supportxmr.com"
	for _, tc := range []struct {
		records, seg int
	}{
		{40, 500}, {40, 1}, {40, 7}, {4000, 500}, {4000, 1460}, {4000, 65535},
	} {
		t.Run(fmt.Sprintf("%d-records-%d-byte-segments", tc.records, tc.seg), func(t *testing.T) {
			c := &collect{}
			e := newEngine(c)
			x := newSession(t, endpoint{"10.0.0.2", 41000}, resolverTCP)
			x.client(framed(dnsQuery(t, name, 9)), tc.seg)
			ans := dnsAnswerN(t, name, tc.records, 9)
			x.serverSeg(framed(ans), tc.seg)
			x.fin()
			// The newest answers are the ones kept under the per-name cap.
			last := poolAddr(tc.records - 1)
			y := newSession(t, endpoint{"10.0.0.2", 41001}, last)
			feed(e, append(x.frames, y.frames...))
			st := e.Stats()
			if st.DNSMessages != 2 || st.DNSIncomplete != 0 || st.DecodeErrors[ProtoDNS] != 0 {
				t.Fatalf("messages %d, incomplete %d, errors %d; want 2, 0, 0", st.DNSMessages, st.DNSIncomplete, st.DecodeErrors[ProtoDNS])
			}
			if want := min(tc.records, 1000); st.DNSCache.Entries != want {
				t.Errorf("%d cached, want %d", st.DNSCache.Entries, want)
			}
			got := map[string]string{}
			for _, ev := range c.events {
				got[ev.MG.Detector] = ev.Dest.String() + " " + ev.MG.Pool
			}
			want := map[string]string{
				"pool-dns": "10.0.0.53:53 " + name,
				"pool-ip":  fmt.Sprintf("%s:3333 %s", last.ip, name),
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("alerts:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// Several messages on one connection, both directions, past StreamDepth: two in one
// segment, a length prefix split across segments, three 4,000-record answers (192 KB, three
// times the stream depth) all read, within the framed window.
func TestDNSOverTCPManyMessages(t *testing.T) {
	e := newEngine(&collect{})
	x := newSession(t, endpoint{"10.0.0.2", 41000}, resolverTCP)
	// Two queries in one segment.
	x.client(framed(dnsQuery(t, "a.example.org", 1), dnsQuery(t, "b.example.org", 2)), 1500)
	// Their answers: the first length prefix split 1+1, then one segment with the end of
	// the first answer and all of the second.
	a1, a2 := dnsAnswer(t, "a.example.org", "10.1.0.1", 1), dnsAnswer(t, "b.example.org", "10.1.0.2", 2)
	s := framed(a1, a2)
	x.server(s[:1])
	x.server(s[1:2])
	x.server(s[2:10])
	x.server(s[10:])
	for i := range 3 {
		x.client(framed(dnsQuery(t, fmt.Sprintf("big%d.example.org", i), uint16(10+i))), 1500)
		x.serverSeg(framed(dnsAnswerNet(t, fmt.Sprintf("big%d.example.org", i), 4000, uint16(10+i), byte(60+i))), 1448)
	}
	x.fin()
	feed(e, x.frames)
	st := e.Stats()
	if st.DNSMessages != 10 || st.DNSIncomplete != 0 || st.DecodeErrors[ProtoDNS] != 0 {
		t.Fatalf("messages %d, incomplete %d, errors %d; want 10, 0, 0", st.DNSMessages, st.DNSIncomplete, st.DecodeErrors[ProtoDNS])
	}
	// a, b, and 1,000 of each big name.
	if st.DNSCache.Entries != 2+3000 {
		t.Errorf("%d cached, want 3002", st.DNSCache.Entries)
	}
	if st.Flow.Reassembly.DepthReached != 0 || st.Flow.Reassembly.BytesInUse != 0 {
		t.Errorf("reassembly %+v: a framed stream should neither reach its window nor keep buffers", st.Flow.Reassembly)
	}
}

// A message that never completes is counted: when the connection ends, and when the capture
// ends (flush) with the flow still open.
func TestDNSOverTCPIncomplete(t *testing.T) {
	ans := framed(dnsAnswerN(t, "pool.supportxmr.com", 40, 3))
	for _, end := range []string{"fin", "flush"} {
		t.Run(end, func(t *testing.T) {
			e := newEngine(&collect{})
			x := newSession(t, endpoint{"10.0.0.2", 41000}, resolverTCP)
			x.client(framed(dnsQuery(t, "pool.supportxmr.com", 3)), 1500)
			x.serverSeg(ans[:len(ans)-10], 500)
			if end == "fin" {
				x.fin()
			}
			feed(e, x.frames)
			e.Flush()
			st := e.Stats()
			if st.DNSMessages != 1 || st.DNSIncomplete != 1 || st.DNSCache.Entries != 0 {
				t.Fatalf("messages %d, incomplete %d, cached %d; want 1, 1, 0", st.DNSMessages, st.DNSIncomplete, st.DNSCache.Entries)
			}
		})
	}
}

// A message larger than the framed window (a lying length prefix followed by endless bytes)
// is counted once and holds no more than the window.
func TestDNSOverTCPWindowPassed(t *testing.T) {
	e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: &collect{}, Flow: flow.Config{MessageDepth: 4096, StreamDepth: 1024}})
	x := newSession(t, endpoint{"10.0.0.2", 41000}, resolverTCP)
	x.client(framed(dnsQuery(t, "x.example.org", 3)), 1500)
	junk := make([]byte, 20000)
	junk[0], junk[1] = 0xff, 0xff // a 65,535-byte message that never fits
	x.serverSeg(string(junk), 1000)
	x.fin()
	feed(e, x.frames)
	st := e.Stats()
	if st.DNSIncomplete != 1 || st.Flow.Reassembly.DepthReached != 1 {
		t.Fatalf("incomplete %d, depth reached %d; want 1, 1", st.DNSIncomplete, st.Flow.Reassembly.DepthReached)
	}
}

// Under slot pressure (one slot, held by an undecided flow) a DNS-over-TCP answer is still
// read whole: the DNS flow is looked at without a slot, keeps its framing between looks, and
// its messages are cached and alerted on as with a slot.
func TestDNSOverTCPWithoutSlot(t *testing.T) {
	c := &collect{}
	e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: c, MaxInspecting: 1})
	hog := newSession(t, endpoint{"10.0.0.3", 42000}, endpoint{"10.9.9.7", 8080})
	hog.client("undecided, no newline", 1500)
	x := newSession(t, endpoint{"10.0.0.2", 41000}, resolverTCP)
	x.client(framed(dnsQuery(t, "pool.supportxmr.com", 9)), 7)
	x.serverSeg(framed(dnsAnswerN(t, "pool.supportxmr.com", 4000, 9)), 500)
	x.fin()
	y := newSession(t, endpoint{"10.0.0.2", 41001}, poolAddr(3999))
	feed(e, slices.Concat(hog.frames, x.frames, y.frames))
	st := e.Stats()
	if st.InspectDeferred == 0 && st.InspectSlotless == 0 {
		t.Fatalf("no slot pressure: %+v", st)
	}
	if st.DNSMessages != 2 || st.DNSIncomplete != 0 || st.DNSCache.Entries != 1000 {
		t.Fatalf("messages %d, incomplete %d, cached %d; want 2, 0, 1000", st.DNSMessages, st.DNSIncomplete, st.DNSCache.Entries)
	}
	got := map[string]bool{}
	for _, ev := range c.events {
		got[ev.MG.Detector] = true
	}
	if !got["pool-dns"] || !got["pool-ip"] {
		t.Fatalf("alerts: %v", got)
	}
}
