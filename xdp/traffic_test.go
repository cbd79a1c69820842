package xdp

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
)

// sink accepts connections and counts the bytes each one delivers.
type sink struct {
	ln    net.Listener
	conns chan *atomic.Int64
}

func listen(t *testing.T, ns, addr string) *sink {
	t.Helper()
	s := &sink{conns: make(chan *atomic.Int64, 8)}
	if err := netnstest.Do(t, ns, func() (err error) {
		s.ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			n := new(atomic.Int64)
			s.conns <- n
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					k, err := c.Read(buf)
					n.Add(int64(k))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

// stream dials from netns ns and writes small chunks until the test ends; it returns the
// client's local address and the server-side byte counter.
func stream(t *testing.T, ns string, s *sink) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	var c net.Conn
	if err := netnstest.Do(t, ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", s.ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); c.Close() })
	go func() {
		chunk := make([]byte, 512)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Write(chunk); err != nil && !isTimeout(err) {
				return
			}
		}
	}()
	var n *atomic.Int64
	select {
	case n = <-s.conns:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not accept")
	}
	return netip.MustParseAddrPort(c.LocalAddr().String()), n
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// growing reports, per counter, whether it grew over d.
func growing(d time.Duration, cs ...*atomic.Int64) []bool {
	before := make([]int64, len(cs))
	for i, c := range cs {
		before[i] = c.Load()
	}
	time.Sleep(d)
	out := make([]bool, len(cs))
	for i, c := range cs {
		out[i] = c.Load() > before[i]
	}
	return out
}

// TestTraffic: real TCP across a veth, seen on the host side (the client's egress).
func TestTraffic(t *testing.T) {
	netnstest.RequireRoot(t)
	wl, host, _, ipH := pair(t, 64)
	m := openTest(t, Options{HostNetns: nsPath(host)})
	if _, err := m.Attach("wl", nsPath(wl), 0); err != nil {
		t.Fatal(err)
	}
	sA := listen(t, host, ipH+":0")
	sB := listen(t, host, ipH+":0")
	srvA := netip.MustParseAddrPort(sA.ln.Addr().String())
	srvB := netip.MustParseAddrPort(sB.ln.Addr().String())
	c1, n1 := stream(t, wl, sA)
	_, n2 := stream(t, wl, sA)
	_, n3 := stream(t, wl, sB)
	if g := growing(200*time.Millisecond, n1, n2, n3); !g[0] || !g[1] || !g[2] {
		t.Fatalf("streams not flowing before any block: %v", g)
	}

	// Flag-only: blocks match, are counted, nothing is dropped.
	before := m.Stats()
	if err := m.BlockFlow("wl", c1, srvA, 6, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockDest("wl", netip.PrefixFrom(srvB.Addr(), 24).Masked(), srvB.Port(), 6, 2); err != nil {
		t.Fatal(err)
	}
	if g := growing(300*time.Millisecond, n1, n2, n3); !g[0] || !g[1] || !g[2] {
		t.Fatalf("flag-only stopped a stream: %v", g)
	}
	st := m.Stats()
	if st.FlaggedFlow == before.FlaggedFlow || st.FlaggedDest == before.FlaggedDest ||
		st.DroppedFlow != 0 || st.DroppedDest != 0 {
		t.Fatalf("flag-only stats %+v (before %+v): want flagged counts up, no drops", st, before)
	}

	// Enforce: the blocked flow and destination stall, the other connection carries on.
	if err := m.SetMode("wl", ModeEnforce, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		fb, _ := m.FlowBlock("wl", c1, srvA, 6)
		db, _ := m.DestBlock("wl", netip.PrefixFrom(srvB.Addr(), 24).Masked(), srvB.Port(), 6)
		if fb.Drops > 0 && db.Drops > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no drops within 3s: flow %+v dest %+v", fb, db)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let what was in flight before the first drop arrive
	if g := growing(500*time.Millisecond, n1, n2, n3); g[0] || !g[1] || g[2] {
		t.Fatalf("enforce: growing %v, want [false true false] (flow blocked, other flow open, dest blocked)", g)
	}
	st = m.Stats()
	if st.DroppedFlow == 0 || st.DroppedDest == 0 {
		t.Errorf("enforce stats %+v: want flow and dest drops", st)
	}
	fb, _ := m.FlowBlock("wl", c1, srvA, 6)
	if d, ok := fb.FirstDropAfter(); ok {
		t.Logf("block installed (flag-only) to first drop: %v", d)
	}
}
