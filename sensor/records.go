package sensor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/metrics"
)

// recordKinds are the records written beside alerts (eve.types), in records' array order.
var recordKinds = [...]string{"flow", "dns", "tls"}

// records is the engine's Recorder on the live sensor: it stamps host and in_iface as on
// alerts, lets at most eve.records_rate records of each type a second through (a burst of
// ten seconds' worth), and puts them on the alert queue only while it is less than half full,
// so that records never crowd out an alert. What it stops is counted by type and reason.
type records struct {
	s       *Sensor
	rate    float64
	mu      sync.Mutex
	tokens  [len(recordKinds)]float64
	last    [len(recordKinds)]time.Time
	written [len(recordKinds)]atomic.Uint64
	limited [len(recordKinds)]atomic.Uint64
	full    [len(recordKinds)]atomic.Uint64
}

func newRecords(s *Sensor, rate float64) *records {
	r := &records{s: s, rate: rate}
	for i := range r.tokens {
		r.tokens[i] = 10 * rate
	}
	return r
}

func kindIndex(t string) int {
	for i, k := range recordKinds {
		if k == t {
			return i
		}
	}
	return -1
}

// allow takes a token of kind k at now (wall clock: the sensor's packets are live).
func (r *records) allow(k int, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := now.Sub(r.last[k]).Seconds(); d > 0 {
		r.tokens[k] = min(10*r.rate, r.tokens[k]+d*r.rate)
	}
	r.last[k] = now
	if r.tokens[k] < 1 {
		return false
	}
	r.tokens[k]--
	return true
}

func (r *records) Record(e *alert.Event) {
	k := kindIndex(e.EventType)
	if k < 0 {
		return
	}
	if !r.allow(k, time.Now()) {
		r.limited[k].Add(1)
		return
	}
	e.Host = r.s.node
	e.InIface = r.s.ifaceOf(e.Scope)
	if !r.s.queue.Offer(e) {
		r.full[k].Add(1)
		return
	}
	r.written[k].Add(1)
}

// counts are the records' counters for metrics; sampled is the engine's count of flows whose
// record eve.flow_sample left out.
func (r *records) counts(sampled uint64) map[string]metrics.RecordCounts {
	m := make(map[string]metrics.RecordCounts, len(recordKinds))
	for i, k := range recordKinds {
		m[k] = metrics.RecordCounts{Written: r.written[i].Load(), RateLimited: r.limited[i].Load(), QueueFull: r.full[i].Load()}
	}
	c := m["flow"]
	c.SampledOut = sampled
	m["flow"] = c
	return m
}
