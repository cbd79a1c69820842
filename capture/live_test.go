package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	netnstest.RequireRoot(t) // creates network namespaces and AF_PACKET sockets
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newNS creates a named namespace with lo up, deleted when the test ends.
func newNS(t *testing.T) Netns {
	t.Helper()
	name := fmt.Sprintf("mg-%08x", rand.Uint32())
	run(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "-n", name, "link", "set", "lo", "up")
	p := "/var/run/netns/" + name
	k, err := statNs(p)
	if err != nil {
		t.Fatal(err)
	}
	return Netns{Inode: k.ino, Dev: k.dev, Path: p, Name: name}
}

// veth joins a and b with a veth pair addressed 10.199.X.1 (in a) and 10.199.X.2 (in b).
func veth(t *testing.T, a, b Netns) (ipA, ipB, ifA, ifB string) {
	t.Helper()
	x := 1 + rand.IntN(250)
	ifA, ifB = fmt.Sprintf("mga%06x", rand.Uint32()&0xffffff), fmt.Sprintf("mgb%06x", rand.Uint32()&0xffffff)
	run(t, "link", "add", ifA, "netns", a.Name, "type", "veth", "peer", "name", ifB, "netns", b.Name)
	ipA, ipB = fmt.Sprintf("10.199.%d.1", x), fmt.Sprintf("10.199.%d.2", x)
	run(t, "-n", a.Name, "addr", "add", ipA+"/24", "dev", ifA)
	run(t, "-n", b.Name, "addr", "add", ipB+"/24", "dev", ifB)
	run(t, "-n", a.Name, "link", "set", ifA, "up")
	run(t, "-n", b.Name, "link", "set", ifB, "up")
	return
}

// in runs fn with its sockets created inside ns (sockets keep their namespace afterwards).
func in(t *testing.T, ns Netns, fn func() error) {
	t.Helper()
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := inNetns(fd, fn); err != nil {
		t.Fatal(err)
	}
}

type seen struct {
	mu                 sync.Mutex
	syn, payload, loop bool
	synIf, frames      int
	linkTypeOK         bool
}

// collect reads the ring until it is closed, recording what the test looks for.
func collect(r *Ring, ipA, ipB net.IP, port uint16, payload, loop []byte, s *seen) chan error {
	done := make(chan error, 1)
	go func() {
		var f Frame
		for {
			err := r.Next(&f)
			if err != nil {
				done <- err
				return
			}
			s.mu.Lock()
			s.frames++
			d := f.Data
			if bytes.Contains(d, loop) {
				s.loop = true
			}
			if bytes.Contains(d, payload) {
				s.payload = true
				s.linkTypeOK = f.LinkType == 1
			}
			if len(d) >= 14+20+20 && binary.BigEndian.Uint16(d[12:]) == 0x0800 && d[14+9] == 6 {
				ip := d[14:]
				tcp := ip[int(ip[0]&15)*4:]
				if net.IP(ip[12:16]).Equal(ipA) && net.IP(ip[16:20]).Equal(ipB) &&
					binary.BigEndian.Uint16(tcp[2:]) == port && tcp[13] == 0x02 {
					s.syn, s.synIf = true, f.Interface
				}
			}
			s.mu.Unlock()
		}
	}()
	return done
}

func TestRingSeesVethTrafficNotLoopback(t *testing.T) {
	needRoot(t)
	a, b := newNS(t), newNS(t)
	ipA, ipB, ifA, _ := veth(t, a, b)

	var ln, lo net.Listener
	in(t, b, func() (err error) { ln, err = net.Listen("tcp4", ipB+":0"); return })
	in(t, a, func() (err error) { lo, err = net.Listen("tcp4", "127.0.0.1:0"); return })
	defer ln.Close()
	defer lo.Close()
	for _, l := range []net.Listener{ln, lo} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(io.Discard, c); c.Close() }()
			}
		}()
	}
	var ifiA int
	in(t, a, func() error {
		ifi, err := net.InterfaceByName(ifA)
		if err == nil {
			ifiA = ifi.Index
		}
		return err
	})

	r, err := OpenRing(a, RingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	payload := []byte(fmt.Sprintf("MG-PAYLOAD-%x", rand.Uint64()))
	loopMark := []byte(fmt.Sprintf("MG-LOOP-%x", rand.Uint64()))
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var s seen
	done := collect(r, net.ParseIP(ipA).To4(), net.ParseIP(ipB).To4(), port, payload, loopMark, &s)

	// Loopback first: had it been captured it would sit in the ring before the veth traffic.
	var lc, c net.Conn
	in(t, a, func() (err error) { lc, err = net.Dial("tcp4", lo.Addr().String()); return })
	if _, err := lc.Write(loopMark); err != nil {
		t.Fatal(err)
	}
	lc.Close()
	in(t, a, func() (err error) { c, err = net.Dial("tcp4", ln.Addr().String()); return })
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.Close()

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		ok := s.syn && s.payload
		s.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrRingClosed) {
			t.Fatalf("Next after Close: %v, want ErrRingClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake Next")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.syn || !s.payload {
		t.Fatalf("ring missed traffic: syn=%v payload=%v after %d frames", s.syn, s.payload, s.frames)
	}
	if s.synIf != ifiA {
		t.Errorf("SYN on ifindex %d, want %d (%s)", s.synIf, ifiA, ifA)
	}
	if !s.linkTypeOK {
		t.Error("payload frame not LinkType 1 (Ethernet)")
	}
	if s.loop {
		t.Error("loopback traffic inside the netns was captured")
	}
	if st.Packets < uint64(s.frames) || st.Drops != 0 {
		t.Errorf("stats %+v after %d frames", st, s.frames)
	}
	if st2, _ := r.Stats(); st2.Packets < st.Packets {
		t.Errorf("stats after Close %+v went backwards from %+v", st2, st)
	}
}

func nsHeldByProc(ino uint64) []string {
	var holders []string
	matches, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, p := range append(append(matches, tasks...), fds...) {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Ino == ino {
			var fs unix.Statfs_t
			if unix.Statfs(p, &fs) == nil && fs.Type == nsfsMagic {
				holders = append(holders, p)
			}
		}
	}
	return holders
}

func linkExists(ns Netns, ifname string) bool {
	return exec.Command("ip", "-n", ns.Name, "link", "show", ifname).Run() == nil
}

// An open ring keeps its namespace alive after `ip netns del`; Close lets the kernel destroy
// it, which shows as the veth peer in the other namespace disappearing.
func TestRingCloseReleasesNetns(t *testing.T) {
	needRoot(t)
	a, b := newNS(t), newNS(t)
	_, _, _, ifB := veth(t, a, b)
	r, err := OpenRing(a, RingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	run(t, "netns", "del", a.Name)
	time.Sleep(time.Second)
	if !linkExists(b, ifB) {
		t.Fatal("netns destroyed while a ring was open on it: the ring does not hold it")
	}
	r.Close()
	deadline := time.Now().Add(10 * time.Second)
	for linkExists(b, ifB) {
		if time.Now().After(deadline) {
			t.Fatalf("netns %d still alive 10 s after Close; held by %v", a.Inode, nsHeldByProc(a.Inode))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := nsHeldByProc(a.Inode); len(h) > 0 {
		t.Fatalf("netns inode %d still referenced by %v", a.Inode, h)
	}
}

func TestNamespacesDiscovery(t *testing.T) {
	needRoot(t)
	a := newNS(t)
	cmd := exec.Command("ip", "netns", "exec", a.Name, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	host, err := hostNetns("/proc")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := Namespaces(DiscoverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []Netns
		for _, n := range list {
			if n.Inode == a.Inode {
				got = append(got, n)
			}
			if n.Inode == host.ino {
				t.Fatal("host netns listed without IncludeHost")
			}
		}
		if len(got) != 1 {
			t.Fatalf("netns %d listed %d times: %+v", a.Inode, len(got), got)
		}
		n := got[0]
		if n.Name != a.Name || n.Path != a.Path {
			t.Fatalf("got %+v, want name %s path %s", n, a.Name, a.Path)
		}
		if n.PID != 0 {
			// The process in it is ip (before exec) or sleep: either way it is in a.
			k, err := statNs(fmt.Sprintf("/proc/%d/ns/net", n.PID))
			if err == nil && k.ino != a.Inode {
				t.Fatalf("PID %d is in netns %d, not %d", n.PID, k.ino, a.Inode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no PID found for a netns with a process in it")
		}
		time.Sleep(50 * time.Millisecond)
	}
	list, err := Namespaces(DiscoverOptions{IncludeHost: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range list {
		found = found || n.Inode == host.ino
	}
	if !found {
		t.Fatal("IncludeHost did not list the host netns")
	}
}

// Needs no root: a netns directory entry that is not an nsfs mount is not a namespace, and a
// proc root without processes yields nothing.
func TestNamespacesSkipsNonNsfs(t *testing.T) {
	proc, dir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stale"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(proc, "42", "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := Namespaces(DiscoverOptions{ProcRoot: proc, NetnsDirs: []string{dir, filepath.Join(dir, "missing")}})
	if err != nil || len(list) != 0 {
		t.Fatalf("got %v, %v; want nothing", list, err)
	}
	if _, err := Namespaces(DiscoverOptions{ProcRoot: filepath.Join(proc, "missing")}); err == nil {
		t.Fatal("a missing proc root is not an error")
	}
}

// Needs no root: a path that no longer exists, or now opens another namespace.
func TestOpenRingNetnsGone(t *testing.T) {
	_, err := OpenRing(Netns{Path: "/var/run/netns/mg-does-not-exist", Inode: 1}, RingOptions{})
	if !errors.Is(err, ErrNetnsGone) {
		t.Fatalf("missing path: %v, want ErrNetnsGone", err)
	}
	own, err := statNs("/proc/self/ns/net")
	if err != nil {
		t.Skip(err)
	}
	_, err = OpenRing(Netns{Path: "/proc/self/ns/net", Inode: own.ino + 1}, RingOptions{})
	if !errors.Is(err, ErrNetnsGone) {
		t.Fatalf("reused path: %v, want ErrNetnsGone", err)
	}
}

func TestRingOptionsRejected(t *testing.T) {
	for _, o := range []RingOptions{{BlockSize: 1000}, {FrameSize: 24}, {NumBlocks: -1}, {Snaplen: 10}, {FrameSize: 4096, BlockSize: 6144}} {
		if _, err := OpenRing(Netns{}, o); err == nil || strings.Contains(err.Error(), "AF_PACKET") {
			t.Errorf("%+v: %v, want an options error", o, err)
		}
	}
}

// N2: after rings are opened in foreign namespaces, every thread of this process is back in
// its own namespace (or gone).
func TestThreadsStayInOwnNetns(t *testing.T) {
	needRoot(t)
	own, err := statNs("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var nss []Netns
	for range 4 {
		nss = append(nss, newNS(t))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*5)
	for range 5 {
		for _, ns := range nss {
			wg.Go(func() {
				r, err := OpenRing(ns, RingOptions{NumBlocks: 1, BlockSize: 64 << 10})
				if err != nil {
					errs <- err
					return
				}
				r.Close()
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	if len(tasks) == 0 {
		t.Fatal("no threads listed")
	}
	for _, p := range tasks {
		k, err := statNs(p)
		if err != nil {
			continue // the thread exited
		}
		if k != own {
			t.Errorf("%s in netns %d, want %d", p, k.ino, own.ino)
		}
	}
}

// N1: a namespace created while the Watcher runs is reported within 2 s, its removal too, and
// the ring opened on it closes; the Watcher leaves no goroutine behind.
func TestWatcherAddedRemoved(t *testing.T) {
	needRoot(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan NetnsEvent, 1024)
	stopped := make(chan error, 1)
	w := NewWatcher(WatchOptions{})
	go func() {
		stopped <- w.Run(ctx, func(e NetnsEvent) {
			select {
			case events <- e:
			default:
			}
		})
	}()
	time.Sleep(300 * time.Millisecond) // the first scan (reports what already exists)
	// Events are matched by inode and name: other tests create and delete namespaces at the
	// same time, and the kernel gives a deleted namespace's inode to the next one at once.
	wait := func(kind NetnsEventKind, ino uint64, name string) (NetnsEvent, time.Duration) {
		t.Helper()
		start := time.Now()
		timeout := time.After(2 * time.Second)
		for {
			select {
			case e := <-events:
				if e.Kind == kind && e.Netns.Inode == ino && e.Netns.Name == name {
					return e, time.Since(start)
				}
			case <-timeout:
				t.Fatalf("no %v event for netns %d within 2 s", kind, ino)
			}
		}
	}
	a := newNS(t)
	e, took := wait(NetnsAdded, a.Inode, a.Name)
	if e.Netns.Name != a.Name || e.Netns.Path != a.Path {
		t.Fatalf("added %+v, want %s", e.Netns, a.Name)
	}
	t.Logf("added after %v", took)
	r, err := OpenRing(e.Netns, RingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "netns", "del", a.Name)
	_, took = wait(NetnsRemoved, a.Inode, a.Name)
	t.Logf("removed after %v", took)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after, %d before", n, before)
	}
}

// Without CAP_NET_RAW the error says what to grant. Capabilities are per thread: the test
// drops it on a locked thread that is never unlocked, so the thread dies with the goroutine.
func TestOpenRingWithoutCapNetRaw(t *testing.T) {
	needRoot(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread loses a capability
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		r, err := OpenRing(Netns{}, RingOptions{})
		if err == nil {
			r.Close()
			err = errors.New("opened without CAP_NET_RAW")
		} else if !strings.Contains(err.Error(), "CAP_NET_RAW") {
			err = fmt.Errorf("error does not say what to grant: %w", err)
		} else {
			err = nil
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// flood sends UDP datagrams from a to b until stop is closed.
func flood(t testing.TB, a Netns, ipB string, stop chan struct{}) *sync.WaitGroup {
	var c net.Conn
	fd, err := unix.Open(a.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = inNetns(fd, func() (err error) { c, err = net.Dial("udp4", ipB+":9"); return })
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer c.Close()
		msg := make([]byte, 200)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.Write(msg) // ICMP unreachable may fail a write: keep sending
		}
	})
	return &wg
}

func TestRingNextAllocationFree(t *testing.T) {
	needRoot(t)
	a, b := newNS(t), newNS(t)
	_, ipB, _, _ := veth(t, a, b)
	r, err := OpenRing(a, RingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stop := make(chan struct{})
	wg := flood(t, a, ipB, stop)
	defer func() { close(stop); wg.Wait() }()
	var f Frame
	if err := r.Next(&f); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if err := r.Next(&f); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Next allocates %v times per frame", n)
	}
}

// BenchmarkRingNext reads UDP frames flooded across a veth; drops/op says whether the reader
// kept up (the sender is one goroutine, so this is the reader's cost, not the kernel's limit).
func BenchmarkRingNext(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	na, nb := newNSB(b), newNSB(b)
	x := 1 + rand.IntN(250)
	ifA, ifB := fmt.Sprintf("mga%06x", rand.Uint32()&0xffffff), fmt.Sprintf("mgb%06x", rand.Uint32()&0xffffff)
	ipB := fmt.Sprintf("10.199.%d.2", x)
	for _, args := range [][]string{
		{"link", "add", ifA, "netns", na.Name, "type", "veth", "peer", "name", ifB, "netns", nb.Name},
		{"-n", na.Name, "addr", "add", fmt.Sprintf("10.199.%d.1/24", x), "dev", ifA},
		{"-n", nb.Name, "addr", "add", ipB + "/24", "dev", ifB},
		{"-n", na.Name, "link", "set", ifA, "up"}, {"-n", nb.Name, "link", "set", ifB, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			b.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	r, err := OpenRing(na, RingOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	stop := make(chan struct{})
	wg := flood(b, na, ipB, stop)
	var f Frame
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := r.Next(&f); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	st, _ := r.Stats()
	b.ReportMetric(float64(st.Drops)/float64(max(st.Packets, 1))*100, "%drops")
}

func newNSB(b *testing.B) Netns {
	name := fmt.Sprintf("mg-%08x", rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	p := "/var/run/netns/" + name
	k, err := statNs(p)
	if err != nil {
		b.Fatal(err)
	}
	return Netns{Inode: k.ino, Dev: k.dev, Path: p, Name: name}
}

func TestAddresses(t *testing.T) {
	netnstest.RequireRoot(t)
	a := netnstest.New(t, "addr")
	b := netnstest.New(t, "addr")
	ipA, _ := netnstest.Veth(t, a, b, 61)
	got, err := Addresses(Netns{Path: "/var/run/netns/" + a})
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddr(ipA)
	found := false
	for _, g := range got {
		if g == want {
			found = true
		}
		if g == netip.MustParseAddr("10.199.61.2") {
			t.Errorf("peer's address listed in %s: %v", a, got)
		}
	}
	if !found {
		t.Errorf("Addresses(%s) = %v, want %v among them", a, got, want)
	}
}
