package dns

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func ip(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestCacheTTLAndGrace(t *testing.T) {
	c := NewCache(0, 0, 30*time.Second)
	c.Add(1, ip(1), "pool.example", 60, t0)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true},
		{60 * time.Second, true},
		{89 * time.Second, true}, // inside grace
		{90 * time.Second, true}, // TTL + grace exactly
		{90*time.Second + time.Nanosecond, false},
	} {
		name, ok := c.Lookup(1, ip(1), t0.Add(tc.at))
		if ok != tc.want || ok && name != "pool.example" {
			t.Errorf("at +%v: %q %v, want %v", tc.at, name, ok, tc.want)
		}
	}
	if st := c.Stats(); st.Entries != 0 || st.Expired != 1 {
		t.Errorf("stats %+v, want the expired entry gone and counted", st)
	}
}

func TestCacheRefreshAndScopes(t *testing.T) {
	c := NewCache(0, 0, 0)
	mapped := netip.AddrFrom16(ip(1).As16()) // ::ffff:10.0.0.1
	c.Add(1, mapped, "pool.example", 10, t0)
	c.Add(1, ip(1), "pool.example", 100, t0.Add(5*time.Second)) // refresh extends
	if _, ok := c.Lookup(1, ip(1), t0.Add(50*time.Second)); !ok {
		t.Error("refresh by a later answer did not extend the TTL")
	}
	if _, ok := c.Lookup(2, ip(1), t0); ok {
		t.Error("scope 2 sees scope 1's answer")
	}
	c.Add(1, ip(1), "cdn.example", 100, t0.Add(6*time.Second)) // shared address: latest answer wins
	if name, _ := c.Lookup(1, mapped, t0.Add(7*time.Second)); name != "cdn.example" {
		t.Errorf("after re-answer: %q", name)
	}
	if st := c.Stats(); st.Entries != 1 {
		t.Errorf("stats %+v", st)
	}
	c.Add(1, netip.Addr{}, "x", 1, t0)
	c.Add(1, ip(9), "", 1, t0)
	if st := c.Stats(); st.Entries != 1 {
		t.Errorf("invalid address or empty name was stored: %+v", st)
	}
}

func TestCachePerNameCap(t *testing.T) {
	c := NewCache(100, 3, 0)
	for i := range 5 {
		c.Add(1, ip(i), "pool.example", 60, t0.Add(time.Duration(i)*time.Second))
	}
	c.Add(2, ip(100), "pool.example", 60, t0) // another scope has its own budget
	c.Add(1, ip(200), "other.example", 60, t0)
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := c.Lookup(1, ip(i), t0.Add(10*time.Second)); ok != want {
			t.Errorf("ip %d cached=%v, want %v", i, ok, want)
		}
	}
	if st := c.Stats(); st.Entries != 5 || st.PerNameCapHits != 2 || st.Evictions != 0 {
		t.Errorf("stats %+v", st)
	}
	// Refreshing the oldest kept address makes it the newest.
	c.Add(1, ip(2), "pool.example", 60, t0.Add(20*time.Second))
	c.Add(1, ip(5), "pool.example", 60, t0.Add(21*time.Second))
	if _, ok := c.Lookup(1, ip(2), t0.Add(22*time.Second)); !ok {
		t.Error("refreshed address was evicted as oldest")
	}
	if _, ok := c.Lookup(1, ip(3), t0.Add(22*time.Second)); ok {
		t.Error("oldest address survived the cap")
	}
}

func TestCacheEvictsExpiredThenOldest(t *testing.T) {
	c := NewCache(3, 0, 0)
	c.Add(1, ip(1), "a.example", 1000, t0)               // oldest, long TTL
	c.Add(1, ip(2), "b.example", 5, t0.Add(time.Second)) // expires at +6s
	c.Add(1, ip(3), "c.example", 1000, t0.Add(2*time.Second))
	c.Add(1, ip(4), "d.example", 1000, t0.Add(10*time.Second)) // b expired: it goes, a stays
	if _, ok := c.Lookup(1, ip(1), t0.Add(10*time.Second)); !ok {
		t.Error("live entry evicted while an expired one existed")
	}
	st := c.Stats()
	if st.Entries != 3 || st.Expired != 1 || st.Evictions != 0 {
		t.Errorf("stats %+v", st)
	}
	c.Add(1, ip(5), "e.example", 1000, t0.Add(11*time.Second)) // full of live entries: oldest (a) goes
	if _, ok := c.Lookup(1, ip(1), t0.Add(11*time.Second)); ok {
		t.Error("oldest entry not evicted")
	}
	for _, i := range []int{3, 4, 5} {
		if _, ok := c.Lookup(1, ip(i), t0.Add(11*time.Second)); !ok {
			t.Errorf("ip %d evicted", i)
		}
	}
	if st := c.Stats(); st.Evictions != 1 || st.Entries != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestCacheChurn is the name-churn half of R4: 10,000 new names a minute for
// twelve minutes of packet time with a 60 s TTL. The cache stays bounded and
// everything expired is gone.
func TestCacheChurn(t *testing.T) {
	c := NewCache(20000, 0, 30*time.Second)
	now := t0
	for i := range 120_000 {
		now = t0.Add(time.Duration(i) * 6 * time.Millisecond) // 10k per minute
		c.Add(uint64(i%4), ip(i), fmt.Sprintf("h%d.example", i), 60, now)
	}
	st := c.Stats()
	// Live window is TTL+grace = 90 s, i.e. 15,000 names.
	if st.Entries > 15_001 || st.Entries < 14_999 || st.Evictions != 0 {
		t.Errorf("stats %+v, want ~15000 live entries and no evictions", st)
	}
	if n := c.Expire(now.Add(91 * time.Second)); n != st.Entries {
		t.Errorf("Expire removed %d of %d", n, st.Entries)
	}
	if st := c.Stats(); st.Entries != 0 || st.Expired != 120_000 {
		t.Errorf("after expiry: %+v", st)
	}
	if len(c.names) != 0 || len(c.byDeadline) != 0 || c.head != nil || c.tail != nil {
		t.Errorf("index structures not empty: %d names, %d heap", len(c.names), len(c.byDeadline))
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := NewCache(500, 50, time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				c.Add(uint64(g), ip(i), fmt.Sprintf("n%d", i%20), uint32(i%7), now)
				c.Lookup(uint64(g), ip(i/2), now)
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.Entries > 500 {
		t.Errorf("stats %+v exceed bound", st)
	}
}

func BenchmarkCacheAdd(b *testing.B) {
	c := NewCache(0, 0, 30*time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Add(1, ip(i), "pool.example", 60, t0.Add(time.Duration(i)*time.Millisecond))
		i++
	}
}

func BenchmarkCacheLookup(b *testing.B) {
	c := NewCache(0, 0, 30*time.Second)
	for i := range 1000 {
		c.Add(1, ip(i), "pool.example", 60, t0)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Lookup(1, ip(i%1000), t0); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func TestCacheLookupAllocs(t *testing.T) {
	c := NewCache(0, 0, 0)
	c.Add(1, ip(1), "pool.example", 60, t0)
	if n := testing.AllocsPerRun(100, func() { c.Lookup(1, ip(1), t0) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

// TestCacheAddSteadyStateAllocs: once the cache is full, an answer for a new address reuses
// the entry (and name set) of the one it pushes out, so a stream of answers allocates nothing.
func TestCacheAddSteadyStateAllocs(t *testing.T) {
	c := NewCache(1024, 0, 0)
	names := make([]string, 64)
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example", i)
	}
	i := 0
	add := func() {
		c.Add(1, ip(i), names[i%len(names)], 60, t0.Add(time.Duration(i)*time.Millisecond))
		i++
	}
	for range 20000 {
		add()
	}
	if a := testing.AllocsPerRun(5000, add); a != 0 {
		t.Fatalf("%.2f allocations per Add in steady state", a)
	}
	if st := c.Stats(); st.Entries != 1024 || st.Evictions == 0 {
		t.Fatalf("stats %+v: want a full cache that evicted", st)
	}
	for j := i - 1024; j < i; j++ {
		if name, ok := c.Lookup(1, ip(j), t0.Add(time.Duration(i)*time.Millisecond)); !ok || name != names[j%len(names)] {
			t.Fatalf("address %d: %q %v", j, name, ok)
		}
	}
}

// modelCache is the cache's contract written plainly (a slice in age order, linear scans):
// TestCacheMatchesModel holds Cache to it over random operations, so a faster Add cannot
// change what is looked up, evicted or counted.
type modelCache struct {
	maxEntries, maxPerName int
	grace                  time.Duration
	ents                   []modelEntry // oldest first
	stats                  CacheStats
}

type modelEntry struct {
	scope    uint64
	addr     netip.Addr
	name     string
	deadline int64
}

func (m *modelCache) find(scope uint64, a netip.Addr) int {
	for i, e := range m.ents {
		if e.scope == scope && e.addr == a {
			return i
		}
	}
	return -1
}

func (m *modelCache) del(i int) { m.ents = append(m.ents[:i], m.ents[i+1:]...) }

func (m *modelCache) expire(now int64) {
	for i := 0; i < len(m.ents); {
		if now > m.ents[i].deadline {
			m.del(i)
			m.stats.Expired++
			continue
		}
		i++
	}
}

func (m *modelCache) add(scope uint64, a netip.Addr, name string, ttl uint32, now int64) {
	deadline := now + int64(time.Duration(ttl)*time.Second+m.grace)
	m.expire(now)
	if i := m.find(scope, a); i >= 0 {
		if m.ents[i].name == name {
			m.del(i)
			m.ents = append(m.ents, modelEntry{scope, a, name, deadline})
			return
		}
		m.del(i)
	}
	first, n := -1, 0
	for i, e := range m.ents {
		if e.scope == scope && e.name == name {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	if n >= m.maxPerName {
		m.del(first)
		m.stats.PerNameCapHits++
	}
	if len(m.ents) >= m.maxEntries {
		m.del(0)
		m.stats.Evictions++
	}
	m.ents = append(m.ents, modelEntry{scope, a, name, deadline})
}

func (m *modelCache) lookup(scope uint64, a netip.Addr, now int64) (string, bool) {
	i := m.find(scope, a)
	if i < 0 {
		return "", false
	}
	if now > m.ents[i].deadline {
		m.del(i)
		m.stats.Expired++
		return "", false
	}
	return m.ents[i].name, true
}

func TestCacheMatchesModel(t *testing.T) {
	for _, bounds := range [][2]int{{8, 3}, {5, 1}, {64, 2}, {3, 5}} {
		c := NewCache(bounds[0], bounds[1], 2*time.Second)
		m := &modelCache{maxEntries: bounds[0], maxPerName: bounds[1], grace: 2 * time.Second}
		r := rand.New(rand.NewPCG(uint64(bounds[0]), uint64(bounds[1])))
		now := t0.UnixNano()
		for op := range 20000 {
			now += int64(r.IntN(400)) * int64(time.Millisecond)
			scope, a := uint64(r.IntN(2)), ip(r.IntN(12))
			switch r.IntN(10) {
			case 0, 1, 2, 3, 4:
				name := fmt.Sprintf("n%d", r.IntN(6))
				ttl := uint32(r.IntN(5))
				c.Add(scope, a, name, ttl, time.Unix(0, now))
				m.add(scope, a, name, ttl, now)
			case 5:
				c.Expire(time.Unix(0, now))
				m.expire(now)
			default:
				name, ok := c.Lookup(scope, a, time.Unix(0, now))
				wname, wok := m.lookup(scope, a, now)
				if name != wname || ok != wok {
					t.Fatalf("bounds %v, op %d: Lookup(%d, %v) = %q %v, model %q %v", bounds, op, scope, a, name, ok, wname, wok)
				}
			}
			st := c.Stats()
			want := m.stats
			want.Entries = len(m.ents)
			if st != want {
				t.Fatalf("bounds %v, op %d: stats %+v, model %+v", bounds, op, st, want)
			}
		}
	}
}

// BenchmarkCacheAddShared: answers naming addresses that earlier answers gave other names
// (CDNs, shared pools): the usual Add replaying mixed.pcap finds its address held.
func BenchmarkCacheAddShared(b *testing.B) {
	c := NewCache(0, 0, 30*time.Second)
	names := make([]string, 4096)
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Add(1, ip(i%20000), names[i%len(names)], 60, t0.Add(time.Duration(i)*time.Microsecond))
		i++
	}
}
