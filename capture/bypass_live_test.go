package capture

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// tally reads a ring until it closes and sums what it delivered: every IPv4 frame, and the TCP
// payload of port's connection per direction (bytes actually in the ring).
type tally struct {
	mu             sync.Mutex
	frames, wire   uint64 // frames and their wire lengths (a cut frame counts whole)
	copied         uint64 // bytes actually copied into the ring
	toSrv, fromSrv uint64 // captured payload bytes of the test connection
	fins           int
}

func (ty *tally) read(r *Ring, port uint16) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var f Frame
		for r.Next(&f) == nil {
			// IPv4 only: the veth's IPv6 neighbour discovery and ARP may reach one ring
			// between the two rings' openings, and are never bypassed anyway.
			if len(f.Data) < 14 || binary.BigEndian.Uint16(f.Data[12:]) != 0x0800 {
				continue
			}
			ty.mu.Lock()
			ty.frames++
			ty.wire += uint64(f.WireLen)
			ty.copied += uint64(len(f.Data))
			d := f.Data
			if len(d) >= 14+20+20 && binary.BigEndian.Uint16(d[12:]) == 0x0800 && d[14+9] == 6 {
				ip := d[14:]
				tcp := ip[int(ip[0]&15)*4:]
				pl := len(tcp) - int(tcp[12]>>4)*4
				switch {
				case binary.BigEndian.Uint16(tcp[2:]) == port:
					ty.toSrv += uint64(max(pl, 0))
					if tcp[13]&0x01 != 0 {
						ty.fins++
					}
				case binary.BigEndian.Uint16(tcp[0:]) == port:
					ty.fromSrv += uint64(max(pl, 0))
				}
			}
			ty.mu.Unlock()
		}
	}()
	return done
}

// liveBypass sets up client namespace a and server namespace b joined by a veth; in b it
// opens a ring with the bypass and a plain ring (the reference: what a capture without the
// bypass sees) and a server that reads everything and answers "ok" to each "?".
type liveBypass struct {
	a, b        Netns
	ipB         string
	ln          net.Listener
	bp          *Bypass
	ring, plain *Ring
	got, ref    tally
	gotDone     chan struct{}
	refDone     chan struct{}
}

const liveScope = 4242

func newLiveBypass(t *testing.T, depth int) *liveBypass {
	needRoot(t)
	l := &liveBypass{bp: openBypassTest(t, BypassOptions{StreamDepth: depth, MaxFlows: 4096})}
	l.a, l.b = newNS(t), newNS(t)
	_, l.ipB, _, _ = veth(t, l.a, l.b)
	in(t, l.b, func() (err error) { l.ln, err = net.Listen("tcp4", l.ipB+":0"); return })
	t.Cleanup(func() { l.ln.Close() })
	go func() {
		for {
			c, err := l.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					for _, ch := range buf[:n] {
						if ch == '?' {
							c.Write([]byte("ok"))
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	// The reference ring opens first (it must see all the other sees) and is large so
	// that it drops nothing of the bounded transfer.
	var err error
	if l.plain, err = OpenRing(l.b, RingOptions{BlockSize: 4 << 20, NumBlocks: 16}); err != nil {
		t.Fatal(err)
	}
	if l.ring, err = OpenRing(l.b, RingOptions{Bypass: l.bp, Scope: liveScope}); err != nil {
		t.Fatal(err)
	}
	if _, on := l.ring.BypassStats(); !on {
		t.Fatalf("ring opened without the bypass (failures %d)", l.bp.RingFailures())
	}
	t.Cleanup(func() { l.ring.Close(); l.plain.Close() })
	port := uint16(l.ln.Addr().(*net.TCPAddr).Port)
	l.gotDone, l.refDone = l.got.read(l.ring, port), l.ref.read(l.plain, port)
	return l
}

func (l *liveBypass) dial(t *testing.T) *net.TCPConn {
	var c net.Conn
	in(t, l.a, func() (err error) { c, err = net.Dial("tcp4", l.ln.Addr().String()); return })
	return c.(*net.TCPConn)
}

// finish waits until the reference ring stops growing, then closes both rings and checks
// that neither dropped anything (else the comparison would be meaningless).
func (l *liveBypass) finish(t *testing.T) {
	t.Helper()
	last, stable := uint64(0), 0
	for i := 0; i < 100 && stable < 5; i++ {
		time.Sleep(20 * time.Millisecond)
		l.ref.mu.Lock()
		n := l.ref.frames
		l.ref.mu.Unlock()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	for _, r := range []*Ring{l.ring, l.plain} {
		if st, _ := r.Stats(); st.Drops != 0 {
			t.Fatalf("a ring dropped %d of %d packets: the comparison needs lossless rings", st.Drops, st.Packets)
		}
	}
	l.ring.Close()
	l.plain.Close()
	<-l.gotDone
	<-l.refDone
}

func sendAll(t *testing.T, c net.Conn, n int) {
	t.Helper()
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	for n > 0 {
		k, err := c.Write(buf[:min(n, len(buf))])
		if err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

// TestBypassLiveDepth (item 7): a bulk TCP flow across a real veth is handed up exactly to its
// depth in each direction; the rest is not copied but counted in the kernel, so the ring's
// packets plus the kernel's bypassed packets equal what a capture without the bypass saw,
// byte for byte; its FIN still comes up.
func TestBypassLiveDepth(t *testing.T) {
	const depth, sent = 16 << 10, 4 << 20
	l := newLiveBypass(t, depth)
	c := l.dial(t)
	sendAll(t, c, sent)
	c.CloseWrite()
	io.Copy(io.Discard, c)
	c.Close()
	l.finish(t)

	st, _ := l.ring.BypassStats()
	ref, got := &l.ref, &l.got
	t.Logf("reference: %d frames %d bytes; bypass ring: %d frames %d bytes; kernel %+v", ref.frames, ref.wire, got.frames, got.wire, st)
	if got.frames+st.BypassedPackets != ref.frames {
		t.Errorf("ring frames %d + bypassed %d = %d, reference saw %d", got.frames, st.BypassedPackets, got.frames+st.BypassedPackets, ref.frames)
	}
	if got.wire+st.BypassedBytes != ref.wire {
		t.Errorf("ring bytes %d + bypassed %d = %d, reference saw %d", got.wire, st.BypassedBytes, got.wire+st.BypassedBytes, ref.wire)
	}
	if got.toSrv != depth {
		t.Errorf("client payload handed up: %d bytes, want exactly the depth %d (reference %d)", got.toSrv, depth, ref.toSrv)
	}
	if ref.toSrv < sent {
		t.Errorf("reference saw %d payload bytes of %d sent", ref.toSrv, sent)
	}
	if notCopied := ref.wire - got.copied; notCopied < sent-depth {
		t.Errorf("%d bytes kept out of the ring, want at least the %d payload bytes past the depth", notCopied, sent-depth)
	}
	if got.fins == 0 {
		t.Error("the client's FIN was not handed up")
	}
	if st.MapFull != 0 || st.Midstream != 0 {
		t.Errorf("counters %+v: no map_full or midstream expected", st)
	}
}

// TestBypassLiveDone: a flow user space marks done (a classified flow) stops being copied at
// once, far below its depth, and is still counted.
func TestBypassLiveDone(t *testing.T) {
	const first, rest = 1000, 1 << 20
	l := newLiveBypass(t, 1<<20)
	c := l.dial(t)
	sendAll(t, c, first-1)
	c.Write([]byte("?"))
	ok := make([]byte, 2)
	if _, err := io.ReadFull(c, ok); err != nil {
		t.Fatal(err)
	}
	// What the sensor's engine does once a verdict is reached.
	ca, sa := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
	l.bp.Done(liveScope, 6, netip.AddrPortFrom(ca.Addr().Unmap(), ca.Port()), netip.AddrPortFrom(sa.Addr().Unmap(), sa.Port()))
	sendAll(t, c, rest)
	c.CloseWrite()
	io.Copy(io.Discard, c)
	c.Close()
	l.finish(t)

	st, _ := l.ring.BypassStats()
	if l.got.toSrv != first || l.got.fromSrv != 2 {
		t.Errorf("payload handed up: %d client / %d server bytes, want %d / 2 (the bytes before Done)", l.got.toSrv, l.got.fromSrv, first)
	}
	if l.got.frames+st.BypassedPackets != l.ref.frames || l.got.wire+st.BypassedBytes != l.ref.wire {
		t.Errorf("ring %d frames/%d bytes + bypassed %d/%d ≠ reference %d/%d", l.got.frames, l.got.wire,
			st.BypassedPackets, st.BypassedBytes, l.ref.frames, l.ref.wire)
	}
	if l.got.fins == 0 {
		t.Error("the FIN of a done flow was not handed up")
	}
}

// TestBypassLiveDNSWhole: DNS is never bypassed: 200 large UDP datagrams to port 53 (far past a
// 4 KiB depth in total) all reach the ring whole, none counted as bypassed.
func TestBypassLiveDNSWhole(t *testing.T) {
	l := newLiveBypass(t, 4<<10)
	var rx net.PacketConn
	in(t, l.b, func() (err error) { rx, err = net.ListenPacket("udp4", l.ipB+":53"); return })
	defer rx.Close()
	var c net.Conn
	in(t, l.a, func() (err error) { c, err = net.Dial("udp4", l.ipB+":53"); return })
	defer c.Close()
	const n, size = 200, 1200
	msg := make([]byte, size)
	for range n {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond) // bounded pace: the reference ring must not drop
	}
	l.finish(t)
	st, _ := l.ring.BypassStats()
	if st.BypassedPackets != 0 || st.CutPackets != 0 {
		t.Errorf("DNS bypassed or cut: %+v", st)
	}
	// Both rings got every datagram whole: same frames, same bytes copied.
	if l.got.frames != l.ref.frames || l.got.copied != l.ref.copied || l.got.frames < n {
		t.Errorf("bypass ring %d frames / %d bytes, reference %d / %d (sent %d datagrams)", l.got.frames, l.got.copied, l.ref.frames, l.ref.copied, n)
	}
}
