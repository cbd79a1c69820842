package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/internal/tick"
	"github.com/minerguard/minerguard/metrics"
	"github.com/minerguard/minerguard/xdp"
)

// enforcer puts the engine's drop verdicts into the XDP data path: it attaches the program to
// each captured workload, sets the workload's mode, and installs flow and destination blocks.
type enforcer struct {
	m         *xdp.Manager
	log       *slog.Logger
	mu        sync.RWMutex
	overrides []WorkloadMode    // replaced on reload
	degraded  map[string]bool   // workloads the manager put in flag-only because a map was full
	names     map[uint64]string // xdp.WorkloadID → identity, for listing blocks
	identity  func(scope uint64) string
	alerts    engine.Sink   // where a workload's fall to flag-only is reported
	stale     time.Duration // flow blocks without a drop this long are removed
	failures  atomic.Uint64 // blocks or attachments that failed
}

// SIDMapFull is the signature of the alert saying a workload's enforcement fell back to
// flag-only because an XDP block map was full: its later alerts say "allowed" and the
// operator must raise enforcement.max_blocked_flows/dests or clear blocks.
const SIDMapFull = 9400010

// openEnforcer opens the XDP manager for enforce mode. A machine that cannot run it (no
// CAP_BPF/CAP_NET_ADMIN, no bpffs, an old kernel) gives nil and the reason: the sensor then
// flags only.
func openEnforcer(cfg Config, log *slog.Logger, identity func(uint64) string, alerts engine.Sink) (*enforcer, error) {
	m, err := xdp.Open(xdp.Options{PinPath: cfg.Enforcement.PinPath, HeartbeatTimeout: cfg.Enforcement.HeartbeatTimeout,
		HostNetns: cfg.Enforcement.HostNetns, MaxFlows: cfg.Enforcement.MaxBlockedFlows, MaxDests: cfg.Enforcement.MaxBlockedDests})
	if err != nil {
		return nil, err
	}
	return &enforcer{m: m, log: log, overrides: cfg.Enforcement.Workloads, identity: identity, alerts: alerts,
		stale: cfg.Enforcement.StaleFlowBlock, degraded: map[string]bool{}, names: map[uint64]string{}}, nil
}

// modeFor is the XDP mode of a workload: the first matching override, else enforce.
func (e *enforcer) modeFor(workload string) (xdp.Mode, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.degraded[workload] {
		return xdp.ModeFlagOnly, false
	}
	for _, o := range e.overrides {
		if ok, _ := path.Match(o.Match, workload); ok {
			switch o.Mode {
			case "monitor":
				return xdp.ModeFlagOnly, o.FailClosed
			case "bypass":
				return xdp.ModeBypass, o.FailClosed
			}
			return xdp.ModeEnforce, o.FailClosed
		}
	}
	return xdp.ModeEnforce, false
}

// remember keeps the identity behind a workload's map ID (bounded: the maps hold at most
// that many workloads anyway).
func (e *enforcer) remember(workload string) {
	id := xdp.WorkloadID(workload)
	e.mu.RLock()
	_, known := e.names[id]
	e.mu.RUnlock()
	if known {
		return // the usual case on a block: no write lock
	}
	e.mu.Lock()
	if len(e.names) < 1<<16 {
		e.names[id] = workload
	}
	e.mu.Unlock()
}

// nameOf is the identity of a map ID, or the ID in hex for blocks a sensor before this one
// installed for a workload not seen since.
func (e *enforcer) nameOf(id uint64) string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if n, ok := e.names[id]; ok {
		return n
	}
	return fmt.Sprintf("id:%016x", id)
}

// setOverrides replaces the per-workload modes (reload); workloads degraded by a full map get
// another try.
func (e *enforcer) setOverrides(o []WorkloadMode) {
	e.mu.Lock()
	e.overrides = o
	clear(e.degraded)
	e.mu.Unlock()
}

// applyMode sets a workload's mode from the current overrides and returns it.
func (e *enforcer) applyMode(workload string) (xdp.Mode, bool) {
	e.remember(workload)
	mode, failClosed := e.modeFor(workload)
	if err := e.m.SetMode(workload, mode, failClosed); err != nil {
		e.failures.Add(1)
		e.log.Warn("setting the enforcement mode", "workload", workload, "err", err)
		return mode, false
	}
	return mode, true
}

// attach enforces on a namespace's traffic. Failures are logged and counted; the namespace is
// still captured and flagged.
func (e *enforcer) attach(ns capture.Netns, workload string) {
	mode, ok := e.applyMode(workload)
	if !ok {
		return
	}
	a, err := e.m.Attach(workload, ns.Path, ns.Inode)
	if err != nil {
		e.failures.Add(1)
		e.log.Warn("attaching XDP enforcement; this namespace is flagged only", "netns", ns.Path, "workload", workload, "err", err)
		return
	}
	for _, l := range a.Links {
		e.log.Info("enforcing", "workload", workload, "mode", mode, "interface", l.Ifname, "view", l.View, "readopted", l.Readopted)
	}
}

func (e *enforcer) detach(inode uint64) {
	if err := e.m.Detach(inode); err != nil {
		e.log.Warn("detaching XDP enforcement", "inode", inode, "err", err)
	}
}

// destReasons are the verdicts that also block the destination for the whole workload, so the
// miner's reconnects are dropped at their first packet: the pool itself, or a destination the
// profile does not allow. A lookup (pool-dns) blocks nothing but its own flow: the resolver
// serves everyone.
const destReasons = 1<<detect.ReasonStratum | 1<<detect.ReasonPoolSNI | 1<<detect.ReasonPoolIP |
	1<<detect.ReasonNotInProfile | 1<<detect.ReasonUnresolvedIP | 1<<detect.ReasonSV2Handshake

// Block implements engine.Enforcer.
func (e *enforcer) Block(b engine.Block) bool {
	wl := b.Workload
	if wl == "" {
		wl = e.identity(b.Scope)
	}
	if mode, _ := e.modeFor(wl); mode != xdp.ModeEnforce {
		return false
	}
	e.remember(wl)
	reason := uint32(firstReason(b.Reasons))
	if err := e.m.BlockFlow(wl, b.Src, b.Dst, b.Proto, reason); err != nil {
		e.fail("blocking a flow", b, wl, err)
		return false
	}
	if b.Reasons&destReasons != 0 && !b.Tunnel && b.Dst.Addr().IsValid() {
		dst := netip.PrefixFrom(b.Dst.Addr(), b.Dst.Addr().BitLen())
		port, proto := b.Dst.Port(), b.Proto
		if b.Reasons.Has(detect.ReasonPoolIP) || b.Reasons.Has(detect.ReasonPoolSNI) {
			port, proto = 0, 0 // a pool's address: every port
		}
		if err := e.m.BlockDest(wl, dst, port, proto, reason); err != nil {
			e.fail("blocking a destination", b, wl, err)
		}
	}
	return true
}

// Unblock implements engine.Enforcer: a flow that ended takes its entry with it.
func (e *enforcer) Unblock(b engine.Block) {
	wl := b.Workload
	if wl == "" {
		wl = e.identity(b.Scope)
	}
	if err := e.m.UnblockFlow(wl, b.Src, b.Dst, b.Proto); err != nil {
		e.log.Debug("removing a flow block", "workload", wl, "err", err)
	}
}

func (e *enforcer) fail(what string, b engine.Block, workload string, err error) {
	e.failures.Add(1)
	if !errors.Is(err, xdp.ErrMapFull) {
		e.log.Warn(what, "workload", workload, "err", err)
		return
	}
	// The manager switched the workload to flag-only: its later alerts must not claim a
	// drop, and whoever reads the alerts must learn that this workload is no longer enforced
	// (once, until a reload gives it another try).
	e.mu.Lock()
	first := !e.degraded[workload]
	e.degraded[workload] = true
	e.mu.Unlock()
	if !first {
		return
	}
	e.log.Error(what+": the XDP map is full; the workload is flagged only from now on", "workload", workload, "err", err)
	if e.alerts != nil {
		e.alerts.Alert(mapFullAlert(b, workload, time.Now()))
	}
}

// mapFullAlert reports, on the flow whose block did not fit, that its workload fell back to
// flag-only.
func mapFullAlert(b engine.Block, workload string, now time.Time) *alert.Event {
	return &alert.Event{
		Timestamp: now, FlowID: b.FlowID, Src: b.Src, Dest: b.Dst, Proto: b.Proto, Scope: b.Scope,
		CommunityID: alert.CommunityID(b.Src.Addr(), b.Src.Port(), b.Dst.Addr(), b.Dst.Port(), b.Proto),
		Action:      "allowed", SignatureID: SIDMapFull,
		Signature: "MINERGUARD enforcement degraded: XDP block map full, workload switched to flag-only",
		Category:  "Enforcement Degraded", Severity: 1,
		MG: alert.Minerguard{Detector: "xdp", Workload: &alert.Workload{Identity: workload}},
	}
}

func firstReason(rs detect.Reasons) detect.Reason {
	for r := detect.ReasonStratum; r.String() != "unknown"; r++ {
		if rs.Has(r) {
			return r
		}
	}
	return 0
}

// run writes the heartbeat and prunes stale flow blocks until ctx ends.
func (e *enforcer) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { e.m.Run(ctx) })
	defer wg.Wait()
	tick.Every(ctx, min(time.Minute, e.stale/4), func(now time.Time) {
		n, err := e.m.PruneFlows(now, e.stale)
		if err != nil {
			e.log.Warn("pruning stale flow blocks", "err", err)
		} else if n > 0 {
			e.log.Info("removed stale flow blocks", "count", n, "idle", e.stale)
		}
	})
}

// stop hands every workload back to flag-only (a stopped sensor must not leave traffic
// dropped that nobody watches) and closes the manager, keeping the pins for the next start.
func (e *enforcer) stop() {
	if err := e.m.FlagOnlyAll(); err != nil {
		e.log.Warn("switching workloads to flag-only before exit", "err", err)
	}
	if err := e.m.Close(); err != nil {
		e.log.Warn("closing XDP manager", "err", err)
	}
}

func (e *enforcer) metrics() metrics.XDP {
	st := e.m.Stats()
	return metrics.XDP{Attached: st.Attached, Passed: st.Passed, DroppedFlow: st.DroppedFlow, DroppedDest: st.DroppedDest,
		FlaggedFlow: st.FlaggedFlow, FlaggedDest: st.FlaggedDest, FailedOpen: st.FailedOpen, NotParsed: st.NotParsed, MapFull: st.MapFull,
		Pruned: st.Pruned, Failures: e.failures.Load()}
}
