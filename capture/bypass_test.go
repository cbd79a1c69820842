package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// Frames for the filter under BPF_PROG_TEST_RUN. The kernel hands a socket filter the packet
// from its network header there (the test run strips the Ethernet header), so a frame's
// "headers" are IP + transport.

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

var (
	cli4 = netip.MustParseAddrPort("10.0.0.2:40000")
	srv4 = netip.MustParseAddrPort("198.51.100.7:3333")
	cli6 = netip.MustParseAddrPort("[fd00::2]:40000")
	srv6 = netip.MustParseAddrPort("[2001:db8::7]:443")
)

func ether(etype uint16, l3 []byte) []byte {
	b := make([]byte, 14, 14+len(l3))
	copy(b[0:6], []byte{2, 0, 0, 0, 0, 1})
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(b[12:], etype)
	return append(b, l3...)
}

func tcpSeg(src, dst netip.AddrPort, flags uint8, seq uint32, payload int) []byte {
	l4 := make([]byte, 20+payload)
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint32(l4[4:], seq)
	l4[12] = 5 << 4
	l4[13] = flags
	for i := 20; i < len(l4); i++ {
		l4[i] = 'x'
	}
	return ipPkt(src.Addr(), dst.Addr(), 6, l4)
}

func udpDgram(src, dst netip.AddrPort, payload int) []byte {
	l4 := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint16(l4[4:], uint16(8+payload))
	return ipPkt(src.Addr(), dst.Addr(), 17, l4)
}

func ipPkt(src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	if src.Is4() {
		h := make([]byte, 20, 20+len(l4))
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
		h[8] = 64
		h[9] = proto
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		return ether(0x0800, append(h, l4...))
	}
	h := make([]byte, 40, 40+len(l4))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	h[6] = proto
	h[7] = 64
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return ether(0x86DD, append(h, l4...))
}

func openBypassTest(t testing.TB, o BypassOptions) *Bypass {
	t.Helper()
	netnstest.RequireRoot(t)
	b, err := OpenBypass(o)
	if errors.Is(err, ErrBypassUnsupported) && !errors.As(err, new(*ebpf.VerifierError)) {
		netnstest.SkipReal(t, "kernel bypass not available here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testProg loads the filter for scope with a counter slot of its own. Loopback is kept:
// the test run hands the program packets "received" on lo.
func testProg(t testing.TB, b *Bypass, scope uint64) (*ebpf.Program, uint32) {
	t.Helper()
	slot, ok := b.takeSlot()
	if !ok {
		t.Fatal("no counter slot")
	}
	prog, err := b.load(scope, slot, true)
	if err != nil {
		t.Fatal(err) // a verifier rejection lands here with its log
	}
	t.Cleanup(func() { prog.Close(); b.putSlot(slot) })
	return prog, slot
}

// runFilter returns how many bytes of frame the ring would get.
func runFilter(t testing.TB, prog *ebpf.Program, frame []byte) uint32 {
	t.Helper()
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	return ret
}

func slotStats(t testing.TB, b *Bypass, slot uint32) BypassStats {
	t.Helper()
	s, err := b.slotStats(slot)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// l3len is what the test run hands the filter: the frame without its Ethernet header.
func l3len(frame []byte) uint32 { return uint32(len(frame) - 14) }

// TestBypassDepth: each TCP direction is handed up to the depth (the packet across it cut
// to headers plus the bytes still wanted), then only SYN/FIN/RST headers; bare ACKs stop
// once bulk runs; every packet lands in exactly one counter and bypassed bytes add up.
func TestBypassDepth(t *testing.T) {
	for _, c := range []struct {
		name     string
		cli, srv netip.AddrPort
		hdrs     uint32
	}{{"ipv4", cli4, srv4, 40}, {"ipv6", cli6, srv6, 60}} {
		t.Run(c.name, func(t *testing.T) {
			const depth = 4000
			b := openBypassTest(t, BypassOptions{StreamDepth: depth, MaxFlows: 1024})
			prog, slot := testProg(t, b, 7)
			const isn, risn = 1000, 90000
			var sentPkts, sentBytes, wantByPkts, wantByBytes uint64
			step := func(what string, frame []byte, want uint32) {
				t.Helper()
				got := runFilter(t, prog, frame)
				if got != want {
					t.Errorf("%s: filter returned %d, want %d", what, got, want)
				}
				sentPkts++
				sentBytes += uint64(l3len(frame))
				if want == 0 {
					wantByPkts++
					wantByBytes += uint64(l3len(frame))
				}
			}
			syn := tcpSeg(c.cli, c.srv, tcpSYN, isn, 0)
			step("SYN", syn, l3len(syn))
			sa := tcpSeg(c.srv, c.cli, tcpSYN|tcpACK, risn, 0)
			step("SYN-ACK", sa, l3len(sa))
			ack := tcpSeg(c.cli, c.srv, tcpACK, isn+1, 0)
			step("ACK before bulk", ack, l3len(ack))
			// Client sends 3 × 1400: 0..4199, the third crosses 4000.
			seq := uint32(isn + 1)
			for i := range 3 {
				seg := tcpSeg(c.cli, c.srv, tcpACK|tcpPSH, seq, 1400)
				want := l3len(seg)
				if i == 2 {
					want = c.hdrs + depth - 2800
				}
				step("client data", seg, want)
				seq += 1400
			}
			for range 5 {
				seg := tcpSeg(c.cli, c.srv, tcpACK, seq, 1400)
				step("client data past depth", seg, 0)
				seq += 1400
			}
			// A retransmission of early bytes is still wanted (it may fill a hole).
			re := tcpSeg(c.cli, c.srv, tcpACK, isn+1+1400, 1400)
			step("retransmission within depth", re, l3len(re))
			// 2 GiB and 3 GiB on, the signed distance from the ISN has wrapped: still bypassed.
			for _, off := range []uint32{1<<31 + 5, 3 << 30} {
				seg := tcpSeg(c.cli, c.srv, tcpACK, isn+1+off, 1400)
				step("client data 2+ GiB on", seg, 0)
			}
			back := tcpSeg(c.srv, c.cli, tcpACK, risn+1, 0)
			step("bare ACK once bulk runs", back, 0)
			// The server direction has its own depth.
			resp := tcpSeg(c.srv, c.cli, tcpACK|tcpPSH, risn+1, 100)
			step("server data", resp, l3len(resp))
			fin := tcpSeg(c.cli, c.srv, tcpFIN|tcpACK, seq, 1400)
			step("FIN past depth: headers", fin, c.hdrs)

			st := slotStats(t, b, slot)
			if st.BypassedPackets != wantByPkts || st.BypassedBytes != wantByBytes {
				t.Errorf("bypassed %d packets / %d bytes, want %d / %d", st.BypassedPackets, st.BypassedBytes, wantByPkts, wantByBytes)
			}
			if got := st.BypassedPackets + st.CutPackets + st.PassedPackets; got != sentPkts {
				t.Errorf("counted %d packets (%+v), sent %d", got, st, sentPkts)
			}
			if st.CutPackets != 2 || st.Flows != 1 || st.Midstream != 0 || st.MapFull != 0 || st.NotParsed != 0 {
				t.Errorf("counters %+v: want 2 cut, 1 flow, no midstream/map_full/not_parsed", st)
			}
		})
	}
}

// TestBypassDone: once user space marks a flow done only its SYN/FIN/RST headers come up,
// in both directions, whichever order Done names the ends in; a new SYN on the same
// 5-tuple starts over. Other scopes' flows with the same 5-tuple are untouched.
func TestBypassDone(t *testing.T) {
	b := openBypassTest(t, BypassOptions{StreamDepth: 65536, MaxFlows: 1024})
	prog, slot := testProg(t, b, 7)
	other, _ := testProg(t, b, 8)
	syn := tcpSeg(cli4, srv4, tcpSYN, 1, 0)
	runFilter(t, prog, syn)
	runFilter(t, other, syn)
	data := tcpSeg(cli4, srv4, tcpACK|tcpPSH, 2, 500)
	if got := runFilter(t, prog, data); got != l3len(data) {
		t.Fatalf("data before Done: %d", got)
	}
	b.Done(7, 6, srv4, cli4) // reversed on purpose
	if got := runFilter(t, prog, data); got != 0 {
		t.Errorf("client data after Done: %d, want 0", got)
	}
	reply := tcpSeg(srv4, cli4, tcpACK|tcpPSH, 50, 500)
	if got := runFilter(t, prog, reply); got != 0 {
		t.Errorf("server data after Done: %d, want 0", got)
	}
	if got := runFilter(t, other, data); got != l3len(data) {
		t.Errorf("same 5-tuple in another scope: %d, want whole", got)
	}
	rst := tcpSeg(srv4, cli4, tcpRST|tcpACK, 550, 10)
	if got := runFilter(t, prog, rst); got != 40 {
		t.Errorf("RST with payload after Done: %d, want headers (40)", got)
	}
	if got := runFilter(t, prog, syn); got != l3len(syn) {
		t.Errorf("new SYN on the tuple: %d", got)
	}
	if got := runFilter(t, prog, data); got != l3len(data) {
		t.Errorf("data of the new connection: %d, want whole", got)
	}
	if st := slotStats(t, b, slot); st.BypassedPackets != 2 || st.CutPackets != 1 || b.DoneErrors() != 0 {
		t.Errorf("counters %+v, done errors %d", st, b.DoneErrors())
	}
}

// TestBypassNeverDNS: DNS over UDP and TCP is handed up whole however long, even when user
// space (wrongly) says done; other UDP comes up as headers until done, then not at all.
func TestBypassNeverDNS(t *testing.T) {
	b := openBypassTest(t, BypassOptions{StreamDepth: 1000, MaxFlows: 1024})
	prog, slot := testProg(t, b, 7)
	res := netip.MustParseAddrPort("10.0.0.53:53")
	b.Done(7, 17, cli4, res)
	b.Done(7, 6, cli4, res)
	for i := range 3 {
		q := udpDgram(cli4, res, 40)
		a := udpDgram(res, cli4, 1200)
		for _, f := range [][]byte{q, a} {
			if got := runFilter(t, prog, f); got != l3len(f) {
				t.Errorf("UDP DNS %d: %d, want whole %d", i, got, l3len(f))
			}
		}
	}
	seq := uint32(1)
	for range 5 { // 5 × 1400 past a depth of 1000: DNS over TCP ignores the depth
		seg := tcpSeg(res, cli4, tcpACK, seq, 1400)
		if got := runFilter(t, prog, seg); got != l3len(seg) {
			t.Errorf("TCP DNS: %d, want whole", got)
		}
		seq += 1400
	}
	other := netip.MustParseAddrPort("10.0.0.9:4789")
	d := udpDgram(cli4, other, 1000)
	if got := runFilter(t, prog, d); got != 28 {
		t.Errorf("other UDP: %d, want headers (28)", got)
	}
	b.Done(7, 17, cli4, other)
	if got := runFilter(t, prog, d); got != 0 {
		t.Errorf("other UDP after Done: %d, want 0", got)
	}
	if st := slotStats(t, b, slot); st.PassedPackets != 11 || st.CutPackets != 1 || st.BypassedPackets != 1 || st.Flows != 0 {
		t.Errorf("counters %+v", st)
	}
}

// TestBypassPassesWhatItCannotRead: non-IP, fragments, IPv6 extension headers and bad
// headers are handed up whole and counted.
func TestBypassPassesWhatItCannotRead(t *testing.T) {
	b := openBypassTest(t, BypassOptions{MaxFlows: 1024})
	prog, slot := testProg(t, b, 7)
	frag := tcpSeg(cli4, srv4, tcpACK, 5, 100)
	binary.BigEndian.PutUint16(frag[14+6:], 0x2000) // more fragments
	ext := tcpSeg(cli6, srv6, tcpACK, 5, 100)
	ext[14+6] = 0 // hop-by-hop options first
	badOff := tcpSeg(cli4, srv4, tcpACK, 5, 10)
	badOff[14+20+12] = 15 << 4 // data offset past the packet
	arp := ether(0x0806, make([]byte, 28))
	for name, f := range map[string][]byte{"fragment": frag, "ipv6 ext": ext, "bad data offset": badOff, "arp": arp} {
		if got := runFilter(t, prog, f); got != l3len(f) {
			t.Errorf("%s: %d, want whole %d", name, got, l3len(f))
		}
	}
	if st := slotStats(t, b, slot); st.NotParsed != 4 || st.PassedPackets != 4 {
		t.Errorf("counters %+v, want 4 not parsed, all passed", st)
	}
}

// TestBypassFloodBounded: a flood of 1 M distinct flows keeps the LRU map at its size; a
// done flow that keeps sending stays done through it (its entry is recently used), and the
// flows the LRU forgot are handed up again (never blind), counted as midstream.
func TestBypassFloodBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("1 M test runs")
	}
	const max = 65536
	b := openBypassTest(t, BypassOptions{StreamDepth: 65536, MaxFlows: max})
	prog, slot := testProg(t, b, 7)
	hot := tcpSeg(cli4, srv4, tcpACK, 100, 1000)
	runFilter(t, prog, tcpSeg(cli4, srv4, tcpSYN, 99, 0))
	b.Done(7, 6, cli4, srv4)
	const flood = 1_000_000
	first := tcpSeg(netip.MustParseAddrPort("10.1.0.0:1"), srv4, tcpSYN, 1, 0)
	syn := append([]byte(nil), first...)
	for i := range flood {
		// Distinct source address and port per flow.
		binary.BigEndian.PutUint32(syn[14+12:], 0x0a010000|uint32(i>>8))
		binary.BigEndian.PutUint16(syn[14+20:], uint16(1024+i&0xff))
		if ret := runFilter(t, prog, syn); ret != l3len(syn) {
			t.Fatalf("flood SYN %d: %d", i, ret)
		}
		if i%256 == 0 {
			if ret := runFilter(t, prog, hot); ret != 0 {
				t.Fatalf("done flow handed up (%d bytes) after %d flood flows", ret, i)
			}
		}
	}
	n := 0
	var k bypassMgBpKey
	var v bypassMgBpFlow
	it := b.flows.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if n > max {
		t.Errorf("flow map holds %d entries, max %d", n, max)
	}
	// The first flood flow was forgotten: its next packet comes up whole, as midstream.
	data := tcpSeg(netip.MustParseAddrPort("10.1.0.0:1024"), srv4, tcpACK, 2, 500)
	before := slotStats(t, b, slot)
	if ret := runFilter(t, prog, data); ret != l3len(data) {
		t.Errorf("forgotten flow's data: %d, want whole", ret)
	}
	after := slotStats(t, b, slot)
	if after.Midstream != before.Midstream+1 || after.MapFull != 0 {
		t.Errorf("forgotten flow: midstream %d→%d, map_full %d", before.Midstream, after.Midstream, after.MapFull)
	}
	if after.Flows < flood {
		t.Errorf("flows created %d, want ≥ %d", after.Flows, flood)
	}
	t.Logf("map entries after %d flows: %d (max %d)", flood, n, max)
}

// TestFlowKeyMatchesKernel: Done's key (built in Go) is the one the filter builds, for both
// orders of the ends and both families.
func TestFlowKeyMatchesKernel(t *testing.T) {
	b := openBypassTest(t, BypassOptions{MaxFlows: 1024})
	prog, _ := testProg(t, b, 3)
	for _, c := range [][2]netip.AddrPort{{cli4, srv4}, {srv4, cli4}, {cli6, srv6}, {srv6, cli6},
		{netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.1:81")}} {
		runFilter(t, prog, tcpSeg(c[0], c[1], tcpSYN, 1, 0))
		k := flowKey(3, 6, c[1], c[0])
		var v bypassMgBpFlow
		if err := b.flows.Lookup(&k, &v); err != nil {
			t.Errorf("%v→%v: Go's key not found in the map: %v", c[0], c[1], err)
		}
	}
}

// TestBypassUnsupportedWithoutCapabilities (item 5, C2): without CAP_BPF/CAP_SYS_ADMIN the
// filter cannot load: OpenBypass fails with ErrBypassUnsupported naming the capability, and
// a ring still opens on the classic path. The check runs in a child without them.
func TestBypassUnsupportedWithoutCapabilities(t *testing.T) {
	if os.Getenv("MG_BYPASS_NOCAP_CHILD") == "1" {
		_, err := OpenBypass(BypassOptions{})
		fmt.Printf("errors.Is(ErrBypassUnsupported)=%v err=%v\n", errors.Is(err, ErrBypassUnsupported), err)
		r, err := OpenRing(Netns{}, RingOptions{Interface: "lo", Loopback: true})
		if err == nil {
			_, on := r.BypassStats()
			fmt.Printf("classic ring opened, bypass=%v\n", on)
			r.Close()
		} else {
			fmt.Printf("ring: %v\n", err)
		}
		return
	}
	netnstest.RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		netnstest.SkipReal(t, "needs setpriv(1) to drop capabilities")
	}
	cmd := exec.Command(setpriv, "--inh-caps=-all", "--bounding-set=-bpf,-sys_admin", "--",
		os.Args[0], "-test.run=^TestBypassUnsupportedWithoutCapabilities$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MG_BYPASS_NOCAP_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	for _, want := range []string{"errors.Is(ErrBypassUnsupported)=true", "CAP_BPF", "classic ring opened, bypass=false"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output %q lacks %q", out, want)
		}
	}
}

// TestBypassPressureDepth: a ring under pressure gets a lower depth for bytes not yet seen;
// back at 0 the configured depth holds again for directions that had not passed the lower one.
func TestBypassPressureDepth(t *testing.T) {
	b := openBypassTest(t, BypassOptions{StreamDepth: 65536, MaxFlows: 1024})
	prog, slot := testProg(t, b, 7)
	other := netip.MustParseAddrPort("10.0.0.4:40004")
	runFilter(t, prog, tcpSeg(cli4, srv4, tcpSYN, 0, 0))
	runFilter(t, prog, tcpSeg(other, srv4, tcpSYN, 0, 0))
	if err := b.depths.Update(slot, uint32(1000), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if got := runFilter(t, prog, tcpSeg(cli4, srv4, tcpACK, 1, 1400)); got != 40+1000 {
		t.Errorf("under pressure: %d, want headers + 1000", got)
	}
	if got := runFilter(t, prog, tcpSeg(cli4, srv4, tcpACK, 1401, 1400)); got != 0 {
		t.Errorf("past the pressure depth: %d, want 0", got)
	}
	small := tcpSeg(other, srv4, tcpACK, 1, 300)
	if got := runFilter(t, prog, small); got != l3len(small) {
		t.Errorf("a new flow's first bytes under pressure: %d, want whole", got)
	}
	b.depths.Update(slot, uint32(0), ebpf.UpdateAny)
	if got := runFilter(t, prog, tcpSeg(other, srv4, tcpACK, 301, 1400)); got != l3len(small)+1100 {
		t.Errorf("after pressure: %d, want whole", got)
	}
	if got := runFilter(t, prog, tcpSeg(cli4, srv4, tcpACK, 2801, 1400)); got != 0 {
		t.Errorf("a direction past the pressure depth stays past: %d", got)
	}
}
