package dns

import (
	"container/heap"
	"net/netip"
	"sync"
	"time"
)

// Default bounds. MaxPerName follows Cilium's ToFQDNs default
// (--tofqdns-endpoint-max-ip-per-hostname=1000): a name answering with more
// addresses than that is a CDN or an attack, and keeping every address would
// let one resolver response fill the cache.
const (
	DefaultMaxEntries = 65536
	DefaultMaxPerName = 1000
)

// CacheStats are cumulative counters plus the current size.
type CacheStats struct {
	Entries int
	// Evictions counts live (unexpired) entries dropped to stay within
	// maxEntries.
	Evictions uint64
	// PerNameCapHits counts adds that pushed out a name's oldest address
	// because the name already held maxPerName addresses in that scope.
	PerNameCapHits uint64
	// Expired counts entries removed after their TTL plus grace.
	Expired uint64
}

type cacheKey struct {
	scope uint64
	addr  netip.Addr
}

type nameKey struct {
	scope uint64
	name  string
}

type entry struct {
	key      cacheKey
	owner    *nameSet
	deadline time.Time // answer time + TTL + grace
	heapIdx  int
	// Age lists, oldest first: global (for maxEntries) and per name (for
	// maxPerName). A refresh by a new answer moves the entry to the back.
	prev, next   *entry
	nprev, nnext *entry
}

type nameSet struct {
	key        nameKey
	n          int
	head, tail *entry
}

// Cache maps answered addresses to the queried name, per caller-defined scope
// (typically a network namespace), with expiry in caller-supplied time so
// replay uses packet time. It is bounded: at most maxPerName addresses per
// (scope, name) and maxEntries in total; expired entries go first, then the
// oldest. When two names answer with the same address in one scope, the most
// recent answer wins. Safe for concurrent use.
type Cache struct {
	mu         sync.Mutex
	maxEntries int
	maxPerName int
	grace      time.Duration
	entries    map[cacheKey]*entry
	names      map[nameKey]*nameSet
	byDeadline deadlineHeap
	head, tail *entry
	stats      CacheStats
}

// NewCache returns an empty cache. Non-positive bounds select the defaults;
// grace extends every TTL, because clients keep using an address for a while
// after its record expires (connection reuse, resolver caches, clock skew).
func NewCache(maxEntries, maxPerName int, grace time.Duration) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if maxPerName <= 0 {
		maxPerName = DefaultMaxPerName
	}
	return &Cache{
		maxEntries: maxEntries,
		maxPerName: maxPerName,
		grace:      max(grace, 0),
		entries:    make(map[cacheKey]*entry),
		names:      make(map[nameKey]*nameSet),
	}
}

// Add records that name resolved to a in scope, valid for ttl seconds from
// now (plus grace). IPv4-mapped IPv6 addresses are stored as IPv4.
func (c *Cache) Add(scope uint64, a netip.Addr, name string, ttl uint32, now time.Time) {
	a = a.Unmap()
	if !a.IsValid() || name == "" {
		return
	}
	deadline := now.Add(time.Duration(ttl)*time.Second + c.grace)
	key := cacheKey{scope, a}
	nk := nameKey{scope, name}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
	if e, ok := c.entries[key]; ok {
		if e.owner.key == nk {
			// Refresh: the latest answer sets the deadline, even a shorter one.
			e.deadline = deadline
			heap.Fix(&c.byDeadline, e.heapIdx)
			c.unlinkAge(e)
			c.linkAge(e)
			return
		}
		c.remove(e)
	}
	if ns := c.names[nk]; ns != nil && ns.n >= c.maxPerName {
		c.remove(ns.head)
		c.stats.PerNameCapHits++
	}
	if len(c.entries) >= c.maxEntries {
		c.remove(c.head)
		c.stats.Evictions++
	}
	ns := c.names[nk]
	if ns == nil {
		ns = &nameSet{key: nk}
		c.names[nk] = ns
	}
	e := &entry{key: key, owner: ns, deadline: deadline}
	c.entries[key] = e
	heap.Push(&c.byDeadline, e)
	c.linkAge(e)
}

// Lookup returns the name a resolved to in scope, if that answer has not
// expired by now.
func (c *Cache) Lookup(scope uint64, a netip.Addr, now time.Time) (name string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[cacheKey{scope, a.Unmap()}]
	if !ok {
		return "", false
	}
	if now.After(e.deadline) {
		c.remove(e)
		c.stats.Expired++
		return "", false
	}
	return e.owner.key.name, true
}

// Expire removes every entry whose TTL plus grace has passed at now and
// returns how many were removed. Add does this too; call Expire on a timer
// (in packet time during replay) so memory shrinks when answers stop coming.
func (c *Cache) Expire(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expireLocked(now)
}

// Stats returns the current counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = len(c.entries)
	return s
}

func (c *Cache) expireLocked(now time.Time) int {
	n := 0
	for len(c.byDeadline) > 0 && now.After(c.byDeadline[0].deadline) {
		c.remove(c.byDeadline[0])
		n++
	}
	c.stats.Expired += uint64(n)
	return n
}

func (c *Cache) remove(e *entry) {
	delete(c.entries, e.key)
	heap.Remove(&c.byDeadline, e.heapIdx)
	c.unlinkAge(e)
	if ns := e.owner; ns.n == 0 {
		delete(c.names, ns.key)
	}
}

func (c *Cache) linkAge(e *entry) {
	e.prev, e.next = c.tail, nil
	if c.tail != nil {
		c.tail.next = e
	} else {
		c.head = e
	}
	c.tail = e

	ns := e.owner
	e.nprev, e.nnext = ns.tail, nil
	if ns.tail != nil {
		ns.tail.nnext = e
	} else {
		ns.head = e
	}
	ns.tail = e
	ns.n++
}

func (c *Cache) unlinkAge(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil

	ns := e.owner
	if e.nprev != nil {
		e.nprev.nnext = e.nnext
	} else {
		ns.head = e.nnext
	}
	if e.nnext != nil {
		e.nnext.nprev = e.nprev
	} else {
		ns.tail = e.nprev
	}
	e.nprev, e.nnext = nil, nil
	ns.n--
}

// deadlineHeap is a min-heap on entry deadlines, so expiry touches only
// expired entries instead of scanning the cache.
type deadlineHeap []*entry

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *deadlineHeap) Push(x any) {
	e := x.(*entry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}
