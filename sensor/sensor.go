package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/intel"
	"github.com/minerguard/minerguard/metrics"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/cluster"
	"github.com/minerguard/minerguard/workload"
)

// Sensor captures the selected network namespaces of a node and reports mining traffic.
type Sensor struct {
	cfg     Config
	log     *slog.Logger
	det     *detect.Detector
	pipe    *Pipeline
	queue   *alert.Queue
	limiter *alert.RateLimiter
	out     io.Closer // alert file, nil for stdout
	outFile *alert.File
	names   *workload.Chain
	book    *profile.Book         // learned profiles; nil when profiles are disabled
	cluster *cluster.Syncer       // profiles.backend kubernetes: the book merged with the cluster's; else nil
	tally   *tally                // detections and violations by workload, and the labels
	tuning  *alert.TuningSink     // alerts.threshold_file
	records *records              // flow, dns and tls records (eve.types)
	latency *metrics.AlertLatency // capture to alert written
	enf     *enforcer             // XDP enforcement; nil unless mode enforce on a machine that can
	mode    string                // monitor | enforce | flag-only (enforce asked for, no data path) | learn

	stopBackground func() // stops the profile commits and the XDP heartbeat
	stopControl    func() // closes the control socket
	ready          atomic.Bool
	reloads        atomic.Uint64
	recoveries     atomic.Uint64 // damaged profile states moved aside
	node           string        // this node's name, for alerts
	started        time.Time

	bp *capture.Bypass // kernel bypass shared by every ring; nil: every packet is copied up

	mu       sync.RWMutex
	rings    map[uint64]*watched             // by netns inode
	departed map[uint64]departed             // rings closed lately: their in_iface, for flows still ending
	failed   map[string]string               // namespaces named in the config that could not be opened: why
	naming   map[uint64]*naming              // namespaces whose identity may still improve (attribution.go)
	closed   map[string]metrics.RingCounters // counters of rings already closed, by workload label
	bpClosed bypassClosed                    // kernel bypass counters of rings already closed

	ringGrows, ringShrinks uint64 // ring resizes (rings.go); under mu
	ringResizeFailures     atomic.Uint64
	ringGrowsRefused       atomic.Uint64 // a ring dropped but capture.max_ring_bytes was reached
	pressureEngaged        atomic.Uint64 // rings put under pressure depth
	deferBypass            atomic.Bool   // rings open without the bypass (start-up: it comes after ready)
	ringShrinkAfter        atomic.Int64  // tests shorten ringShrinkAfter
	wg                     sync.WaitGroup
}

// departed is a closed ring's in_iface: its namespace's flows leave the engine later (their
// timeouts, or the flush at shutdown) and their flow records still name the interface.
type departed struct {
	iface string
	at    time.Time
}

// departedFor is how long a closed ring's interface is remembered: past the longest idle
// timeout a flow can have (the flow table's established TCP timeout, 600 s), plus slack.
const departedFor = 11 * time.Minute

// departLocked remembers inode's interface and forgets those older than departedFor, so
// namespace churn keeps the map bounded. Under s.mu.
func (s *Sensor) departLocked(inode uint64, iface string, now time.Time) {
	for k, d := range s.departed {
		if now.Sub(d.at) > departedFor {
			delete(s.departed, k)
		}
	}
	s.departed[inode] = departed{iface: iface, at: now}
}

// ifaceOf is the in_iface of what scope captured: its ring's, or, for a flow ending after its
// ring closed, the one the ring had.
func (s *Sensor) ifaceOf(scope uint64) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if w := s.rings[scope]; w != nil {
		return w.iface
	}
	return s.departed[scope].iface
}

type watched struct {
	ns    capture.Netns
	id    workload.Identity
	alert *alert.Workload // id as alerts show it; shared, never modified, replaced under Sensor.mu (attribution.go)
	ring  *capture.Ring   // replaced (under Sensor.mu) when the ring is resized
	local []netip.Addr    // the namespace's own addresses, read when it was attached
	iface string          // EVE in_iface of its alerts
	label string          // workload label of its metric series (tally)

	scope  uint64
	ifname string
	// Ring sizing (rings.go), touched by the resizer only.
	blocks    int       // blocks of the current ring
	lastDrops uint64    // the ring's drops at the last check
	calm      time.Time // since when the ring has not dropped
	pressure  bool      // the kernel filter copies at most capture.pressure_depth per direction
}

// New builds a sensor from a validated config. Alerts go to stdout unless the config names a
// file.
func New(cfg Config, log *slog.Logger, stdout io.Writer) (*Sensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.CheckEVE(); err != nil {
		return nil, err
	}
	set, err := loadIntel(cfg.Intel.Files)
	if err != nil {
		return nil, err
	}
	s := &Sensor{cfg: cfg, log: log, rings: map[uint64]*watched{}, departed: map[uint64]departed{}, failed: map[string]string{}, node: nodeName(),
		closed: map[string]metrics.RingCounters{}, latency: metrics.NewAlertLatency(), started: time.Now()}
	// Most specific first: what the operator wrote, then the pod's owner, the netns name, and
	// the container ID as the last resort before the inode fallback.
	var static workload.Resolver
	if cfg.Workloads.Static != "" {
		st, err := workload.LoadStatic(cfg.Workloads.Static)
		if err != nil {
			return nil, err
		}
		static = st
	}
	s.names = workload.NewChain(static, &workload.CRI{Endpoints: cfg.Workloads.CRIEndpoints}, workload.KubeEnv{}, &workload.Docker{}, workload.NamedNetns{}, workload.Cgroup{})

	var w io.Writer = stdout
	if cfg.Alerts.Output != "-" {
		f, err := alert.OpenFile(cfg.Alerts.Output)
		if err != nil {
			return nil, fmt.Errorf("opening alert output: %w", err)
		}
		s.outFile, s.out, w = f, f, f
	}
	var aw alert.Writer = alert.NewJSONWriter(w)
	if cfg.Alerts.Format == "text" {
		aw = alert.NewTextWriter(w)
	}
	s.limiter = alert.NewRateLimiter(cfg.Alerts.Rate, cfg.Alerts.Burst)
	s.queue = alert.NewQueue(aw, cfg.Alerts.Queue, s.limiter)
	s.queue.Observe = func(e *alert.Event) { s.latency.Observe(time.Since(e.Timestamp)) }
	stamped := stamp{s: s, next: s.queue}
	s.tally = newTally(stamped, maxWorkloadSeries)
	tu, err := loadTuning(cfg.Alerts.ThresholdFile)
	if err != nil {
		s.queue.Close()
		s.closeOut()
		return nil, err
	}
	// Suppressed and thresholded alerts are not detections: tuning comes first.
	s.tuning = alert.NewTuningSink(tu, s.tally)
	opts := engine.Options{
		Flow: flow.Config{MaxFlows: cfg.Flow.MaxFlows, StreamDepth: cfg.Flow.StreamDepth, Defrag: flow.DefragConfig{
			Memcap: int64(cfg.Flow.DefragMemcap), Timeout: cfg.Flow.DefragTimeout, MaxFrags: cfg.Flow.DefragMaxFrags}},
		Sink:     s.tuning,
		Workload: s.workloadOf,
		FlowSalt: flowSalt(),
	}
	if rt := engine.RecordTypesOf(cfg.EVE.Types); rt != 0 {
		s.records = newRecords(s, cfg.EVE.RecordsRate)
		opts.Records, opts.RecordTypes, opts.FlowSample = s.records, rt, uint32(cfg.EVE.FlowSample)
	}
	var rec *profile.Recovery
	if cfg.Profiles.Enabled {
		b, r, err := openProfiles(cfg)
		if err != nil {
			s.queue.Close()
			s.closeOut()
			return nil, err
		}
		s.book, opts.Profiles, rec = b, b, r
		if rec != nil {
			s.recovered(rec)
		}
		if cfg.Profiles.Backend == "kubernetes" {
			if s.cluster, err = openCluster(cfg, b, s.node, log); err != nil {
				b.Close()
				s.queue.Close()
				s.closeOut()
				return nil, err
			}
		}
	}
	mode := detect.ModeMonitor
	s.mode = cfg.Mode
	if cfg.Mode == "enforce" {
		enf, err := openEnforcer(cfg, log, s.identityOf, stamped)
		if err != nil {
			// No data path: flag only, say once what is missing, and export the mode.
			log.Warn("mode enforce: XDP enforcement is not available, flagging only", "err", err)
			s.mode = "flag-only"
		} else {
			s.enf, opts.Enforcer = enf, enf
			mode = detect.ModeEnforce
			if rec != nil {
				enf.clearProfileBlocks()
			}
		}
	}
	if cfg.Capture.Bypass == "kernel" {
		bp, err := capture.OpenBypass(capture.BypassOptions{MaxFlows: cfg.Capture.BypassFlows, StreamDepth: cfg.Flow.StreamDepth})
		if err != nil {
			// Today's path: every packet copied up. Said once; the mode is exported.
			log.Warn("capture.bypass kernel: the kernel filter cannot be loaded, every packet is copied to user space", "err", err)
		} else {
			s.bp, opts.Offloader = bp, bp
		}
	}
	s.det = detect.New(set, mode)
	s.det.SetDropAlso(cfg.Enforcement.DropAlso())
	opts.Detector = s.det
	eng := engine.New(opts)
	s.pipe = NewPipeline(eng, cfg.Capture.Queue, time.Second)
	return s, nil
}

func (s *Sensor) closeOut() {
	if s.out != nil {
		s.out.Close()
	}
}

// identityOf is the workload identity of a captured scope.
func (s *Sensor) identityOf(scope uint64) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if w := s.rings[scope]; w != nil {
		return w.id.Name
	}
	return workload.Fallback(scope).Name
}

func loadIntel(files []string) (*intel.Set, error) {
	set := intel.Builtin()
	if len(files) == 0 {
		return set, nil
	}
	return set.With(files...)
}

// workloadOf names the workload that addr belongs to in a captured namespace: nil when the
// namespace's own addresses are known and addr is not among them (the remote end of a flow).
func (s *Sensor) workloadOf(scope uint64, addr netip.Addr) *alert.Workload {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if w := s.rings[scope]; w != nil {
		if len(w.local) > 0 && !slices.Contains(w.local, addr.Unmap()) {
			return nil
		}
		return w.alert
	}
	return &alert.Workload{Identity: workload.Fallback(scope).Name, Kind: workload.KindUnknown, Node: s.node}
}

// watching reports whether the netns with this inode is being captured.
func (s *Sensor) watching(inode uint64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rings[inode] != nil
}

// Ready reports whether the sensor has scanned the namespaces and attached to those selected.
func (s *Sensor) Ready() bool { return s.ready.Load() }

// Handler serves the sensor's /metrics, /healthz and /readyz.
func (s *Sensor) Handler() http.Handler {
	reg := metrics.NewLiveRegistry(func() (engine.Stats, string) { return s.pipe.Stats(), "netns" }, s.live, s.latency)
	return metrics.HandlerWith(reg, s.Readiness)
}

func (s *Sensor) live() metrics.Live {
	s.mu.RLock()
	capt := make(map[string]metrics.RingCounters, len(s.closed)+len(s.rings))
	for w, c := range s.closed {
		capt[w] = c
	}
	n := len(s.rings)
	ringBytes, grows, shrinks, pressure := s.ringBytesLocked(), s.ringGrows, s.ringShrinks, s.pressureLocked()
	bypassRings := s.bypassRingsLocked()
	for _, w := range s.rings {
		if st, err := w.ring.Stats(); err == nil {
			capt[w.label] = addRing(capt[w.label], st)
		}
	}
	s.mu.RUnlock()
	det, viol := s.tally.snapshot()
	q := s.queue.Stats()
	sup, thr := s.tuning.Stopped()
	l := metrics.Live{
		AlertsSuppressed: sup, AlertsThresholded: thr,
		Namespaces: n, Capture: capt, Detections: det,
		FramesDropped: s.pipe.Dropped(), AttributionFailures: s.names.Failures(),
		AlertsDropped: q.Dropped, AlertsRateLimited: q.RateLimited, ReloadFailures: s.reloads.Load(),
		StateRecoveries: s.recoveries.Load(),
		Mode:            s.mode, Violations: viol,
		RingBytes: ringBytes, RingGrows: grows, RingShrinks: shrinks, RingResizeFailures: s.ringResizeFailures.Load(),
		RingGrowsRefused: s.ringGrowsRefused.Load(),
		PressureRings:    pressure, PressureEngaged: s.pressureEngaged.Load(), BypassRings: bypassRings,
		EncryptedDNS: s.tally.encDNSSnapshot(),
	}
	if s.records != nil {
		l.Records = s.records.counts(s.pipe.Stats().FlowRecordsSampledOut)
	}
	if l.Mode == "learn" {
		l.Mode = "monitor"
	}
	if s.book != nil {
		st := s.book.Stats()
		l.Profiles = map[string]int{"learning": st.Learning, "monitoring": st.Monitoring, "enforcing": st.Enforcing}
		l.ProfileCap = metrics.ProfileCaps{EntriesCapped: st.EntriesCapped, IPsCapped: st.IPsCapped,
			ProfilesCapped: st.ProfilesCap, PoisonCapped: st.PoisonCapped, Commits: st.Commits, CommitErrors: st.CommitErrors}
	}
	if s.cluster != nil {
		cs := s.cluster.Stats()
		l.ProfileSync = &metrics.ProfileSync{Syncs: cs.Syncs, Writes: cs.Writes, Conflicts: cs.Conflicts, Errors: cs.Errors,
			CatchUps: cs.CatchUps, Adopted: cs.Adopted, Dropped: cs.Dropped, Up: !cs.Down,
			WatchEvents: cs.Events, WatchRestarts: cs.WatchRestarts, Watching: cs.Watching,
			WatchSkipped: cs.Skipped, WatchFetches: cs.Fetches}
	}
	if s.enf != nil {
		l.XDP = s.enf.metrics()
	}
	l.Bypass = s.bypassMetrics()
	return l
}

// Run serves metrics, watches namespaces and captures the selected ones until ctx is done,
// then stops cleanly: rings closed, queued frames and alerts written.
func (s *Sensor) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Web.ListenAddress)
	if err != nil {
		return fmt.Errorf("listening on %s (web.listen_address): %w", s.cfg.Web.ListenAddress, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	if sock := s.cfg.ControlSocket(); sock != "" {
		cl, err := listenControl(sock)
		if err != nil {
			srv.Close()
			s.shutdown()
			return err
		}
		csrv := &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
		go csrv.Serve(cl)
		// Closed before the book is (shutdown), so no request sees a closed state.
		s.stopControl = func() { csrv.Close(); os.Remove(sock) }
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Commits and heartbeats stop first at shutdown, before what they use is closed.
	bgctx, bgcancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	s.stopBackground = func() { bgcancel(); bg.Wait() }
	if s.book != nil {
		bg.Add(1)
		go func() { defer bg.Done(); s.runProfiles(bgctx, s.cfg.Profiles.CommitInterval) }()
	}
	if s.cluster != nil {
		bg.Add(1)
		go func() { defer bg.Done(); s.cluster.Run(bgctx, s.cfg.Profiles.SyncInterval) }()
		// Operators' edits within seconds; the periodic sync above is the backstop.
		bg.Add(1)
		go func() { defer bg.Done(); s.cluster.Watch(bgctx) }()
	}
	if s.enf != nil {
		bg.Add(1)
		go func() { defer bg.Done(); s.enf.run(bgctx) }()
	}
	if slices.Contains(s.cfg.EVE.Types, "stats") {
		bg.Add(1)
		go func() { defer bg.Done(); s.runStats(bgctx, s.cfg.EVE.StatsInterval) }()
	}
	bg.Add(1)
	go func() { defer bg.Done(); s.sizeRings(bgctx, time.Second) }()
	bg.Add(1)
	go func() { defer bg.Done(); s.nameContainers(bgctx, time.Second) }()
	disc := capture.DiscoverOptions{ProcRoot: s.cfg.ProcRoot, IncludeHost: s.cfg.HostNetns}
	// Attach to what exists now before reporting ready; the watcher then reports those again
	// as added, which attach ignores.
	existing, err := capture.Namespaces(disc)
	if err != nil {
		s.shutdown()
		return fmt.Errorf("listing network namespaces (proc_root %s): %w", s.cfg.ProcRoot, err)
	}
	var fatal error
	added := func(ns capture.Netns) {
		if !s.selected(ns) || s.watching(ns.Inode) {
			return
		}
		if err := s.attach(ns); err != nil {
			if errors.Is(err, errNotSelected) {
				if s.named(ns.Name) {
					s.mu.Lock()
					s.failed[ns.Name] = "its workload is not among workloads.select (--workload)"
					s.mu.Unlock()
				}
				return
			}
			if errors.Is(err, os.ErrPermission) && fatal == nil {
				fatal = err
				cancel()
				return
			}
			if s.named(ns.Name) {
				// Asked for by name: not capturing it is an error, and /readyz says so.
				s.mu.Lock()
				s.failed[ns.Name] = err.Error()
				s.mu.Unlock()
				s.log.Error("capturing a namespace asked for", "netns", ns.Name, "err", err)
				return
			}
			s.log.Warn("capturing namespace", "netns", ns.Path, "err", err)
		}
	}
	// What exists at start is captured at once with the classic filter; the kernel bypass,
	// one program load per ring, follows in the background once the sensor is ready.
	s.deferBypass.Store(s.bp != nil)
	for _, ns := range existing {
		added(ns)
	}
	s.deferBypass.Store(false)
	for _, name := range s.cfg.Capture.Interfaces {
		if err := s.attachInterface(name); err != nil {
			s.shutdown()
			return err
		}
	}
	if fatal == nil {
		s.ready.Store(true)
		s.logStarted(ln.Addr().String())
	}
	if s.bp != nil {
		bg.Add(1)
		go func() { defer bg.Done(); s.attachBypassAll(bgctx) }()
	}
	w := capture.NewWatcher(capture.WatchOptions{
		DiscoverOptions: disc,
		OnError:         func(err error) { s.log.Warn("scanning network namespaces", "err", err) },
	})
	err = w.Run(ctx, func(ev capture.NetnsEvent) {
		switch ev.Kind {
		case capture.NetnsAdded:
			added(ev.Netns)
		case capture.NetnsRemoved:
			s.detach(ev.Netns.Inode, true)
		}
	})
	s.ready.Store(false)
	s.shutdown()
	if fatal != nil {
		return fatal
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("watching network namespaces: %w", err)
	}
	q, st := s.queue.Stats(), s.pipe.Stats()
	s.log.Info("minerguard sensor stopped", "packets", st.Packets, "alerts_written", q.Written,
		"alerts_dropped", q.Dropped, "alerts_rate_limited", q.RateLimited)
	return nil
}

func (s *Sensor) selected(ns capture.Netns) bool {
	for _, n := range s.cfg.Netns {
		if n == "all" || n == ns.Name {
			return true
		}
	}
	return false
}

// errNotSelected says a namespace's workload is not among workloads.select.
var errNotSelected = errors.New("workload not selected")

func (s *Sensor) attach(ns capture.Netns) error {
	id := s.names.Resolve(s.netnsInfo(ns))
	s.notePending(ns, id)
	if !s.workloadSelected(id.Name) {
		return errNotSelected
	}
	return s.open(ns, id, ns.Inode, "")
}

func (s *Sensor) workloadSelected(name string) bool {
	if len(s.cfg.Workloads.Select) == 0 {
		return true
	}
	for _, p := range s.cfg.Workloads.Select {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// hostScope marks the scope of a host interface (scope = hostScope | ifindex), apart from
// netns inodes.
const hostScope = 1 << 63

// attachInterface captures a named interface of the sensor's own network namespace.
func (s *Sensor) attachInterface(name string) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("capture.interfaces: %w", err)
	}
	id := workload.Identity{Name: "host/" + name, Kind: workload.KindStatic}
	return s.open(capture.Netns{}, id, hostScope|uint64(ifc.Index), name)
}

func (s *Sensor) open(ns capture.Netns, id workload.Identity, scope uint64, ifname string) error {
	r, err := s.openRing(ns, scope, ifname, s.cfg.Capture.Blocks)
	if err != nil {
		return err
	}
	if _, on := r.BypassStats(); s.bp != nil && !on && !s.deferBypass.Load() {
		s.log.Warn("capturing without the kernel bypass: its filter could not be attached to this ring", "netns", ns.Path, "workload", id.Name)
	}
	aw := s.alertWorkload(ns, id)
	// A namespace's own addresses tell its egress from connections made to it. A host
	// interface gets none: it may carry other hosts' traffic (a bridge, a SPAN port), all of
	// it attributed to the interface's workload.
	var local []netip.Addr
	if ifname == "" {
		if local, err = capture.Addresses(ns); err != nil {
			// Without them every flow counts as the workload's own: alerts still name it,
			// and inbound connections are checked against its egress profile too.
			s.log.Warn("listing the namespace's addresses", "netns", ns.Path, "err", err)
		}
	}
	iface := captureIface(ns, ifname)
	label := s.tally.Label(id.Name, id.Kind)
	s.mu.Lock()
	if s.rings[scope] != nil {
		// Attached meanwhile: the watcher and a late naming (attribution.go) both may.
		s.mu.Unlock()
		r.Close()
		return nil
	}
	s.rings[scope] = &watched{ns: ns, id: id, alert: aw, ring: r, local: local, iface: iface, label: label,
		scope: scope, ifname: ifname, blocks: s.cfg.Capture.Blocks, calm: time.Now()}
	delete(s.failed, ns.Name)
	s.mu.Unlock()
	if s.cluster != nil {
		// Before the first packet is read (the ring holds them): a workload the cluster
		// already profiled is judged by that profile from its first flow on this node.
		s.adopt(id.Name)
	}
	if s.book != nil && id.Image != "" {
		s.book.SetImage(id.Name, id.Image, time.Now())
	}
	if s.enf != nil && ns.Path != "" {
		s.enf.attach(ns, id.Name)
	}
	s.log.Info("capturing", "netns", ns.Path, "workload", id.Name)
	s.read(r, scope)
	return nil
}

// read feeds the pipeline from r until r is closed.
func (s *Sensor) read(r *capture.Ring, scope uint64) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var f capture.Frame
		for {
			if err := r.Next(&f); err != nil {
				return // closed, or the namespace is gone
			}
			s.pipe.Submit(flow.LinkType(f.LinkType), f.Data, f.Timestamp, scope)
		}
	}()
}

// detach stops capturing a namespace. gone says the namespace was deleted: its XDP links go
// too. At shutdown they stay pinned, in flag-only mode, for the next start to re-adopt.
func (s *Sensor) detach(inode uint64, gone bool) {
	s.mu.Lock()
	w := s.rings[inode]
	delete(s.rings, inode)
	if gone {
		delete(s.naming, inode)
	}
	if w != nil {
		s.departLocked(inode, w.iface, time.Now())
	}
	last := false // no other namespace of w's workload is captured
	if w != nil {
		last = !slices.ContainsFunc(slices.Collect(maps.Values(s.rings)), func(o *watched) bool { return o.id.Name == w.id.Name })
		if st, err := w.ring.Stats(); err == nil {
			s.closed[w.label] = addRing(s.closed[w.label], st)
		}
		if last && gone && w.label != "unknown" && w.label != "other" {
			// The workload is gone from this node: its series go with it.
			delete(s.closed, w.label)
		}
	}
	s.mu.Unlock()
	if w == nil {
		return
	}
	if last && gone {
		s.tally.forget(w.id.Name)
	}
	w.ring.Close()
	if bs, on := w.ring.BypassStats(); on {
		s.mu.Lock()
		s.bpClosed.add(w.label, bs, s.labelCapturedLocked(w.label))
		s.mu.Unlock()
	}
	if gone && s.enf != nil && w.ns.Path != "" {
		s.enf.detach(inode)
	}
	s.limiter.Forget(w.id.Name)
	s.log.Info("namespace gone", "netns", w.ns.Path, "workload", w.id.Name)
}

func (s *Sensor) shutdown() {
	if s.stopControl != nil {
		s.stopControl()
	}
	if s.stopBackground != nil {
		s.stopBackground()
	}
	s.mu.Lock()
	var all []uint64
	for ino := range s.rings {
		all = append(all, ino)
	}
	s.mu.Unlock()
	for _, ino := range all {
		s.detach(ino, false)
	}
	s.wg.Wait()
	s.pipe.Close()
	if s.bp != nil {
		s.bp.Close()
	}
	s.queue.Close()
	s.closeOut()
	if s.enf != nil {
		s.enf.stop()
	}
	if s.book != nil {
		if err := s.book.Commit(); err != nil {
			s.log.Warn("committing learned profiles", "err", err)
		}
		s.book.Close()
	}
}

// Reload applies a new config on SIGHUP: intel lists are swapped and the alert file is
// reopened (log rotation). A config that does not load is refused and counted, and the
// running one stays. Keys that need a restart are reported.
func (s *Sensor) Reload(path string) error {
	if s.outFile != nil {
		if err := s.outFile.Reopen(); err != nil {
			s.log.Warn("reopening alert output", "err", err)
		}
	}
	cfg := s.cfg
	if path != "" {
		c, err := Load(path)
		if err != nil {
			s.reloads.Add(1)
			return err
		}
		cfg = c
	}
	set, err := loadIntel(cfg.Intel.Files)
	if err != nil {
		s.reloads.Add(1)
		return err
	}
	tu, err := loadTuning(cfg.Alerts.ThresholdFile)
	if err != nil {
		s.reloads.Add(1)
		return err
	}
	s.det.SetIntel(set)
	s.det.SetDropAlso(cfg.Enforcement.DropAlso())
	s.tuning.Set(tu)
	if s.enf != nil {
		// Per-workload modes may have changed: apply them to every attached workload.
		s.enf.setOverrides(cfg.Enforcement.Workloads)
		s.mu.RLock()
		var ids []string
		for _, w := range s.rings {
			if w.ns.Path != "" {
				ids = append(ids, w.id.Name)
			}
		}
		s.mu.RUnlock()
		for _, id := range ids {
			s.enf.applyMode(id)
		}
	}
	return nil
}

// loadTuning reads alerts.threshold_file; "" is no tuning.
func loadTuning(file string) (*alert.Tuning, error) {
	if file == "" {
		return nil, nil
	}
	t, err := alert.LoadTuning(file)
	if err != nil {
		return nil, fmt.Errorf("alerts.threshold_file: %w", err)
	}
	return t, nil
}

// addRing adds a ring's counters to a workload's.
func addRing(c metrics.RingCounters, st capture.RingStats) metrics.RingCounters {
	c.Packets += st.Packets
	c.Dropped += st.Drops
	c.Freezes += st.Freezes
	return c
}

// nodeName is the node alerts name: NODE_NAME (set from the downward API in the DaemonSet),
// else the host name.
func nodeName() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()
	return n
}
