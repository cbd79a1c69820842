package metrics

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/internal/version"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestExposition(t *testing.T) {
	var st engine.Stats
	st.Packets = 10
	st.Decode[flow.ErrTruncated] = 3
	st.Alerts[detect.ReasonStratum] = 2
	st.Flow.Evicted.Cap = 5
	st.InspectDeferred = 7
	st.InspectReclaimed[engine.ReclaimFair] = 4
	st.DNSIncomplete = 4
	st.Defrag.Reassembled, st.Defrag.Memcap, st.Defrag.Overlaps, st.Defrag.OverlapMismatch = 6, 2, 3, 1
	reg := NewRegistry(func() (engine.Stats, string) { return st, "replay" })
	want := `
# HELP minerguard_packets_total Packets read.
# TYPE minerguard_packets_total counter
minerguard_packets_total{source="replay"} 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "minerguard_packets_total"); err != nil {
		t.Error(err)
	}
	var b bytes.Buffer
	if err := WriteText(&b, reg); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`minerguard_decode_errors_total{protocol="packet",reason="truncated",source="replay"} 3`,
		`minerguard_detections_total{action="flag",detector="stratum",source="replay"} 2`,
		`minerguard_flow_evictions_total{reason="cap",source="replay"} 5`,
		`minerguard_inspect_deferred_total{source="replay"} 7`,
		`minerguard_inspect_reclaimed_total{reason="fair_share",source="replay"} 4`,
		`minerguard_inspect_reclaimed_total{reason="age",source="replay"} 0`,
		`minerguard_dns_tcp_incomplete_total{source="replay"} 4`,
		`minerguard_defrag_reassembled_total{source="replay"} 6`,
		`minerguard_defrag_dropped_total{reason="memcap",source="replay"} 2`,
		`minerguard_defrag_overlaps_total{data="different",source="replay"} 1`,
		`minerguard_defrag_overlaps_total{data="same",source="replay"} 2`,
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("missing %s in\n%s", line, b.String())
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// docs/testing.md P1 in miniature: the number of series does not depend on traffic.
func TestSeriesIndependentOfFlows(t *testing.T) {
	var st engine.Stats
	reg := NewRegistry(func() (engine.Stats, string) { return st, "replay" })
	before, _ := testutil.GatherAndCount(reg)
	st.Flow.Created, st.Packets = 1_000_000, 5_000_000
	st.Alerts[detect.ReasonPoolIP] = 1000
	after, _ := testutil.GatherAndCount(reg)
	if before != after {
		t.Fatalf("series %d -> %d", before, after)
	}
}

func TestLiveHandler(t *testing.T) {
	var st engine.Stats
	live := Live{Namespaces: 2, Capture: map[string]RingCounters{"shop/web": {Packets: 90, Dropped: 7}, "unknown": {Packets: 10}},
		Detections:    map[Detection]uint64{{Workload: "shop/web", Detector: "stratum", Action: "drop"}: 1},
		AlertsDropped: 2, AlertsRateLimited: 4, Mode: "flag-only", Profiles: map[string]int{"monitoring": 3}, Violations: map[string]uint64{"shop/web": 2}, XDP: XDP{Attached: 3, DroppedFlow: 5, Failures: 1, Pruned: 6}, ProfileCap: ProfileCaps{ProfilesCapped: 4},
		ProfileSync: &ProfileSync{Syncs: 9, Errors: 2, CatchUps: 1, Conflicts: 3, Adopted: 1, WatchEvents: 12, WatchRestarts: 2, Watching: true, WatchSkipped: 40, WatchFetches: 5}}
	lat := NewAlertLatency()
	lat.Observe(3 * time.Millisecond)
	lat.Observe(-time.Second) // a clock step counts as 0
	reg := NewLiveRegistry(func() (engine.Stats, string) { return st, "netns" }, func() Live { return live }, lat)
	var ready atomic.Bool
	srv := httptest.NewServer(Handler(reg, &ready))
	defer srv.Close()
	get := func(path, method string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz", "GET"); code != 503 {
		t.Errorf("readyz before ready: %d", code)
	}
	ready.Store(true)
	if code, _ := get("/readyz", "GET"); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	code, body := get("/metrics", "GET")
	for _, want := range []string{"minerguard_namespaces_monitored 2", `minerguard_ring_packets_dropped_total{workload="shop/web"} 7`,
		`minerguard_ring_packets_total{workload="unknown"} 10`, `minerguard_ring_packets_total{workload="shop/web"} 90`,
		`minerguard_detections_total{action="drop",detector="stratum",source="netns",workload="shop/web"} 1`,
		`minerguard_alerts_dropped_total{reason="queue_full"} 2`, `minerguard_alerts_dropped_total{reason="rate_limited"} 4`,
		`minerguard_alert_latency_seconds_bucket{le="0.0025"} 1`, `minerguard_alert_latency_seconds_bucket{le="0.005"} 2`,
		"minerguard_alert_latency_seconds_count 2",
		`minerguard_enforcement_mode{mode="flag-only"} 1`, `minerguard_enforcement_mode{mode="enforce"} 0`,
		`minerguard_profiles{state="monitoring"} 3`, `minerguard_profiles{state="learning"} 0`,
		`minerguard_profile_violations_total{workload="shop/web"} 2`, "minerguard_xdp_attached_interfaces 3",
		`minerguard_xdp_packets_total{action="drop",match="flow"} 5`, "minerguard_xdp_failures_total 1", "minerguard_xdp_flow_blocks_pruned_total 6",
		`minerguard_profile_caps_hit_total{cap="workloads"} 4`, "minerguard_build_info{", "go_goroutines",
		"minerguard_profile_cluster_syncs_total 9", "minerguard_profile_cluster_sync_errors_total 2", "minerguard_profile_cluster_catchups_total 1",
		"minerguard_profile_cluster_conflicts_total 3", "minerguard_profile_cluster_adopted_total 1", "minerguard_profile_cluster_up 0",
		"minerguard_profile_cluster_watch_events_total 12", "minerguard_profile_cluster_watch_restarts_total 2", "minerguard_profile_cluster_watching 1",
		"minerguard_profile_cluster_watch_skipped_total 40", "minerguard_profile_cluster_watch_fetches_total 5"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// build_info says what minerguard --version says.
	v := version.Get()
	if bi := fmt.Sprintf(`minerguard_build_info{goarch=%q,goos=%q,goversion=%q,revision=%q,version=%q} 1`,
		v.GOARCH, v.GOOS, v.GoVersion, v.Revision, v.Version); !strings.Contains(body, bi) {
		t.Errorf("metrics lack %s", bi)
	}
	// Live detections replace the engine's unlabelled ones: one label set per name.
	if strings.Contains(body, `minerguard_detections_total{action="flag",detector="stratum",source="netns"}`) {
		t.Error("detections without a workload label on the live registry")
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	before, _ := testutil.GatherAndCount(reg)
	for _, m := range []string{"POST", "DELETE", "BREW"} {
		if code, _ := get("/metrics", m); code == 200 {
			t.Errorf("%s /metrics answered", m)
		}
	}
	if after, _ := testutil.GatherAndCount(reg); after != before {
		t.Errorf("series %d -> %d after odd methods", before, after)
	}
}
