package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/minerguard/minerguard/internal/caps"
)

// ErrBypassUnsupported is wrapped by OpenBypass's error when the kernel filter cannot be
// loaded on this host (no CAP_BPF, an old kernel, a seccomp profile denying bpf(2)); the
// message names what failed. Capture then runs as before: every packet is copied up.
var ErrBypassUnsupported = errors.New("kernel capture bypass unsupported")

// BypassOptions configure the kernel flow bypass. Zero values take the defaults.
type BypassOptions struct {
	// MaxFlows bounds the kernel flow map (an LRU: the least recently used flow is
	// forgotten, and its next packets are handed up again as a new flow would be). Default
	// 65,536 entries (about 6 MiB of kernel memory).
	MaxFlows int
	// StreamDepth is how many payload bytes of each TCP direction are handed up (the
	// engine's flow.stream_depth); default 64 KiB.
	StreamDepth int
	// MaxRings bounds the rings using the bypass at once (one counter slot each); default
	// 4,096. A ring beyond it captures without the bypass.
	MaxRings int
	// Disable makes OpenBypass fail with ErrBypassUnsupported, as on a host that cannot
	// load it (capture.bypass: off; the fallback path's tests).
	Disable bool
}

// Bypass is the kernel side of capture: one socket filter program per ring (its scope and
// counter slot are load-time constants) sharing one flow map, so user space marks a flow
// done in one place whatever ring carries it. Safe for concurrent use.
type Bypass struct {
	spec     *ebpf.CollectionSpec
	flows    *ebpf.Map // LRU hash: mg_bp_key → mg_bp_flow
	counters *ebpf.Map // per-CPU array: slot → mg_bp_stats
	depths   *ebpf.Map // array: slot → depth under pressure (0: the configured depth)
	depth    uint32

	mu    sync.Mutex
	free  []uint32 // counter slots released by closed rings
	next  uint32   // next never-used slot
	max   uint32
	fails atomic.Uint64 // rings that could not load the filter and capture without it

	doneErrs atomic.Uint64
}

// OpenBypass creates the shared maps and checks that the filter loads. On a host that
// cannot run it the error wraps ErrBypassUnsupported.
func OpenBypass(o BypassOptions) (*Bypass, error) {
	if o.Disable {
		return nil, fmt.Errorf("%w: disabled by configuration (capture.bypass: off)", ErrBypassUnsupported)
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = 65536
	}
	if o.StreamDepth <= 0 {
		o.StreamDepth = 64 << 10
	}
	if o.MaxRings <= 0 {
		o.MaxRings = 4096
	}
	if !caps.Have(caps.BPF) && !caps.Have(caps.SysAdmin) {
		return nil, fmt.Errorf("%w: no CAP_BPF or CAP_SYS_ADMIN: run the sensor as root or grant CAP_BPF (Linux >= 5.8)", ErrBypassUnsupported)
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; on later ones this does
	// nothing, and where it fails the map creation below says whether it mattered.
	memlockErr := rlimit.RemoveMemlock()
	spec, err := loadBypass()
	if err != nil {
		return nil, fmt.Errorf("parsing embedded bypass object: %w", err)
	}
	spec.Maps[bypassMapMgBpFlows].MaxEntries = uint32(o.MaxFlows)
	spec.Maps[bypassMapMgBpCounters].MaxEntries = uint32(o.MaxRings)
	spec.Maps[bypassMapMgBpDepth].MaxEntries = uint32(o.MaxRings)
	b := &Bypass{spec: spec, depth: uint32(o.StreamDepth), max: uint32(o.MaxRings)}
	if b.flows, err = ebpf.NewMap(spec.Maps[bypassMapMgBpFlows]); err != nil {
		if memlockErr != nil {
			err = fmt.Errorf("%w (raising RLIMIT_MEMLOCK failed too: %v; grant CAP_SYS_RESOURCE or raise the limit)", err, memlockErr)
		}
		return nil, unsupportedBypass("creating the flow map", err)
	}
	if b.counters, err = ebpf.NewMap(spec.Maps[bypassMapMgBpCounters]); err != nil {
		b.flows.Close()
		return nil, unsupportedBypass("creating the counter map", err)
	}
	if b.depths, err = ebpf.NewMap(spec.Maps[bypassMapMgBpDepth]); err != nil {
		b.Close()
		return nil, unsupportedBypass("creating the depth map", err)
	}
	// Load once now, so that a verifier or permission problem shows at start, not per ring.
	prog, err := b.load(0, 0, false)
	if err != nil {
		b.Close()
		return nil, unsupportedBypass("loading the socket filter", err)
	}
	prog.Close()
	return b, nil
}

func unsupportedBypass(what string, err error) error {
	hint := ""
	switch {
	case errors.As(err, new(*ebpf.VerifierError)):
		hint = " (the kernel's verifier refused the filter: an older kernel than it was written for?)"
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		hint = " (needs CAP_BPF, or CAP_SYS_ADMIN before Linux 5.8, and a seccomp profile that allows bpf(2))"
	case errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL):
		hint = " (needs Linux >= 5.8: LRU hash maps and bpf_skb_load_bytes_relative in socket filters)"
	}
	return fmt.Errorf("%w: %s: %w%s", ErrBypassUnsupported, what, err, hint)
}

// load loads one program instance bound to the shared maps.
func (b *Bypass) load(scope uint64, slot uint32, loopback bool) (*ebpf.Program, error) {
	spec := b.spec.Copy()
	set := func(name string, v any) error {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
		return nil
	}
	lo := uint32(0)
	if loopback {
		lo = 1
	}
	if err := errors.Join(set(bypassVarScope, scope), set(bypassVarSlot, slot),
		set(bypassVarDepth, b.depth), set(bypassVarKeepLoopback, lo)); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		MapReplacements: map[string]*ebpf.Map{bypassMapMgBpFlows: b.flows, bypassMapMgBpCounters: b.counters, bypassMapMgBpDepth: b.depths},
	})
	if err != nil {
		return nil, fmt.Errorf("loading bypass filter: %w", err)
	}
	defer coll.Close()
	prog := coll.Programs[bypassProgMinerguardBypass]
	clone, err := prog.Clone()
	if err != nil {
		return nil, fmt.Errorf("cloning bypass filter: %w", err)
	}
	return clone, nil
}

// attach loads a program for a ring of scope and attaches it to fd; it returns the ring's
// counter slot. The socket holds the program: its fd is closed here.
func (b *Bypass) attach(fd int, scope uint64, loopback bool) (uint32, error) {
	slot, ok := b.takeSlot()
	if !ok {
		return 0, fmt.Errorf("all %d bypass counter slots in use (capture.bypass_max_rings)", b.max)
	}
	prog, err := b.load(scope, slot, loopback)
	if err != nil {
		b.putSlot(slot)
		return 0, err
	}
	defer prog.Close()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, prog.FD()); err != nil {
		b.putSlot(slot)
		return 0, fmt.Errorf("attaching bypass filter: %w", err)
	}
	return slot, nil
}

func (b *Bypass) takeSlot() (uint32, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s uint32
	if n := len(b.free); n > 0 {
		s = b.free[n-1]
		b.free = b.free[:n-1]
	} else if b.next < b.max {
		s = b.next
		b.next++
	} else {
		return 0, false
	}
	// A reused slot starts from zero: its counters belong to the ring that had it.
	zero := make([]bypassMgBpStats, ebpfCPUs())
	b.counters.Update(s, zero, ebpf.UpdateAny)
	b.depths.Update(s, uint32(0), ebpf.UpdateAny)
	return s, true
}

func (b *Bypass) putSlot(s uint32) {
	b.mu.Lock()
	b.free = append(b.free, s)
	b.mu.Unlock()
}

var ebpfCPUs = sync.OnceValue(func() int {
	n, err := ebpf.PossibleCPU()
	if err != nil || n < 1 {
		return 1
	}
	return n
})

// BypassStats are a ring's kernel filter counters, summed over CPUs. Every packet the
// filter saw is in exactly one of Bypassed, Cut and Passed.
type BypassStats struct {
	BypassedPackets uint64 // not copied into the ring at all (flow done, or past its depth)
	BypassedBytes   uint64 // their frame bytes
	CutPackets      uint64 // copied as headers plus the payload bytes still wanted
	PassedPackets   uint64 // copied whole
	Flows           uint64 // flow entries created
	Midstream       uint64 // of which first seen without their SYN (older than capture, or forgotten by the LRU)
	MapFull         uint64 // flows that could not be stored: their packets were copied whole
	NotParsed       uint64 // not IP/TCP/UDP as the filter reads them (fragments, extension headers): copied whole
}

// Add adds o to s.
func (s *BypassStats) Add(o BypassStats) {
	s.BypassedPackets += o.BypassedPackets
	s.BypassedBytes += o.BypassedBytes
	s.CutPackets += o.CutPackets
	s.PassedPackets += o.PassedPackets
	s.Flows += o.Flows
	s.Midstream += o.Midstream
	s.MapFull += o.MapFull
	s.NotParsed += o.NotParsed
}

func (b *Bypass) slotStats(slot uint32) (BypassStats, error) {
	var per []bypassMgBpStats
	if err := b.counters.Lookup(slot, &per); err != nil {
		return BypassStats{}, fmt.Errorf("reading bypass counters: %w", err)
	}
	var s BypassStats
	for _, v := range per {
		s.Add(BypassStats{v.BypassedPackets, v.BypassedBytes, v.CutPackets, v.PassedPackets,
			v.Flows, v.Midstream, v.MapFull, v.NotParsed})
	}
	return s, nil
}

// Done tells the kernel that nothing more of a flow is needed: from its next packet on
// only SYN/FIN/RST headers are copied, the rest is counted. scope is the ring's (the
// engine's scope); orig and resp may be given in either order. Safe from any goroutine;
// an update that fails is counted (DoneErrors) and the flow stays handed up.
func (b *Bypass) Done(scope uint64, proto uint8, orig, resp netip.AddrPort) {
	if proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_UDP {
		return
	}
	if orig.Port() == 53 || resp.Port() == 53 {
		return // DNS is always handed up whole; the filter never looks it up
	}
	k := flowKey(scope, proto, orig, resp)
	if err := b.flows.Update(&k, &bypassMgBpFlow{Done: 1}, ebpf.UpdateAny); err != nil {
		b.doneErrs.Add(1)
	}
}

// DoneErrors counts Done updates the kernel refused.
func (b *Bypass) DoneErrors() uint64 { return b.doneErrs.Load() }

// RingFailures counts rings that could not load the filter and capture without it.
func (b *Bypass) RingFailures() uint64 { return b.fails.Load() }

// MaxFlows is the flow map's size.
func (b *Bypass) MaxFlows() int { return int(b.flows.MaxEntries()) }

// Close releases the maps; rings attached keep their programs (and the maps those hold)
// until they close.
func (b *Bypass) Close() error {
	if b.flows != nil {
		b.flows.Close()
	}
	if b.counters != nil {
		b.counters.Close()
	}
	if b.depths != nil {
		b.depths.Close()
	}
	return nil
}

// flowKey is the canonical key the filter builds: the endpoint that sorts first (address
// as four little-endian 32-bit words, then port) is a.
func flowKey(scope uint64, proto uint8, x, y netip.AddrPort) bypassMgBpKey {
	xa, ya := words(x.Addr()), words(y.Addr())
	if !endpointBefore(xa, x.Port(), ya, y.Port()) {
		x, y = y, x
		xa, ya = ya, xa
	}
	return bypassMgBpKey{Scope: scope, A: xa, B: ya, Pa: x.Port(), Pb: y.Port(), Proto: proto}
}

// words is the address as the filter holds it: its 16 bytes (IPv4 mapped) in native words.
func words(a netip.Addr) [4]uint32 {
	b := a.As16()
	le := binary.LittleEndian
	return [4]uint32{le.Uint32(b[0:]), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:])}
}

func endpointBefore(x [4]uint32, px uint16, y [4]uint32, py uint16) bool {
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return px < py
}
