package xdp

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

const (
	xdpDrop = 1
	xdpPass = 2
)

var (
	wl4   = netip.MustParseAddrPort("10.0.0.2:40000")
	peer4 = netip.MustParseAddrPort("198.51.100.7:3333")
	wl6   = netip.MustParseAddrPort("[fd00::2]:40000")
	peer6 = netip.MustParseAddrPort("[2001:db8:5::7]:3333")
)

// run feeds one frame to prog and checks the verdict and that exactly the counter want
// moved by one.
func run(t *testing.T, m *Manager, prog *ebpf.Program, in []byte, wantRet uint32, want string) {
	t.Helper()
	before := m.Stats()
	ret, _, err := prog.Test(in)
	if err != nil {
		t.Fatalf("Test: %v", err)
	}
	got := counterDelta(m.Stats(), before)
	if ret != wantRet {
		t.Errorf("verdict %d, want %d (counters %v)", ret, wantRet, got)
	}
	if wantMap := map[string]uint64{want: 1}; !maps.Equal(got, wantMap) {
		t.Errorf("counters moved %v, want %v", got, wantMap)
	}
}

func TestLoadAllObjects(t *testing.T) {
	m := openTest(t, Options{})
	for _, v := range []View{ViewEgress, ViewIngress} {
		prog, err := m.loadProgram(WorkloadID("wl"), v)
		if err != nil {
			t.Fatalf("view %v: %v", v, err) // a verifier rejection lands here with its log
		}
		prog.Close()
	}
	if n := m.ctrs.MaxEntries(); n != numCounters {
		t.Errorf("mg_counters has %d entries, Go knows %d counters", n, numCounters)
	}
	for _, name := range mapNames {
		if _, err := os.Stat(filepath.Join(m.opts.PinPath, name)); err != nil {
			t.Errorf("map %s not pinned: %v", name, err)
		}
	}
}

type blockCase struct {
	name    string
	install func(m *Manager, wl, peer netip.AddrPort) error
	flow    bool // a match is a flow match (else a destination match)
	match   bool
}

func blockCases(wl, peer netip.AddrPort) []blockCase {
	bits := 24
	if peer.Addr().Is6() {
		bits = 48
	}
	pfx := netip.PrefixFrom(peer.Addr(), bits)
	host := netip.PrefixFrom(peer.Addr(), peer.Addr().BitLen())
	return []blockCase{
		{"flow", func(m *Manager, wl, peer netip.AddrPort) error {
			return m.BlockFlow("wl", wl, peer, 6, 7)
		}, true, true},
		{"dest-exact", func(m *Manager, wl, peer netip.AddrPort) error {
			return m.BlockDest("wl", host, peer.Port(), 6, 7)
		}, false, true},
		{"dest-prefix", func(m *Manager, wl, peer netip.AddrPort) error {
			return m.BlockDest("wl", pfx, peer.Port(), 6, 7)
		}, false, true},
		{"port-any", func(m *Manager, wl, peer netip.AddrPort) error {
			return m.BlockDest("wl", host, 0, 6, 7)
		}, false, true},
		{"proto-any", func(m *Manager, wl, peer netip.AddrPort) error {
			return m.BlockDest("wl", pfx, peer.Port(), 0, 7)
		}, false, true},
		{"no-match", func(m *Manager, wl, peer netip.AddrPort) error {
			other := netip.AddrPortFrom(wl.Addr(), wl.Port()+1)
			return errors.Join(
				m.BlockFlow("wl", other, peer, 6, 7),                                        // another flow
				m.BlockFlow("wl", wl, peer, 17, 7),                                          // same tuple, UDP
				m.BlockDest("wl", host, peer.Port()+1, 6, 7),                                // another port
				m.BlockDest("wl", host, peer.Port(), 17, 7),                                 // another proto
				m.BlockDest("other", host, 0, 0, 7),                                         // another workload
				m.BlockDest("wl", netip.PrefixFrom(wl.Addr(), wl.Addr().BitLen()), 0, 0, 7), // the workload's own address
			)
		}, false, false},
	}
}

// TestVerdicts: every mode × block kind × view, IPv4 and IPv6, counters exact.
func TestVerdicts(t *testing.T) {
	m := openTest(t, Options{})
	for _, fam := range []struct {
		name     string
		wl, peer netip.AddrPort
	}{{"ipv4", wl4, peer4}, {"ipv6", wl6, peer6}} {
		for _, view := range []View{ViewEgress, ViewIngress} {
			prog, err := m.loadProgram(WorkloadID("wl"), view)
			if err != nil {
				t.Fatal(err)
			}
			defer prog.Close()
			// Egress: the workload sends. Ingress: the workload receives.
			in := frame(encPlain, fam.wl, fam.peer, 6)
			if view == ViewIngress {
				in = frame(encPlain, fam.peer, fam.wl, 6)
			}
			for _, mode := range []Mode{ModeFlagOnly, ModeEnforce, ModeBypass} {
				for _, bc := range blockCases(fam.wl, fam.peer) {
					t.Run(fmt.Sprintf("%s/%v/%v/%s", fam.name, view, mode, bc.name), func(t *testing.T) {
						for _, w := range []string{"wl", "other"} {
							if err := m.ClearWorkload(w); err != nil {
								t.Fatal(err)
							}
						}
						if err := m.SetMode("wl", mode, false); err != nil {
							t.Fatal(err)
						}
						if err := bc.install(m, fam.wl, fam.peer); err != nil {
							t.Fatal(err)
						}
						kind := "dest"
						if bc.flow {
							kind = "flow"
						}
						switch {
						case mode == ModeBypass:
							run(t, m, prog, in, xdpPass, "bypass")
						case !bc.match:
							run(t, m, prog, in, xdpPass, "passed")
						case mode == ModeFlagOnly:
							run(t, m, prog, in, xdpPass, "flagged_"+kind)
						default:
							run(t, m, prog, in, xdpDrop, "dropped_"+kind)
						}
						if bc.flow && mode == ModeEnforce {
							b, ok := m.FlowBlock("wl", fam.wl, fam.peer, 6)
							if !ok || b.Drops != 1 || b.Reason != 7 {
								t.Errorf("flow block after one drop = %+v, %v", b, ok)
							}
							if d, ok := b.FirstDropAfter(); !ok || d <= 0 || d > time.Minute {
								t.Errorf("first drop after %v, %v", d, ok)
							}
						}
					})
				}
			}
		}
	}
}

// TestEncapsulations: the same blocks match through VLAN, QinQ, IPv4 options and IPv6
// extension headers.
func TestEncapsulations(t *testing.T) {
	m := openTest(t, Options{})
	prog, err := m.loadProgram(WorkloadID("wl"), ViewEgress)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := m.SetMode("wl", ModeEnforce, false); err != nil {
		t.Fatal(err)
	}
	for _, e := range []encap{encPlain, encIPOpts, encVLAN, encQinQ, encV6Ext} {
		for _, fam := range [][2]netip.AddrPort{{wl4, peer4}, {wl6, peer6}} {
			wl, peer := fam[0], fam[1]
			if (e == encIPOpts && wl.Addr().Is6()) || (e == encV6Ext && wl.Addr().Is4()) {
				continue
			}
			t.Run(fmt.Sprintf("%v/%v", e, wl.Addr()), func(t *testing.T) {
				m.ClearWorkload("wl")
				for _, proto := range []uint8{6, 17} {
					in := frame(e, wl, peer, proto)
					run(t, m, prog, in, xdpPass, "passed")
					if err := m.BlockFlow("wl", wl, peer, proto, 1); err != nil {
						t.Fatal(err)
					}
					run(t, m, prog, in, xdpDrop, "dropped_flow")
				}
				m.ClearWorkload("wl")
				if err := m.BlockDest("wl", netip.PrefixFrom(peer.Addr(), peer.Addr().BitLen()), peer.Port(), 17, 1); err != nil {
					t.Fatal(err)
				}
				run(t, m, prog, frame(e, wl, peer, 6), xdpPass, "passed")
				run(t, m, prog, frame(e, wl, peer, 17), xdpDrop, "dropped_dest")
			})
		}
	}
}

// TestFragments: non-first fragments carry no ports, so only port-any blocks match them.
func TestFragments(t *testing.T) {
	m := openTest(t, Options{})
	prog, err := m.loadProgram(WorkloadID("wl"), ViewEgress)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	m.SetMode("wl", ModeEnforce, false)
	p := l4{17, wl4.Port(), peer4.Port()}
	frag4 := append(ethHdr(0x0800), ipv4(wl4.Addr(), peer4.Addr(), p, 0, 185)...)
	first4 := append(ethHdr(0x0800), ipv4(wl4.Addr(), peer4.Addr(), p, 0, 0)...)
	first4[14+6] |= 0x20 // more fragments: the first fragment has ports
	p6 := l4{17, wl6.Port(), peer6.Port()}
	frag6 := append(ethHdr(0x86dd), ipv6(wl6.Addr(), peer6.Addr(), p6, []uint8{44}, 185)...)
	first6 := append(ethHdr(0x86dd), ipv6(wl6.Addr(), peer6.Addr(), p6, []uint8{44}, 0)...)

	for _, c := range []struct {
		name        string
		frag, first []byte
		peer        netip.AddrPort
	}{{"ipv4", frag4, first4, peer4}, {"ipv6", frag6, first6, peer6}} {
		t.Run(c.name, func(t *testing.T) {
			host := netip.PrefixFrom(c.peer.Addr(), c.peer.Addr().BitLen())
			m.ClearWorkload("wl")
			m.BlockDest("wl", host, c.peer.Port(), 17, 1)
			run(t, m, prog, c.first, xdpDrop, "dropped_dest")
			run(t, m, prog, c.frag, xdpPass, "passed") // no ports: the port block cannot match
			m.ClearWorkload("wl")
			m.BlockDest("wl", host, 0, 17, 1)
			run(t, m, prog, c.frag, xdpDrop, "dropped_dest")
			m.ClearWorkload("wl")
			m.BlockDest("wl", host, 0, 0, 1)
			run(t, m, prog, c.frag, xdpDrop, "dropped_dest")
		})
	}
}

// TestHeartbeat: a stale heartbeat fails open (counted) unless the workload is fail-closed.
func TestHeartbeat(t *testing.T) {
	m := openTest(t, Options{HeartbeatTimeout: time.Second})
	prog, err := m.loadProgram(WorkloadID("wl"), ViewEgress)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	in := frame(encPlain, wl4, peer4, 6)
	m.SetMode("wl", ModeEnforce, false)
	m.BlockFlow("wl", wl4, peer4, 6, 1)
	run(t, m, prog, in, xdpDrop, "dropped_flow")

	stale := bpfMgSettings{HeartbeatNs: monoNow() - uint64(2*time.Second), TimeoutNs: uint64(time.Second)}
	if err := m.config.Update(uint32(0), &stale, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	run(t, m, prog, in, xdpPass, "failed_open")
	run(t, m, prog, frame(encPlain, wl4, netip.MustParseAddrPort("192.0.2.1:80"), 6), xdpPass, "passed")
	m.SetMode("wl", ModeEnforce, true)
	run(t, m, prog, in, xdpDrop, "dropped_flow")
	m.SetMode("wl", ModeEnforce, false)
	run(t, m, prog, in, xdpPass, "failed_open")
	if err := m.Heartbeat(); err != nil {
		t.Fatal(err)
	}
	run(t, m, prog, in, xdpDrop, "dropped_flow")
	if b, _ := m.FlowBlock("wl", wl4, peer4, 6); b.Drops != 3 {
		t.Errorf("drops = %d, want 3 (failed-open packets are not drops)", b.Drops)
	}
}

// malformedFrames parse to nothing; with a block matching everything they must still pass.
func malformedFrames() map[string][]byte {
	good4 := frame(encPlain, wl4, peer4, 6)
	good6 := frame(encPlain, wl6, peer6, 6)
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	sevenExt := append(ethHdr(0x86dd), ipv6(wl6.Addr(), peer6.Addr(), l4{6, 1, 2}, []uint8{0, 60, 60, 60, 60, 60, 60}, 0)...)
	return map[string][]byte{
		"arp":               append(ethHdr(0x0806), make([]byte, 28)...),
		"eth-only":          ethHdr(0x0800),
		"ipv4-truncated":    good4[:14+12],
		"ipv4-version-6":    mut(good4, func(b []byte) []byte { b[14] = 0x65; return b }),
		"ipv4-ihl-4":        mut(good4, func(b []byte) []byte { b[14] = 0x44; return b }),
		"ipv4-ihl-past-end": mut(good4, func(b []byte) []byte { b[14] = 0x4f; return b[:14+40] }),
		"tcp-truncated":     good4[:14+20+3],
		"three-vlan-tags":   append(ethHdr(0x0800, 0x88a8, 0x8100, 0x8100), good4[14:]...),
		"vlan-truncated":    ethHdr(0x8100)[:14],
		"ipv6-truncated":    good6[:14+39],
		"ipv6-ext-trunc":    append(ethHdr(0x86dd), ipv6(wl6.Addr(), peer6.Addr(), l4{6, 1, 2}, []uint8{0}, 0)[:44]...),
		"ipv6-seven-exts":   sevenExt,
		"ipv6-ports-trunc":  good6[:14+40+2],
	}
}

func TestMalformedPasses(t *testing.T) {
	m := openTest(t, Options{})
	prog, err := m.loadProgram(WorkloadID("wl"), ViewEgress)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	m.SetMode("wl", ModeEnforce, true)
	m.BlockDest("wl", netip.MustParsePrefix("0.0.0.0/0"), 0, 0, 1)
	m.BlockDest("wl", netip.MustParsePrefix("::/0"), 0, 0, 1)
	for name, in := range malformedFrames() {
		t.Run(name, func(t *testing.T) { run(t, m, prog, in, xdpPass, "not_parsed") })
	}
	// The catch-all blocks do match what parses.
	run(t, m, prog, frame(encQinQ, wl4, peer4, 17), xdpDrop, "dropped_dest")
	run(t, m, prog, frame(encV6Ext, wl6, peer6, 6), xdpDrop, "dropped_dest")
}

// FuzzXDPParse runs the data path on arbitrary frames: it must never fail a test run, only
// pass or (when a catch-all block matches) drop, and count each packet exactly once.
func FuzzXDPParse(f *testing.F) {
	for _, in := range malformedFrames() {
		f.Add(in)
	}
	for _, e := range []encap{encPlain, encIPOpts, encVLAN, encQinQ} {
		f.Add(frame(e, wl4, peer4, 6))
	}
	f.Add(frame(encV6Ext, wl6, peer6, 17))
	m := openTest(f, Options{})
	prog, err := m.loadProgram(WorkloadID("wl"), ViewEgress)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { prog.Close() })
	m.SetMode("wl", ModeEnforce, true)
	m.BlockDest("wl", netip.MustParsePrefix("198.51.100.0/24"), 0, 0, 1)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 {
			return // BPF_PROG_TEST_RUN refuses frames shorter than Ethernet
		}
		before := m.Stats()
		ret, _, err := prog.Test(in)
		if err != nil {
			t.Fatalf("Test: %v", err)
		}
		d := counterDelta(m.Stats(), before)
		var sum uint64
		for _, v := range d {
			sum += v
		}
		if sum != 1 {
			t.Fatalf("counters moved %v, want exactly one", d)
		}
		switch {
		case ret == xdpDrop && d["dropped_dest"] == 1:
		case ret == xdpPass && d["dropped_dest"] == 0:
		default:
			t.Fatalf("verdict %d with counters %v", ret, d)
		}
	})
}
