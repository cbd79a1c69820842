package xdp

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
)

// BenchmarkProgram is the data path's cost per packet under BPF_PROG_TEST_RUN (no driver,
// no stack): go test -run '^$' -bench BenchmarkProgram ./xdp/
func BenchmarkProgram(b *testing.B) {
	m := openTest(b, Options{})
	prog, err := m.loadProgram(WorkloadID("wl"), ViewEgress)
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Close()
	// Unrelated entries so the lookups walk a populated flow table and trie.
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		m.BlockFlow("wl", netip.AddrPortFrom(a, 1), peer4, 6, 1)
		m.BlockDest("wl", netip.PrefixFrom(a, 32), 0, 0, 1)
	}
	m.BlockFlow("wl", wl4, peer4, 6, 1)
	m.BlockDest("wl", netip.MustParsePrefix("203.0.113.0/24"), 0, 0, 1)
	blocked := frame(encPlain, wl4, peer4, 6)
	other := frame(encPlain, netip.MustParseAddrPort("10.0.0.9:1"), netip.MustParseAddrPort("192.0.2.200:443"), 6)
	destOnly := frame(encQinQ, netip.MustParseAddrPort("10.0.0.9:1"), netip.MustParseAddrPort("203.0.113.9:3333"), 17)
	for _, c := range []struct {
		name string
		mode Mode
		in   []byte
		want uint32
	}{
		{"bypass", ModeBypass, blocked, xdpPass},
		{"pass-no-match", ModeEnforce, other, xdpPass}, // worst pass: a flow and four trie lookups
		{"flag-flow-match", ModeFlagOnly, blocked, xdpPass},
		{"drop-flow", ModeEnforce, blocked, xdpDrop},
		{"drop-dest-qinq", ModeEnforce, destOnly, xdpDrop},
	} {
		b.Run(c.name, func(b *testing.B) {
			m.SetMode("wl", c.mode, false)
			ret, per, err := prog.Benchmark(c.in, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			if ret != c.want {
				b.Fatalf("verdict %d, want %d", ret, c.want)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/pkt")
		})
	}
}

// BenchmarkVeth floods UDP from a workload netns to a "host" netns across a veth: without
// XDP, with the program passing (flag-only, no match), and dropping (enforce, a flow block
// on the flood). go test -run '^$' -bench BenchmarkVeth -benchtime 200000x ./xdp/
func BenchmarkVeth(b *testing.B) {
	netnstest.RequireRoot(b)
	for _, mode := range []string{"none", "pass", "enforce"} {
		b.Run(mode, func(b *testing.B) {
			wl := netnstest.New(b, "bw")
			host := netnstest.New(b, "bh")
			_, ipH := netnstest.Veth(b, wl, host, 65)
			rx := netnstest.ListenUDP(b, host, ipH+":0")
			var tx *net.UDPConn
			if err := netnstest.Do(b, wl, func() error {
				c, err := net.Dial("udp4", rx.LocalAddr().String())
				tx, _ = c.(*net.UDPConn)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			var m *Manager
			if mode != "none" {
				m = openTest(b, Options{HostNetns: nsPath(host)})
				if _, err := m.Attach("wl", nsPath(wl), 0); err != nil {
					b.Fatal(err)
				}
				m.BlockDest("wl", netip.MustParsePrefix("192.0.2.0/24"), 0, 0, 1) // never matches
				if mode == "enforce" {
					m.SetMode("wl", ModeEnforce, false)
					src := netip.MustParseAddrPort(tx.LocalAddr().String())
					dst := netip.MustParseAddrPort(rx.LocalAddr().String())
					if err := m.BlockFlow("wl", src, dst, 17, 1); err != nil {
						b.Fatal(err)
					}
				}
			}
			var got atomic.Int64
			go func() {
				buf := make([]byte, 2048)
				for {
					if _, _, err := rx.ReadFrom(buf); err != nil {
						return
					}
					got.Add(1)
				}
			}()
			payload := make([]byte, 64)
			var before Stats
			if m != nil {
				before = m.Stats()
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			deadline := start.Add(30 * time.Second) // bound the flood whatever b.N is
			sent := 0
			for ; sent < b.N; sent++ {
				if _, err := tx.Write(payload); err != nil {
					continue // ENOBUFS under load: the packet was not sent
				}
				if sent&1023 == 0 && time.Now().After(deadline) {
					break
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			time.Sleep(50 * time.Millisecond) // let the receiver drain
			b.ReportMetric(float64(sent)/elapsed.Seconds(), "sent-pps")
			b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "recv-pps")
			if m != nil {
				st := m.Stats()
				dropped := st.DroppedFlow - before.DroppedFlow
				b.ReportMetric(float64(dropped)/elapsed.Seconds(), "xdp-drop-pps")
				if mode == "enforce" && got.Load() > 0 {
					b.Errorf("%d packets of a blocked flow reached the receiver", got.Load())
				}
				if mode == "pass" && dropped != 0 {
					b.Errorf("%d drops in flag-only mode", dropped)
				}
			}
		})
	}
}
