package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/profile"
)

// workloadMap names the workload of a replayed packet from its source address: the longest
// prefix that contains it wins. With no prefixes, every capture interface is one workload.
type workloadMap struct {
	prefixes []netip.Prefix // longest first
	names    []*alert.Workload
	byIface  map[uint64]*alert.Workload
}

// parseWorkloads reads CIDR=NAME pairs from flags and from files (one pair per line, '#'
// comments).
func parseWorkloads(pairs, files []string) (*workloadMap, error) {
	m := &workloadMap{byIface: map[uint64]*alert.Workload{}}
	type entry struct {
		p    netip.Prefix
		name string
	}
	var all []entry
	add := func(s, where string) error {
		cidr, name, ok := strings.Cut(s, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return fmt.Errorf("%s: %q: want CIDR=NAME (10.0.1.0/24=shop/web)", where, s)
		}
		cidr = strings.TrimSpace(cidr)
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			a, aerr := netip.ParseAddr(cidr)
			if aerr != nil {
				return fmt.Errorf("%s: %q: %v", where, cidr, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		all = append(all, entry{p.Masked(), name})
		return nil
	}
	for _, s := range pairs {
		if err := add(s, "--workload"); err != nil {
			return nil, err
		}
	}
	for _, fn := range files {
		f, err := os.Open(fn)
		if err != nil {
			return nil, fmt.Errorf("--workload-file: %w", err)
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line, _, _ := strings.Cut(sc.Text(), "#")
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			if err := add(line, fn+":"+strconv.Itoa(n)); err != nil {
				f.Close()
				return nil, err
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--workload-file %s: %w", fn, err)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].p.Bits() > all[j].p.Bits() })
	for _, e := range all {
		m.prefixes = append(m.prefixes, e.p)
		m.names = append(m.names, &alert.Workload{Identity: e.name, Kind: "static"})
	}
	return m, nil
}

// of is the engine's Workload function. A source outside every prefix is not a workload's
// egress (an inbound connection, or a host the map does not name).
func (m *workloadMap) of(scope uint64, src netip.Addr) *alert.Workload {
	if len(m.prefixes) == 0 {
		// One workload per capture interface; the file is not part of the name, so a
		// profile learned from one capture applies to the next one of the same link.
		iface := scope & 0xffffffff
		w := m.byIface[iface]
		if w == nil {
			w = &alert.Workload{Identity: "interface/" + strconv.FormatUint(iface, 10), Kind: "interface"}
			m.byIface[iface] = w
		}
		return w
	}
	if i := m.find(src); i >= 0 {
		return m.names[i]
	}
	return nil
}

// find is the index of the longest prefix containing a, or -1.
func (m *workloadMap) find(a netip.Addr) int {
	a = a.Unmap()
	for i, p := range m.prefixes {
		if p.Contains(a) {
			return i
		}
	}
	return -1
}

// nameScope keeps DNS answers per mapped workload (engine.Options.NameScope): within one
// capture, a workload's lookups name destinations for it alone, as its own namespace would
// live. Addresses outside every prefix share the capture's scope.
func (m *workloadMap) nameScope(scope uint64, client netip.Addr) uint64 {
	if i := m.find(client); i >= 0 {
		return scope ^ (uint64(i+1) * 0x9e3779b97f4a7c15)
	}
	return scope
}

// openProfiles opens the profile state for replay. Learning replays teach every workload whose
// profile is new or still learning; checking replays never write the state.
func openProfiles(path string, learn bool, cfg profile.Config) (*profile.Book, error) {
	if path == "" {
		if learn {
			return nil, fmt.Errorf("--learn needs --profiles STATE (the file the profiles are kept in)")
		}
		return nil, nil
	}
	if !learn {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("--profiles %s: %w (learn one first: minerguard replay --learn --profiles %s BASELINE.pcap)", path, err, path)
		}
	}
	// Replay learns for as long as the capture lasts; the profiles are promoted at its end.
	cfg.Promote = profile.Learning
	open := profile.Open
	if !learn {
		open = profile.OpenReadOnly
	}
	b, err := open(path, cfg, 5*time.Second)
	return b, damageAdvice(err)
}

// finishLearning promotes the profiles this replay taught to monitoring and commits them.
func finishLearning(b *profile.Book, now time.Time) ([]profile.Summary, error) {
	var done []profile.Summary
	for _, s := range b.List() {
		if s.State != profile.Learning {
			continue
		}
		if err := b.Approve(s.Workload, profile.Monitoring, now); err != nil {
			return nil, err
		}
		done = append(done, s)
	}
	return done, b.Commit()
}
