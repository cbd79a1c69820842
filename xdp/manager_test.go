package xdp

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/minerguard/minerguard/internal/netnstest"
)

func TestMapFullSwitchesToFlagOnly(t *testing.T) {
	m := openTest(t, Options{MaxFlows: 2, MaxDests: 2})
	if err := m.SetMode("wl", ModeEnforce, true); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		src := netip.AddrPortFrom(wl4.Addr(), uint16(1000+i))
		if err := m.BlockFlow("wl", src, peer4, 6, 1); err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
	}
	// Re-blocking an existing flow is not an insertion.
	if err := m.BlockFlow("wl", netip.AddrPortFrom(wl4.Addr(), 1000), peer4, 6, 1); err != nil {
		t.Fatalf("re-block: %v", err)
	}
	err := m.BlockFlow("wl", netip.AddrPortFrom(wl4.Addr(), 1002), peer4, 6, 1)
	if !errors.Is(err, ErrMapFull) {
		t.Fatalf("third flow: %v, want ErrMapFull", err)
	}
	mode, fc, _ := m.GetMode("wl")
	if mode != ModeFlagOnly || !fc {
		t.Errorf("after a full map: mode %v fail-closed %v, want flag-only (fail-closed kept)", mode, fc)
	}
	m.SetMode("wl", ModeEnforce, false)
	for i := range 3 {
		err = m.BlockDest("wl", netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32), 0, 0, 1)
	}
	if !errors.Is(err, ErrMapFull) {
		t.Fatalf("third destination: %v, want ErrMapFull", err)
	}
	if mode, _, _ := m.GetMode("wl"); mode != ModeFlagOnly {
		t.Errorf("after a full LPM map: mode %v, want flag-only", mode)
	}
	if st := m.Stats(); st.MapFull != 2 {
		t.Errorf("MapFull = %d, want 2", st.MapFull)
	}
}

func TestBlockLifecycle(t *testing.T) {
	m := openTest(t, Options{})
	pfx := netip.MustParsePrefix("198.51.100.0/24")
	if err := m.BlockDest("wl", pfx, 3333, 6, 9); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockDest("wl", netip.MustParsePrefix("198.51.100.0/16"), 3333, 6, 9); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockFlow("wl", wl4, peer4, 6, 9); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockFlow("keep", wl4, peer4, 6, 9); err != nil {
		t.Fatal(err)
	}
	if b, ok := m.DestBlock("wl", pfx, 3333, 6); !ok || b.Reason != 9 || b.InstalledNs == 0 {
		t.Errorf("DestBlock = %+v, %v", b, ok)
	}
	// DestBlock is exact: a /25 inside the /24 is not an entry.
	if _, ok := m.DestBlock("wl", netip.MustParsePrefix("198.51.100.0/25"), 3333, 6); ok {
		t.Error("DestBlock found a /25 that was never installed")
	}
	if err := m.UnblockDest("wl", pfx, 3333, 6); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.DestBlock("wl", pfx, 3333, 6); ok {
		t.Error("destination still blocked after UnblockDest")
	}
	if err := m.UnblockDest("wl", pfx, 3333, 6); err != nil {
		t.Errorf("unblocking twice: %v", err)
	}
	// A reason filter leaves other reasons' blocks: the flow (reason 9) stays, the /16 of
	// reason 8 goes.
	if err := m.BlockDest("wl", netip.MustParsePrefix("203.0.113.0/24"), 443, 6, 8); err != nil {
		t.Fatal(err)
	}
	if err := m.ClearWorkload("wl", 8); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.DestBlock("wl", netip.MustParsePrefix("203.0.113.0/24"), 443, 6); ok {
		t.Error("reason-8 destination still blocked after ClearWorkload(wl, 8)")
	}
	if _, ok := m.FlowBlock("wl", wl4, peer4, 6); !ok {
		t.Error("ClearWorkload(wl, 8) removed a reason-9 flow block")
	}
	if err := m.ClearWorkload("wl"); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.FlowBlock("wl", wl4, peer4, 6); ok {
		t.Error("flow still blocked after ClearWorkload")
	}
	if _, ok := m.DestBlock("wl", netip.MustParsePrefix("198.51.100.0/16"), 3333, 6); ok {
		t.Error("destination still blocked after ClearWorkload")
	}
	if _, ok := m.FlowBlock("keep", wl4, peer4, 6); !ok {
		t.Error("ClearWorkload removed another workload's block")
	}
	if err := m.UnblockFlow("keep", wl4, peer4, 6); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.FlowBlock("keep", wl4, peer4, 6); ok {
		t.Error("flow still blocked after UnblockFlow")
	}
}

func TestFlagOnlyAll(t *testing.T) {
	m := openTest(t, Options{})
	m.SetMode("a", ModeEnforce, true)
	m.SetMode("b", ModeBypass, false)
	m.SetMode("c", ModeEnforce, false)
	if err := m.FlagOnlyAll(); err != nil {
		t.Fatal(err)
	}
	for w, want := range map[string]Mode{"a": ModeFlagOnly, "b": ModeBypass, "c": ModeFlagOnly, "none": ModeFlagOnly} {
		if got, _, _ := m.GetMode(w); got != want {
			t.Errorf("%s: mode %v, want %v", w, got, want)
		}
	}
	// The data path agrees: nothing dropped for a formerly fail-closed workload.
	prog, err := m.loadProgram(WorkloadID("a"), ViewEgress)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	m.BlockFlow("a", wl4, peer4, 6, 1)
	run(t, m, prog, frame(encPlain, wl4, peer4, 6), xdpPass, "flagged_flow")
}

func TestWorkloadID(t *testing.T) {
	if WorkloadID("k8s/default/deployment/web") != WorkloadID("k8s/default/deployment/web") {
		t.Fatal("not stable")
	}
	if WorkloadID("a") == WorkloadID("b") {
		t.Fatal("a and b collide")
	}
	// FNV-1a 64 of "a": a fixed value, so that ids survive restarts and upgrades.
	if got := WorkloadID("a"); got != 0xaf63dc4c8601ec8c {
		t.Fatalf("WorkloadID(a) = %#x", got)
	}
}

// TestUnsupportedWithoutCapabilities (C2): without CAP_BPF/CAP_SYS_ADMIN Open fails with
// ErrUnsupported and names what is missing. The check runs in a child without capabilities.
func TestUnsupportedWithoutCapabilities(t *testing.T) {
	if os.Getenv("MG_XDP_NOCAP_CHILD") == "1" {
		_, err := Open(Options{PinPath: "/sys/fs/bpf/minerguard-test-nocap"})
		fmt.Printf("errors.Is(ErrUnsupported)=%v err=%v\n", errors.Is(err, ErrUnsupported), err)
		return
	}
	netnstest.RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv(1) to drop capabilities")
	}
	for _, c := range []struct{ drop, want string }{
		{"-all", "CAP_BPF"},
		{"-bpf,-sys_admin", "CAP_BPF"},
		{"-net_admin", "CAP_NET_ADMIN"},
	} {
		cmd := exec.Command(setpriv, "--inh-caps=-all", "--bounding-set="+c.drop, "--",
			os.Args[0], "-test.run=^TestUnsupportedWithoutCapabilities$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MG_XDP_NOCAP_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child %s: %v: %s", c.drop, err, out)
		}
		if !strings.Contains(string(out), "errors.Is(ErrUnsupported)=true") || !strings.Contains(string(out), c.want) {
			t.Errorf("dropping %s: child output %q: want ErrUnsupported naming %s", c.drop, out, c.want)
		}
	}
}

// PruneFlows removes exactly the flow blocks whose drop count stopped moving for idle: a
// blocked flow still being retried stays, one nobody sends on goes.
func TestPruneFlows(t *testing.T) {
	m := openTest(t, Options{})
	quiet := netip.AddrPortFrom(wl4.Addr(), 2000)
	retried := netip.AddrPortFrom(wl4.Addr(), 2001)
	for _, src := range []netip.AddrPort{quiet, retried} {
		if err := m.BlockFlow("wl", src, peer4, 6, 1); err != nil {
			t.Fatal(err)
		}
	}
	bump := func(src netip.AddrPort) { // what the program does on a drop
		k := flowKey(WorkloadID("wl"), src, peer4, 6)
		var v bpfMgBlock
		if err := m.flows.Lookup(&k, &v); err != nil {
			t.Fatal(err)
		}
		v.Drops++
		if err := m.flows.Update(&k, &v, ebpf.UpdateExist); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	idle := 15 * time.Minute
	if n, err := m.PruneFlows(t0, idle); n != 0 || err != nil {
		t.Fatalf("first call: %d, %v; it only takes note", n, err)
	}
	bump(retried)
	if n, _ := m.PruneFlows(t0.Add(10*time.Minute), idle); n != 0 {
		t.Fatalf("pruned %d before idle passed", n)
	}
	bump(retried)
	if n, _ := m.PruneFlows(t0.Add(16*time.Minute), idle); n != 1 {
		t.Fatalf("pruned %d at 16 min, want the quiet one", n)
	}
	if _, ok := m.FlowBlock("wl", quiet, peer4, 6); ok {
		t.Error("the quiet flow's block is still there")
	}
	if _, ok := m.FlowBlock("wl", retried, peer4, 6); !ok {
		t.Error("the retried flow's block was pruned")
	}
	if n, _ := m.PruneFlows(t0.Add(32*time.Minute), idle); n != 1 || m.Stats().Pruned != 2 {
		t.Fatalf("no retry after 16 min: pruned %d at 32 min (total %d)", n, m.Stats().Pruned)
	}
}

// Blocks lists what BlockFlow and BlockDest installed, keys decoded back; Clear removes only
// what its filter matches.
func TestBlocksListAndClear(t *testing.T) {
	m := openTest(t, Options{})
	src := netip.MustParseAddrPort("10.0.0.2:40000")
	dst6 := netip.MustParseAddrPort("[2001:db8::9]:3333")
	if err := m.BlockFlow("wl", src, netip.MustParseAddrPort("192.0.2.9:3333"), 6, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockFlow("wl", netip.MustParseAddrPort("[2001:db8::2]:40001"), dst6, 6, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockDest("wl", netip.MustParsePrefix("192.0.2.9/32"), 0, 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockDest("wl", netip.MustParsePrefix("2001:db8::/64"), 443, 6, 8); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockDest("other", netip.MustParsePrefix("192.0.2.9/32"), 0, 0, 4); err != nil {
		t.Fatal(err)
	}
	es, err := m.Blocks()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		if e.WorkloadID != WorkloadID("wl") {
			continue
		}
		if e.Flow {
			got = append(got, fmt.Sprintf("flow %v>%v/%d r%d", e.Src, e.Dst, e.Proto, e.Reason))
		} else {
			got = append(got, fmt.Sprintf("dest %v:%d/%d r%d", e.Prefix, e.Port, e.Proto, e.Reason))
		}
		if Wall(e.InstalledNs).After(time.Now()) || time.Since(Wall(e.InstalledNs)) > time.Minute {
			t.Errorf("installed at %v", Wall(e.InstalledNs))
		}
	}
	sort.Strings(got)
	want := []string{"dest 192.0.2.9/32:0/0 r4", "dest 2001:db8::/64:443/6 r8",
		"flow 10.0.0.2:40000>192.0.2.9:3333/6 r1", "flow [2001:db8::2]:40001>[2001:db8::9]:3333/6 r1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("blocks\n got %q\nwant %q", got, want)
	}
	// Clear what concerns 192.0.2.9 only: the v4 flow and the v4 destination of wl.
	pool := netip.MustParseAddr("192.0.2.9")
	n, err := m.Clear(WorkloadID("wl"), func(e Entry) bool {
		return (e.Flow && e.Dst.Addr() == pool) || (!e.Flow && e.Prefix.Contains(pool))
	})
	if err != nil || n != 2 {
		t.Fatalf("Clear: %d, %v; want 2", n, err)
	}
	if es, _ = m.Blocks(); len(es) != 3 {
		t.Fatalf("%d blocks left, want 3 (wl's IPv6 flow and prefix, other's destination)", len(es))
	}
}
