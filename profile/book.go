package profile

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNoProfile is returned for a workload that has no profile.
var ErrNoProfile = errors.New("no profile for this workload")

// Book is the set of profiles, safe for concurrent use. Check takes a read lock and does not
// allocate when the workload's profile exists.
type Book struct {
	cfg       Config
	denyNames map[string]string // suffix → "deny <suffix>"
	denyNets  []netip.Prefix
	denyLabel []string

	mu       sync.RWMutex
	profiles map[string]*profile
	dirty    map[string]struct{} // workloads changed since the last Commit (absent = deleted)
	pending  []Transition        // queued by SetImage, returned by the next Tick
	st       Stats

	commitMu sync.Mutex // orders commits; held while writing, without holding mu
	db       *bolt.DB
	readOnly bool // OpenReadOnly: Commit discards
	path     string
}

// profile is the in-memory form. Entries are indexed three ways so that Check is a few map
// lookups: by name, by exact address, and by the addresses recorded under names.
type profile struct {
	workload string
	state    State
	since    time.Time
	lastNew  time.Time
	flows    uint64
	image    string

	entries map[key]*entry
	cands   map[key]*entry    // waiting for MinReplicas; not matched
	ipIdx   map[ipKey]*entry  // address recorded under a name entry → (one of) its entries
	plens   []int             // distinct lengths of non-host Addr entries, to probe prefixes
	anyPort int               // entries with port 0 (any port): probe with port 0 too
	named   map[portProto]int // name entries per port and transport (port 0: any port)
	pNames  map[string]string // poisoned names → "poisoned NAME" (the alert label)
	pNets   []netip.Prefix    // poisoned addresses/prefixes
	pLabels []string          // "poisoned PREFIX", parallel to pNets
}

type entry struct {
	Entry
	label string // Entry.String(), computed once so that Check returns it without allocating
}

type portProto struct {
	port  uint16
	proto uint8
}

type ipKey struct {
	ip    netip.Addr
	port  uint16
	proto uint8
}

// NewMemory returns a Book without persistence (tests, replay without a state file). Invalid
// Deny entries are ignored; call cfg.Validate first to report them.
func NewMemory(cfg Config) *Book {
	b := &Book{
		cfg:       cfg.withDefaults(),
		denyNames: map[string]string{},
		profiles:  map[string]*profile{},
		dirty:     map[string]struct{}{},
	}
	for _, d := range cfg.Deny {
		p, n, err := parseDeny(d)
		switch {
		case err != nil:
		case n != "":
			b.denyNames[n] = "deny " + n
		default:
			b.denyNets = append(b.denyNets, p)
			b.denyLabel = append(b.denyLabel, "deny "+p.String())
		}
	}
	return b
}

func norm(t time.Time) time.Time { return t.UTC().Round(0) }

func newProfile(workload string, now time.Time) *profile {
	return &profile{
		workload: workload,
		state:    Learning,
		since:    now,
		entries:  map[key]*entry{},
		cands:    map[key]*entry{},
		ipIdx:    map[ipKey]*entry{},
		pNames:   map[string]string{},
	}
}

// get returns the workload's profile, creating it in Learning when create is set and the
// MaxProfiles cap allows. Caller holds mu for writing when create is set.
func (b *Book) get(workload string, now time.Time) *profile {
	if p := b.profiles[workload]; p != nil {
		return p
	}
	if len(b.profiles) >= b.cfg.MaxProfiles {
		b.st.ProfilesCap++
		return nil
	}
	p := newProfile(workload, norm(now))
	b.profiles[workload] = p
	b.dirty[workload] = struct{}{}
	return p
}

// Check answers whether d (used at address ip) is in the workload's profile. With no profile
// yet, one is created in Learning with its window starting at now, and Exists is false. A
// destination on the deny list is Denied (never In) in every state; one a detector flagged
// in this workload is Poisoned (never In).
//
// Matching: a named destination matches an entry with that name, port and transport; an
// unnamed one matches an address entry containing ip, or a name entry whose recorded
// addresses contain ip (so a flow whose DNS answer was missed still matches).
func (b *Book) Check(workload string, d Dest, ip netip.Addr, now time.Time) Result {
	d.Name = normName(d.Name)
	ip = ip.Unmap()
	if !ip.IsValid() && d.Addr.IsValid() && d.Addr.IsSingleIP() {
		ip = d.Addr.Addr().Unmap()
	}
	b.mu.RLock()
	if p := b.profiles[workload]; p != nil {
		r := b.check(p, d, ip)
		b.mu.RUnlock()
		return r
	}
	b.mu.RUnlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	existed := b.profiles[workload] != nil
	p := b.get(workload, now)
	r := b.check(p, d, ip)
	r.Exists = existed
	return r
}

func (b *Book) check(p *profile, d Dest, ip netip.Addr) Result {
	var r Result
	if p != nil {
		r.Exists, r.State = true, p.state
	}
	if lbl := b.denied(d.Name, ip, d.Addr); lbl != "" {
		r.Denied, r.Entry = true, lbl
		return r
	}
	if p == nil {
		return r
	}
	if lbl := p.poisoned(d.Name, ip, d.Addr); lbl != "" {
		r.Poisoned, r.Entry = true, lbl
		return r
	}
	e := p.match(d, ip)
	if e == nil {
		r.NameMayMatch = d.Name == "" && (p.named[portProto{d.Port, d.Proto}] > 0 || p.named[portProto{0, d.Proto}] > 0)
		return r
	}
	if e.Name != "" {
		// A name learned before it was added to the deny list.
		if lbl := b.denied(e.Name, netip.Addr{}, netip.Prefix{}); lbl != "" {
			r.Denied, r.Entry = true, lbl
			return r
		}
	}
	r.In, r.Entry = true, e.label
	return r
}

// denied returns the deny label matching a name (by suffix), an address or a prefix.
func (b *Book) denied(name string, ip netip.Addr, pfx netip.Prefix) string {
	if len(b.denyNames) > 0 && name != "" {
		for s := name; ; {
			if lbl, ok := b.denyNames[s]; ok {
				return lbl
			}
			i := strings.IndexByte(s, '.')
			if i < 0 {
				break
			}
			s = s[i+1:]
		}
	}
	for i, n := range b.denyNets {
		if (ip.IsValid() && n.Contains(ip)) || (pfx.IsValid() && n.Overlaps(pfx)) {
			return b.denyLabel[i]
		}
	}
	return ""
}

func (p *profile) poisoned(name string, ip netip.Addr, pfx netip.Prefix) string {
	if name != "" {
		if lbl, ok := p.pNames[name]; ok {
			return lbl
		}
	}
	for i, n := range p.pNets {
		if (ip.IsValid() && n.Contains(ip)) || (pfx.IsValid() && n.Overlaps(pfx)) {
			return p.pLabels[i]
		}
	}
	return ""
}

func (p *profile) lookup(k key) *entry {
	if e := p.entries[k]; e != nil {
		return e
	}
	if p.anyPort > 0 && k.port != 0 {
		k.port = 0
		return p.entries[k]
	}
	return nil
}

func (p *profile) match(d Dest, ip netip.Addr) *entry {
	if d.Name != "" {
		return p.lookup(key{name: d.Name, port: d.Port, proto: d.Proto})
	}
	if !ip.IsValid() {
		if d.Addr.IsValid() {
			return p.lookup(key{addr: d.Addr.Masked(), port: d.Port, proto: d.Proto})
		}
		return nil
	}
	if e := p.lookup(key{addr: netip.PrefixFrom(ip, ip.BitLen()), port: d.Port, proto: d.Proto}); e != nil {
		return e
	}
	for _, bits := range p.plens {
		if pf, err := ip.Prefix(bits); err == nil {
			if e := p.lookup(key{addr: pf, port: d.Port, proto: d.Proto}); e != nil {
				return e
			}
		}
	}
	if e := p.ipIdx[ipKey{ip, d.Port, d.Proto}]; e != nil {
		return e
	}
	if p.anyPort > 0 {
		return p.ipIdx[ipKey{ip, 0, d.Proto}]
	}
	return nil
}

// normDest returns d in canonical form: a valid lower-case name, or a masked prefix (from
// ip when d has neither). ok is false when nothing usable is left.
func normDest(d Dest, ip netip.Addr) (Dest, netip.Addr, bool) {
	ip = ip.Unmap()
	d.Name = normName(d.Name)
	if d.Name != "" {
		if !validName(d.Name) {
			return d, ip, false
		}
		d.Addr = netip.Prefix{}
		return d, ip, true
	}
	switch {
	case d.Addr.IsValid():
		a := d.Addr.Addr().Unmap()
		bits := d.Addr.Bits()
		if d.Addr.Addr().Is4In6() {
			bits -= 96
		}
		pf, err := a.Prefix(max(bits, 0))
		if err != nil {
			return d, ip, false
		}
		d.Addr = pf
	case ip.IsValid():
		d.Addr = netip.PrefixFrom(ip, ip.BitLen())
	default:
		return d, ip, false
	}
	return d, ip, true
}

// Learn records an observation in the workload's profile. It is a no-op unless the profile
// is learning (a missing profile is created, learning from now). Denied and poisoned
// destinations are never learned. The change is in memory at once and on disk at the next
// Commit.
func (b *Book) Learn(workload string, o Observation, now time.Time) {
	now = norm(now)
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.get(workload, now)
	if p == nil || p.state != Learning {
		return
	}
	p.flows++
	b.dirty[workload] = struct{}{}
	d, ip, ok := normDest(o.Dest, o.IP)
	if !ok {
		return
	}
	if b.denied(d.Name, ip, d.Addr) != "" || p.poisoned(d.Name, ip, d.Addr) != "" {
		return
	}
	k := keyOf(d)
	if e := p.entries[k]; e != nil {
		b.addIP(p, e, ip, true)
		if e.App == "" && d.App != "" {
			e.App = d.App
		}
		return
	}
	if b.cfg.MinReplicas > 1 {
		c := p.cands[k]
		if c == nil {
			if len(p.cands) >= b.cfg.MaxEntries {
				b.st.EntriesCapped++
				return
			}
			c = &entry{Entry: Entry{Dest: d, First: now}}
			p.cands[k] = c
		}
		if c.App == "" {
			c.App = d.App
		}
		b.addIP(p, c, ip, false)
		id := o.Replica + "@" + o.Node
		if !slices.Contains(c.Seen, id) {
			c.Seen = append(c.Seen, id)
		}
		if len(c.Seen) < b.cfg.MinReplicas {
			return
		}
		delete(p.cands, k)
		if len(p.entries) >= b.cfg.MaxEntries {
			b.st.EntriesCapped++
			return
		}
		c.Seen, c.First = nil, now
		p.add(c)
		p.lastNew = now
		return
	}
	if len(p.entries) >= b.cfg.MaxEntries {
		b.st.EntriesCapped++
		return
	}
	e := &entry{Entry: Entry{Dest: d, First: now}}
	b.addIP(p, e, ip, false)
	p.add(e)
	p.lastNew = now
}

// addIP records ip under a name entry; indexed says e is already in p.entries.
func (b *Book) addIP(p *profile, e *entry, ip netip.Addr, indexed bool) {
	if e.Name == "" || !ip.IsValid() {
		return
	}
	if indexed && p.ipIdx[ipKey{ip, e.Port, e.Proto}] == e {
		return
	}
	if slices.Contains(e.IPs, ip) {
		return
	}
	if len(e.IPs) >= b.cfg.MaxIPsPerName {
		b.st.IPsCapped++
		return
	}
	e.IPs = append(e.IPs, ip)
	if indexed {
		k := ipKey{ip, e.Port, e.Proto}
		if p.ipIdx[k] == nil {
			p.ipIdx[k] = e
		}
	}
}

// add puts e into the indexes.
func (p *profile) add(e *entry) {
	e.label = e.Entry.String()
	p.entries[keyOf(e.Dest)] = e
	if e.Port == 0 {
		p.anyPort++
	}
	if e.Name != "" {
		if p.named == nil {
			p.named = map[portProto]int{}
		}
		p.named[portProto{e.Port, e.Proto}]++
	}
	for _, ip := range e.IPs {
		k := ipKey{ip, e.Port, e.Proto}
		if p.ipIdx[k] == nil {
			p.ipIdx[k] = e
		}
	}
	if e.Name == "" && !e.Addr.IsSingleIP() && !slices.Contains(p.plens, e.Addr.Bits()) {
		p.plens = append(p.plens, e.Addr.Bits())
		sort.Sort(sort.Reverse(sort.IntSlice(p.plens))) // most specific first
	}
}

// reindex rebuilds the derived indexes after removals (rare: Poison, Reset).
func (p *profile) reindex() {
	es := p.entries
	p.entries, p.ipIdx, p.plens, p.anyPort, p.named = make(map[key]*entry, len(es)), map[ipKey]*entry{}, nil, 0, nil
	for _, e := range es {
		p.add(e)
	}
}

// Poison records that a detector flagged d in this workload: it is never learned there, never
// In, and is removed if it was learned in the current learning window. A name poisons that
// name on every port; an address or prefix poisons every destination inside it, including
// name entries learned in this window with an address there.
func (b *Book) Poison(workload string, d Dest, now time.Time) {
	now = norm(now)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.Poisoned++
	p := b.get(workload, now)
	if p == nil {
		return
	}
	d, _, ok := normDest(d, netip.Addr{})
	if !ok {
		return
	}
	b.dirty[workload] = struct{}{}
	full := len(p.pNames)+len(p.pNets) >= b.cfg.MaxEntries
	if d.Name != "" {
		if _, had := p.pNames[d.Name]; !had {
			if full {
				b.st.PoisonCapped++
			} else {
				p.pNames[d.Name] = "poisoned " + d.Name
			}
		}
	} else if !slices.Contains(p.pNets, d.Addr) {
		if full {
			b.st.PoisonCapped++
		} else {
			p.pNets = append(p.pNets, d.Addr)
			p.pLabels = append(p.pLabels, "poisoned "+d.Addr.String())
		}
	}
	hit := func(e *entry) bool {
		if d.Name != "" {
			return e.Name == d.Name
		}
		if e.Name == "" {
			return d.Addr.Overlaps(e.Addr)
		}
		return slices.ContainsFunc(e.IPs, d.Addr.Contains)
	}
	for k, c := range p.cands {
		if hit(c) {
			delete(p.cands, k)
		}
	}
	if p.state != Learning {
		return
	}
	removed := false
	for k, e := range p.entries {
		if hit(e) && !e.First.Before(p.since) {
			delete(p.entries, k)
			removed = true
		}
	}
	if removed {
		p.reindex()
	}
}

// Tick ends the learning windows that are over and returns the changes, including those
// queued by SetImage since the last Tick. A window is over when Window has passed since it
// started (or MinFlows flows were observed) and no new entry was learned for Quiet. With
// Config.Promote == Learning nothing is promoted automatically.
func (b *Book) Tick(now time.Time) []Transition {
	now = norm(now)
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.pending
	b.pending = nil
	if b.cfg.Promote == Learning {
		return out
	}
	for w, p := range b.profiles {
		if p.state != Learning {
			continue
		}
		reason := ""
		switch {
		case now.Sub(p.since) >= b.cfg.Window:
			reason = "window"
		case b.cfg.MinFlows > 0 && p.flows >= uint64(b.cfg.MinFlows):
			reason = "flows"
		default:
			continue
		}
		last := p.lastNew
		if last.Before(p.since) {
			last = p.since
		}
		if b.cfg.Quiet > 0 && now.Sub(last) < b.cfg.Quiet {
			continue
		}
		b.setState(p, b.cfg.Promote, now)
		out = append(out, Transition{Workload: w, From: Learning, To: b.cfg.Promote, At: now, Reason: reason})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out
}

func (b *Book) setState(p *profile, to State, now time.Time) {
	if to != Learning {
		clear(p.cands) // candidates only matter while learning
	}
	p.state, p.since = to, now
	b.dirty[p.workload] = struct{}{}
}

// SetImage records the workload's image. When it changes and RelearnOnImageChange is set,
// the profile goes back to Learning with its entries cleared; the Transition is returned by
// the next Tick.
func (b *Book) SetImage(workload, image string, now time.Time) {
	now = norm(now)
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.get(workload, now)
	if p == nil || image == "" || p.image == image {
		return
	}
	old := p.image
	p.image = image
	b.dirty[workload] = struct{}{}
	if old == "" || !b.cfg.RelearnOnImageChange {
		return
	}
	from := p.state
	b.relearn(p, now)
	b.pending = append(b.pending, Transition{Workload: workload, From: from, To: Learning, At: now, Reason: "image"})
}

func (b *Book) relearn(p *profile, now time.Time) {
	clear(p.entries)
	clear(p.cands)
	p.reindex()
	p.flows, p.lastNew = 0, time.Time{}
	b.setState(p, Learning, now)
}

// Approve moves a profile to Monitoring or Enforcing (from any state).
func (b *Book) Approve(workload string, to State, now time.Time) error {
	if to != Monitoring && to != Enforcing {
		return fmt.Errorf("approving %s: target state must be monitoring or enforcing, not %v", workload, to)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.profiles[workload]
	if p == nil {
		return fmt.Errorf("approving %s: %w", workload, ErrNoProfile)
	}
	b.setState(p, to, norm(now))
	return nil
}

// Reset puts a profile back to Learning with its entries cleared. Poisoned destinations are
// kept: a destination a detector flagged stays unlearnable in this workload.
func (b *Book) Reset(workload string, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.profiles[workload]
	if p == nil {
		return fmt.Errorf("resetting %s: %w", workload, ErrNoProfile)
	}
	b.relearn(p, norm(now))
	return nil
}

// Delete forgets a workload's profile (a workload that is gone for good).
func (b *Book) Delete(workload string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.profiles[workload] == nil {
		return fmt.Errorf("deleting %s: %w", workload, ErrNoProfile)
	}
	delete(b.profiles, workload)
	b.dirty[workload] = struct{}{}
	return nil
}

// Config is the configuration the Book runs with, defaults filled in.
func (b *Book) Config() Config { return b.cfg }

// List summarises every profile, sorted by workload.
func (b *Book) List() []Summary {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]Summary, 0, len(b.profiles))
	for _, p := range b.profiles {
		out = append(out, Summary{Workload: p.workload, State: p.state, Entries: len(p.entries),
			Candidates: len(p.cands), Since: p.since, LastNew: p.lastNew, Image: p.image})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out
}

// Summary summarises one workload's profile without copying its entries.
func (b *Book) Summary(workload string) (Summary, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p := b.profiles[workload]
	if p == nil {
		return Summary{}, false
	}
	return Summary{Workload: p.workload, State: p.state, Entries: len(p.entries),
		Candidates: len(p.cands), Since: p.since, LastNew: p.lastNew, Image: p.image}, true
}

// State is the workload's profile state, without copying the profile (0, false: none).
func (b *Book) State(workload string) (State, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if p := b.profiles[workload]; p != nil {
		return p.state, true
	}
	return 0, false
}

// Get returns a copy of the workload's profile.
func (b *Book) Get(workload string) (Profile, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p := b.profiles[workload]
	if p == nil {
		return Profile{}, false
	}
	return p.export(), true
}

// Profiles returns copies of all profiles, sorted by workload.
func (b *Book) Profiles() []Profile {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]Profile, 0, len(b.profiles))
	for _, p := range b.profiles {
		out = append(out, p.export())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out
}

func exportEntries(m map[key]*entry) []Entry {
	if len(m) == 0 {
		return nil
	}
	out := make([]Entry, 0, len(m))
	for _, e := range m {
		c := e.Entry
		c.IPs = slices.Clone(e.IPs)
		c.Seen = slices.Clone(e.Seen)
		out = append(out, c)
	}
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].String() < es[j].String() })
}

func (p *profile) export() Profile {
	out := Profile{Workload: p.workload, State: p.state, Since: p.since, LastNew: p.lastNew,
		Flows: p.flows, Image: p.image, Entries: exportEntries(p.entries), Candidates: exportEntries(p.cands)}
	for n := range p.pNames {
		out.Poisoned = append(out.Poisoned, n)
	}
	for _, n := range p.pNets {
		out.Poisoned = append(out.Poisoned, n.String())
	}
	sort.Strings(out.Poisoned)
	return out
}

// Put imports a profile, replacing the workload's current one. It is refused when it breaks
// the Book's caps or holds an invalid entry.
func (b *Book) Put(pr Profile) error {
	p, err := b.build(pr)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.profiles[pr.Workload] == nil && len(b.profiles) >= b.cfg.MaxProfiles {
		b.st.ProfilesCap++
		return fmt.Errorf("importing %s: already %d profiles (max-profiles)", pr.Workload, b.cfg.MaxProfiles)
	}
	b.profiles[pr.Workload] = p
	b.dirty[pr.Workload] = struct{}{}
	return nil
}

// build validates pr against the caps and returns its in-memory form.
func (b *Book) build(pr Profile) (*profile, error) {
	w := pr.Workload
	if w == "" || len(w) > maxWorkloadLen {
		return nil, fmt.Errorf("profile workload %q: must be 1 to %d bytes", w, maxWorkloadLen)
	}
	if pr.State < Learning || pr.State > Enforcing {
		return nil, fmt.Errorf("profile %s: invalid state %v", w, pr.State)
	}
	if len(pr.Entries) > b.cfg.MaxEntries || len(pr.Candidates) > b.cfg.MaxEntries || len(pr.Poisoned) > b.cfg.MaxEntries {
		return nil, fmt.Errorf("profile %s: %d entries, %d candidates, %d poisoned: more than max-entries %d",
			w, len(pr.Entries), len(pr.Candidates), len(pr.Poisoned), b.cfg.MaxEntries)
	}
	p := newProfile(w, norm(pr.Since))
	p.state, p.flows, p.image = pr.State, pr.Flows, pr.Image
	if !pr.LastNew.IsZero() {
		p.lastNew = norm(pr.LastNew)
	}
	conv := func(i int, e Entry, what string) (*entry, error) {
		d, _, ok := normDest(e.Dest, netip.Addr{})
		if !ok || d.Proto == 0 {
			return nil, fmt.Errorf("profile %s %s %d: needs a valid name or address and a transport", w, what, i)
		}
		if len(e.IPs) > b.cfg.MaxIPsPerName {
			return nil, fmt.Errorf("profile %s %s %s: %d addresses, more than max-ips-per-name %d", w, what, d, len(e.IPs), b.cfg.MaxIPsPerName)
		}
		n := &entry{Entry: Entry{Dest: d, First: norm(e.First)}}
		if e.First.IsZero() {
			n.First = time.Time{}
		}
		for _, ip := range e.IPs {
			if ip = ip.Unmap(); ip.IsValid() && d.Name != "" && !slices.Contains(n.IPs, ip) {
				n.IPs = append(n.IPs, ip)
			}
		}
		n.Seen = slices.Clone(e.Seen)
		return n, nil
	}
	for i, e := range pr.Entries {
		n, err := conv(i, e, "entry")
		if err != nil {
			return nil, err
		}
		if p.entries[keyOf(n.Dest)] != nil {
			return nil, fmt.Errorf("profile %s: entry %s twice", w, n.Dest)
		}
		n.Seen = nil
		p.add(n)
	}
	for i, e := range pr.Candidates {
		n, err := conv(i, e, "candidate")
		if err != nil {
			return nil, err
		}
		n.label = n.Entry.String()
		p.cands[keyOf(n.Dest)] = n
	}
	for _, s := range pr.Poisoned {
		pf, name, err := parseDeny(s)
		if err != nil {
			return nil, fmt.Errorf("profile %s poisoned %q: not a name, address or prefix", w, s)
		}
		if name != "" {
			p.pNames[name] = "poisoned " + name
		} else if !slices.Contains(p.pNets, pf) {
			p.pNets = append(p.pNets, pf)
			p.pLabels = append(p.pLabels, "poisoned "+pf.String())
		}
	}
	return p, nil
}

const maxWorkloadLen = 512

// Stats returns the counters and the profile counts by state.
func (b *Book) Stats() Stats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	s := b.st
	s.Profiles = len(b.profiles)
	for _, p := range b.profiles {
		switch p.state {
		case Learning:
			s.Learning++
		case Monitoring:
			s.Monitoring++
		case Enforcing:
			s.Enforcing++
		}
		s.Entries += len(p.entries)
	}
	return s
}

// AddEntries adds the destinations of es that the workload's profile lacks (a profile learned
// elsewhere: another node's sensor, through the cluster), in any state, creating the profile
// in Learning when it has none. Poisoned and denied destinations are not added; entries past
// MaxEntries are dropped and counted as EntriesCapped. It returns how many were added.
func (b *Book) AddEntries(workload string, es []Entry, now time.Time) (int, error) {
	now = norm(now)
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.get(workload, now)
	if p == nil {
		return 0, fmt.Errorf("adding entries to %s: already %d profiles (max-profiles)", workload, b.cfg.MaxProfiles)
	}
	added := 0
	for _, e := range es {
		d, _, ok := normDest(e.Dest, netip.Addr{})
		if !ok || d.Proto == 0 {
			continue
		}
		var ip netip.Addr
		if d.Name == "" && d.Addr.IsSingleIP() {
			ip = d.Addr.Addr()
		}
		if b.denied(d.Name, ip, d.Addr) != "" || p.poisoned(d.Name, ip, d.Addr) != "" {
			continue
		}
		k := keyOf(d)
		if n := p.entries[k]; n != nil {
			for _, a := range e.IPs {
				b.addIP(p, n, a.Unmap(), true)
			}
			continue
		}
		if len(p.entries) >= b.cfg.MaxEntries {
			b.st.EntriesCapped++
			continue
		}
		n := &entry{Entry: Entry{Dest: d, First: now}}
		if !e.First.IsZero() {
			n.First = norm(e.First)
		}
		for _, a := range e.IPs {
			b.addIP(p, n, a.Unmap(), false)
		}
		delete(p.cands, k)
		p.add(n)
		added++
	}
	if added > 0 {
		b.dirty[workload] = struct{}{}
	}
	return added, nil
}
