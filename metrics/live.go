package metrics

import (
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/minerguard/minerguard/internal/version"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Live are the live sensor's own counters, read at scrape time. The maps keyed by workload
// are bounded by the sensor (a capped set of identities, the rest folded into "unknown" or
// "other"); a workload that is gone has no key, so its series goes.
type Live struct {
	Namespaces          int                     // network namespaces being captured
	Capture             map[string]RingCounters // kernel ring counters by workload identity
	Detections          map[Detection]uint64    // alerts raised, by workload, detector and action
	FramesDropped       uint64                  // frames dropped because the pipeline queue was full
	AttributionFailures uint64                  // namespaces whose workload could not be named
	AlertsDropped       uint64                  // alerts dropped because the alert queue was full
	AlertsRateLimited   uint64                  // alerts dropped by the per-workload rate limit
	AlertsSuppressed    uint64                  // alerts a suppress rule of the threshold file stopped
	AlertsThresholded   uint64                  // alerts over a threshold of the threshold file
	ReloadFailures      uint64                  // SIGHUP reloads refused (the old config stays)
	StateRecoveries     uint64                  // damaged profile states moved aside (the sensor started empty)
	Mode                string                  // monitor | enforce | flag-only (enforce asked for, no data path)
	RingBytes           int                     // memory of the open capture rings
	RingGrows           uint64                  // rings re-created larger because they dropped
	RingShrinks         uint64                  // grown rings back to the default size after a calm period
	RingGrowsRefused    uint64                  // rings that dropped but could not grow: all rings together hit their budget
	RingResizeFailures  uint64                  // resizes that could not open the new ring (the old one stays)
	PressureRings       int                     // rings whose flows get only capture.pressure_depth bytes (they dropped lately)
	PressureEngaged     uint64                  // times a ring was put under pressure
	BypassRings         int                     // rings with the kernel bypass attached (the others copy every packet)

	Profiles   map[string]int    // learned profiles by state (learning, monitoring, enforcing)
	Violations map[string]uint64 // out-of-profile flows by workload identity (bounded by workloads)
	// EncryptedDNS counts flows recorded as encrypted DNS by workload identity (same bound).
	EncryptedDNS map[string]uint64
	ProfileCap   ProfileCaps
	// ProfileSync is the cluster profile sync's counters (profiles.backend kubernetes); nil
	// without it.
	ProfileSync *ProfileSync
	XDP         XDP
	Bypass      Bypass

	// Records counts the EVE records written beside alerts (eve.types flow, dns, tls) by type.
	Records map[string]RecordCounts
}

// RecordCounts are the counters of one type of EVE record written beside alerts.
type RecordCounts struct {
	Written     uint64
	SampledOut  uint64 // flow records eve.flow_sample left out
	RateLimited uint64 // over eve.records_rate
	QueueFull   uint64 // the alert queue was half full: alerts keep the room
}

// RingCounters are the kernel capture rings' counters of one workload's namespaces.
type RingCounters struct {
	Packets uint64 // packets the kernel rings delivered
	Dropped uint64 // packets the kernel dropped because a ring was full
	Freezes uint64 // times a ring's queue froze (TPACKET_V3)
}

// Rings sums the ring counters of every workload.
func (l Live) Rings() RingCounters {
	var t RingCounters
	for _, c := range l.Capture {
		t.Packets, t.Dropped, t.Freezes = t.Packets+c.Packets, t.Dropped+c.Dropped, t.Freezes+c.Freezes
	}
	return t
}

// Detection is one series of minerguard_detections_total on the live sensor.
type Detection struct {
	Workload, Detector, Action string // action: flag or drop
}

// Bypass are the capture bypass's counters (the kernel socket filter on each ring), summed
// over rings and CPUs.
type Bypass struct {
	Mode      string                 // kernel | userspace (the filter could not load, or capture.bypass off)
	Workloads map[string]BypassCount // not copied up, by workload identity (bounded by workloads captured)
	Bypassed  uint64                 // packets not copied up (all workloads)
	Cut       uint64                 // packets copied as headers plus the payload still wanted
	Passed    uint64                 // packets copied whole
	Flows     uint64                 // kernel flow entries created
	Midstream uint64                 // of which first seen without their SYN (older than the capture, or forgotten by the LRU)
	MapFull   uint64                 // flows the kernel could not store (their packets copied whole)
	NotParsed uint64                 // packets the filter does not read (fragments, extension headers, non-IP): copied whole
	// RingFailures are rings that could not attach the filter and copy every packet;
	// DoneErrors are "flow done" updates the kernel refused (the flow stays copied up).
	RingFailures, DoneErrors uint64
}

// BypassCount is one workload's traffic the kernel kept out of the rings.
type BypassCount struct{ Packets, Bytes uint64 }

// ProfileCaps count the profile book's caps being hit and its commits.
type ProfileCaps struct {
	EntriesCapped, IPsCapped, ProfilesCapped, PoisonCapped, Commits, CommitErrors uint64
}

// ProfileSync counts the merges of the node's profiles with the cluster's WorkloadProfiles.
type ProfileSync struct {
	Syncs, Writes, Conflicts, Errors, CatchUps, Adopted, Dropped uint64
	Up                                                           bool // the last request to the API server succeeded
	// The watch of operators' edits.
	WatchEvents, WatchRestarts uint64
	Watching                   bool // a watch is established
	// Events of known workloads that fetched nothing (only status or metadata changed), and
	// resources fetched because their generation moved.
	WatchSkipped, WatchFetches uint64
}

// XDP are the enforcement data path's counters, summed over CPUs.
type XDP struct {
	Attached                 int    // interfaces with the program attached
	Passed                   uint64 // packets passed
	DroppedFlow, DroppedDest uint64 // packets dropped by a blocked flow / destination
	FlaggedFlow, FlaggedDest uint64 // matches in flag-only mode (counted, passed)
	FailedOpen               uint64 // packets passed because the sensor's heartbeat expired
	NotParsed                uint64 // frames the program could not parse (passed)
	MapFull                  uint64 // blocks refused because a map was full (workload set to flag-only)
	Pruned                   uint64 // flow blocks removed because no packet hit them for a while
	Failures                 uint64 // attachments, mode changes and blocks the sensor could not make
}

type liveCollector struct {
	src                                                         func() Live
	namespaces, ringPackets, ringDrops, ringFreezes, frameDrops *prometheus.Desc
	attribution, alertsDropped, reloads, mode, detections       *prometheus.Desc
	recoveries                                                  *prometheus.Desc
	profiles, violations, profCapped, profCommits, profErrors   *prometheus.Desc
	encDNS, eveRecords, eveRecordsDropped                       *prometheus.Desc
	syncs, syncErrors, syncConflicts, syncCatchUps, syncAdopted *prometheus.Desc
	syncWrites, syncDropped, syncUp                             *prometheus.Desc
	watchEvents, watchRestarts, watching                        *prometheus.Desc
	watchSkipped, watchFetches                                  *prometheus.Desc
	xdpAttached, xdpPackets, xdpMapFull, xdpFailures, xdpPruned *prometheus.Desc
	bpMode, bpPackets, bpBytes, bpFilter, bpFlows, bpMapFull    *prometheus.Desc
	bpFailures, bpDoneErrors, bpNotParsed, drops                *prometheus.Desc
	ringBytes, ringResizes, ringResizeFailures                  *prometheus.Desc
	pressureRings, pressureEngaged, bypassRings                 *prometheus.Desc
}

func newLiveCollector(src func() Live) *liveCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("minerguard_"+name, help, labels, nil)
	}
	return &liveCollector{
		src:                src,
		namespaces:         d("namespaces_monitored", "Network namespaces being captured."),
		ringPackets:        d("ring_packets_total", "Packets delivered by the kernel capture rings, by workload.", "workload"),
		ringDrops:          d("ring_packets_dropped_total", "Packets the kernel dropped because a capture ring was full, by workload.", "workload"),
		ringFreezes:        d("ring_freezes_total", "Times a capture ring's queue froze, by workload.", "workload"),
		frameDrops:         d("pipeline_frames_dropped_total", "Frames dropped because the pipeline queue was full."),
		attribution:        d("attribution_failures_total", "Namespaces whose workload could not be named (a fallback name was used)."),
		alertsDropped:      d("alerts_dropped_total", "Alerts not written, by reason: queue_full, rate_limited (per workload), suppressed, thresholded (alerts.threshold_file).", "reason"),
		detections:         d("detections_total", "Alerts raised, by workload, detector and action.", "source", "workload", "detector", "action"),
		reloads:            d("reload_failures_total", "Configuration or intel reloads refused; the previous one stays in force."),
		recoveries:         d("state_recoveries_total", "Damaged profile state files moved aside at start; the sensor started with no profiles."),
		mode:               d("enforcement_mode", "1 for the mode the sensor runs in.", "mode"),
		profiles:           d("profiles", "Learned egress profiles by state.", "state"),
		violations:         d("profile_violations_total", "Flows to destinations outside their workload's learned profile, by workload.", "workload"),
		profCapped:         d("profile_caps_hit_total", "Destinations not learned because a profile cap was reached, by cap.", "cap"),
		profCommits:        d("profile_commits_total", "Learned batches committed to the profile state."),
		profErrors:         d("profile_commit_errors_total", "Learned batches that failed to commit (kept in memory and retried)."),
		syncs:              d("profile_cluster_syncs_total", "Workload profiles merged with their cluster WorkloadProfile (profiles.backend kubernetes)."),
		syncErrors:         d("profile_cluster_sync_errors_total", "Cluster profile syncs that failed (API server down or refusing): the node judges from its cache and catches up."),
		syncConflicts:      d("profile_cluster_conflicts_total", "WorkloadProfile writes that lost a compare-and-swap to another node and were merged again."),
		syncWrites:         d("profile_cluster_writes_total", "WorkloadProfile writes (spec or status) that succeeded."),
		syncCatchUps:       d("profile_cluster_catchups_total", "Times the API server came back and what the node learned meanwhile was pushed."),
		syncAdopted:        d("profile_cluster_adopted_total", "Workloads new to this node that took the cluster's profile before their first flow."),
		syncDropped:        d("profile_cluster_dropped_total", "Destinations a WorkloadProfile's cap (spec.maxEntries) left out."),
		syncUp:             d("profile_cluster_up", "1 when the last request to the API server succeeded."),
		watchEvents:        d("profile_cluster_watch_events_total", "WorkloadProfile changes received by the watch that brings operators' edits within seconds."),
		watchRestarts:      d("profile_cluster_watch_restarts_total", "Times the WorkloadProfile watch was established again after the API server went away or dropped it."),
		watchSkipped:       d("profile_cluster_watch_skipped_total", "WorkloadProfile events of this node's workloads that fetched nothing: only status or metadata changed (the watch reads metadata only)."),
		watchFetches:       d("profile_cluster_watch_fetches_total", "WorkloadProfiles read in full because the watch saw their generation (spec) move."),
		watching:           d("profile_cluster_watching", "1 while the WorkloadProfile watch is established (0: edits arrive by the periodic sync)."),
		xdpAttached:        d("xdp_attached_interfaces", "Interfaces with the XDP enforcement program attached."),
		xdpPackets:         d("xdp_packets_total", "Packets seen by the XDP enforcement program, by action and match.", "action", "match"),
		xdpMapFull:         d("xdp_map_full_total", "Blocks refused because an XDP map was full; the workload was switched to flag-only."),
		xdpFailures:        d("xdp_failures_total", "XDP attachments, mode changes and blocks that failed (the workload is flagged only)."),
		xdpPruned:          d("xdp_flow_blocks_pruned_total", "Flow blocks removed because no packet hit them for enforcement.stale_flow_block."),
		bpMode:             d("capture_bypass", "1 for where bulk traffic is turned away: kernel (socket filter per ring) or userspace (every packet copied up).", "mode"),
		bpPackets:          d("bypassed_packets_total", "Packets the kernel filter kept out of the capture rings (flow done, or past its stream depth), by workload.", "workload"),
		bpBytes:            d("bypassed_bytes_total", "Frame bytes the kernel filter kept out of the capture rings, by workload.", "workload"),
		bpFilter:           d("capture_filter_packets_total", "Packets seen by the kernel capture filter, by what was copied up: none, headers (plus the payload still wanted), whole.", "copied"),
		bpFlows:            d("capture_bypass_flows_total", "Flow entries the kernel filter created, by how the flow was first seen (syn, or midstream: older than the capture, or forgotten by the LRU map).", "first_seen"),
		bpMapFull:          d("capture_bypass_map_full_total", "Flows the kernel filter could not store; their packets were copied whole."),
		bpNotParsed:        d("capture_bypass_not_parsed_total", "Packets the kernel filter does not read (non-IP, fragments, IPv6 extension headers, bad headers); copied whole."),
		bpFailures:         d("capture_bypass_ring_failures_total", "Rings that could not attach the kernel filter and copy every packet."),
		bpDoneErrors:       d("capture_bypass_done_errors_total", "Flow-done updates the kernel refused (the flow stays copied up)."),
		ringBytes:          d("ring_bytes", "Memory of the open capture rings."),
		pressureRings:      d("capture_pressure_rings", "Rings under pressure: they dropped lately, so the kernel filter copies only capture.pressure_depth bytes of each new TCP direction."),
		pressureEngaged:    d("capture_pressure_total", "Times a ring was put under pressure depth."),
		bypassRings:        d("capture_bypass_rings", "Rings with the kernel bypass attached; at start it follows readiness in the background, so this reaches namespaces_monitored shortly after."),
		ringResizes:        d("ring_resizes_total", "Capture rings re-created: grow (it dropped packets), shrink (calm again), or refused (it dropped, but all rings together reached capture.max_ring_bytes).", "direction"),
		ringResizeFailures: d("ring_resize_failures_total", "Ring resizes that could not open the new ring (the old one stays)."),
		drops:              d("capture_drops_total", "Packets lost on the way to the engine, by reason: ring_full (kernel ring), queue_full (pipeline queue).", "reason"),
		eveRecords:         d("eve_records_total", "EVE records written beside alerts (eve.types), by type: flow, dns, tls.", "type"),
		eveRecordsDropped:  d("eve_records_dropped_total", "EVE records not written, by type and reason: sampled_out (eve.flow_sample), rate_limited (eve.records_rate), queue_full (the alert queue was half full: alerts keep the room).", "type", "reason"),
		encDNS:             d("workload_encrypted_dns_flows_total", "Flows carrying encrypted DNS (DoT, DoH), by workload: a fact recorded, not an alert.", "workload"),
	}
}

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.src()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	n := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g(c.namespaces, float64(l.Namespaces))
	for w, r := range l.Capture {
		n(c.ringPackets, r.Packets, w)
		n(c.ringDrops, r.Dropped, w)
		n(c.ringFreezes, r.Freezes, w)
	}
	for d, v := range l.Detections {
		n(c.detections, v, "netns", d.Workload, d.Detector, d.Action)
	}
	n(c.frameDrops, l.FramesDropped)
	n(c.attribution, l.AttributionFailures)
	n(c.alertsDropped, l.AlertsDropped, "queue_full")
	n(c.alertsDropped, l.AlertsRateLimited, "rate_limited")
	n(c.alertsDropped, l.AlertsSuppressed, "suppressed")
	n(c.alertsDropped, l.AlertsThresholded, "thresholded")
	n(c.reloads, l.ReloadFailures)
	n(c.recoveries, l.StateRecoveries)
	mode := l.Mode
	if mode == "" {
		mode = "monitor"
	}
	for _, m := range []string{"monitor", "enforce", "flag-only"} {
		g(c.mode, one(m == mode), m)
	}
	for _, st := range []string{"learning", "monitoring", "enforcing"} {
		g(c.profiles, float64(l.Profiles[st]), st)
	}
	for w, v := range l.Violations {
		n(c.violations, v, w)
	}
	for w, v := range l.EncryptedDNS {
		n(c.encDNS, v, w)
	}
	for t, r := range l.Records {
		n(c.eveRecords, r.Written, t)
		n(c.eveRecordsDropped, r.RateLimited, t, "rate_limited")
		n(c.eveRecordsDropped, r.QueueFull, t, "queue_full")
		if t == "flow" {
			n(c.eveRecordsDropped, r.SampledOut, t, "sampled_out")
		}
	}
	n(c.profCapped, l.ProfileCap.EntriesCapped, "entries")
	n(c.profCapped, l.ProfileCap.IPsCapped, "ips_per_name")
	n(c.profCapped, l.ProfileCap.ProfilesCapped, "workloads")
	n(c.profCapped, l.ProfileCap.PoisonCapped, "poisoned")
	n(c.profCommits, l.ProfileCap.Commits)
	n(c.profErrors, l.ProfileCap.CommitErrors)
	if ps := l.ProfileSync; ps != nil {
		n(c.syncs, ps.Syncs)
		n(c.syncErrors, ps.Errors)
		n(c.syncConflicts, ps.Conflicts)
		n(c.syncWrites, ps.Writes)
		n(c.syncCatchUps, ps.CatchUps)
		n(c.syncAdopted, ps.Adopted)
		n(c.syncDropped, ps.Dropped)
		g(c.syncUp, one(ps.Up))
		n(c.watchEvents, ps.WatchEvents)
		n(c.watchRestarts, ps.WatchRestarts)
		n(c.watchSkipped, ps.WatchSkipped)
		n(c.watchFetches, ps.WatchFetches)
		g(c.watching, one(ps.Watching))
	}
	x := l.XDP
	g(c.xdpAttached, float64(x.Attached))
	n(c.xdpPackets, x.Passed, "pass", "none")
	n(c.xdpPackets, x.DroppedFlow, "drop", "flow")
	n(c.xdpPackets, x.DroppedDest, "drop", "destination")
	n(c.xdpPackets, x.FlaggedFlow, "flag", "flow")
	n(c.xdpPackets, x.FlaggedDest, "flag", "destination")
	n(c.xdpPackets, x.FailedOpen, "pass", "heartbeat_expired")
	n(c.xdpPackets, x.NotParsed, "pass", "not_parsed")
	n(c.xdpMapFull, x.MapFull)
	n(c.xdpFailures, x.Failures)
	n(c.xdpPruned, x.Pruned)
	b := l.Bypass
	for _, m := range []string{"kernel", "userspace"} {
		g(c.bpMode, one(m == b.Mode || (b.Mode == "" && m == "userspace")), m)
	}
	for w, v := range b.Workloads {
		n(c.bpPackets, v.Packets, w)
		n(c.bpBytes, v.Bytes, w)
	}
	n(c.bpFilter, b.Bypassed, "none")
	n(c.bpFilter, b.Cut, "headers")
	n(c.bpFilter, b.Passed, "whole")
	n(c.bpFlows, b.Flows-min(b.Midstream, b.Flows), "syn")
	n(c.bpFlows, b.Midstream, "midstream")
	n(c.bpMapFull, b.MapFull)
	n(c.bpNotParsed, b.NotParsed)
	n(c.bpFailures, b.RingFailures)
	n(c.bpDoneErrors, b.DoneErrors)
	g(c.ringBytes, float64(l.RingBytes))
	g(c.pressureRings, float64(l.PressureRings))
	g(c.bypassRings, float64(l.BypassRings))
	n(c.pressureEngaged, l.PressureEngaged)
	n(c.ringResizes, l.RingGrows, "grow")
	n(c.ringResizes, l.RingShrinks, "shrink")
	n(c.ringResizes, l.RingGrowsRefused, "refused")
	n(c.ringResizeFailures, l.RingResizeFailures)
	n(c.drops, l.Rings().Dropped, "ring_full")
	n(c.drops, l.FramesDropped, "queue_full")
}

// NewLiveRegistry exposes the engine counters of src (detections come from live, by
// workload), the sensor's own counters, Go runtime and process metrics, build information
// and extra collectors (an AlertLatency).
func NewLiveRegistry(src Source, live func() Live, extra ...prometheus.Collector) *prometheus.Registry {
	r := prometheus.NewRegistry()
	ec := newCollector(src)
	ec.detections = nil
	r.MustRegister(ec, newLiveCollector(live), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	r.MustRegister(extra...)
	return r
}

// AlertLatency is the histogram of the time from the capture of the packet that raised an
// alert to the alert being written. It is observed off the packet path (the alert writer).
type AlertLatency struct{ h prometheus.Histogram }

// NewAlertLatency makes the histogram; register it with NewLiveRegistry.
func NewAlertLatency() *AlertLatency {
	return &AlertLatency{prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "minerguard_alert_latency_seconds",
		Help: "Time from the capture of the packet that raised an alert to the alert being written.",
		// From the ring's block timeout (4 ms) to a backed-up queue.
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})}
}

// Observe records one alert's latency (negative, from a clock step, counts as 0).
func (a *AlertLatency) Observe(d time.Duration) { a.h.Observe(max(d, 0).Seconds()) }

// Describe implements prometheus.Collector.
func (a *AlertLatency) Describe(ch chan<- *prometheus.Desc) { a.h.Describe(ch) }

// Collect implements prometheus.Collector.
func (a *AlertLatency) Collect(ch chan<- prometheus.Metric) { a.h.Collect(ch) }

func buildInfo() prometheus.Collector {
	v := version.Get() // the same as minerguard --version says
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "minerguard_build_info",
		Help: "Build information (as minerguard --version); always 1."}, []string{"version", "revision", "goversion", "goos", "goarch"})
	g.WithLabelValues(v.Version, v.Revision, v.GoVersion, v.GOOS, v.GOARCH).Set(1)
	return g
}

// Handler serves /metrics, /healthz (the process is alive) and /readyz (ready reports the
// sensor capturing). Only GET and HEAD are answered, so scanners cannot create series.
func Handler(reg *prometheus.Registry, ready *atomic.Bool) http.Handler {
	return HandlerWith(reg, func() error {
		if !ready.Load() {
			return errors.New("no capture running yet")
		}
		return nil
	})
}

// HandlerWith is Handler with a readiness check that says why it is not ready: /readyz
// answers 503 with "not ready: <reason>" while check fails.
func HandlerWith(reg *prometheus.Registry, check func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := check(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// one is a gauge's value for a condition: 1 when it holds, else 0.
func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
