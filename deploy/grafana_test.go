package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/metrics"
)

// exposed returns every metric family the live sensor's registry serves, with its label names.
// The engine collector emits every series even at zero; the per-workload series (violations,
// ring counters, detections) only once a workload has one, so the snapshot carries one each.
func exposed(t *testing.T) map[string]map[string]bool {
	t.Helper()
	reg := metrics.NewLiveRegistry(
		func() (engine.Stats, string) { return engine.Stats{}, "netns" },
		func() metrics.Live {
			const w = "k8s/ns/deployment/web"
			return metrics.Live{
				Violations: map[string]uint64{w: 1},
				Capture:    map[string]metrics.RingCounters{w: {Packets: 1}},
				Detections: map[metrics.Detection]uint64{{Workload: w, Detector: "stratum", Action: "flag"}: 1},
			}
		})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, mf := range mfs {
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = true
			}
		}
		out[mf.GetName()] = labels
	}
	return out
}

// Labels every scraped series carries from Prometheus' target, not from the sensor.
var targetLabels = map[string]bool{"job": true, "instance": true, "pod": true, "namespace": true, "node": true, "container": true, "service": true, "endpoint": true}

var (
	metricRe  = regexp.MustCompile(`\b((?:minerguard|go|process)_[a-zA-Z0-9_]+)(\{[^}]*\})?`)
	matcherRe = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	byRe      = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// checkExpr reports each metric of a PromQL expression the registry does not expose, and each
// label it selects or groups by that none of the expression's metrics has.
func checkExpr(expr string, have map[string]map[string]bool) []string {
	var bad []string
	union := map[string]bool{}
	ms := metricRe.FindAllStringSubmatch(expr, -1)
	for _, m := range ms {
		name := m[1]
		labels, ok := have[name]
		if !ok {
			bad = append(bad, "metric "+name+" is not exposed")
			continue
		}
		for l := range labels {
			union[l] = true
		}
		for _, mm := range matcherRe.FindAllStringSubmatch(m[2], -1) {
			if !labels[mm[1]] && !targetLabels[mm[1]] {
				bad = append(bad, "metric "+name+" has no label "+mm[1])
			}
		}
	}
	if len(ms) == 0 {
		bad = append(bad, "queries no minerguard, go or process metric")
	}
	for _, m := range byRe.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !union[l] && !targetLabels[l] {
				bad = append(bad, "groups by label "+l+" that its metrics do not have")
			}
		}
	}
	return bad
}

// dashboardQueries returns every PromQL expression of a Grafana dashboard: panel targets
// (rows may nest panels) and query variables.
func dashboardQueries(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	q := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for i, tg := range p.Targets {
				q[p.Title+"#"+string(rune('A'+i))] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if s, ok := v.Query.(string); ok && v.Type == "query" {
			q["$"+v.Name] = s
		}
	}
	return q
}

func TestDashboardQueriesExposedMetrics(t *testing.T) {
	have := exposed(t)
	queries := dashboardQueries(t, "grafana/minerguard.json")
	if len(queries) < 15 {
		t.Fatalf("only %d queries found in the dashboard: did its layout change?", len(queries))
	}
	keys := make([]string, 0, len(queries))
	for k := range queries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, b := range checkExpr(queries[k], have) {
			t.Errorf("%s: %s (%s)", k, b, queries[k])
		}
	}
	// The dashboard covers what issue 11 asks: miners, profiles, capture drops, XDP.
	all := strings.Join(func() []string {
		s := make([]string, 0, len(queries))
		for _, k := range keys {
			s = append(s, queries[k])
		}
		return s
	}(), "\n")
	for _, m := range []string{"minerguard_detections_total", "minerguard_profiles", "minerguard_profile_violations_total", "minerguard_ring_packets_dropped_total", "minerguard_xdp_packets_total"} {
		if !regexp.MustCompile(`\b` + m + `\b`).MatchString(all) {
			t.Errorf("the dashboard does not chart %s", m)
		}
	}
}

// The checker itself must catch drift: a renamed metric, a label that went, a bad grouping.
func TestCheckExprCatchesDrift(t *testing.T) {
	have := exposed(t)
	for expr, want := range map[string]string{
		`rate(minerguard_detections_total{detector="stratum"}[5m])`:      "",
		`sum by (workload) (minerguard_profile_violations_total)`:        "",
		`rate(minerguard_detection_total[5m])`:                           "not exposed",
		`minerguard_profiles{workload="x"}`:                              "no label workload",
		`sum by (detector) (minerguard_ring_drops_total{instance=~"a"})`: "groups by label detector",
		`sum(rate(minerguard_xdp_packets_total{action="drop"}[1m])) > 0`: "",
		`up`: "queries no",
	} {
		bad := checkExpr(expr, have)
		got := strings.Join(bad, "; ")
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("checkExpr(%q) = %q, want %q", expr, got, want)
		}
	}
}
