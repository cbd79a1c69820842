package engine

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

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

// ipv6UDPFragments is a raw IPv6 UDP datagram (client → resolver, port 53) cut into
// fragments of size bytes of fragmentable part, last fragment first.
func ipv6UDPFragments(payload []byte, size int) [][]byte {
	udp := binary.BigEndian.AppendUint16(nil, 51000)
	udp = binary.BigEndian.AppendUint16(udp, 53)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0)
	udp = append(udp, payload...)
	var out [][]byte
	for off := 0; off < len(udp); off += size {
		end := min(off+size, len(udp))
		h := make([]byte, 48, 48+end-off)
		h[0], h[6], h[7] = 0x60, 44, 64
		copy(h[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
		copy(h[24:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 0x53})
		binary.BigEndian.PutUint16(h[4:], uint16(8+end-off))
		h[40] = 17
		fo := uint16(off/8) << 3
		if end < len(udp) {
			fo |= 1
		}
		binary.BigEndian.PutUint16(h[42:], fo)
		binary.BigEndian.PutUint32(h[44:], 0xbeef)
		out = append([][]byte{append(h, udp[off:end]...)}, out...)
	}
	return out
}

// A pool lookup in IPv6 fragments (raw IP link type, last fragment first) gives pool-dns.
func TestDNSInIPv6Fragments(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	frags := ipv6UDPFragments(dnsQuery(t, "pool.supportxmr.com", 9), 16)
	for i, f := range frags {
		e.Packet(101, f, epoch.Add(time.Duration(i)*time.Millisecond), 1)
	}
	if len(c.events) != 1 || c.events[0].MG.Detector != "pool-dns" || c.events[0].Src.Addr().String() != "2001:db8::2" {
		t.Fatalf("alerts: %+v", c.events)
	}
	if st := e.Stats(); st.Defrag.Reassembled != 1 || st.Fragments != uint64(len(frags)) || len(frags) < 3 {
		t.Fatalf("%d fragments, stats %+v", len(frags), st.Defrag)
	}
}
