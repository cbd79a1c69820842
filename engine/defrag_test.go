package engine

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/minerguard/minerguard/detect"
)

// fragmentFrame cuts an Ethernet/IPv4 frame into IPv4 fragments: the first carries only 8
// bytes (half a TCP header: the tiny-fragment evasion), the rest size bytes each.
func fragmentFrame(frame []byte, size int) [][]byte {
	eth, ip := frame[:14], frame[14:]
	hl := int(ip[0]&0x0f) * 4
	body := ip[hl:]
	var out [][]byte
	for off := 0; off < len(body); {
		n := size
		if off == 0 {
			n = 8
		}
		end := min(off+n, len(body))
		f := slices.Concat(eth, ip[:hl], body[off:end])
		h := f[14:]
		binary.BigEndian.PutUint16(h[2:], uint16(hl+end-off))
		fo := uint16(off / 8)
		if end < len(body) {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:], fo)
		out = append(out, f)
		off = end
	}
	return out
}

// Stratum carried only in IP fragments (out of order, the TCP header itself split) is
// reassembled and detected; the hot path for whole packets is untouched.
func TestStratumInFragments(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, poolEP)
	x.client(xmrigLogin, 1500)
	login := x.frames[len(x.frames)-1]
	frags := fragmentFrame(login, 64)
	slices.Reverse(frags)
	frames := append(x.frames[:len(x.frames)-1:len(x.frames)-1], frags...)
	feed(e, frames)
	if len(c.events) != 1 || c.events[0].SignatureID != detect.ReasonStratum.SignatureID() || c.events[0].Stratum.Method != "login" {
		t.Fatalf("alerts: %+v", c.events)
	}
	st := e.Stats()
	if st.Fragments != uint64(len(frags)) || st.Defrag.Reassembled != 1 || st.Defrag.Datagrams != 0 || st.DecodeErrorsTotal() != 0 {
		t.Fatalf("fragments %d (sent %d), defrag %+v, decode errors %d", st.Fragments, len(frags), st.Defrag, st.DecodeErrorsTotal())
	}
}

// A DNS lookup of a pool in IPv4 fragments gives pool-dns, as the whole datagram would.
func TestDNSInFragments(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	q := udpFrame(t, endpoint{"10.0.0.2", 51000}, endpoint{"10.0.0.53", 53}, dnsQuery(t, "pool.supportxmr.com", 7))
	feed(e, fragmentFrame(q, 16))
	if len(c.events) != 1 || c.events[0].MG.Detector != "pool-dns" {
		t.Fatalf("alerts: %+v", c.events)
	}
}

// Whole packets still allocate nothing with reassembly in the pipeline.
func TestWholePacketsNoAllocsWithDefrag(t *testing.T) {
	e := newEngine(&collect{})
	x := newSession(t, client, endpoint{"10.9.9.8", 8545})
	x.client("GET / HTTP/1.1\r\n\r\n", 1500)
	feed(e, x.frames)
	ack := x.frames[2]
	if n := testing.AllocsPerRun(200, func() { e.Packet(1, ack, epoch, 1) }); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}
