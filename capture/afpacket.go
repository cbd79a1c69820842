package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// RingOptions configures an AF_PACKET TPACKET_V3 ring. Zero values take the defaults.
type RingOptions struct {
	Interface    string        // "" = every interface of the namespace
	FrameSize    int           // default 4096; a multiple of 16
	BlockSize    int           // default 1 MiB; a multiple of the page size and of FrameSize
	NumBlocks    int           // default 4
	Snaplen      int           // bytes kept per packet; default 65535
	BlockTimeout time.Duration // a partly filled block is handed over after this; default 20 ms
	Loopback     bool          // also capture lo (skipped by default: it is the workload talking to itself)
	// Bypass, when set, replaces the classic filter with the kernel flow bypass (see
	// Bypass); Scope is the ring's scope in its flow keys, the one the engine uses. When
	// the filter cannot be attached the ring captures without it (Ring.BypassStats says
	// so) and Bypass.RingFailures counts it.
	Bypass *Bypass
	Scope  uint64
}

// RingStats are the kernel's counters for a ring, summed since it was opened.
type RingStats struct {
	Packets uint64 // packets the kernel offered the ring after the filter, dropped ones included
	Drops   uint64 // packets lost because the ring was full
	Freezes uint64 // times the ring filled up and the kernel froze the queue
}

// ErrRingClosed is returned by Next once the ring is closed.
var ErrRingClosed = errors.New("capture ring closed")

// Ring is a TPACKET_V3 ring on an AF_PACKET socket created inside one network namespace.
// Next must be called from one goroutine at a time; Close and Stats may be called from any.
type Ring struct {
	fd, wake int // packet socket; eventfd that wakes a Next blocked in poll on Close
	ring     []byte
	blockSz  int
	nBlocks  int
	buf      []byte // frame bytes are copied here so a frame stays valid after Close
	loopback bool

	mu     sync.Mutex // held by Next while it touches the mapping; Close unmaps under it
	closed atomic.Bool
	block  int // current block
	inBlk  bool
	pkts   uint32 // packets left in the current block
	off    int    // offset of the next packet in the current block

	statsMu sync.Mutex
	stats   RingStats
	bp      *Bypass // nil when the ring runs the classic filter
	bpSlot  uint32
	bpFinal BypassStats // the slot's counters when the ring closed
	skipped uint64      // frames dropped here: loopback, or not an IP packet on a non-Ethernet link
}

func (o *RingOptions) defaults() error {
	if o.FrameSize == 0 {
		o.FrameSize = 4096
	}
	if o.BlockSize == 0 {
		o.BlockSize = 1 << 20
	}
	if o.NumBlocks == 0 {
		o.NumBlocks = 4
	}
	if o.Snaplen == 0 {
		o.Snaplen = 65535
	}
	if o.BlockTimeout == 0 {
		o.BlockTimeout = 20 * time.Millisecond
	}
	switch {
	case o.FrameSize < 64 || o.FrameSize%16 != 0:
		return fmt.Errorf("ring frame size %d: must be a multiple of 16, at least 64", o.FrameSize)
	case o.BlockSize%os.Getpagesize() != 0 || o.BlockSize%o.FrameSize != 0:
		return fmt.Errorf("ring block size %d: must be a multiple of the page size (%d) and of the frame size (%d)", o.BlockSize, os.Getpagesize(), o.FrameSize)
	case o.NumBlocks < 1:
		return fmt.Errorf("ring blocks %d: need at least 1", o.NumBlocks)
	case o.Snaplen < 64 || o.Snaplen > 1<<18:
		return fmt.Errorf("snaplen %d: must be 64..262144", o.Snaplen)
	case o.BlockTimeout < time.Millisecond:
		return fmt.Errorf("ring block timeout %v: at least 1ms", o.BlockTimeout)
	}
	return nil
}

// OpenRing opens a ring inside ns. A zero Netns (empty Path) means this process's own
// namespace, for capturing on named host interfaces. ErrNetnsGone when ns no longer exists.
func OpenRing(ns Netns, opts RingOptions) (*Ring, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if ns.Path == "" {
		return openRing(opts)
	}
	nsfd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("%s: %w", ns.Path, ErrNetnsGone)
		}
		return nil, fmt.Errorf("open netns %s: %w", ns.Path, err)
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return nil, fmt.Errorf("stat netns %s: %w", ns.Path, err)
	}
	// A PID or a name can be reused by another namespace: never capture the wrong one.
	if ns.Inode != 0 && (st.Ino != ns.Inode || (ns.Dev != 0 && uint64(st.Dev) != ns.Dev)) {
		return nil, fmt.Errorf("%s now opens netns %d, not %d: %w", ns.Path, st.Ino, ns.Inode, ErrNetnsGone)
	}
	var r *Ring
	err = inNetns(nsfd, func() error {
		var err error
		r, err = openRing(opts)
		return err
	})
	return r, err
}

// inNetns runs fn on a fresh locked OS thread switched into the namespace nsfd. If the thread
// cannot be switched back it stays locked, so the runtime ends it with the goroutine and no
// other goroutine ever runs in the foreign namespace.
func inNetns(nsfd int, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("entering a network namespace needs CAP_SYS_ADMIN (run as root or grant cap_net_raw,cap_sys_admin): %w", err)
			} else {
				err = fmt.Errorf("setns: %w", err)
			}
			done <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			done <- errors.Join(ferr, fmt.Errorf("switching back to the original netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

const (
	skfAdOff              = -0x1000
	skfAdHatype           = 28
	arphrdLoop            = 772
	tpStatusVLANValid     = 0x10
	tpStatusVLANTPIDValid = 0x20
)

// openRing opens the socket and ring in the calling thread's namespace.
func openRing(opts RingOptions) (*Ring, error) {
	// Protocol 0: the socket receives nothing until bind, so no packet gets past the filter
	// before it is attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("AF_PACKET needs CAP_NET_RAW (run as root or grant cap_net_raw,cap_sys_admin): %w", err)
		}
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	r := &Ring{fd: fd, wake: -1, blockSz: opts.BlockSize, nBlocks: opts.NumBlocks, buf: make([]byte, opts.Snaplen), loopback: opts.Loopback}
	fail := func(what string, err error) (*Ring, error) {
		r.release()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ifindex := 0
	if opts.Interface != "" {
		ifi, err := net.InterfaceByName(opts.Interface) // netlink, so in this thread's netns
		if err != nil {
			return fail("interface "+opts.Interface, err)
		}
		ifindex = ifi.Index
	}
	if opts.Bypass != nil {
		slot, err := opts.Bypass.attach(fd, opts.Scope, opts.Loopback)
		if err == nil {
			r.bp, r.bpSlot = opts.Bypass, slot
		} else {
			opts.Bypass.fails.Add(1)
		}
	}
	// Classic BPF: drop loopback by hardware type (lo has no fixed name guarantee but always
	// ARPHRD_LOOPBACK), and truncate in the kernel to the snaplen so the ring holds more.
	prog := []unix.SockFilter{
		{Code: 0x20, K: 0xfffff000 + skfAdHatype}, // ld hatype
		{Code: 0x15, Jt: 0, Jf: 1, K: arphrdLoop}, // jeq #loopback
		{Code: 0x06, K: 0},                        // ret #0
		{Code: 0x06, K: uint32(opts.Snaplen)},     // ret #snaplen
	}
	if opts.Loopback {
		prog = prog[3:]
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if r.bp == nil {
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
			return fail("attach filter", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("TPACKET_V3", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(opts.BlockSize),
		Block_nr:       uint32(opts.NumBlocks),
		Frame_size:     uint32(opts.FrameSize),
		Frame_nr:       uint32(opts.BlockSize / opts.FrameSize * opts.NumBlocks),
		Retire_blk_tov: uint32(opts.BlockTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail("PACKET_RX_RING", err)
	}
	r.ring, err = unix.Mmap(fd, 0, opts.BlockSize*opts.NumBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED)
	if err != nil {
		// MAP_LOCKED can fail under a low RLIMIT_MEMLOCK; an unlocked ring still works.
		r.ring, err = unix.Mmap(fd, 0, opts.BlockSize*opts.NumBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fail("mmap ring", err)
		}
	}
	if r.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fail("eventfd", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	return r, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// release frees the kernel resources; callers hold r.mu or own r exclusively.
func (r *Ring) release() {
	r.statsMu.Lock()
	if r.fd >= 0 {
		r.readStatsLocked() // keep the final counters: the socket is about to go
		if r.bp != nil {
			if st, err := r.bp.slotStats(r.bpSlot); err == nil {
				r.bpFinal = st
			}
			r.bp.putSlot(r.bpSlot)
		}
		if r.ring != nil {
			unix.Munmap(r.ring)
			r.ring = nil
		}
		unix.Close(r.fd)
		r.fd = -1
	}
	if r.wake >= 0 {
		unix.Close(r.wake)
		r.wake = -1
	}
	r.statsMu.Unlock()
}

// Close wakes a blocked Next (which returns ErrRingClosed), then closes the socket, which
// releases the namespace it holds. Safe to call more than once and from any goroutine.
func (r *Ring) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.statsMu.Lock()
	if r.wake >= 0 {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(r.wake, one[:])
	}
	r.statsMu.Unlock()
	r.mu.Lock()
	r.release()
	r.mu.Unlock()
	return nil
}

// Stats returns the kernel's counters summed since the ring was opened (the kernel resets
// them on every read). After Close it returns the final counters.
func (r *Ring) Stats() (RingStats, error) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	var err error
	if r.fd >= 0 {
		err = r.readStatsLocked()
	}
	return r.stats, err
}

func (r *Ring) readStatsLocked() error {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return fmt.Errorf("PACKET_STATISTICS: %w", err)
	}
	r.stats.Packets += uint64(st.Packets)
	r.stats.Drops += uint64(st.Drops)
	r.stats.Freezes += uint64(st.Freeze_q_cnt)
	return nil
}

// BypassStats returns the kernel filter's counters for this ring, and false when the ring
// runs without the bypass. After Close it returns the final counters.
func (r *Ring) BypassStats() (BypassStats, bool) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if r.bp == nil {
		return BypassStats{}, false
	}
	if r.fd >= 0 {
		if st, err := r.bp.slotStats(r.bpSlot); err == nil {
			return st, true
		}
	}
	return r.bpFinal, true
}

// AttachBypass replaces the classic filter of an open ring by the kernel bypass (b, with
// scope as in RingOptions.Scope), atomically: no packet goes unfiltered. The sensor opens the
// namespaces it finds at start without it and attaches it once ready, so loading one program
// per namespace (milliseconds each) does not delay readiness. A ring that already has it is
// left alone; a failure is counted in b.RingFailures and the ring keeps the classic filter.
func (r *Ring) AttachBypass(b *Bypass, scope uint64) error {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if r.fd < 0 {
		return ErrRingClosed
	}
	if r.bp != nil {
		return nil
	}
	slot, err := b.attach(r.fd, scope, r.loopback)
	if err != nil {
		b.fails.Add(1)
		return err
	}
	r.bp, r.bpSlot = b, slot
	return nil
}

// SetBypassDepth lowers how many payload bytes of each TCP direction the kernel filter copies
// into this ring, for bytes not yet seen (0: back to BypassOptions.StreamDepth): under
// pressure, bulk flows' first bytes then leave room for new flows' first bytes, SYNs and DNS.
// A direction that passed the lower depth stays past it. No-op without the bypass.
func (r *Ring) SetBypassDepth(n int) error {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if r.bp == nil || r.fd < 0 {
		return nil
	}
	if err := r.bp.depths.Update(r.bpSlot, uint32(max(n, 0)), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("setting the bypass depth: %w", err)
	}
	return nil
}

// Skipped counts frames Next passed over: loopback frames that beat the filter, and
// non-IP frames on links without an Ethernet header.
func (r *Ring) Skipped() uint64 { return atomic.LoadUint64(&r.skipped) }

// Block descriptor (tpacket_block_desc + tpacket_hdr_v1) and packet header (tpacket3_hdr,
// then sockaddr_ll at TPACKET_ALIGN(sizeof(tpacket3_hdr)) = 48) offsets.
const (
	bdStatus   = 8
	bdNumPkts  = 12
	bdFirstPkt = 16
	bdLen      = 20

	phNext    = 0
	phSec     = 4
	phNsec    = 8
	phSnaplen = 12
	phLen     = 16
	phStatus  = 20
	phMac     = 24
	phNet     = 26
	phVLANTCI = 32
	phVLANTP  = 36
	phSll     = 48
	sllProto  = phSll + 2
	sllIfidx  = phSll + 4
	sllHatype = phSll + 8
	phMin     = phSll + 20
)

// Next fills f with the next packet, blocking until one arrives or the ring is closed. f.Data
// is a buffer of the ring, valid until the next call to Next. Frames are Ethernet (LinkType 1)
// or, on links without an Ethernet header (tun, WireGuard, IPIP), raw IP (LinkType 101);
// f.Interface is the ifindex inside the namespace. Allocation-free.
func (r *Ring) Next(f *Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.closed.Load() || r.fd < 0 {
			return ErrRingClosed
		}
		base := r.block * r.blockSz
		blk := r.ring[base : base+r.blockSz]
		if r.inBlk {
			if r.pkts > 0 {
				r.pkts--
				ok := r.frame(blk, f)
				next := int(binary.NativeEndian.Uint32(blk[r.off+phNext:]))
				if next == 0 || r.off+next+phMin > len(blk) {
					r.pkts = 0
				}
				r.off += next
				if r.pkts == 0 {
					r.releaseBlock(blk)
				}
				if ok {
					return nil
				}
				continue
			}
			r.releaseBlock(blk)
			continue
		}
		status := atomic.LoadUint32((*uint32)(unsafe.Pointer(&blk[bdStatus])))
		if status&unix.TP_STATUS_USER != 0 {
			r.inBlk = true
			r.pkts = binary.NativeEndian.Uint32(blk[bdNumPkts:])
			r.off = int(binary.NativeEndian.Uint32(blk[bdFirstPkt:]))
			if r.off+phMin > len(blk) {
				r.pkts = 0
			}
			continue
		}
		pfd := [2]unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}, {Fd: int32(r.wake), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd[:], -1); err != nil && err != unix.EINTR {
			return fmt.Errorf("poll ring: %w", err)
		}
		if pfd[1].Revents != 0 {
			return ErrRingClosed
		}
		if pfd[0].Revents&unix.POLLERR != 0 {
			// A socket bound to one interface hears ENETDOWN when it goes away.
			serr, _ := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if serr != 0 {
				return fmt.Errorf("ring socket: %w", unix.Errno(serr))
			}
		}
	}
}

func (r *Ring) releaseBlock(blk []byte) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&blk[bdStatus])), unix.TP_STATUS_KERNEL)
	r.inBlk = false
	r.pkts = 0
	r.block++
	if r.block == r.nBlocks {
		r.block = 0
	}
}

// frame decodes the packet at r.off into f; false means skip it.
func (r *Ring) frame(blk []byte, f *Frame) bool {
	h := blk[r.off:]
	ne := binary.NativeEndian
	snap := int(ne.Uint32(h[phSnaplen:]))
	wire := int(ne.Uint32(h[phLen:]))
	mac, nh := int(ne.Uint16(h[phMac:])), int(ne.Uint16(h[phNet:]))
	hatype := ne.Uint16(h[sllHatype:])
	if hatype == arphrdLoop && !r.loopback {
		atomic.AddUint64(&r.skipped, 1)
		return false
	}
	if mac+snap > len(h) || nh < mac || nh-mac > snap {
		atomic.AddUint64(&r.skipped, 1)
		return false
	}
	data := h[mac : mac+snap]
	f.LinkType = uint16(1)
	vlan := false
	if hatype != unix.ARPHRD_ETHER && hatype != arphrdLoop {
		// SOCK_RAW on a link without an Ethernet header: the data starts at the IP header.
		proto := binary.BigEndian.Uint16(h[sllProto:])
		if proto != unix.ETH_P_IP && proto != unix.ETH_P_IPV6 {
			atomic.AddUint64(&r.skipped, 1)
			return false
		}
		data = data[nh-mac:]
		wire -= nh - mac
		f.LinkType = 101
	} else if ne.Uint32(h[phStatus:])&tpStatusVLANValid != 0 && len(data) >= 12 {
		vlan = true // the kernel took the tag out of the frame; put it back for the decoder
	}
	n := 0
	if vlan {
		tpid := uint16(0x8100)
		if ne.Uint32(h[phStatus:])&tpStatusVLANTPIDValid != 0 {
			tpid = ne.Uint16(h[phVLANTP:])
		}
		n = copy(r.buf, data[:12])
		if len(r.buf) >= 16 {
			binary.BigEndian.PutUint16(r.buf[12:], tpid)
			binary.BigEndian.PutUint16(r.buf[14:], uint16(ne.Uint32(h[phVLANTCI:])))
			n = 16 + copy(r.buf[16:], data[12:])
		}
		wire += 4
	} else {
		n = copy(r.buf, data)
	}
	f.Data = r.buf[:n]
	f.WireLen = wire
	f.Interface = int(int32(ne.Uint32(h[sllIfidx:])))
	f.Timestamp = time.Unix(int64(ne.Uint32(h[phSec:])), int64(ne.Uint32(h[phNsec:])))
	return true
}
