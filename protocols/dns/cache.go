package dns

import (
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
	deadline int64 // answer time + TTL + grace, UnixNano: compared per answer, and the heap orders by it
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
	// Removed entries and name sets, reused by Add: a steady stream of answers allocates
	// nothing. Both are bounded by the most entries the cache held at once.
	freeEntries []*entry
	freeNames   []*nameSet
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
	deadline := now.UnixNano() + int64(time.Duration(ttl)*time.Second+c.grace)
	key := cacheKey{scope, a}
	nk := nameKey{scope, name}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now.UnixNano())
	if e, ok := c.entries[key]; ok {
		if e.owner.key == nk {
			// Refresh: the latest answer sets the deadline, even a shorter one.
			e.deadline = deadline
			c.byDeadline.fix(e.heapIdx)
			c.unlinkAge(e)
			c.linkAge(e)
			return
		}
		// The address now answers for another name (the common case of an Add that finds
		// its address: addresses are shared and reused). The entry moves to that name, with
		// the state removing it and adding a new one would leave, but without taking it
		// out of the address map and the heap and putting it back.
		c.unlinkAge(e)
		c.freeIfEmpty(e.owner)
		ns := c.names[nk]
		if ns != nil && ns.n >= c.maxPerName {
			c.remove(ns.head)
			c.stats.PerNameCapHits++
		}
		// No eviction for maxEntries: the entry count did not change.
		e.owner, e.deadline = c.nameSet(ns, nk), deadline
		c.byDeadline.fix(e.heapIdx)
		c.linkAge(e)
		return
	}
	ns := c.names[nk]
	if ns != nil && ns.n >= c.maxPerName {
		c.remove(ns.head)
		c.stats.PerNameCapHits++
	}
	if len(c.entries) >= c.maxEntries {
		c.remove(c.head)
		c.stats.Evictions++
	}
	ns = c.nameSet(ns, nk)
	var e *entry
	if n := len(c.freeEntries); n > 0 {
		e = c.freeEntries[n-1]
		c.freeEntries = c.freeEntries[:n-1]
	} else {
		e = new(entry)
	}
	e.key, e.owner, e.deadline = key, ns, deadline
	c.entries[key] = e
	c.byDeadline.push(e)
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
	if now.UnixNano() > e.deadline {
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
	return c.expireLocked(now.UnixNano())
}

// Stats returns the current counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = len(c.entries)
	return s
}

func (c *Cache) expireLocked(now int64) int {
	n := 0
	for len(c.byDeadline) > 0 && now > c.byDeadline[0].deadline {
		c.remove(c.byDeadline[0])
		n++
	}
	c.stats.Expired += uint64(n)
	return n
}

func (c *Cache) remove(e *entry) {
	delete(c.entries, e.key)
	c.byDeadline.remove(e.heapIdx)
	c.unlinkAge(e)
	c.freeIfEmpty(e.owner)
	*e = entry{}
	c.freeEntries = append(c.freeEntries, e)
}

// freeIfEmpty drops ns from the names once its last entry has left it: the names hold only
// sets with entries.
func (c *Cache) freeIfEmpty(ns *nameSet) {
	if ns.n == 0 {
		delete(c.names, ns.key)
		*ns = nameSet{}
		c.freeNames = append(c.freeNames, ns)
	}
}

// nameSet returns the set of nk: ns, what c.names held for nk before the caller removed
// entries, unless a removal emptied it (and so freed it), else a new one.
func (c *Cache) nameSet(ns *nameSet, nk nameKey) *nameSet {
	if ns != nil && ns.n > 0 {
		return ns
	}
	if n := len(c.freeNames); n > 0 {
		ns = c.freeNames[n-1]
		c.freeNames = c.freeNames[:n-1]
	} else {
		ns = new(nameSet)
	}
	ns.key = nk
	c.names[nk] = ns
	return ns
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
// expired entries instead of scanning the cache. It is typed rather than a
// container/heap: no interface call per comparison.
type deadlineHeap []*entry

func (h deadlineHeap) less(i, j int) bool { return h[i].deadline < h[j].deadline }

func (h deadlineHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *deadlineHeap) push(e *entry) {
	e.heapIdx = len(*h)
	*h = append(*h, e)
	h.up(e.heapIdx)
}

// remove takes out the element at i.
func (h *deadlineHeap) remove(i int) {
	n := len(*h) - 1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n].heapIdx = -1
	(*h)[n] = nil
	*h = (*h)[:n]
	if i != n {
		h.fix(i)
	}
}

// fix restores the order after the deadline at i changed.
func (h deadlineHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h deadlineHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts i down; it reports whether i moved.
func (h deadlineHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		j := 2*i + 1
		if j >= n || j < 0 {
			break
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
