package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Block is a flow or destination entry as the data path sees it.
type Block struct {
	InstalledNs uint64 // CLOCK_MONOTONIC when the block was installed
	FirstDropNs uint64 // CLOCK_MONOTONIC of the first drop, 0 if none yet
	Drops       uint64
	Reason      uint32
}

// FirstDropAfter is the time from installing the block to its first drop.
func (b Block) FirstDropAfter() (time.Duration, bool) {
	if b.FirstDropNs == 0 || b.FirstDropNs < b.InstalledNs {
		return 0, false
	}
	return time.Duration(b.FirstDropNs - b.InstalledNs), true
}

// be16 stores port in network order in a native-endian uint16 field.
func be16(port uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return binary.NativeEndian.Uint16(b[:])
}

// addr16 is a as 16 bytes, IPv4 as ::ffff:a.b.c.d like the data path.
func addr16(a netip.Addr) [16]byte { return a.As16() }

func flowKey(wid uint64, src, dst netip.AddrPort, proto uint8) bpfMgFlowKey {
	return bpfMgFlowKey{
		WorkloadId: wid,
		Src:        addr16(src.Addr()), Dst: addr16(dst.Addr()),
		Sport: be16(src.Port()), Dport: be16(dst.Port()),
		Proto: proto,
	}
}

// destKey: the LPM prefix covers pad0..port (128 bits) plus the address prefix.
func destKey(wid uint64, dst netip.Prefix, port uint16, proto uint8) (bpfMgDestKey, error) {
	if !dst.IsValid() {
		return bpfMgDestKey{}, fmt.Errorf("invalid prefix %v", dst)
	}
	dst = dst.Masked()
	bits := dst.Bits()
	if dst.Addr().Is4() {
		bits += 96
	}
	return bpfMgDestKey{
		Prefixlen:  uint32(128 + bits),
		WorkloadId: wid,
		Proto:      proto,
		Port:       be16(port),
		Addr:       addr16(dst.Addr()),
	}, nil
}

// SetMode sets a workload's mode; failClosed keeps enforcing when the heartbeat expires.
func (m *Manager) SetMode(workload string, mode Mode, failClosed bool) error {
	if mode > ModeBypass {
		return fmt.Errorf("setting mode of %s: unknown mode %d", workload, mode)
	}
	v := bpfMgMode{Mode: uint32(mode)}
	if failClosed {
		v.FailClosed = 1
	}
	if err := m.modes.Update(WorkloadID(workload), &v, ebpf.UpdateAny); err != nil {
		if isFull(err) {
			m.mapFull.Add(1)
			return fmt.Errorf("setting mode of %s: %w: %w", workload, ErrMapFull, err)
		}
		return fmt.Errorf("setting mode of %s: %w", workload, err)
	}
	return nil
}

// GetMode reads a workload's mode (flag-only when it has no entry).
func (m *Manager) GetMode(workload string) (mode Mode, failClosed bool, err error) {
	var v bpfMgMode
	if err := m.modes.Lookup(WorkloadID(workload), &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return ModeFlagOnly, false, nil
		}
		return 0, false, fmt.Errorf("reading mode of %s: %w", workload, err)
	}
	return Mode(v.Mode), v.FailClosed != 0, nil
}

// FlagOnlyAll switches every workload to flag-only (graceful stop): nothing is dropped
// after the sensor is gone, whatever the heartbeat or fail-closed say.
func (m *Manager) FlagOnlyAll() error {
	var (
		k    uint64
		v    bpfMgMode
		keys []uint64
	)
	it := m.modes.Iterate()
	for it.Next(&k, &v) {
		if Mode(v.Mode) == ModeEnforce {
			keys = append(keys, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("listing modes: %w", err)
	}
	var errs []error
	for _, k := range keys {
		if err := m.modes.Update(k, &bpfMgMode{Mode: uint32(ModeFlagOnly)}, ebpf.UpdateExist); err != nil &&
			!errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("setting workload %#x flag-only: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

func isFull(err error) bool {
	// Hash maps answer E2BIG when full, LPM tries ENOSPC.
	return errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOSPC)
}

// insert adds a block; an existing entry keeps its install time and drop statistics.
// A full map switches the workload to flag-only so that a partial block list never
// pretends to enforce.
func (m *Manager) insert(mp *ebpf.Map, workload string, key any, reason uint32, what string) error {
	v := bpfMgBlock{InstalledNs: monoNow(), Reason: reason}
	err := mp.Update(key, &v, ebpf.UpdateNoExist)
	if err == nil || errors.Is(err, ebpf.ErrKeyExist) {
		return nil
	}
	if isFull(err) {
		m.mapFull.Add(1)
		_, fc, _ := m.GetMode(workload)
		if merr := m.SetMode(workload, ModeFlagOnly, fc); merr != nil {
			return fmt.Errorf("blocking %s for %s: %w (and switching to flag-only: %v)", what, workload, ErrMapFull, merr)
		}
		return fmt.Errorf("blocking %s for %s: %w, workload switched to flag-only", what, workload, ErrMapFull)
	}
	return fmt.Errorf("blocking %s for %s: %w", what, workload, err)
}

// BlockFlow blocks one flow, oriented as the workload sees it (src is the workload side).
// Only TCP and UDP flows have ports to match; block other protocols with BlockDest.
func (m *Manager) BlockFlow(workload string, src, dst netip.AddrPort, proto uint8, reason uint32) error {
	k := flowKey(WorkloadID(workload), src, dst, proto)
	return m.insert(m.flows, workload, &k, reason, fmt.Sprintf("flow %v->%v/%d", src, dst, proto))
}

// BlockDest blocks a destination prefix for a workload; port 0 and proto 0 mean any.
// Non-first IP fragments carry no ports, so only port-0 entries match them.
func (m *Manager) BlockDest(workload string, dst netip.Prefix, port uint16, proto uint8, reason uint32) error {
	k, err := destKey(WorkloadID(workload), dst, port, proto)
	if err != nil {
		return fmt.Errorf("blocking destination for %s: %w", workload, err)
	}
	return m.insert(m.dests, workload, &k, reason, fmt.Sprintf("destination %v port %d/%d", dst, port, proto))
}

// UnblockFlow removes a flow block; removing one that does not exist is not an error.
func (m *Manager) UnblockFlow(workload string, src, dst netip.AddrPort, proto uint8) error {
	k := flowKey(WorkloadID(workload), src, dst, proto)
	if err := m.flows.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unblocking flow for %s: %w", workload, err)
	}
	return nil
}

// UnblockDest removes a destination block; removing one that does not exist is not an error.
func (m *Manager) UnblockDest(workload string, dst netip.Prefix, port uint16, proto uint8) error {
	k, err := destKey(WorkloadID(workload), dst, port, proto)
	if err != nil {
		return fmt.Errorf("unblocking destination for %s: %w", workload, err)
	}
	if err := m.dests.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unblocking destination for %s: %w", workload, err)
	}
	return nil
}

// ClearWorkload removes a workload's flow and destination blocks (its mode stays): all of
// them, or with reasons given only those installed for one of them (a profile that relearns
// lets go of its profile blocks but keeps its miner's).
func (m *Manager) ClearWorkload(workload string, reasons ...uint32) error {
	_, err := m.Clear(WorkloadID(workload), func(e Entry) bool { return len(reasons) == 0 || slices.Contains(reasons, e.Reason) })
	if err != nil {
		return fmt.Errorf("clearing %s: %w", workload, err)
	}
	return nil
}

// Entry is one block as listed: a flow (Src, Dst, Proto) or a destination (Prefix, Port and
// Proto, 0 meaning any).
type Entry struct {
	WorkloadID uint64
	Flow       bool
	Src, Dst   netip.AddrPort // flow blocks
	Prefix     netip.Prefix   // destination blocks
	Port       uint16         // destination blocks
	Proto      uint8
	Block
}

func flowEntry(k *bpfMgFlowKey, v *bpfMgBlock) Entry {
	return Entry{WorkloadID: k.WorkloadId, Flow: true, Proto: k.Proto,
		Src:   netip.AddrPortFrom(netip.AddrFrom16(k.Src).Unmap(), be16(k.Sport)),
		Dst:   netip.AddrPortFrom(netip.AddrFrom16(k.Dst).Unmap(), be16(k.Dport)),
		Block: Block{v.InstalledNs, v.FirstDropNs, v.Drops, v.Reason}}
}

func destEntry(k *bpfMgDestKey, v *bpfMgBlock) Entry {
	a := netip.AddrFrom16(k.Addr)
	bits := int(k.Prefixlen) - 128
	if a.Is4In6() {
		a, bits = a.Unmap(), bits-96
	}
	pfx, _ := a.Prefix(max(bits, 0))
	return Entry{WorkloadID: k.WorkloadId, Prefix: pfx, Port: be16(k.Port), Proto: k.Proto,
		Block: Block{v.InstalledNs, v.FirstDropNs, v.Drops, v.Reason}}
}

// Blocks lists every flow and destination block of every workload (a diagnostic: it walks
// both maps).
func (m *Manager) Blocks() ([]Entry, error) {
	var (
		fk  bpfMgFlowKey
		dk  bpfMgDestKey
		v   bpfMgBlock
		out []Entry
	)
	it := m.flows.Iterate()
	for it.Next(&fk, &v) {
		out = append(out, flowEntry(&fk, &v))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("listing flow blocks: %w", err)
	}
	it = m.dests.Iterate()
	for it.Next(&dk, &v) {
		out = append(out, destEntry(&dk, &v))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("listing destination blocks: %w", err)
	}
	return out, nil
}

// Clear removes the blocks of workload wid that match says to, and returns how many.
func (m *Manager) Clear(wid uint64, match func(Entry) bool) (int, error) {
	var (
		fk    bpfMgFlowKey
		dk    bpfMgDestKey
		v     bpfMgBlock
		fkeys []bpfMgFlowKey
		dkeys []bpfMgDestKey
	)
	// Collect first: deleting while iterating a hash map can restart the walk.
	it := m.flows.Iterate()
	for it.Next(&fk, &v) {
		if fk.WorkloadId == wid && match(flowEntry(&fk, &v)) {
			fkeys = append(fkeys, fk)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("listing flow blocks: %w", err)
	}
	it = m.dests.Iterate()
	for it.Next(&dk, &v) {
		if dk.WorkloadId == wid && match(destEntry(&dk, &v)) {
			dkeys = append(dkeys, dk)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("listing destination blocks: %w", err)
	}
	n := 0
	var errs []error
	for i := range fkeys {
		if err := m.flows.Delete(&fkeys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		} else {
			n++
		}
	}
	for i := range dkeys {
		if err := m.dests.Delete(&dkeys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		} else {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Wall converts a CLOCK_MONOTONIC time of the data path (InstalledNs, FirstDropNs) to wall
// time; zero stays zero.
func Wall(mono uint64) time.Time {
	if mono == 0 {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(monoNow() - mono))
}

// FlowBlock reads a flow block back.
func (m *Manager) FlowBlock(workload string, src, dst netip.AddrPort, proto uint8) (Block, bool) {
	k := flowKey(WorkloadID(workload), src, dst, proto)
	var v bpfMgBlock
	if err := m.flows.Lookup(&k, &v); err != nil {
		return Block{}, false
	}
	return Block{v.InstalledNs, v.FirstDropNs, v.Drops, v.Reason}, true
}

// DestBlock reads a destination block back (the exact entry, not a longest-prefix match).
// It walks the trie: for tests and diagnostics, not for every packet.
func (m *Manager) DestBlock(workload string, dst netip.Prefix, port uint16, proto uint8) (Block, bool) {
	k, err := destKey(WorkloadID(workload), dst, port, proto)
	if err != nil {
		return Block{}, false
	}
	// An LPM lookup returns the longest match; check it is this very entry.
	var (
		v   bpfMgBlock
		got bpfMgDestKey
	)
	it := m.dests.Iterate()
	for it.Next(&got, &v) {
		if got == k {
			return Block{v.InstalledNs, v.FirstDropNs, v.Drops, v.Reason}, true
		}
	}
	return Block{}, false
}

// flowSeen is what PruneFlows remembers of a flow block: its drop count and since when.
type flowSeen struct {
	drops uint64
	since time.Time
}

// PruneFlows removes the flow blocks no packet has hit for idle, and returns how many. The
// sensor removes a flow's block when the flow leaves its table, but the blocks of a sensor
// that was killed (or of flows it never saw end) would stay for ever and fill the map: a
// block whose drop count has not moved for longer than a flow's idle timeout belongs to a
// flow that is over (a live blocked flow's retransmissions keep counting). Call it
// periodically; the first call only takes note.
func (m *Manager) PruneFlows(now time.Time, idle time.Duration) (int, error) {
	m.pruneMu.Lock()
	defer m.pruneMu.Unlock()
	if m.seen == nil {
		m.seen = map[bpfMgFlowKey]flowSeen{}
	}
	var (
		k     bpfMgFlowKey
		v     bpfMgBlock
		stale []bpfMgFlowKey
	)
	live := make(map[bpfMgFlowKey]struct{}, len(m.seen))
	it := m.flows.Iterate()
	for it.Next(&k, &v) {
		live[k] = struct{}{}
		s, ok := m.seen[k]
		switch {
		case !ok || s.drops != v.Drops:
			m.seen[k] = flowSeen{drops: v.Drops, since: now}
		case now.Sub(s.since) >= idle:
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("listing flow blocks: %w", err)
	}
	for k := range m.seen {
		if _, ok := live[k]; !ok {
			delete(m.seen, k)
		}
	}
	n := 0
	for i := range stale {
		if err := m.flows.Delete(&stale[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("pruning a flow block: %w", err)
		}
		delete(m.seen, stale[i])
		n++
	}
	m.pruned.Add(uint64(n))
	return n, nil
}
