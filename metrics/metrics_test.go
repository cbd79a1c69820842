package metrics

import (
	"bytes"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestExposition(t *testing.T) {
	var st engine.Stats
	st.Packets = 10
	st.Decode[flow.ErrTruncated] = 3
	st.Alerts[detect.ReasonStratum] = 2
	st.Flow.Evicted.Cap = 5
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
