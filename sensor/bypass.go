package sensor

import (
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/metrics"
)

// bypassClosed keeps the kernel bypass counters of rings already closed: per workload while
// the workload still has a ring (so its counters never go backwards), and in total.
type bypassClosed struct {
	total capture.BypassStats
	by    map[string]capture.BypassStats
}

// add folds a closed ring's counters in. A workload with no ring left loses its series
// (bounded by the workloads being captured, as Prometheus expects of a gone target).
func (b *bypassClosed) add(workload string, st capture.BypassStats, stillCaptured bool) {
	b.total.Add(st)
	if !stillCaptured {
		delete(b.by, workload)
		return
	}
	if b.by == nil {
		b.by = map[string]capture.BypassStats{}
	}
	w := b.by[workload]
	w.Add(st)
	b.by[workload] = w
}

// labelCapturedLocked reports whether a ring whose series carry this workload label is still
// open; s.mu held.
func (s *Sensor) labelCapturedLocked(label string) bool {
	for _, w := range s.rings {
		if w.label == label {
			return true
		}
	}
	return false
}

// bypassMetrics sums the kernel filter's counters of every ring, per workload for what was
// bypassed (traffic accounting stays whole: ring packets plus bypassed packets are all the
// workload's packets).
func (s *Sensor) bypassMetrics() metrics.Bypass {
	m := metrics.Bypass{Mode: "userspace"}
	if s.bp == nil {
		return m
	}
	m.Mode = "kernel"
	s.mu.RLock()
	total := s.bpClosed.total
	by := make(map[string]metrics.BypassCount, len(s.rings))
	for name, st := range s.bpClosed.by {
		by[name] = metrics.BypassCount{Packets: st.BypassedPackets, Bytes: st.BypassedBytes}
	}
	for _, w := range s.rings {
		st, on := w.ring.BypassStats()
		if !on {
			continue
		}
		total.Add(st)
		c := by[w.label] // the workload label of its other series (bounded: "other" past the cap)
		c.Packets += st.BypassedPackets
		c.Bytes += st.BypassedBytes
		by[w.label] = c
	}
	s.mu.RUnlock()
	m.Workloads = by
	m.Cut, m.Passed, m.Bypassed = total.CutPackets, total.PassedPackets, total.BypassedPackets
	m.Flows, m.Midstream, m.MapFull, m.NotParsed = total.Flows, total.Midstream, total.MapFull, total.NotParsed
	m.RingFailures, m.DoneErrors = s.bp.RingFailures(), s.bp.DoneErrors()
	return m
}
