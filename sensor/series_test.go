package sensor

import (
	"testing"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/metrics"
	"github.com/minerguard/minerguard/workload"
)

type discard struct{ n int }

func (d *discard) Alert(*alert.Event) { d.n++ }

// Workload labels are bounded: fallback identities fold into "unknown", workloads past the
// cap into "other", and a forgotten workload's series go and free its slot. Every alert is
// passed on.
func TestTallyBoundsSeries(t *testing.T) {
	next := &discard{}
	ta := newTally(next, 2)
	ev := func(id, kind, action string, sig int) *alert.Event {
		e := &alert.Event{Action: action, SignatureID: sig, MG: alert.Minerguard{Detector: "stratum"}}
		if id != "" {
			e.MG.Workload = &alert.Workload{Identity: id, Kind: kind}
		}
		return e
	}
	ta.Alert(ev("shop/web", workload.KindKubernetes, "allowed", 9400001))
	ta.Alert(ev("shop/web", workload.KindKubernetes, "blocked", 9400001))
	ta.Alert(ev("netns/ino:4026532451", workload.KindUnknown, "allowed", 9400001))
	ta.Alert(ev("", "", "allowed", 9400001))
	ta.Alert(ev("shop/api", workload.KindKubernetes, "allowed", 9400008))
	ta.Alert(ev("shop/db", workload.KindKubernetes, "allowed", 9400008)) // past the cap of 2
	det, viol := ta.snapshot()
	d := func(w, action string) metrics.Detection {
		return metrics.Detection{Workload: w, Detector: "stratum", Action: action}
	}
	for d, want := range map[metrics.Detection]uint64{
		d("shop/web", "flag"): 1, d("shop/web", "drop"): 1, d("unknown", "flag"): 2, d("shop/api", "flag"): 1, d("other", "flag"): 1,
	} {
		if det[d] != want {
			t.Errorf("%+v = %d, want %d (all: %v)", d, det[d], want, det)
		}
	}
	if len(det) != 5 || viol["shop/api"] != 1 || viol["other"] != 1 || len(viol) != 2 || next.n != 6 {
		t.Errorf("detections %v, violations %v, passed on %d", det, viol, next.n)
	}
	ta.forget("shop/web")
	if got := ta.Label("shop/db", workload.KindKubernetes); got != "shop/db" {
		t.Errorf("a freed slot is not reused: %q", got)
	}
	det, _ = ta.snapshot()
	for d := range det {
		if d.Workload == "shop/web" {
			t.Errorf("forgotten workload keeps %+v", d)
		}
	}
}
