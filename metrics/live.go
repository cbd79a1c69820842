package metrics

import (
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/minerguard/minerguard/internal/version"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Live are the live sensor's own counters, read at scrape time.
type Live struct {
	Namespaces          int    // network namespaces being captured
	RingPackets         uint64 // packets the kernel rings delivered
	RingDrops           uint64 // packets the kernel dropped because a ring was full
	RingFreezes         uint64 // times a ring's queue froze (TPACKET_V3)
	FramesDropped       uint64 // frames dropped because the pipeline queue was full
	AttributionFailures uint64 // namespaces whose workload could not be named
	AlertsDropped       uint64 // alerts dropped because the alert queue was full
	AlertsRateLimited   uint64 // alerts dropped by the per-workload rate limit
	ReloadFailures      uint64 // SIGHUP reloads refused (the old config stays)
	Mode                string // monitor | enforce | flag-only (enforce asked for, no data path)

	Profiles   map[string]int    // learned profiles by state (learning, monitoring, enforcing)
	Violations map[string]uint64 // out-of-profile flows by workload identity (bounded by workloads)
	ProfileCap ProfileCaps
	XDP        XDP
}

// ProfileCaps count the profile book's caps being hit and its commits.
type ProfileCaps struct {
	EntriesCapped, IPsCapped, ProfilesCapped, PoisonCapped, Commits, CommitErrors uint64
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
	attribution, alertsDropped, alertsLimited, reloads, mode    *prometheus.Desc
	profiles, violations, profCapped, profCommits, profErrors   *prometheus.Desc
	xdpAttached, xdpPackets, xdpMapFull, xdpFailures, xdpPruned *prometheus.Desc
}

func newLiveCollector(src func() Live) *liveCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("minerguard_"+name, help, labels, nil)
	}
	return &liveCollector{
		src:           src,
		namespaces:    d("namespaces_monitored", "Network namespaces being captured."),
		ringPackets:   d("ring_packets_total", "Packets delivered by the kernel capture rings."),
		ringDrops:     d("ring_drops_total", "Packets the kernel dropped because a capture ring was full."),
		ringFreezes:   d("ring_freezes_total", "Times a capture ring's queue froze."),
		frameDrops:    d("pipeline_frames_dropped_total", "Frames dropped because the pipeline queue was full."),
		attribution:   d("attribution_failures_total", "Namespaces whose workload could not be named (a fallback name was used)."),
		alertsDropped: d("alerts_dropped_total", "Alerts not written, by reason.", "reason"),
		alertsLimited: d("alerts_rate_limited_total", "Alerts dropped by the per-workload rate limit."),
		reloads:       d("reload_failures_total", "Configuration or intel reloads refused; the previous one stays in force."),
		mode:          d("enforcement_mode", "1 for the mode the sensor runs in.", "mode"),
		profiles:      d("profiles", "Learned egress profiles by state.", "state"),
		violations:    d("profile_violations_total", "Flows to destinations outside their workload's learned profile, by workload.", "workload"),
		profCapped:    d("profile_caps_hit_total", "Destinations not learned because a profile cap was reached, by cap.", "cap"),
		profCommits:   d("profile_commits_total", "Learned batches committed to the profile state."),
		profErrors:    d("profile_commit_errors_total", "Learned batches that failed to commit (kept in memory and retried)."),
		xdpAttached:   d("xdp_attached_interfaces", "Interfaces with the XDP enforcement program attached."),
		xdpPackets:    d("xdp_packets_total", "Packets seen by the XDP enforcement program, by action and match.", "action", "match"),
		xdpMapFull:    d("xdp_map_full_total", "Blocks refused because an XDP map was full; the workload was switched to flag-only."),
		xdpFailures:   d("xdp_failures_total", "XDP attachments, mode changes and blocks that failed (the workload is flagged only)."),
		xdpPruned:     d("xdp_flow_blocks_pruned_total", "Flow blocks removed because no packet hit them for enforcement.stale_flow_block."),
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
	n(c.ringPackets, l.RingPackets)
	n(c.ringDrops, l.RingDrops)
	n(c.ringFreezes, l.RingFreezes)
	n(c.frameDrops, l.FramesDropped)
	n(c.attribution, l.AttributionFailures)
	n(c.alertsDropped, l.AlertsDropped, "queue_full")
	n(c.alertsLimited, l.AlertsRateLimited)
	n(c.reloads, l.ReloadFailures)
	mode := l.Mode
	if mode == "" {
		mode = "monitor"
	}
	for _, m := range []string{"monitor", "enforce", "flag-only"} {
		v := 0.0
		if m == mode {
			v = 1
		}
		g(c.mode, v, m)
	}
	for _, st := range []string{"learning", "monitoring", "enforcing"} {
		g(c.profiles, float64(l.Profiles[st]), st)
	}
	for w, v := range l.Violations {
		n(c.violations, v, w)
	}
	n(c.profCapped, l.ProfileCap.EntriesCapped, "entries")
	n(c.profCapped, l.ProfileCap.IPsCapped, "ips_per_name")
	n(c.profCapped, l.ProfileCap.ProfilesCapped, "workloads")
	n(c.profCapped, l.ProfileCap.PoisonCapped, "poisoned")
	n(c.profCommits, l.ProfileCap.Commits)
	n(c.profErrors, l.ProfileCap.CommitErrors)
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
}

// NewLiveRegistry exposes the engine counters of src, the sensor's own counters, Go runtime
// and process metrics, and build information.
func NewLiveRegistry(src Source, live func() Live) *prometheus.Registry {
	r := NewRegistry(src)
	r.MustRegister(newLiveCollector(live), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	return r
}

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
