package xdp

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/minerguard/minerguard/internal/tick"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Mode is a workload's enforcement mode, as the data path reads it from mg_modes.
type Mode uint32

const (
	ModeFlagOnly Mode = 0 // matches are counted, nothing is dropped (also: no entry)
	ModeEnforce  Mode = 1 // matches are dropped
	ModeBypass   Mode = 2 // no lookups at all
)

func (m Mode) String() string {
	switch m {
	case ModeFlagOnly:
		return "flag-only"
	case ModeEnforce:
		return "enforce"
	case ModeBypass:
		return "bypass"
	}
	return fmt.Sprintf("mode(%d)", uint32(m))
}

// View says which side of a packet is the workload.
type View uint32

const (
	// ViewEgress: attached on the host-side veth, the packet's source is the workload.
	ViewEgress View = 0
	// ViewIngress: attached inside the workload's netns, the destination is the workload.
	ViewIngress View = 1
)

func (v View) String() string {
	if v == ViewIngress {
		return "ingress"
	}
	return "egress"
}

// Options configure Open. Zero values take the defaults.
type Options struct {
	PinPath          string        // default "/sys/fs/bpf/minerguard"; bpffs is mounted at /sys/fs/bpf if missing
	HostNetns        string        // netns path whose veths are the host side ("" = the caller's netns)
	HeartbeatTimeout time.Duration // default 30s; after it without Heartbeat the data path fails open
	MaxWorkloads     int           // mg_modes entries, default 4096
	MaxDests         int           // mg_dests entries, default 65536
	MaxFlows         int           // mg_flows entries, default 65536
}

// DefaultPinPath is where the maps and links are pinned unless Options.PinPath says otherwise.
const DefaultPinPath = "/sys/fs/bpf/minerguard"

// ErrMapFull is wrapped by a block that did not fit; the workload was switched to flag-only.
var ErrMapFull = errors.New("xdp block map full")

// Stats are the data-path counters summed over CPUs, plus the manager's own.
// Every packet increments exactly one of the data-path counters.
type Stats struct {
	Passed      uint64 // parsed, no block matched (or flag-only without match)
	DroppedFlow uint64 // enforce: a flow block matched
	DroppedDest uint64 // enforce: a destination block matched
	FlaggedFlow uint64 // flag-only: a flow block matched
	FlaggedDest uint64 // flag-only: a destination block matched
	FailedOpen  uint64 // enforce match passed because the heartbeat expired
	NotParsed   uint64 // not Ethernet/VLAN/IPv4/IPv6, or truncated: passed
	Bypass      uint64 // workload in bypass mode: passed without lookups
	MapFull     uint64 // blocks refused because a map was full
	Pruned      uint64 // flow blocks PruneFlows removed as stale
	Attached    int    // XDP links held
}

// counter indexes mg_counters; the order is enum mg_counter in minerguard.c.
const (
	ctrPassed = iota
	ctrDroppedFlow
	ctrDroppedDest
	ctrFlaggedFlow
	ctrFlaggedDest
	ctrFailedOpen
	ctrNotParsed
	ctrBypass
	numCounters
)

// Manager owns the pinned maps and the XDP links. Its methods are safe for concurrent use.
type Manager struct {
	opts    Options
	spec    *ebpf.CollectionSpec
	maps    map[string]*ebpf.Map
	modes   *ebpf.Map
	dests   *ebpf.Map
	flows   *ebpf.Map
	ctrs    *ebpf.Map
	config  *ebpf.Map
	hostNs  netns.NsHandle
	mapFull atomic.Uint64
	pruned  atomic.Uint64

	pruneMu sync.Mutex
	seen    map[bpfMgFlowKey]flowSeen // PruneFlows' memory

	mu    sync.Mutex
	links map[string]*pinnedLink // by pin name "<nsInode>_<ifname>"
}

type pinnedLink struct {
	link    link.Link
	nsInode uint64
	ifname  string
}

// mapNames are the maps shared by every attachment, pinned by these names.
var mapNames = []string{bpfMapMgModes, bpfMapMgDests, bpfMapMgFlows, bpfMapMgCounters, bpfMapMgConfig}

// Open loads the maps, re-adopting pinned ones (and the pinned links whose interface still
// exists), and writes a first heartbeat. When BPF or XDP cannot be used, the error wraps
// ErrUnsupported.
func Open(o Options) (*Manager, error) {
	if o.PinPath == "" {
		o.PinPath = DefaultPinPath
	}
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = 30 * time.Second
	}
	if o.MaxWorkloads <= 0 {
		o.MaxWorkloads = 4096
	}
	if o.MaxDests <= 0 {
		o.MaxDests = 65536
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = 65536
	}
	if err := checkSupport(); err != nil {
		return nil, err
	}
	if err := ensurePinDir(o.PinPath); err != nil {
		return nil, err
	}
	spec, err := loadBpf()
	if err != nil {
		return nil, fmt.Errorf("parsing embedded object: %w", err)
	}
	spec.Maps[bpfMapMgModes].MaxEntries = uint32(o.MaxWorkloads)
	spec.Maps[bpfMapMgDests].MaxEntries = uint32(o.MaxDests)
	spec.Maps[bpfMapMgFlows].MaxEntries = uint32(o.MaxFlows)

	m := &Manager{opts: o, spec: spec, maps: map[string]*ebpf.Map{}, links: map[string]*pinnedLink{}, hostNs: -1}
	for _, name := range mapNames {
		mp, err := openMap(spec.Maps[name], filepath.Join(o.PinPath, name))
		if err != nil {
			m.Close()
			return nil, err
		}
		m.maps[name] = mp
	}
	m.modes, m.dests, m.flows = m.maps[bpfMapMgModes], m.maps[bpfMapMgDests], m.maps[bpfMapMgFlows]
	m.ctrs, m.config = m.maps[bpfMapMgCounters], m.maps[bpfMapMgConfig]

	if o.HostNetns == "" {
		m.hostNs, err = netns.Get()
	} else {
		m.hostNs, err = netns.GetFromPath(o.HostNetns)
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("opening host netns %q: %w", o.HostNetns, err)
	}
	if err := m.Heartbeat(); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.adoptLinks(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// openMap re-adopts the pinned map at path or creates and pins a new one. A pinned map of
// another size keeps its size (the pins outlive option changes); one of another layout (an
// older sensor version) is replaced, and re-adopted links are switched to it at Attach.
func openMap(spec *ebpf.MapSpec, path string) (*ebpf.Map, error) {
	if pinned, err := ebpf.LoadPinnedMap(path, nil); err == nil {
		s := spec.Copy()
		s.MaxEntries = pinned.MaxEntries()
		if s.Compatible(pinned) == nil {
			return pinned, nil
		}
		pinned.Unpin()
		pinned.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("loading pinned map %s: %w", path, err)
	}
	mp, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("creating map %s: %w", spec.Name, err)
	}
	if err := mp.Pin(path); err != nil {
		mp.Close()
		return nil, fmt.Errorf("pinning map %s: %w", spec.Name, err)
	}
	return mp, nil
}

// loadProgram loads one program instance for a workload and view, bound to the shared maps.
func (m *Manager) loadProgram(wid uint64, v View) (*ebpf.Program, error) {
	if len(m.maps) != len(mapNames) {
		return nil, errors.New("loading xdp program: manager closed")
	}
	spec := m.spec.Copy()
	if err := spec.Variables[bpfVarWorkloadId].Set(wid); err != nil {
		return nil, fmt.Errorf("setting workload_id: %w", err)
	}
	if err := spec.Variables[bpfVarView].Set(uint32(v)); err != nil {
		return nil, fmt.Errorf("setting view: %w", err)
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: m.maps})
	if err != nil {
		return nil, fmt.Errorf("loading xdp program: %w", err)
	}
	defer coll.Close()
	prog := coll.DetachProgram(bpfProgMinerguardXdp)
	if prog == nil {
		return nil, errors.New("loading xdp program: minerguard_xdp missing from object")
	}
	return prog, nil
}

// WorkloadID is the stable 64-bit identifier of a workload name (FNV-1a; never 0).
func WorkloadID(workload string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(workload))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}

// monoNow is CLOCK_MONOTONIC in ns, the clock bpf_ktime_get_ns reads.
func monoNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// Heartbeat tells the data path the sensor is alive.
func (m *Manager) Heartbeat() error {
	v := bpfMgSettings{HeartbeatNs: monoNow(), TimeoutNs: uint64(m.opts.HeartbeatTimeout)}
	if err := m.config.Update(uint32(0), &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("writing heartbeat: %w", err)
	}
	return nil
}

// Run writes a heartbeat every second (more often for timeouts under 3 s) until ctx is done. The sensor must run it while it
// enforces, or the data path fails open after the timeout.
func (m *Manager) Run(ctx context.Context) {
	every := time.Second
	if third := m.opts.HeartbeatTimeout / 3; third < every {
		every = third // a short timeout must not expire between two beats
	}
	tick.Every(ctx, every, func(time.Time) {
		m.Heartbeat() // a failure shows as the data path failing open, which is counted
	})
}

// Stats reads the counters.
func (m *Manager) Stats() Stats {
	var c [numCounters]uint64
	for i := range c {
		var per []uint64
		if err := m.ctrs.Lookup(uint32(i), &per); err != nil {
			continue
		}
		for _, v := range per {
			c[i] += v
		}
	}
	m.mu.Lock()
	attached := len(m.links)
	m.mu.Unlock()
	return Stats{
		Passed: c[ctrPassed], DroppedFlow: c[ctrDroppedFlow], DroppedDest: c[ctrDroppedDest],
		FlaggedFlow: c[ctrFlaggedFlow], FlaggedDest: c[ctrFlaggedDest], FailedOpen: c[ctrFailedOpen],
		NotParsed: c[ctrNotParsed], Bypass: c[ctrBypass],
		MapFull: m.mapFull.Load(), Pruned: m.pruned.Load(), Attached: attached,
	}
}

// Close releases the manager's file descriptors and keeps every pin, so that enforcement
// continues (until the heartbeat times out) and a new Manager re-adopts it.
func (m *Manager) Close() error {
	m.mu.Lock()
	for name, l := range m.links {
		l.link.Close()
		delete(m.links, name)
	}
	m.mu.Unlock()
	for name, mp := range m.maps {
		mp.Close()
		delete(m.maps, name)
	}
	if m.hostNs >= 0 {
		m.hostNs.Close()
		m.hostNs = -1
	}
	return nil
}

// Remove detaches every link, unpins everything under PinPath and closes the manager
// (uninstall).
func (m *Manager) Remove() error {
	var errs []error
	m.mu.Lock()
	for name, l := range m.links {
		if err := l.link.Unpin(); err != nil {
			errs = append(errs, err)
		}
		l.link.Close()
		delete(m.links, name)
	}
	m.mu.Unlock()
	// Links pinned by someone else's manager under the same path.
	if ents, err := os.ReadDir(m.linkDir()); err == nil {
		for _, e := range ents {
			os.Remove(filepath.Join(m.linkDir(), e.Name()))
		}
	}
	for _, mp := range m.maps {
		if err := mp.Unpin(); err != nil {
			errs = append(errs, err)
		}
	}
	m.Close()
	os.Remove(m.linkDir())
	if err := os.Remove(m.opts.PinPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
