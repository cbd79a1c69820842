package sensor

import (
	"sync"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/metrics"
	"github.com/minerguard/minerguard/workload"
)

// maxWorkloadSeries bounds the workloads that get series of their own (detections,
// violations, capture counters); later ones share "other" until a slot is freed by a
// workload that is gone.
const maxWorkloadSeries = 1000

// tally counts alerts by workload on their way to the alert queue (before rate limiting: the
// metrics count flows, the log is what is limited) and decides which workload label a series
// gets: its identity, "unknown" for a nil or fallback identity (netns/ino:N churns with every
// namespace), or "other" past the cap.
type tally struct {
	next engine.Sink
	max  int

	mu       sync.Mutex
	admitted map[string]bool
	det      map[metrics.Detection]uint64
	viol     map[string]uint64
	encDNS   map[string]uint64 // encrypted DNS records (not alerts) by workload
}

func newTally(next engine.Sink, max int) *tally {
	return &tally{next: next, max: max, admitted: map[string]bool{}, det: map[metrics.Detection]uint64{}, viol: map[string]uint64{}, encDNS: map[string]uint64{}}
}

// label is the workload label of identity id (kind as workload.Identity); t.mu held.
func (t *tally) label(id, kind string) string {
	if id == "" || kind == workload.KindUnknown {
		return "unknown"
	}
	if t.admitted[id] {
		return id
	}
	if len(t.admitted) >= t.max {
		return "other"
	}
	t.admitted[id] = true
	return id
}

// Label is label, locked: the sensor labels a namespace's capture counters when it attaches.
func (t *tally) Label(id, kind string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.label(id, kind)
}

func (t *tally) Alert(e *alert.Event) {
	t.mu.Lock()
	w := "unknown"
	if wl := e.MG.Workload; wl != nil {
		w = t.label(wl.Identity, wl.Kind)
	}
	if e.EventType == "anomaly" {
		// A record (encrypted DNS) is a fact about the workload, not a detection.
		if e.MG.EncryptedDNS != "" {
			t.encDNS[w]++
		}
		t.mu.Unlock()
		t.next.Alert(e)
		return
	}
	action := "flag"
	if e.Action == "blocked" {
		action = "drop"
	}
	t.det[metrics.Detection{Workload: w, Detector: e.MG.Detector, Action: action}]++
	if e.SignatureID == detect.ReasonNotInProfile.SignatureID() {
		t.viol[w]++
	}
	t.mu.Unlock()
	t.next.Alert(e)
}

// forget removes the series of a workload that is gone and frees its slot.
func (t *tally) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.admitted[id] {
		return
	}
	delete(t.admitted, id)
	delete(t.viol, id)
	delete(t.encDNS, id)
	for d := range t.det {
		if d.Workload == id {
			delete(t.det, d)
		}
	}
}

// snapshot copies the counters for a scrape.
func (t *tally) snapshot() (map[metrics.Detection]uint64, map[string]uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	det := make(map[metrics.Detection]uint64, len(t.det))
	for k, v := range t.det {
		det[k] = v
	}
	viol := make(map[string]uint64, len(t.viol))
	for k, v := range t.viol {
		viol[k] = v
	}
	return det, viol
}

// encDNSSnapshot copies the encrypted DNS counts by workload for a scrape.
func (t *tally) encDNSSnapshot() map[string]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]uint64, len(t.encDNS))
	for k, v := range t.encDNS {
		out[k] = v
	}
	return out
}
