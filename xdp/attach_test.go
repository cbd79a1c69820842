package xdp

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func nsPath(name string) string { return "/var/run/netns/" + name }

// handleIn is a netlink handle inside netns name, closed at cleanup.
func handleIn(t *testing.T, name string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath(name))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// xdpProg is the id of the XDP program on interface ifname in netns name (0 = none).
func xdpProg(t *testing.T, name, ifname string) uint32 {
	t.Helper()
	l, err := handleIn(t, name).LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return x.ProgId
	}
	return 0
}

// pair makes a workload netns and a "host" netns joined by a veth; the workload end is
// ipW, the host end ipH.
func pair(t *testing.T, n int) (wl, host, ipW, ipH string) {
	netnstest.RequireRoot(t)
	wl = netnstest.New(t, "xw")
	host = netnstest.New(t, "xh")
	ipW, ipH = netnstest.Veth(t, wl, host, n)
	return
}

// reopen closes m (if still open) and opens its pins again with host's veths as the host
// side: a sensor restart.
func reopen(t *testing.T, m *Manager, host string) *Manager {
	t.Helper()
	m.Close()
	m2, err := Open(Options{PinPath: m.opts.PinPath, HostNetns: nsPath(host)})
	if err != nil {
		t.Fatal(err)
	}
	return m2
}

func TestAttachReadopt(t *testing.T) {
	m := openTest(t, Options{})
	pinPath := m.opts.PinPath
	wl, host, _, _ := pair(t, 61)
	m = reopen(t, m, host)
	a, err := m.Attach("wl", nsPath(wl), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Links) != 1 || a.Links[0].View != ViewEgress || a.Links[0].Readopted {
		t.Fatalf("attachment %+v: want one new egress link on the host side", a)
	}
	hostIf := a.Links[0].Ifname
	prog1 := xdpProg(t, host, hostIf)
	if prog1 == 0 {
		t.Fatalf("no XDP program on %s in the host netns", hostIf)
	}
	if st := m.Stats(); st.Attached != 1 {
		t.Errorf("Attached = %d, want 1", st.Attached)
	}
	// Attach again in the same process: the same link.
	a2, err := m.Attach("wl", nsPath(wl), a.NsInode)
	if err != nil || !a2.Links[0].Readopted || a2.Links[0].LinkID != a.Links[0].LinkID {
		t.Fatalf("second Attach = %+v, %v: want the same link re-adopted", a2, err)
	}
	m.Close() // a sensor restart: pins stay, enforcement continues
	if got := xdpProg(t, host, hostIf); got == 0 {
		t.Fatal("XDP program gone after Close; pinned link should keep it")
	}
	m = reopen(t, m, host)
	t.Cleanup(func() { m.Remove() })
	if st := m.Stats(); st.Attached != 1 {
		t.Errorf("after reopen Attached = %d, want the pinned link", st.Attached)
	}
	a3, err := m.Attach("wl", nsPath(wl), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a3.Links) != 1 || !a3.Links[0].Readopted || a3.Links[0].LinkID != a.Links[0].LinkID {
		t.Fatalf("after restart Attach = %+v: want link %d re-adopted", a3, a.Links[0].LinkID)
	}
	if got := xdpProg(t, host, hostIf); got == 0 || got == prog1 {
		t.Errorf("interface program %d (before %d): want the re-adopted link updated to a new program", got, prog1)
	}
	ents, _ := os.ReadDir(filepath.Join(pinPath, "links"))
	if len(ents) != 1 {
		t.Errorf("%d pinned links, want 1", len(ents))
	}
	// Nothing on the workload side: one enforcement point per interface pair.
	for _, l := range linksIn(t, wl) {
		if p := xdpProg(t, wl, l); p != 0 {
			t.Errorf("XDP program %d on workload-side %s", p, l)
		}
	}

	if err := m.Detach(a.NsInode); err != nil {
		t.Fatal(err)
	}
	if got := xdpProg(t, host, hostIf); got != 0 {
		t.Errorf("XDP program %d still on %s after Detach", got, hostIf)
	}
	if ents, _ := os.ReadDir(filepath.Join(pinPath, "links")); len(ents) != 0 {
		t.Errorf("%d pins left after Detach", len(ents))
	}
}

func linksIn(t *testing.T, name string) []string {
	ls, err := handleIn(t, name).LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	return names
}

// TestAttachIngressFallback: a netns whose veth peer is not in HostNetns gets the program on
// its own interface, with the ingress view.
func TestAttachIngressFallback(t *testing.T) {
	netnstest.RequireRoot(t)
	other := netnstest.New(t, "xo")
	wl, host, ipW, ipH := pair(t, 62)
	m := openTest(t, Options{HostNetns: nsPath(other)})
	a, err := m.Attach("wl", nsPath(wl), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Links) != 1 || a.Links[0].View != ViewIngress {
		t.Fatalf("attachment %+v: want one ingress link inside the workload netns", a)
	}
	if xdpProg(t, wl, a.Links[0].Ifname) == 0 {
		t.Errorf("no XDP program on %s inside the workload netns", a.Links[0].Ifname)
	}

	// Real traffic into the workload: its peer's datagrams are dropped by destination and
	// by flow (the flow oriented as the workload sees it).
	rx := netnstest.ListenUDP(t, wl, ipW+":0")
	tx := netnstest.ListenUDP(t, host, ipH+":0")
	wlAddr := netip.MustParseAddrPort(rx.LocalAddr().String())
	peerAddr := netip.MustParseAddrPort(tx.LocalAddr().String())
	arrives := func() bool {
		tx.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(wlAddr))
		rx.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _, err := rx.ReadFrom(make([]byte, 64))
		return err == nil
	}
	m.SetMode("wl", ModeEnforce, false)
	if !arrives() {
		t.Fatal("datagram lost before any block")
	}
	m.BlockFlow("wl", wlAddr, peerAddr, 17, 1)
	if arrives() {
		t.Error("datagram of a blocked flow arrived (ingress view)")
	}
	m.ClearWorkload("wl")
	if !arrives() {
		t.Error("datagram lost after ClearWorkload")
	}
	m.BlockDest("wl", netip.PrefixFrom(peerAddr.Addr(), 32), peerAddr.Port(), 17, 1)
	if arrives() {
		t.Error("datagram from a blocked destination arrived (ingress view)")
	}
}

func TestAttachRefusesHostNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	host := netnstest.New(t, "xh")
	m := openTest(t, Options{HostNetns: nsPath(host)})
	if _, err := m.Attach("wl", nsPath(host), 0); err == nil {
		t.Fatal("Attach to the host netns itself succeeded")
	}
}

// TestOpenDropsStaleLinks: a pinned link whose interface was deleted is unpinned at Open.
func TestOpenDropsStaleLinks(t *testing.T) {
	m := openTest(t, Options{})
	pinPath := m.opts.PinPath
	wl, host, _, _ := pair(t, 63)
	m = reopen(t, m, host)
	a, err := m.Attach("wl", nsPath(wl), 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	netnstest.Run(t, "ip", "-n", host, "link", "del", a.Links[0].Ifname)
	m = reopen(t, m, host)
	t.Cleanup(func() { m.Remove() })
	if st := m.Stats(); st.Attached != 0 {
		t.Errorf("Attached = %d after the interface was deleted, want 0", st.Attached)
	}
	if ents, _ := os.ReadDir(filepath.Join(pinPath, "links")); len(ents) != 0 {
		t.Errorf("%d stale pins left", len(ents))
	}
}
