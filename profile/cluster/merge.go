package cluster

import (
	"slices"
	"sort"
	"time"

	"github.com/minerguard/minerguard/profile"
)

// lastSeenEvery is how stale a destination's lastSeen may get before a sync moves it: a
// profile that only confirms what the cluster knows then writes at most once an hour.
const lastSeenEvery = time.Hour

// maxEntries is the spec's cap, defaulted and clamped to the CRD's limit.
func (s *Spec) maxEntries() int {
	switch {
	case s.MaxEntries <= 0:
		return DefaultMaxEntries
	case s.MaxEntries > MaxEntriesLimit:
		return MaxEntriesLimit
	}
	return s.MaxEntries
}

// mergeInto merges node's learned entries into the spec's destinations: new ones are added
// (until the cap: those are counted in dropped), known ones get the earlier firstSeen, the
// node in seenBy, and the addresses this node recorded. Nothing is removed: what one node
// learned stays learned for the others. It reports whether the spec changed.
func mergeInto(spec *Spec, p profile.Profile, node string, now time.Time) (changed bool, dropped int) {
	idx := make(map[destKey]int, len(spec.Destinations))
	for i, d := range spec.Destinations {
		idx[keyOf(d)] = i
	}
	limit := spec.maxEntries()
	nowS := fmtTime(now)
	for _, e := range p.Entries {
		if e.Proto != profile.TCP && e.Proto != profile.UDP {
			continue // the resource holds tcp and udp destinations only
		}
		k := destKey{hostOf(e.Dest), int(e.Port), profile.ProtoName(e.Proto)}
		first := e.First
		if first.IsZero() {
			first = now
		}
		i, ok := idx[k]
		if !ok {
			if len(spec.Destinations) >= limit {
				dropped++
				continue
			}
			d := Destination{Host: k.host, Port: k.port, Transport: k.transport, App: e.App,
				FirstSeen: fmtTime(first), LastSeen: nowS, Nodes: 1, Replicas: max(1, len(e.Seen)), SeenBy: []string{node}}
			d.Addresses = addAddrs(nil, e)
			idx[k] = len(spec.Destinations)
			spec.Destinations = append(spec.Destinations, d)
			changed = true
			continue
		}
		d := &spec.Destinations[i]
		if f := parseTime(d.FirstSeen); f.IsZero() || first.Before(f) {
			d.FirstSeen, changed = fmtTime(first), true
		}
		if l := parseTime(d.LastSeen); now.Sub(l) >= lastSeenEvery {
			d.LastSeen, changed = nowS, true
		}
		if d.App == "" && e.App != "" {
			d.App, changed = e.App, true
		}
		if !slices.Contains(d.SeenBy, node) && len(d.SeenBy) < MaxSeenBy {
			d.SeenBy, changed = append(d.SeenBy, node), true
		}
		if n := len(d.SeenBy); d.Nodes < n {
			d.Nodes, changed = n, true
		}
		if r := max(len(e.Seen), d.Nodes); d.Replicas < r {
			d.Replicas, changed = r, true
		}
		if a := addAddrs(d.Addresses, e); len(a) != len(d.Addresses) {
			d.Addresses, changed = a, true
		}
	}
	if changed {
		sort.Slice(spec.Destinations, func(i, j int) bool {
			a, b := keyOf(spec.Destinations[i]), keyOf(spec.Destinations[j])
			if a.host != b.host {
				return a.host < b.host
			}
			if a.port != b.port {
				return a.port < b.port
			}
			return a.transport < b.transport
		})
	}
	return changed, dropped
}

// addAddrs adds the addresses a name entry recorded, up to MaxAddrs.
func addAddrs(have []string, e profile.Entry) []string {
	if e.Name == "" {
		return have
	}
	for _, a := range e.IPs {
		if len(have) >= MaxAddrs {
			break
		}
		if s := a.String(); !slices.Contains(have, s) {
			have = append(have, s)
		}
	}
	return have
}

// entriesOf is the spec's destinations as profile entries (invalid ones left out).
func entriesOf(spec *Spec) []profile.Entry {
	out := make([]profile.Entry, 0, len(spec.Destinations))
	for _, d := range spec.Destinations {
		if e, ok := toDest(d); ok {
			out = append(out, e)
		}
	}
	return out
}

// learnedBy counts the destinations node contributed to.
func learnedBy(spec *Spec, node string) int {
	n := 0
	for _, d := range spec.Destinations {
		if slices.Contains(d.SeenBy, node) {
			n++
		}
	}
	return n
}
