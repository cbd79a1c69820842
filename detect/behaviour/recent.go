package behaviour

import "time"

// Recent remembers, per workload scope, when it last used encrypted DNS. A workload that
// resolves names where the sensor cannot see makes every one of its destinations look
// "unresolved" to the sensor, so the hidden name could be a pool's: the behaviour score gives
// its unresolved destinations less trust. Bounded: at most max scopes; when full, the entry
// seen longest ago is replaced (a linear scan, only when a new scope arrives at a full map).
type Recent struct {
	last    map[uint64]time.Time
	max     int
	Evicted uint64 // scopes forgotten because the map was full
}

// RecentFor is how long a use of encrypted DNS taints a workload's unresolved destinations:
// longer than DNS answers are commonly cached (TTLs of minutes to an hour).
const RecentFor = time.Hour

// NewRecent keeps at most max scopes (default 4,096).
func NewRecent(max int) *Recent {
	if max <= 0 {
		max = 4096
	}
	return &Recent{last: make(map[uint64]time.Time), max: max}
}

// Mark records a use of encrypted DNS by scope at now.
func (r *Recent) Mark(scope uint64, now time.Time) {
	if _, ok := r.last[scope]; !ok && len(r.last) >= r.max {
		var old uint64
		var oldest time.Time
		first := true
		for k, t := range r.last {
			if first || t.Before(oldest) {
				old, oldest, first = k, t, false
			}
		}
		delete(r.last, old)
		r.Evicted++
	}
	r.last[scope] = now
}

// Used reports whether scope used encrypted DNS within RecentFor before now.
func (r *Recent) Used(scope uint64, now time.Time) bool {
	t, ok := r.last[scope]
	return ok && now.Sub(t) < RecentFor && !now.Before(t.Add(-time.Minute))
}

// Len is the number of scopes remembered.
func (r *Recent) Len() int { return len(r.last) }
