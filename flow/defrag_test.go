package flow

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"
)

// frag4 is a raw IPv4 fragment 10.0.0.1 → 10.0.0.2 carrying data at byte offset off.
func frag4(id uint16, proto uint8, off int, more bool, data []byte) []byte {
	b := make([]byte, 20, 20+len(data))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(data)))
	binary.BigEndian.PutUint16(b[4:], id)
	fo := uint16(off / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], fo)
	b[8], b[9] = 64, proto
	copy(b[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	return append(b, data...)
}

// frag6 is a raw IPv6 fragment 2001:db8::1 → 2001:db8::2 (a destination-options header
// before the fragment header, as an unfragmentable part) carrying data at offset off.
func frag6(id uint32, proto uint8, off int, more bool, data []byte) []byte {
	b := make([]byte, 40+8+8, 56+len(data))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(16+len(data)))
	b[6], b[7] = 60, 64 // destination options, then the fragment header
	b[8], b[23] = 0x20, 1
	b[24], b[39] = 0x20, 2
	b[9], b[25] = 0x01, 0x01
	b[10], b[11], b[26], b[27] = 0x0d, 0xb8, 0x0d, 0xb8
	b[40], b[41] = 44, 0 // dest opts: next = fragment, 8 bytes
	b[42], b[43] = 1, 4  // PadN
	b[48] = proto
	fo := uint16(off/8) << 3
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(b[50:], fo)
	binary.BigEndian.PutUint32(b[52:], id)
	return append(b, data...)
}

// udpDatagram is a UDP header (1111 → 53) and payload.
func udpDatagram(payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], 1111)
	binary.BigEndian.PutUint16(b[2:], 53)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// split cuts dg into fragments of size bytes (a multiple of 8) built by mk.
func split(dg []byte, size int, mk func(off int, more bool, data []byte) []byte) [][]byte {
	var out [][]byte
	for off := 0; off < len(dg); off += size {
		end := min(off+size, len(dg))
		out = append(out, mk(off, end < len(dg), dg[off:end]))
	}
	return out
}

// checkUDP decodes a reassembled datagram and checks it is the original UDP datagram.
func checkUDP(t *testing.T, got []byte, payload []byte) {
	t.Helper()
	if got == nil {
		t.Fatal("not reassembled")
	}
	var p Packet
	if st := Decode(LinkRaw, got, &p); st != OK || p.Fragment != NotFragment || p.Proto != ProtoUDP || p.DstPort != 53 || !bytes.Equal(p.Payload, payload) {
		t.Fatalf("decode %v fragment %d proto %d port %d payload %d bytes (want %d)", st, p.Fragment, p.Proto, p.DstPort, len(p.Payload), len(payload))
	}
}

func TestDefragOrders(t *testing.T) {
	payload := pattern(3000)
	dg := udpDatagram(payload)
	mk := map[string]func(off int, more bool, data []byte) []byte{
		"ipv4": func(off int, more bool, data []byte) []byte { return frag4(7, ProtoUDP, off, more, data) },
		"ipv6": func(off int, more bool, data []byte) []byte { return frag6(7, ProtoUDP, off, more, data) },
	}
	for name, m := range mk {
		for _, order := range []string{"in-order", "reverse", "middle-first"} {
			t.Run(name+"/"+order, func(t *testing.T) {
				d := NewDefrag(DefragConfig{})
				fr := split(dg, 1000, m)
				switch order {
				case "reverse":
					for i, j := 0, len(fr)-1; i < j; i, j = i+1, j-1 {
						fr[i], fr[j] = fr[j], fr[i]
					}
				case "middle-first":
					fr = [][]byte{fr[1], fr[3], fr[0], fr[2]}
				}
				var got []byte
				for i, f := range fr {
					got = d.Add(f, 1, t0)
					if got != nil && i != len(fr)-1 {
						t.Fatalf("complete after %d of %d fragments", i+1, len(fr))
					}
				}
				checkUDP(t, got, payload)
				st := d.Stats()
				if st.Reassembled != 1 || st.Fragments != 4 || st.Overlaps != 0 || st.Datagrams != 0 {
					t.Fatalf("stats %+v", st)
				}
			})
		}
	}
}

// Overlapping fragments: the first copy of each byte wins; differing overlaps are counted.
func TestDefragOverlap(t *testing.T) {
	payload := pattern(64)
	dg := udpDatagram(payload)
	for _, same := range []bool{true, false} {
		d := NewDefrag(DefragConfig{})
		d.Add(frag4(1, ProtoUDP, 0, true, dg[:40]), 1, t0)
		dup := bytes.Clone(dg[16:56])
		if !same {
			copy(dup[8:], "EVIL-OVERWRITE")
		}
		d.Add(frag4(1, ProtoUDP, 16, true, dup), 1, t0) // overlaps 16..40, new 40..56
		got := d.Add(frag4(1, ProtoUDP, 56, false, dg[56:]), 1, t0)
		st := d.Stats()
		if same {
			checkUDP(t, got, payload)
			if st.Overlaps != 1 || st.OverlapMismatch != 0 {
				t.Fatalf("same data: %+v", st)
			}
			continue
		}
		// Bytes 24..38 were held (first copy kept); 40..56 were new: the attacker's 40..
		// part is what the first copy did not cover.
		want := bytes.Clone(dg)
		copy(want[40:], dup[24:])
		var p Packet
		if Decode(LinkRaw, got, &p) != OK || !bytes.Equal(p.Payload, want[8:]) {
			t.Fatalf("payload %q, want %q", p.Payload, want[8:])
		}
		if st.Overlaps != 1 || st.OverlapMismatch != 1 || st.Reassembled != 1 {
			t.Fatalf("different data: %+v", st)
		}
	}
}

func TestDefragTimeout(t *testing.T) {
	dg := udpDatagram(pattern(100))
	d := NewDefrag(DefragConfig{Timeout: 30 * time.Second})
	d.Add(frag4(2, ProtoUDP, 0, true, dg[:64]), 1, t0)
	d.Add(frag4(3, ProtoUDP, 0, true, dg[:64]), 1, t0.Add(10*time.Second))
	if got := d.Add(frag4(2, ProtoUDP, 64, false, dg[64:]), 1, t0.Add(30*time.Second)); got != nil {
		t.Fatal("reassembled after its timeout")
	}
	st := d.Stats()
	// Datagram 2 expired; its late last fragment starts a new one that never completes.
	if st.Timeout != 1 || st.Reassembled != 0 || st.Datagrams != 2 {
		t.Fatalf("stats %+v", st)
	}
	d.Expire(t0.Add(time.Hour))
	if st := d.Stats(); st.Timeout != 3 || st.Datagrams != 0 || st.Bytes != 0 && st.Bytes > 4*minFragClass {
		t.Fatalf("after expiry %+v", st)
	}
}

// Past the memcap the oldest datagrams in progress are dropped; the newest completes.
func TestDefragMemcap(t *testing.T) {
	d := NewDefrag(DefragConfig{Memcap: 24 << 10})
	big := udpDatagram(pattern(9000)) // completing it takes a 16 KiB buffer
	for id := uint16(1); id <= 3; id++ {
		d.Add(frag4(id, ProtoUDP, 0, true, big[:4000]), 1, t0) // 4 KiB each so far
	}
	if st := d.Stats(); st.Memcap != 0 || st.Datagrams != 3 {
		t.Fatalf("stats %+v", st)
	}
	got := d.Add(frag4(3, ProtoUDP, 4000, false, big[4000:]), 1, t0)
	checkUDP(t, got, big[8:])
	if st := d.Stats(); st.Memcap != 2 || st.Reassembled != 1 || st.Datagrams != 0 || st.Bytes > 24<<10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDefragBounds(t *testing.T) {
	dg := udpDatagram(pattern(200))
	d := NewDefrag(DefragConfig{MaxFrags: 4})
	var got []byte
	for _, f := range split(dg, 8, func(off int, more bool, data []byte) []byte { return frag4(9, ProtoUDP, off, more, data) }) {
		got = d.Add(f, 1, t0)
	}
	if st := d.Stats(); got != nil || st.TooMany != 5 { // 26 fragments: 5 datagrams of 5
		t.Fatalf("too many: %+v", st)
	}
	d = NewDefrag(DefragConfig{})
	for _, f := range [][]byte{
		frag4(1, ProtoUDP, 0, true, dg[:13]),      // not a multiple of 8
		frag4(2, ProtoUDP, 65528, true, dg[:16]),  // past 64 KiB
		frag4(3, ProtoUDP, 64, false, dg[64:]),    // an end ...
		frag4(3, ProtoUDP, 80, false, dg[80:200]), // ... and another
		frag4(4, ProtoUDP, 64, true, dg[64:128]),  // bytes at 64..128 ...
		frag4(4, ProtoUDP, 0, false, dg[:64]),     // ... after the end at 64
		frag6(5, ProtoUDP, 0, true, dg[:3]),       // IPv6 too
		frag4(6, ProtoUDP, 0, true, nil)[:12],     // not even an IPv4 header
		frag6(7, ProtoUDP, 0, true, nil)[:48],     // the fragment header cut off
	} {
		if d.Add(f, 1, t0) != nil {
			t.Fatal("reassembled garbage")
		}
	}
	if st := d.Stats(); st.Invalid != 5 || st.Datagrams != 0 {
		t.Fatalf("invalid: %+v", st)
	}
}

// Scopes (namespaces) and IDs keep datagrams apart.
func TestDefragKeys(t *testing.T) {
	a, b := udpDatagram(pattern(100)), udpDatagram(bytes.Repeat([]byte{'z'}, 100))
	d := NewDefrag(DefragConfig{})
	d.Add(frag4(1, ProtoUDP, 0, true, a[:64]), 1, t0)
	d.Add(frag4(1, ProtoUDP, 0, true, b[:64]), 2, t0)
	checkUDP(t, d.Add(frag4(1, ProtoUDP, 64, false, b[64:]), 2, t0), b[8:])
	checkUDP(t, d.Add(frag4(1, ProtoUDP, 64, false, a[64:]), 1, t0), a[8:])
}

// Reassembly in the steady state allocates nothing: trackers and buffers are pooled.
func TestDefragNoAllocs(t *testing.T) {
	dg := udpDatagram(pattern(3000))
	fr := split(dg, 1200, func(off int, more bool, data []byte) []byte { return frag4(5, ProtoUDP, off, more, data) })
	d := NewDefrag(DefragConfig{})
	run := func() {
		for _, f := range fr {
			d.Add(f, 1, t0)
		}
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocations per datagram", n)
	}
}

// FuzzDefrag feeds arbitrary fragment trains and checks every reassembled datagram against
// a byte map built with the same first-copy-wins rule, and that memory stays within the cap.
func FuzzDefrag(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 'a', 0, 2, 1, 'b'})
	f.Add([]byte{0, 1, 0, 1, 'a', 1, 0, 2, 'b', 0, 2, 1, 'c'})
	f.Add([]byte{1, 1, 0, 2, 'a', 0, 2, 1, 'b'})
	f.Fuzz(func(t *testing.T, in []byte) {
		const memcap = 64 << 10
		d := NewDefrag(DefragConfig{Memcap: memcap, MaxFrags: 16})
		// One family per run, so every fragment belongs to the one datagram modelled.
		if len(in) == 0 {
			return
		}
		fam := int(in[0] & 1)
		in = in[1:]
		// The model: the first byte written at each offset (offsets stay under 4,096).
		var first [4096]int16
		held := 0
		reset := func() {
			for i := range first {
				first[i] = -1
			}
			held = 0
		}
		reset()
		dropped := func(st DefragStats) uint64 { return st.Timeout + st.Memcap + st.TooMany + st.Invalid }
		// A family byte (bit 0: IPv6), then records of 4 bytes: flags (bit 0: more; bit 7: 3
		// more bytes than a multiple of 8), offset/8, length/8, fill byte.
		for len(in) >= 4 {
			more := in[0]&1 != 0
			off, n := int(in[1])*8, int(in[2])*8
			if in[0]&0x80 != 0 {
				n += 3
			}
			data := bytes.Repeat([]byte{in[3]}, n)
			in = in[4:]
			pkt := frag4(1, ProtoUDP, off, more, data)
			if fam == 1 {
				pkt = frag6(1, ProtoUDP, off, more, data)
			}
			before := dropped(d.Stats())
			for i := range data {
				if first[off+i] < 0 {
					first[off+i] = int16(data[i])
					held++
				}
			}
			got := d.Add(pkt, 1, t0)
			st := d.Stats()
			if st.Bytes > memcap {
				t.Fatalf("charged %d over the memcap", st.Bytes)
			}
			if dropped(st) != before {
				reset() // the datagram was dropped: its later fragments start over
				continue
			}
			if got == nil {
				continue
			}
			hl := 20
			if fam == 1 {
				hl = 40
			}
			body := got[hl:]
			if len(body) != held {
				t.Fatalf("%d bytes reassembled, %d held", len(body), held)
			}
			for i, b := range body {
				if first[i] != int16(b) {
					t.Fatalf("byte %d = %d, first copy %d", i, b, first[i])
				}
			}
			var p Packet
			if Decode(LinkRaw, got, &p); p.Fragment != NotFragment {
				t.Fatal("reassembled datagram still a fragment")
			}
			reset()
		}
	})
}

// BenchmarkDefrag reassembles a 3,000-byte UDP datagram from three IPv4 fragments; one op is
// one datagram.
func BenchmarkDefrag(b *testing.B) {
	dg := udpDatagram(pattern(3000))
	fr := split(dg, 1200, func(off int, more bool, data []byte) []byte { return frag4(5, ProtoUDP, off, more, data) })
	d := NewDefrag(DefragConfig{})
	var p Packet
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for _, f := range fr {
			if out := d.Add(f, 1, t0); out != nil {
				Decode(LinkRaw, out, &p)
			}
		}
	}
}

// IPv4 options plus a payload that fits 64 KiB alone still make a datagram no IP length can
// describe: dropped as invalid, not wrapped around.
func TestDefragOptionsPastMax(t *testing.T) {
	d := NewDefrag(DefragConfig{})
	first := frag4(8, ProtoUDP, 0, true, pattern(65496))
	withOpt := slices.Concat(first[:20], []byte{1, 1, 1, 0}, first[20:]) // NOP NOP NOP EOL
	withOpt[0] = 0x46
	binary.BigEndian.PutUint16(withOpt[2:], uint16(len(withOpt)))
	d.Add(withOpt, 1, t0)
	if got := d.Add(frag4(8, ProtoUDP, 65496, false, pattern(16)), 1, t0); got != nil {
		t.Fatalf("reassembled a %d-byte datagram", len(got))
	}
	if st := d.Stats(); st.Invalid != 1 || st.Datagrams != 0 {
		t.Fatalf("stats %+v", st)
	}
}
