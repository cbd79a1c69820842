package flow

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
)

type seg struct {
	off  int    // relative to the stream's first sequence number; ack if data == ""
	data string // payload
	ack  bool   // an ACK from the peer up to off
}

func TestStreamReassembly(t *testing.T) {
	tests := []struct {
		name           string
		base           uint32
		depth, maxOOO  int
		segs           []seg
		want           string
		wantStats      ReassemblyStats // compared on counters only
		gap, truncated bool
		gapOffset      int32
		queued         int
	}{
		{name: "in order", segs: []seg{{0, "abc", false}, {3, "def", false}}, want: "abcdef"},
		{name: "retransmission", segs: []seg{{0, "abc", false}, {0, "abc", false}, {3, "d", false}}, want: "abcd",
			wantStats: ReassemblyStats{Overlaps: 1}},
		{name: "overlap mismatch keeps first", segs: []seg{{0, "abc", false}, {1, "XYd", false}}, want: "abcd",
			wantStats: ReassemblyStats{Overlaps: 1, OverlapMismatch: 1}},
		{name: "reordered", segs: []seg{{3, "def", false}, {0, "abc", false}}, want: "abcdef",
			wantStats: ReassemblyStats{OOOQueued: 1}},
		{name: "queued overlap mismatch keeps first", segs: []seg{{3, "def", false}, {3, "DEF", false}, {0, "abc", false}}, want: "abcdef",
			wantStats: ReassemblyStats{OOOQueued: 2, Overlaps: 1, OverlapMismatch: 1}},
		{name: "segment over prefix and queue counted once", segs: []seg{{0, "ab", false}, {4, "ef", false}, {1, "bcdXf", false}}, want: "abcdef",
			wantStats: ReassemblyStats{OOOQueued: 1, Overlaps: 1, OverlapMismatch: 1}},
		{name: "sequence wraparound", base: 0xFFFFFFFE, segs: []seg{{0, "abcd", false}, {6, "gh", false}, {4, "ef", false}}, want: "abcdefgh",
			wantStats: ReassemblyStats{OOOQueued: 1}},
		{name: "depth", depth: 8, segs: []seg{{0, "abcdefghij", false}, {10, "k", false}}, want: "abcdefgh", truncated: true,
			wantStats: ReassemblyStats{DepthReached: 1}},
		{name: "out of order beyond depth dropped", depth: 8, segs: []seg{{0, "ab", false}, {9, "x", false}}, want: "ab",
			wantStats: ReassemblyStats{OOODropped: 1}},
		{name: "ack past hole skips it", segs: []seg{{0, "ab", false}, {4, "ef\ng", false}, {6, "", true}}, want: "abef\ng",
			gap: true, gapOffset: 2, wantStats: ReassemblyStats{OOOQueued: 1, Gaps: 1}},
		{name: "ack before the data after the hole", segs: []seg{{0, "ab", false}, {4, "", true}, {4, "ef", false}}, want: "abef",
			gap: true, gapOffset: 2, wantStats: ReassemblyStats{OOOQueued: 1, Gaps: 1}},
		{name: "ack up to hole start is not a skip", segs: []seg{{0, "ab", false}, {4, "ef", false}, {2, "", true}}, want: "ab",
			queued: 2, wantStats: ReassemblyStats{OOOQueued: 1}},
		{name: "ooo byte limit skips first hole", maxOOO: 4, segs: []seg{{0, "a", false}, {2, "cd", false}, {5, "fgh", false}}, want: "acd",
			gap: true, gapOffset: 1, queued: 3, wantStats: ReassemblyStats{OOOQueued: 2, Gaps: 1}},
		{name: "hole never filled stays queued", segs: []seg{{0, "a", false}, {2, "c", false}, {4, "e", false}}, want: "a",
			queued: 2, wantStats: ReassemblyStats{OOOQueued: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			depth, maxOOO := tt.depth, tt.maxOOO
			if depth == 0 {
				depth = 1024
			}
			if maxOOO == 0 {
				maxOOO = 1024
			}
			r := newReassembler(depth, 0, maxOOO, 1<<20)
			var s Stream
			s.start(tt.base)
			for _, g := range tt.segs {
				if g.ack {
					s.onAck(r, tt.base+uint32(g.off))
				} else {
					s.add(r, tt.base+uint32(g.off), []byte(g.data))
				}
			}
			if got := string(s.Data()); got != tt.want {
				t.Errorf("Data() = %q, want %q", got, tt.want)
			}
			st := r.stats
			st.BytesInUse, st.BytesAllocated = 0, 0
			if st != tt.wantStats {
				t.Errorf("stats %+v, want %+v", st, tt.wantStats)
			}
			if s.Gap != tt.gap || s.Resync != tt.gap || s.Truncated != tt.truncated || s.Queued() != tt.queued {
				t.Errorf("gap %v resync %v truncated %v queued %d, want gap %v truncated %v queued %d",
					s.Gap, s.Resync, s.Truncated, s.Queued(), tt.gap, tt.truncated, tt.queued)
			}
			if tt.gap && s.GapOffset != tt.gapOffset {
				t.Errorf("GapOffset %d, want %d", s.GapOffset, tt.gapOffset)
			}
			s.release(r)
			if r.stats.BytesInUse != 0 {
				t.Errorf("BytesInUse %d after release", r.stats.BytesInUse)
			}
		})
	}
}

func TestStreamRangeLimit(t *testing.T) {
	r := newReassembler(1024, 0, 1<<20, 1<<20)
	var s Stream
	s.start(0)
	s.add(r, 0, []byte("a"))
	for i := 0; i <= maxOOORanges; i++ { // one more disjoint range than allowed
		s.add(r, uint32(2+2*i), []byte{'x'})
	}
	if r.stats.Gaps != 1 || string(s.Data()) != "ax" || s.ooo.n != maxOOORanges {
		t.Errorf("gaps %d data %q ranges %d", r.stats.Gaps, s.Data(), s.ooo.n)
	}
}

func TestStreamMidstreamAndSYN(t *testing.T) {
	tb, _ := newTestTable(Config{})
	// Mid-stream pickup: the stream starts at the first segment seen.
	f, _, grew := tb.Packet(tcpPkt(cli, srv, TCPAck, 5000, 1, "mid"), 0, t0.UnixNano())
	tb.Packet(tcpPkt(cli, srv, TCPAck, 4990, 1, "0123456789mi"), 0, t0.UnixNano()) // earlier bytes are not prepended
	if !grew || !f.Midstream || string(f.Stream[DirOrig].Data()) != "mid" || f.Stream[DirOrig].Base != 5000 {
		t.Errorf("midstream: grew %v midstream %v data %q base %d", grew, f.Midstream, f.Stream[DirOrig].Data(), f.Stream[DirOrig].Base)
	}
	// SYN carrying data (TCP Fast Open): the data starts after the SYN's sequence number.
	f, _, grew = tb.Packet(tcpPkt("10.0.0.3:1234", srv, TCPSyn, 77, 0, "tfo"), 0, t0.UnixNano())
	if !grew || f.Stream[DirOrig].Base != 78 || string(f.Stream[DirOrig].Data()) != "tfo" {
		t.Errorf("syn data: base %d data %q", f.Stream[DirOrig].Base, f.Stream[DirOrig].Data())
	}
}

func TestStreamBypassReleases(t *testing.T) {
	tb, _ := newTestTable(Config{})
	f, _, _ := tb.Packet(tcpPkt(cli, srv, TCPAck, 1, 1, "hello"), 0, t0.UnixNano())
	if tb.Stats().Reassembly.BytesInUse == 0 {
		t.Fatal("no buffer in use")
	}
	f.Bypass = true
	_, _, grew := tb.Packet(tcpPkt(cli, srv, TCPAck, 6, 1, "more"), 0, t0.UnixNano())
	if grew || f.Stream[DirOrig].Data() != nil || tb.Stats().Reassembly.BytesInUse != 0 || f.Packets[DirOrig] != 2 {
		t.Errorf("bypass: grew %v data %q in use %d packets %d", grew, f.Stream[DirOrig].Data(), tb.Stats().Reassembly.BytesInUse, f.Packets[DirOrig])
	}
}

// TestR2OneFlowNoNewline: 1 GiB in one direction never holds more than
// StreamDepth bytes.
func TestR2OneFlowNoNewline(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB")
	}
	tb, _ := newTestTable(Config{})
	p := tcpPkt(cli, srv, TCPAck, 1, 1, "")
	p.Payload = bytes.Repeat([]byte{'A'}, 1448)
	var f *Flow[int]
	for sent := 0; sent < 1<<30; sent += len(p.Payload) {
		f, _, _ = tb.Packet(p, 0, t0.UnixNano())
		p.Seq += uint32(len(p.Payload))
	}
	s := &f.Stream[DirOrig]
	if len(s.Data()) != 64<<10 || !s.Truncated || tb.Stats().Reassembly.DepthReached != 1 {
		t.Errorf("data %d truncated %v depth-reached %d", len(s.Data()), s.Truncated, tb.Stats().Reassembly.DepthReached)
	}
	if got := tb.Stats().Reassembly.BytesInUse; got != 64<<10 {
		t.Errorf("buffers in use %d, want %d", got, 64<<10)
	}
}

// TestR2ManyFlows: 10,000 flows × 100 KiB stay within MaxReassemblyTotal
// and the overflow is counted.
func TestR2ManyFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB")
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tb, _ := newTestTable(Config{})
	chunk := bytes.Repeat([]byte{'B'}, 1024)
	p := &Packet{Dst: ap(srv).Addr(), DstPort: 3333, Proto: ProtoTCP, TCPFlags: TCPAck, Payload: chunk, WireLen: 1078}
	for i := 0; i < 10000; i++ {
		p.Src = ap("10.1.0.1:1").Addr()
		p.SrcPort = uint16(10000 + i)
		for k := 0; k < 100; k++ {
			p.Seq = uint32(1 + k*len(chunk))
			tb.Packet(p, 0, t0.UnixNano())
		}
		if st := tb.Stats().Reassembly; st.BytesAllocated > 256<<20 || st.BytesInUse > st.BytesAllocated {
			t.Fatalf("flow %d: allocated %d in use %d", i, st.BytesAllocated, st.BytesInUse)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := tb.Stats().Reassembly
	t.Logf("reassembly %+v, heap growth %d MiB", st, (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>20)
	// 256 MiB / 64 KiB: about 4096 flows reach full depth; every other flow
	// is refused a buffer once, then stops (Truncated).
	if st.DepthReached < 4095 || st.DepthReached+st.BudgetExhausted != 10000 {
		t.Errorf("depth reached %d budget exhausted %d", st.DepthReached, st.BudgetExhausted)
	}
	if growth := int64(after.HeapAlloc) - int64(before.HeapAlloc); growth > 256<<20+64<<20 {
		t.Errorf("heap growth %d MiB", growth>>20)
	}
	tb.Flush()
	if st := tb.Stats().Reassembly; st.BytesInUse != 0 {
		t.Errorf("in use after flush %d", st.BytesInUse)
	}
}

// TestR3OutOfOrderBounded: with a large depth, a hole that never fills
// keeps at most MaxOOOPerDir queued, and gaps and differing overlaps are
// counted exactly.
func TestR3OutOfOrderBounded(t *testing.T) {
	const depth, maxOOO = 8 << 20, 1 << 20
	tb, _ := newTestTable(Config{StreamDepth: depth, MaxOOOPerDir: maxOOO})
	seg := bytes.Repeat([]byte{'C'}, 1000)
	bad := bytes.Repeat([]byte{'X'}, 100)
	send := func(seq uint32, payload []byte) *Flow[int] {
		p := tcpPkt(cli, srv, TCPAck, seq, 1, "")
		p.Payload = payload
		f, _, _ := tb.Packet(p, 0, t0.UnixNano())
		return f
	}
	f := send(0, seg) // prefix: bytes [0,1000)
	// Overlaps with the prefix: 5 with different data, 1 retransmission.
	for i := range 5 {
		send(uint32(200*i), bad)
	}
	send(0, seg[:100])
	// A one-byte hole at 1000; queued data after it, then a differing
	// overlap of the queued data.
	send(1001, seg)
	send(1001, bad)
	st := tb.Stats().Reassembly
	if st.Overlaps != 7 || st.OverlapMismatch != 6 {
		t.Errorf("overlaps %d mismatches %d, want 7 6", st.Overlaps, st.OverlapMismatch)
	}
	// 3 MB more after the hole, which is never filled nor acknowledged.
	maxQueued := 0
	for off := 2001; off < 3_001_001; off += len(seg) {
		send(uint32(off), seg)
		maxQueued = max(maxQueued, f.Stream[DirOrig].Queued())
	}
	st = tb.Stats().Reassembly
	if maxQueued > maxOOO || maxQueued < maxOOO-len(seg) {
		t.Errorf("queued up to %d, want just under %d", maxQueued, maxOOO)
	}
	// Overflow skips the first (only) hole: exactly one gap.
	if st.Gaps != 1 || !f.Stream[DirOrig].Gap || f.Stream[DirOrig].GapOffset != 1000 {
		t.Errorf("gaps %d gap %v at %d", st.Gaps, f.Stream[DirOrig].Gap, f.Stream[DirOrig].GapOffset)
	}
	if got, want := len(f.Stream[DirOrig].Data()), 1000+3_000_000; got != want {
		t.Errorf("data %d bytes, want %d", got, want)
	}
	if bytes.IndexByte(f.Stream[DirOrig].Data(), 'X') >= 0 {
		t.Error("later overlapping data replaced the first copy")
	}
}

func TestStreamSteadyStateAllocs(t *testing.T) {
	r := newReassembler(64<<10, 0, 1<<20, 1<<30)
	seg := make([]byte, 500)
	run := func() {
		var s Stream
		s.start(0)
		for off := 0; off < 70000; off += 1000 { // reordered pairs
			s.add(r, uint32(off+500), seg)
			s.add(r, uint32(off), seg)
		}
		s.release(r)
	}
	run() // warm the free lists
	if n := testing.AllocsPerRun(20, run); n != 0 {
		t.Errorf("%v allocs per stream in steady state", n)
	}
}

// FuzzStream drives one stream with segment operations decoded from the
// input and checks it against the reference byte sequence.
func FuzzStream(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 10, 0, 0, 20, 10, 0, 0, 10, 10})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 5, 9, 2, 0, 3, 4, 0, 0, 0, 5, 3, 0, 20, 0})
	f.Add([]byte{1, 2, 3, 4, 0, 1, 0, 60, 0, 0, 0, 60, 3, 2, 0, 0, 0, 0, 60, 60})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 4 {
			return
		}
		const depth, maxOOO, span = 512, 200, 640
		ref := make([]byte, span+256)
		for i := range ref {
			ref[i] = byte(i*31 + 7)
		}
		base := binary.BigEndian.Uint32(in)
		r := newReassembler(depth, 0, maxOOO, 1<<20)
		var s Stream
		s.start(base)
		covered := make([]bool, len(ref))
		corrupt := false
		for ops := in[4:]; len(ops) >= 4; ops = ops[4:] {
			kind := ops[0] & 3
			off := int(binary.BigEndian.Uint16(ops[1:3])) % span
			n := int(ops[3] % 100)
			switch kind {
			case 3:
				s.onAck(r, base+uint32(off))
			default:
				data := append([]byte(nil), ref[off:off+n]...)
				if kind == 2 && n > 0 {
					data[0] ^= 0xff
					corrupt = true
				}
				s.add(r, base+uint32(off), data)
				for i := off; i < off+n; i++ {
					covered[i] = true
				}
			}
			d := s.Data()
			if len(d) > depth || s.Queued() > maxOOO {
				t.Fatalf("data %d queued %d", len(d), s.Queued())
			}
			if q := s.ooo; q != nil {
				prev := len(d)
				for i := 0; i < q.n; i++ {
					if q.r[i].lo <= prev || q.r[i].hi <= q.r[i].lo || q.r[i].hi > cap(s.buf) {
						t.Fatalf("bad queue %v (prefix %d cap %d)", q.r[:q.n], len(d), cap(s.buf))
					}
					prev = q.r[i].hi
				}
			}
			if !s.Gap {
				want := 0
				for want < depth && covered[want] {
					want++
				}
				if len(d) != want {
					t.Fatalf("prefix %d bytes, want %d", len(d), want)
				}
				if !corrupt && !bytes.Equal(d, ref[:len(d)]) {
					t.Fatalf("data differs from the reference")
				}
			}
			if !corrupt && r.stats.OverlapMismatch != 0 {
				t.Fatalf("mismatch counted without corrupt data")
			}
		}
		s.release(r)
		if r.stats.BytesInUse != 0 {
			t.Fatalf("BytesInUse %d after release", r.stats.BytesInUse)
		}
	})
}

// A framed stream goes on past StreamDepth as long as the caller consumes: queued
// out-of-order bytes move with the prefix, and the window bounds what is held unconsumed.
func TestStreamFramedConsume(t *testing.T) {
	r := newReassembler(16, 32, 1<<20, 1<<20)
	s := Stream{framed: true}
	s.start(0)
	s.add(r, 0, []byte("0123456789"))
	s.add(r, 12, []byte("cd")) // out of order: a hole at 10–11
	s.Consume(8)
	if string(s.Data()) != "89" || s.Base != 8 || s.Consumed != 8 {
		t.Fatalf("after consume: data %q base %d consumed %d", s.Data(), s.Base, s.Consumed)
	}
	s.add(r, 10, []byte("ab")) // fills the hole: the queued bytes join the prefix
	if string(s.Data()) != "89abcd" {
		t.Fatalf("data %q", s.Data())
	}
	total := 14
	for i := 0; i < 10; i++ { // 10 × 10 bytes through a 32-byte window
		s.Consume(len(s.Data()))
		s.add(r, uint32(total), []byte("xxxxxxxxxx"))
		total += 10
	}
	if s.Truncated || string(s.Data()) != "xxxxxxxxxx" || s.Consumed != uint64(total-10) {
		t.Fatalf("truncated %v data %q consumed %d", s.Truncated, s.Data(), s.Consumed)
	}
	s.add(r, uint32(total), make([]byte, 40)) // the window is 32 unconsumed bytes
	if !s.Truncated || len(s.Data()) != 32 || r.stats.DepthReached != 1 {
		t.Fatalf("truncated %v len %d depth %d", s.Truncated, len(s.Data()), r.stats.DepthReached)
	}
}

// FuzzStreamFramed mixes segments (in order, out of order, overlapping) with Consume on a
// framed stream: what is left plus what was consumed is always the sender's bytes, the
// window bounds what is held, and the out-of-order queue stays consistent as it moves.
func FuzzStreamFramed(f *testing.F) {
	f.Add([]byte{0, 0, 0, 50, 1, 0, 0, 30, 0, 0, 50, 60, 0, 0, 200, 40, 1, 0, 0, 99})
	f.Add([]byte{0, 0, 100, 50, 0, 0, 0, 99, 1, 0, 0, 120, 0, 0, 150, 99})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const depth, window, span = 64, 256, 4000
		ref := make([]byte, span+256)
		for i := range ref {
			ref[i] = byte(i*31 + 7)
		}
		r := newReassembler(depth, window, 1<<20, 1<<20)
		s := Stream{framed: true}
		s.start(0)
		for ; len(ops) >= 4; ops = ops[4:] {
			n := int(ops[3] % 100)
			if ops[0]&1 == 1 {
				s.Consume(n)
			} else {
				// Offsets are absolute (from the first byte), as the sender numbers them.
				off := int(binary.BigEndian.Uint16(ops[1:3])) % span
				s.add(r, uint32(off), ref[off:off+n])
			}
			d := s.Data()
			if len(d) > window {
				t.Fatalf("holds %d bytes, window %d", len(d), window)
			}
			if !s.Gap && !bytes.Equal(d, ref[s.Consumed:s.Consumed+uint64(len(d))]) {
				t.Fatalf("data after %d consumed differs from the sender's", s.Consumed)
			}
			if q := s.ooo; q != nil {
				prev := len(d)
				for i := 0; i < q.n; i++ {
					if q.r[i].lo <= prev || q.r[i].hi <= q.r[i].lo || q.r[i].hi > cap(s.buf) {
						t.Fatalf("bad queue %v (prefix %d cap %d)", q.r[:q.n], len(d), cap(s.buf))
					}
					prev = q.r[i].hi
				}
			}
		}
		s.release(r)
		if r.stats.BytesInUse != 0 {
			t.Fatalf("BytesInUse %d after release", r.stats.BytesInUse)
		}
	})
}
