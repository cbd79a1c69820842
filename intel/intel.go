// Package intel owns the mining-pool intelligence: pool domains (matched by suffix), pool
// addresses and prefixes, miner ports and DNS-over-HTTPS/TLS resolvers. A Set is immutable once
// built, so the sensor can swap a reloaded one in atomically; it never resolves names itself.
package intel

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed builtin/*.txt
var builtinFS embed.FS

// Kind says what an entry stands for.
type Kind uint8

const (
	KindPool Kind = iota + 1 // a mining pool endpoint or a site serving a miner
	KindDoH                  // a public DNS-over-HTTPS/TLS resolver
)

func (k Kind) String() string {
	switch k {
	case KindPool:
		return "pool"
	case KindDoH:
		return "doh"
	}
	return "unknown"
}

// Entry is one listed indicator and where it came from.
type Entry struct {
	Value  string // the listed domain, address, address:port or prefix
	Kind   Kind
	Source string // e.g. "maltrail", "falco", "user:/etc/minerguard/pools.txt"
}

// Set is an immutable collection of indicators.
type Set struct {
	domains   map[string]Entry
	addrs     map[netip.Addr]Entry
	addrPorts map[netip.AddrPort]Entry
	prefixes  map[netip.Prefix]Entry
	bits      []int // distinct prefix lengths in prefixes, longest first
	ports     map[uint16]string
	// filter has a bit set for the hash of every listed domain and address, so most
	// lookups (names and addresses that are not listed) end without touching a map.
	filter [filterWords]uint64
}

const filterWords = 1 << 12 // 256 Kibit: under 1 % false positives for 10,000 entries

func filterHash(s string) uint32 {
	// FNV-1a: short, allocation-free, good enough to spread names over the filter.
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func addrHash(a netip.Addr) uint32 {
	b := a.As16()
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

func (s *Set) mark(h uint32)       { h %= filterWords * 64; s.filter[h/64] |= 1 << (h % 64) }
func (s *Set) maybe(h uint32) bool { h %= filterWords * 64; return s.filter[h/64]&(1<<(h%64)) != 0 }

// MaxLineLen bounds one line of a user list; longer lines are refused rather than buffered.
const MaxLineLen = 4096

func newSet() *Set {
	return &Set{
		domains:   map[string]Entry{},
		addrs:     map[netip.Addr]Entry{},
		addrPorts: map[netip.AddrPort]Entry{},
		prefixes:  map[netip.Prefix]Entry{},
		ports:     map[uint16]string{},
	}
}

// Builtin returns the curated list shipped with minerguard (see builtin/SOURCES.md).
func Builtin() *Set {
	s := newSet()
	for _, f := range []struct {
		name string
		kind Kind
	}{{"domains.txt", KindPool}, {"addrs.txt", KindPool}, {"doh.txt", KindDoH}} {
		b, err := builtinFS.ReadFile("builtin/" + f.name)
		if err != nil {
			panic(err) // embedded at build time: cannot happen
		}
		if err := s.addText(bytes.NewReader(b), f.kind, "builtin:"+f.name, true); err != nil {
			panic(fmt.Sprintf("built-in intel %s: %v", f.name, err))
		}
	}
	b, _ := builtinFS.ReadFile("builtin/ports.txt")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			if p, err := strconv.ParseUint(f[0], 10, 16); err == nil {
				s.ports[uint16(p)] = "builtin"
			}
		}
	}
	s.finish()
	return s
}

// With returns a new Set holding s plus the user lists at paths. A list is plain text (one
// domain, address, address:port or CIDR a line, '#' comments; a line may end in the word "doh")
// or YAML (keys pools, addrs, doh, ports) when its name ends in .yml/.yaml.
func (s *Set) With(paths ...string) (*Set, error) {
	n := s.clone()
	for _, p := range paths {
		if err := n.addFile(p); err != nil {
			return nil, err
		}
	}
	n.finish()
	return n, nil
}

func (s *Set) clone() *Set {
	n := newSet()
	for k, v := range s.domains {
		n.domains[k] = v
	}
	for k, v := range s.addrs {
		n.addrs[k] = v
	}
	for k, v := range s.addrPorts {
		n.addrPorts[k] = v
	}
	for k, v := range s.prefixes {
		n.prefixes[k] = v
	}
	for k, v := range s.ports {
		n.ports[k] = v
	}
	return n
}

func (s *Set) finish() {
	s.filter = [filterWords]uint64{}
	for d := range s.domains {
		s.mark(filterHash(d))
	}
	for a := range s.addrs {
		s.mark(addrHash(a))
	}
	for ap := range s.addrPorts {
		s.mark(addrHash(ap.Addr()))
	}
	seen := map[int]bool{}
	s.bits = s.bits[:0]
	for p := range s.prefixes {
		if !seen[p.Bits()] {
			seen[p.Bits()] = true
			s.bits = append(s.bits, p.Bits())
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(s.bits)))
}

func (s *Set) addFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading intel list: %w", err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".yaml") {
		return s.addYAML(f, path)
	}
	return s.addText(f, KindPool, "user:"+path, false)
}

// userYAML is the YAML form of a user list.
type userYAML struct {
	Pools []string `yaml:"pools"`
	Addrs []string `yaml:"addrs"`
	DoH   []string `yaml:"doh"`
	Ports []uint16 `yaml:"ports"`
}

func (s *Set) addYAML(r io.Reader, path string) error {
	dec := yaml.NewDecoder(io.LimitReader(r, 64<<20))
	dec.KnownFields(true)
	var u userYAML
	if err := dec.Decode(&u); err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", path, err)
	}
	src := "user:" + path
	for i, v := range u.Pools {
		if err := s.addValue(v, KindPool, src); err != nil {
			return fmt.Errorf("%s: pools[%d]: %w", path, i, err)
		}
	}
	for i, v := range u.Addrs {
		if err := s.addValue(v, KindPool, src); err != nil {
			return fmt.Errorf("%s: addrs[%d]: %w", path, i, err)
		}
	}
	for i, v := range u.DoH {
		if err := s.addValue(v, KindDoH, src); err != nil {
			return fmt.Errorf("%s: doh[%d]: %w", path, i, err)
		}
	}
	for _, p := range u.Ports {
		s.ports[p] = src
	}
	return nil
}

// addText reads "VALUE [SOURCE|doh]" lines. Built-in files carry their source in the second
// column; user files may mark a line "doh".
func (s *Set) addText(r io.Reader, kind Kind, src string, builtin bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), MaxLineLen)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		k, source := kind, src
		if len(f) > 1 {
			switch {
			case f[1] == "doh":
				k = KindDoH
			case builtin:
				source = f[1]
			}
		}
		if err := s.addValue(f[0], k, source); err != nil {
			return fmt.Errorf("%s line %d: %w", strings.TrimPrefix(src, "user:"), line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s line %d: %w", strings.TrimPrefix(src, "user:"), line+1, err)
	}
	return nil
}

func (s *Set) addValue(v string, kind Kind, src string) error {
	v = strings.ToLower(strings.TrimSpace(v))
	e := Entry{Value: v, Kind: kind, Source: src}
	if a, err := netip.ParseAddr(v); err == nil {
		s.addrs[a.Unmap()] = e
		return nil
	}
	if ap, err := netip.ParseAddrPort(v); err == nil {
		s.addrPorts[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = e
		return nil
	}
	if p, err := netip.ParsePrefix(v); err == nil {
		s.prefixes[p.Masked()] = e
		return nil
	}
	d := strings.TrimSuffix(strings.TrimPrefix(v, "*."), ".")
	if !validDomain(d) {
		return fmt.Errorf("%q is not a domain, address, address:port or CIDR", v)
	}
	e.Value = d
	s.domains[d] = e
	return nil
}

func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Domain matches name (lower-case, no trailing dot) and each parent of it against the listed
// domains, so "eu.pool.example" matches a listed "pool.example". Top-level labels alone never
// match. It does not allocate.
func (s *Set) Domain(name string) (Entry, bool) {
	name = strings.TrimSuffix(name, ".")
	for {
		if s.maybe(filterHash(name)) {
			if e, ok := s.domains[name]; ok {
				return e, true
			}
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return Entry{}, false
		}
		name = name[i+1:]
		if strings.IndexByte(name, '.') < 0 {
			return Entry{}, false
		}
	}
}

// Addr matches a destination address and port against listed addresses, address:port pairs
// and prefixes (longest first). It does not allocate.
func (s *Set) Addr(a netip.Addr, port uint16) (Entry, bool) {
	a = a.Unmap()
	if s.maybe(addrHash(a)) {
		if e, ok := s.addrs[a]; ok {
			return e, true
		}
		if e, ok := s.addrPorts[netip.AddrPortFrom(a, port)]; ok {
			return e, true
		}
	}
	for _, b := range s.bits {
		if b > a.BitLen() {
			continue
		}
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if e, ok := s.prefixes[p]; ok && p.Addr().Is4() == a.Is4() {
			return e, true
		}
	}
	return Entry{}, false
}

// MinerPort reports whether p is a port miners commonly use. It is context for an alert, never
// a reason on its own: 8080 and 25 carry plenty of ordinary traffic.
func (s *Set) MinerPort(p uint16) bool {
	_, ok := s.ports[p]
	return ok
}

// Counts says how many indicators of each sort the set holds (for `intel check` and metrics).
func (s *Set) Counts() (domains, addrs, prefixes, ports int) {
	return len(s.domains), len(s.addrs) + len(s.addrPorts), len(s.prefixes), len(s.ports)
}
