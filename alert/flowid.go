package alert

import (
	"net/netip"
	"time"
)

// FlowHash is an EVE flow_id: a positive 63-bit hash of the flow's endpoints (in either
// order, as the Community ID takes them), its scope (netns or capture interface), its start
// time and salt. One flow keeps its id across all its alerts; the start time separates a
// reused 5-tuple, and a per-sensor salt (random at each start, live) keeps the ids of two
// nodes or two runs apart, where a counter from 1 collided. Replay passes salt 0, so the same
// capture gives the same ids. Allocation-free.
func FlowHash(salt, scope uint64, a, b netip.AddrPort, proto uint8, start time.Time) uint64 {
	if b.Addr().Unmap().Less(a.Addr().Unmap()) || (a.Addr().Unmap() == b.Addr().Unmap() && b.Port() < a.Port()) {
		a, b = b, a
	}
	// FNV-1a over the inputs, then a splitmix64 finaliser so every bit depends on all of them.
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		for i := 0; i < 8; i++ {
			h ^= v & 0xff
			h *= 1099511628211
			v >>= 8
		}
	}
	mix(salt)
	mix(scope)
	for _, ap := range [2]netip.AddrPort{a, b} {
		x := ap.Addr().Unmap().As16()
		for i := 0; i < 16; i += 8 {
			mix(uint64(x[i]) | uint64(x[i+1])<<8 | uint64(x[i+2])<<16 | uint64(x[i+3])<<24 |
				uint64(x[i+4])<<32 | uint64(x[i+5])<<40 | uint64(x[i+6])<<48 | uint64(x[i+7])<<56)
		}
		mix(uint64(ap.Port()))
	}
	mix(uint64(proto))
	mix(uint64(start.UnixNano()))
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	if h &= 1<<63 - 1; h == 0 {
		h = 1
	}
	return h
}
