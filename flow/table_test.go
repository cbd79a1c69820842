package flow

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func tcpPkt(src, dst string, flags uint8, seq, ack uint32, payload string) *Packet {
	s, d := ap(src), ap(dst)
	return &Packet{Src: s.Addr(), Dst: d.Addr(), SrcPort: s.Port(), DstPort: d.Port(), Proto: ProtoTCP,
		TCPFlags: flags, Seq: seq, Ack: ack, Payload: []byte(payload), WireLen: 54 + len(payload)}
}

func udpPkt(src, dst, payload string) *Packet {
	s, d := ap(src), ap(dst)
	return &Packet{Src: s.Addr(), Dst: d.Addr(), SrcPort: s.Port(), DstPort: d.Port(), Proto: ProtoUDP,
		Payload: []byte(payload), WireLen: 42 + len(payload)}
}

const (
	cli = "10.0.0.1:40000"
	srv = "10.0.0.2:3333"
)

type evicted struct {
	id     uint64
	reason EvictReason
}

func newTestTable(cfg Config) (*Table[int], *[]evicted) {
	var ev []evicted
	return NewTable[int](cfg, func(f *Flow[int], r EvictReason) { ev = append(ev, evicted{f.ID, r}) }), &ev
}

func TestTableHandshakeAndData(t *testing.T) {
	tb, _ := newTestTable(Config{})
	steps := []struct {
		p     *Packet
		dir   Dir
		grew  bool
		state TCPState
	}{
		{tcpPkt(cli, srv, TCPSyn, 100, 0, ""), DirOrig, false, StateNew},
		{tcpPkt(srv, cli, TCPSyn|TCPAck, 900, 101, ""), DirReply, false, StateNew},
		{tcpPkt(cli, srv, TCPAck, 101, 901, ""), DirOrig, false, StateEstablished},
		{tcpPkt(cli, srv, TCPAck|TCPPsh, 101, 901, "login\n"), DirOrig, true, StateEstablished},
		{tcpPkt(srv, cli, TCPAck|TCPPsh, 901, 107, "ok\n"), DirReply, true, StateEstablished},
		{tcpPkt(cli, srv, TCPAck|TCPFin, 107, 904, ""), DirOrig, false, StateClosing},
		{tcpPkt(srv, cli, TCPAck|TCPFin, 904, 108, ""), DirReply, false, StateClosed},
	}
	var first *Flow[int]
	for i, s := range steps {
		f, dir, grew := tb.Packet(s.p, 7, t0.Add(time.Duration(i)*time.Millisecond).UnixNano())
		if first == nil {
			first = f
		} else if f != first {
			t.Fatalf("step %d: different flow", i)
		}
		if dir != s.dir || grew != s.grew || f.State != s.state {
			t.Errorf("step %d: dir %v grew %v state %v, want %v %v %v", i, dir, grew, f.State, s.dir, s.grew, s.state)
		}
	}
	f := first
	if f.Orig != ap(cli) || f.Resp != ap(srv) || f.Midstream || f.Scope != 7 || f.ID == 0 {
		t.Errorf("flow %v -> %v midstream %v scope %d id %d", f.Orig, f.Resp, f.Midstream, f.Scope, f.ID)
	}
	if f.Packets != [2]uint64{4, 3} {
		t.Errorf("packets = %v", f.Packets)
	}
	if got := string(f.Stream[DirOrig].Data()); got != "login\n" {
		t.Errorf("orig data = %q", got)
	}
	if got := string(f.Stream[DirReply].Data()); got != "ok\n" {
		t.Errorf("reply data = %q", got)
	}
	if f.Stream[DirOrig].Base != 101 || f.Stream[DirReply].Base != 901 {
		t.Errorf("bases %d %d, want 101 901", f.Stream[DirOrig].Base, f.Stream[DirReply].Base)
	}
	if f.First != t0.UnixNano() || f.Last != t0.Add(6*time.Millisecond).UnixNano() {
		t.Errorf("first %v last %v", f.First, f.Last)
	}
	if tb.Len() != 1 || tb.Stats().Created != 1 {
		t.Errorf("len %d created %d", tb.Len(), tb.Stats().Created)
	}
}

func TestInitiatorInference(t *testing.T) {
	tests := []struct {
		name      string
		p         *Packet
		orig      string
		midstream bool
	}{
		{"syn sender", tcpPkt(srv, cli, TCPSyn, 1, 0, ""), srv, false},
		{"syn-ack receiver", tcpPkt(srv, cli, TCPSyn|TCPAck, 1, 1, ""), cli, false},
		{"midstream from client", tcpPkt(cli, srv, TCPAck, 1, 1, "x"), cli, true},
		{"midstream from server: higher port is client", tcpPkt(srv, cli, TCPAck, 1, 1, "x"), cli, true},
		{"midstream equal ports: sender", tcpPkt("10.0.0.9:5000", "10.0.0.1:5000", TCPAck, 1, 1, ""), "10.0.0.9:5000", true},
		{"udp first sender", udpPkt(srv, cli, "q"), srv, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, _ := newTestTable(Config{})
			f, dir, _ := tb.Packet(tt.p, 0, t0.UnixNano())
			if f.Orig != ap(tt.orig) || f.Midstream != tt.midstream {
				t.Errorf("orig %v midstream %v, want %v %v", f.Orig, f.Midstream, tt.orig, tt.midstream)
			}
			wantDir := DirReply
			if netip.AddrPortFrom(tt.p.Src, tt.p.SrcPort) == f.Orig {
				wantDir = DirOrig
			}
			if dir != wantDir {
				t.Errorf("dir %v, want %v", dir, wantDir)
			}
			// The reverse packet lands on the same flow, opposite direction.
			rev := *tt.p
			rev.Src, rev.Dst, rev.SrcPort, rev.DstPort = tt.p.Dst, tt.p.Src, tt.p.DstPort, tt.p.SrcPort
			rev.TCPFlags = TCPAck
			g, rdir, _ := tb.Packet(&rev, 0, t0.UnixNano())
			if g != f || rdir == dir {
				t.Errorf("reverse: same flow %v dir %v", g == f, rdir)
			}
		})
	}
}

func TestScopeSeparatesFlows(t *testing.T) {
	tb, _ := newTestTable(Config{})
	a, _, _ := tb.Packet(udpPkt(cli, srv, "x"), 1, t0.UnixNano())
	b, _, _ := tb.Packet(udpPkt(cli, srv, "x"), 2, t0.UnixNano())
	if a == b || tb.Len() != 2 || a.ID == b.ID {
		t.Errorf("scopes not separated: len %d", tb.Len())
	}
}

func TestTimeoutsByPacketTime(t *testing.T) {
	tb, ev := newTestTable(Config{})
	newTCP, _, _ := tb.Packet(tcpPkt(cli, srv, TCPSyn, 1, 0, ""), 0, t0.UnixNano())
	udp, _, _ := tb.Packet(udpPkt(cli, srv, "q"), 0, t0.UnixNano())
	est, _, _ := tb.Packet(tcpPkt("10.0.0.1:40001", srv, TCPAck, 1, 1, "x"), 0, t0.UnixNano())
	rst, _, _ := tb.Packet(tcpPkt("10.0.0.1:40002", srv, TCPRst, 1, 1, ""), 0, t0.UnixNano())
	ids := map[uint64]string{newTCP.ID: "tcp-new", udp.ID: "udp", est.ID: "tcp-established", rst.ID: "tcp-closed"}
	check := func(at time.Duration, want ...string) {
		t.Helper()
		*ev = (*ev)[:0]
		tb.Expire(t0.Add(at).UnixNano())
		var got []string
		for _, e := range *ev {
			if e.reason != EvictTimeout {
				t.Errorf("reason %v", e.reason)
			}
			got = append(got, ids[e.id])
		}
		if len(got) != len(want) {
			t.Fatalf("at %v evicted %v, want %v", at, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("at %v evicted %v, want %v", at, got, want)
			}
		}
	}
	check(9 * time.Second)
	check(10*time.Second, "tcp-closed")
	check(29 * time.Second)
	check(30*time.Second, "tcp-new")
	check(59 * time.Second)
	check(60*time.Second, "udp")
	check(599 * time.Second)
	check(600*time.Second, "tcp-established")
	if tb.Len() != 0 || tb.Stats().Evicted.Timeout != 4 {
		t.Errorf("len %d timeouts %d", tb.Len(), tb.Stats().Evicted.Timeout)
	}
}

func TestActivityDefersTimeoutAndLazyExpiry(t *testing.T) {
	tb, ev := newTestTable(Config{UDPTimeout: 10 * time.Second})
	tb.Packet(udpPkt(cli, srv, "a"), 0, t0.UnixNano())
	tb.Packet(udpPkt(srv, cli, "b"), 0, t0.Add(8*time.Second).UnixNano())
	tb.Expire(t0.Add(17 * time.Second).UnixNano())
	if len(*ev) != 0 {
		t.Fatalf("evicted an active flow")
	}
	// No Expire call: the next packet (any flow) expires lazily.
	tb.Packet(udpPkt("10.0.0.5:1", srv, "c"), 0, t0.Add(19*time.Second).UnixNano())
	if len(*ev) != 1 || tb.Len() != 1 {
		t.Fatalf("lazy expiry: evicted %d, len %d", len(*ev), tb.Len())
	}
}

func TestFlushAndPortReuse(t *testing.T) {
	tb, ev := newTestTable(Config{})
	f, _, _ := tb.Packet(tcpPkt(cli, srv, TCPSyn, 1, 0, ""), 0, t0.UnixNano())
	old := f.ID
	tb.Packet(tcpPkt(srv, cli, TCPRst|TCPAck, 0, 2, ""), 0, t0.UnixNano())
	g, _, _ := tb.Packet(tcpPkt(cli, srv, TCPSyn, 5000, 0, ""), 0, t0.Add(time.Second).UnixNano())
	if g.ID == old || g.State != StateNew || tb.Len() != 1 {
		t.Fatalf("reuse: id %d (old %d) state %v len %d", g.ID, old, g.State, tb.Len())
	}
	if len(*ev) != 1 || (*ev)[0] != (evicted{old, EvictReuse}) {
		t.Fatalf("evictions %v", *ev)
	}
	tb.Packet(udpPkt(cli, srv, "x"), 0, t0.Add(time.Second).UnixNano())
	tb.Flush()
	st := tb.Stats()
	if tb.Len() != 0 || st.Evicted.Flush != 2 || st.Evicted.Reuse != 1 || st.Active != 0 {
		t.Errorf("after flush: len %d stats %+v", tb.Len(), st)
	}
}

func TestCapEvictsLRUAndKeepsFlagged(t *testing.T) {
	tb, ev := newTestTable(Config{MaxFlows: 4})
	var flows []*Flow[int]
	for i := 0; i < 4; i++ {
		f, _, _ := tb.Packet(udpPkt(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), 1000).String(), srv, "x"), 0, t0.Add(time.Duration(i)*time.Millisecond).UnixNano())
		flows = append(flows, f)
	}
	ids := []uint64{flows[0].ID, flows[1].ID, flows[2].ID, flows[3].ID}
	flows[0].Flagged = true // oldest, but flagged
	tb.Packet(udpPkt("10.0.2.1:1", srv, "x"), 0, t0.Add(time.Second).UnixNano())
	if tb.Len() != 4 || len(*ev) != 1 || (*ev)[0] != (evicted{ids[1], EvictCap}) {
		t.Fatalf("len %d evicted %v, want flow %d by cap", tb.Len(), *ev, ids[1])
	}
	if tb.Stats().Evicted.Cap != 1 {
		t.Errorf("cap evictions %d", tb.Stats().Evicted.Cap)
	}
}

// TestR1ManyFlows: 1M distinct flows, SYN + one data packet each, through a
// table capped at 262,144: the cap holds, every eviction is counted, heap
// growth stays ≤ 128 MiB and flagged flows survive.
func TestR1ManyFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("1M flows")
	}
	const total, capFlows, nFlagged = 1 << 20, 262144, 1000
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	tb := NewTable[struct{}](Config{MaxFlows: capFlows}, nil)
	payload := []byte(`{"id":1,"method":"login","params":{}}` + "\n")
	p := Packet{Proto: ProtoTCP, DstPort: 3333, WireLen: 60}
	flaggedIDs := map[uint64]bool{}
	now := t0
	for i := 0; i < total; i++ {
		p.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		p.Dst = netip.AddrFrom4([4]byte{192, 0, 2, 1})
		p.SrcPort = uint16(1024 + i%60000)
		p.TCPFlags, p.Seq, p.Payload = TCPSyn, 1000, nil
		now = now.Add(time.Microsecond)
		f, _, _ := tb.Packet(&p, 0, now.UnixNano())
		if i < nFlagged {
			f.Flagged = true
			flaggedIDs[f.ID] = true
		}
		p.TCPFlags, p.Seq, p.Payload = TCPAck|TCPPsh, 1001, payload
		if f2, _, grew := tb.Packet(&p, 0, now.UnixNano()); f2 != f || !grew {
			t.Fatalf("flow %d: data packet did not extend the stream", i)
		}
		if tb.Len() > capFlows {
			t.Fatalf("len %d > cap", tb.Len())
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap growth %d MiB, stats %+v", growth>>20, tb.Stats())
	if growth > 128<<20 {
		t.Errorf("heap growth %d MiB > 128 MiB", growth>>20)
	}
	st := tb.Stats()
	if st.Evicted.Cap != total-capFlows || st.Created != total || tb.Len() != capFlows {
		t.Errorf("created %d cap evictions %d len %d, want %d %d %d", st.Created, st.Evicted.Cap, tb.Len(), total, total-capFlows, capFlows)
	}
	survivors := 0
	tb.onEvict = func(f *Flow[struct{}], _ EvictReason) {
		if flaggedIDs[f.ID] {
			survivors++
		}
	}
	tb.Flush()
	if survivors != nFlagged {
		t.Errorf("%d of %d flagged flows survived", survivors, nFlagged)
	}
	runtime.KeepAlive(tb)
}

func TestPacketAllocs(t *testing.T) {
	tb, _ := newTestTable(Config{})
	// Warm the buffer pool through every size class, then release it.
	tb.Packet(tcpPkt(cli, srv, TCPSyn, 0, 0, ""), 0, t0.UnixNano())
	big := make([]byte, 1000)
	for seq := uint32(1); seq < 70000; seq += 1000 {
		p := tcpPkt(cli, srv, TCPAck, seq, 1, "")
		p.Payload = big
		tb.Packet(p, 0, t0.UnixNano())
	}
	tb.Flush()

	syn := tcpPkt(cli, srv, TCPSyn, 0, 0, "")
	tb.Packet(syn, 0, t0.UnixNano())
	ack := tcpPkt(srv, cli, TCPAck, 1, 1, "")
	if n := testing.AllocsPerRun(1000, func() { tb.Packet(ack, 0, t0.UnixNano()) }); n != 0 {
		t.Errorf("Packet without payload: %v allocs", n)
	}
	data := tcpPkt(cli, srv, TCPAck|TCPPsh, 1, 1, "0123456789012345678901234567890123456789")
	seq := uint32(1)
	if n := testing.AllocsPerRun(1000, func() {
		data.Seq = seq
		seq += uint32(len(data.Payload))
		tb.Packet(data, 0, t0.UnixNano())
	}); n != 0 {
		t.Errorf("Packet with payload: %v allocs", n)
	}
	f, _, _ := tb.Packet(ack, 0, t0.UnixNano())
	if len(f.Stream[DirOrig].Data()) != 1001*40 {
		t.Errorf("stream holds %d bytes, want %d", len(f.Stream[DirOrig].Data()), 1001*40)
	}
}

// BenchmarkTablePacket is a mixed steady state: 4096 concurrent
// connections in round robin, each a SYN, 8 small in-order data segments
// and a RST, then replaced by a new connection (new port), so flow
// creation, eviction at the cap, reassembly and buffer recycling all run.
func BenchmarkTablePacket(b *testing.B) {
	const nflows, segs = 4096, 8
	tb := NewTable[struct{}](Config{MaxFlows: 2 * nflows}, nil)
	type conn struct {
		p    Packet
		step int
	}
	conns := make([]conn, nflows)
	payload := []byte(`{"id":2,"jsonrpc":"2.0","method":"submit"}` + "\n")
	for i := range conns {
		conns[i].p = Packet{Src: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Dst: netip.AddrFrom4([4]byte{192, 0, 2, 1}),
			Proto: ProtoTCP, SrcPort: 1024, DstPort: 3333, WireLen: 100}
	}
	now := t0
	i := 0
	step := func() {
		c := &conns[i%nflows]
		p := &c.p
		switch c.step {
		case 0:
			p.TCPFlags, p.Seq, p.Payload = TCPSyn, 0, nil
		case segs + 1:
			p.TCPFlags, p.Seq, p.Payload = TCPRst, 1+segs*uint32(len(payload)), nil
		default:
			p.TCPFlags, p.Seq, p.Payload = TCPAck|TCPPsh, 1+uint32(c.step-1)*uint32(len(payload)), payload
		}
		tb.Packet(p, 0, now.UnixNano())
		if c.step++; c.step > segs+1 {
			c.step = 0
			p.SrcPort++
			if p.SrcPort == 0 {
				p.SrcPort = 1024
			}
		}
		i++
		if i%nflows == 0 {
			now = now.Add(time.Millisecond)
		}
	}
	for range 20 * nflows * (segs + 2) { // warm up past the first connections' eviction
		step()
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(tb.Stats().Evicted.Cap), "cap-evictions")
}

// Hash is direction-independent and is what Packet uses (PacketHash with it finds the same
// flow); Prefetch, PrefetchFlow and PrefetchFree change nothing, for present, absent and
// evicted flows, and PrefetchFlow tells a flow the index holds from a new one.
func TestHashPrefetch(t *testing.T) {
	tb, _ := newTestTable(Config{})
	now := t0.UnixNano()
	fwd, rev := tcpPkt(cli, srv, TCPSyn, 100, 0, ""), tcpPkt(srv, cli, TCPSyn|TCPAck, 900, 101, "")
	if tb.Hash(fwd, 7) != tb.Hash(rev, 7) || tb.Hash(fwd, 7) == tb.Hash(fwd, 8) {
		t.Fatal("Hash depends on direction, or not on scope")
	}
	absent := udpPkt("10.0.0.9:5353", "10.0.0.8:53", "q")
	for _, h := range []uint32{tb.Hash(fwd, 7), tb.Hash(absent, 7)} {
		tb.Prefetch(h)
		if tb.PrefetchFlow(h, true) || tb.PrefetchFlow(h, false) {
			t.Fatal("PrefetchFlow found a flow in an empty table")
		}
	}
	for k := range 3 { // before the first chunk (no free slot), and past the free slots
		tb.PrefetchFree(k, true)
	}
	f, dir, _ := tb.PacketHash(fwd, 7, now, tb.Hash(fwd, 7))
	for _, k := range []int{0, 1, chunkFlows - 2, chunkFlows - 1, 5 * chunkFlows} {
		tb.PrefetchFree(k, k%2 == 0)
	}
	if !tb.PrefetchFlow(tb.Hash(fwd, 7), true) || tb.PrefetchFlow(tb.Hash(absent, 7), true) {
		t.Fatal("PrefetchFlow: the flow's entry not found, or an absent one found")
	}
	g, dir2, _ := tb.Packet(rev, 7, now+1)
	if f != g || dir != DirOrig || dir2 != DirReply || f.Packets != [2]uint64{1, 1} || tb.Len() != 1 {
		t.Fatalf("PacketHash and Packet: %p %p %v %v %v len %d", f, g, dir, dir2, f.Packets, tb.Len())
	}
	tb.Flush()
	tb.PrefetchFlow(tb.Hash(fwd, 7), true)
	if tb.Len() != 0 || tb.Stats().Created != 1 {
		t.Fatalf("after flush: %d flows, %d created", tb.Len(), tb.Stats().Created)
	}
}
