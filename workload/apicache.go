package workload

import (
	"maps"
	"sort"
	"sync"
	"unicode/utf8"
)

// Bounds on what a runtime API answer may put into an Identity: labels end up in alerts and
// profiles, and a container can carry arbitrarily many and large ones.
const (
	maxLabels        = 64
	maxLabelValueLen = 256
	maxLabelKeyLen   = 256
	maxCacheEntries  = 4096
)

// boundLabels copies at most maxLabels labels (in key order, so the choice is stable),
// dropping over-long keys and cutting values at maxLabelValueLen bytes on a rune boundary.
func boundLabels(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		if k != "" && len(k) <= maxLabelKeyLen {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > maxLabels {
		keys = keys[:maxLabels]
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = truncUTF8(in[k], maxLabelValueLen)
	}
	return out
}

// truncUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	// Drop a trailing partial sequence (at most UTFMax-1 bytes).
	for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// answer is a cached resolver result: ok false records a definite "not this runtime's
// container" so that a rescan does not ask again.
type answer struct {
	id Identity
	ok bool
}

// idCache maps container IDs to answers. A container never changes identity, so entries
// never go stale; the bound only caps memory, evicting the oldest entry first.
type idCache struct {
	mu    sync.Mutex
	m     map[string]answer
	order []string // insertion ring, len ≤ max
	next  int
	max   int // 0 means maxCacheEntries
}

func (c *idCache) get(key string) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[key]
	if ok {
		// Callers own what they get back; the cached map stays untouched.
		a.id.Labels = maps.Clone(a.id.Labels)
	}
	return a, ok
}

func (c *idCache) put(key string, a answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.max
	if limit <= 0 {
		limit = maxCacheEntries
	}
	if c.m == nil {
		c.m = make(map[string]answer)
	}
	if _, ok := c.m[key]; ok {
		c.m[key] = a
		return
	}
	if len(c.order) < limit {
		c.order = append(c.order, key)
	} else {
		delete(c.m, c.order[c.next])
		c.order[c.next] = key
		c.next = (c.next + 1) % limit
	}
	c.m[key] = a
}

func (c *idCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
