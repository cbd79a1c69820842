package profile

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Dest is one egress destination as the workload used it.
type Dest struct {
	Name  string       // lower-case domain, no trailing dot, when known (DNS answer in the workload's netns, or TLS SNI)
	Addr  netip.Prefix // used when Name == "": the address (/32, /128) or a prefix
	Port  uint16       // 0 in an entry means any port (imported or hand-written profiles)
	Proto uint8        // 6 tcp, 17 udp
	App   string       // "tls","dns","http","stratum","" — recorded, shown and exported, NOT part of the match
}

// Transport protocol numbers.
const (
	TCP uint8 = 6
	UDP uint8 = 17
)

// Observation is one flow seen while learning.
type Observation struct {
	Dest
	IP      netip.Addr // the actual address used (recorded under a Name entry, capped per name)
	Replica string     // netns inode / pod name: for MinReplicas
	Node    string
}

// State is where a profile is in its lifecycle. The zero value is not a state: it means
// "no profile" in a Result and "default" in Config.Promote.
type State uint8

// Profile states.
const (
	Learning State = iota + 1
	Monitoring
	Enforcing
)

func (s State) String() string {
	switch s {
	case Learning:
		return "learning"
	case Monitoring:
		return "monitoring"
	case Enforcing:
		return "enforcing"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ParseState parses "learning", "monitoring" or "enforcing" (case-insensitive).
func ParseState(s string) (State, error) {
	switch strings.ToLower(s) {
	case "learning":
		return Learning, nil
	case "monitoring":
		return Monitoring, nil
	case "enforcing":
		return Enforcing, nil
	}
	return 0, fmt.Errorf("unknown profile state %q (want learning, monitoring or enforcing)", s)
}

// Config controls learning. Zero fields take the documented defaults.
type Config struct {
	// Window: learning lasts at least this long (default 24h; packet time in replay, wall
	// time live).
	Window time.Duration
	// Quiet: and ends only after this long without a new entry (default 1h; negative = no
	// quiet period).
	Quiet time.Duration
	// MinFlows, when > 0, ends learning after this many observed flows even before Window
	// has passed (useful for short captures). The quiet period still applies: a profile
	// that is still gaining entries has not converged, however many flows it saw.
	MinFlows int
	// Promote is where learning ends automatically: Monitoring (default), Enforcing, or
	// Learning = never automatically (needs Approve).
	Promote State
	// MaxEntries per workload (default 1,000); hitting it is counted. Also bounds the
	// candidates waiting for MinReplicas and the poisoned destinations.
	MaxEntries int
	// MaxIPsPerName: addresses recorded under one name entry (default 1,000, Cilium's
	// default); hitting it is counted.
	MaxIPsPerName int
	// MinReplicas: learn a destination only once seen from this many distinct
	// replica/node pairs (default 1).
	MinReplicas int
	// MaxProfiles bounds the number of workloads (default 10,000): a churn of unnamed
	// namespaces must not grow the Book without bound. Hitting it is counted.
	MaxProfiles int
	// RelearnOnImageChange: when SetImage reports a different image, the profile goes back
	// to Learning with its entries cleared.
	RelearnOnImageChange bool
	// Deny lists domain suffixes ("pool.example" matches a.pool.example) or addresses /
	// CIDRs that are never learned and are always a violation, in every state.
	Deny []string
}

// Defaults.
const (
	DefaultWindow        = 24 * time.Hour
	DefaultQuiet         = time.Hour
	DefaultMaxEntries    = 1000
	DefaultMaxIPsPerName = 1000
	DefaultMaxProfiles   = 10000
)

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Window < 0:
		return errors.New("profile window must not be negative")
	case c.MinFlows < 0:
		return errors.New("profile min-flows must not be negative")
	case c.MaxEntries < 0:
		return errors.New("profile max-entries must not be negative")
	case c.MaxIPsPerName < 0:
		return errors.New("profile max-ips-per-name must not be negative")
	case c.MinReplicas < 0:
		return errors.New("profile min-replicas must not be negative")
	case c.MaxProfiles < 0:
		return errors.New("profile max-profiles must not be negative")
	case c.Promote > Enforcing:
		return fmt.Errorf("profile promote: %v is not a state", c.Promote)
	}
	for _, d := range c.Deny {
		if _, _, err := parseDeny(d); err != nil {
			return err
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Quiet == 0 {
		c.Quiet = DefaultQuiet
	}
	if c.Promote == 0 || c.Promote > Enforcing {
		c.Promote = Monitoring
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxIPsPerName <= 0 {
		c.MaxIPsPerName = DefaultMaxIPsPerName
	}
	if c.MinReplicas <= 0 {
		c.MinReplicas = 1
	}
	if c.MaxProfiles <= 0 {
		c.MaxProfiles = DefaultMaxProfiles
	}
	return c
}

// parseDeny returns a deny entry as a prefix or a domain suffix.
func parseDeny(s string) (netip.Prefix, string, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), "", nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), "", nil
	}
	n := normName(strings.TrimPrefix(s, "*."))
	if !validName(n) {
		return netip.Prefix{}, "", fmt.Errorf("profile deny entry %q is neither a domain, an address nor a CIDR", s)
	}
	return netip.Prefix{}, n, nil
}

// Result answers Check.
type Result struct {
	State    State // the profile's state (0 when there is none)
	Exists   bool  // false: no profile yet (one was created, learning from now)
	In       bool  // the destination is in the profile
	Denied   bool  // the deny list matched (In is false)
	Poisoned bool  // a detector flagged this destination in this workload (In is false)
	// NameMayMatch: the destination has no name and is not In, but a name entry on its port
	// and transport exists, so a server name seen later (TLS SNI) might still match.
	NameMayMatch bool
	Entry        string // what matched, for alerts: an entry ("api.example:443/tcp"), "deny pool.example" or "poisoned pool.example"
}

// Entry is one learned destination.
type Entry struct {
	Dest
	IPs   []netip.Addr // Name entries: the addresses seen for it (capped)
	First time.Time    // when it was learned
	Seen  []string     // candidates only: the replicas it was seen from so far
}

// String names the entry in alerts and listings: "host:port/proto", with IPv6 bracketed and
// "any" for port 0.
func (e Entry) String() string { return e.Dest.String() }

func (d Dest) String() string {
	host := d.Name
	if host == "" {
		host = prefixString(d.Addr)
	}
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	port := "any"
	if d.Port != 0 {
		port = strconv.Itoa(int(d.Port))
	}
	return host + ":" + port + "/" + ProtoName(d.Proto)
}

// prefixString prints a host prefix as its bare address.
func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return "-"
	}
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// ProtoName is "tcp", "udp" or the number.
func ProtoName(p uint8) string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// ParseProto parses "tcp", "udp" or a protocol number.
func ParseProto(s string) (uint8, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("unknown transport %q (want tcp, udp or a protocol number)", s)
	}
	return uint8(n), nil
}

// Profile is one workload's profile (a copy; changing it does not change the Book).
type Profile struct {
	Workload   string
	State      State
	Since      time.Time // entered the current state; for Learning, the start of the window
	LastNew    time.Time // the last new entry (zero: none yet)
	Flows      uint64    // flows observed in the current learning window
	Image      string    // the workload's image as last reported by SetImage
	Entries    []Entry   // sorted by String()
	Candidates []Entry   // seen from fewer than MinReplicas replicas: not matched, not exported as policy
	Poisoned   []string  // names and prefixes a detector flagged: never learned, never In
}

// Summary is one line of List.
type Summary struct {
	Workload   string
	State      State
	Entries    int
	Candidates int
	Since      time.Time
	LastNew    time.Time
	Image      string
}

// Transition is a state change made by Tick (end of a learning window) or queued by SetImage
// (relearning after an image change).
type Transition struct {
	Workload string
	From, To State
	At       time.Time
	Reason   string // "window", "flows", "image"
}

// Stats are the Book's counters.
type Stats struct {
	Profiles      int // all workloads
	Learning      int
	Monitoring    int
	Enforcing     int
	Entries       int    // learned entries over all workloads
	EntriesCapped uint64 // new destinations dropped because a profile (or its candidates) was full
	IPsCapped     uint64 // addresses not recorded because a name had MaxIPsPerName
	ProfilesCap   uint64 // workloads not profiled because MaxProfiles was reached
	Poisoned      uint64 // Poison calls
	PoisonCapped  uint64 // poisoned destinations not remembered (list full; the entry was still removed)
	Commits       uint64 // successful commits that wrote something
	CommitErrors  uint64
}

// Diff returns the entries of b not in a (added) and of a not in b (removed), matched on
// name or address, port and transport. Changes to an entry's recorded addresses or app are
// not differences: the destination is the same.
func Diff(a, b Profile) (added, removed []Entry) {
	in := func(es []Entry) map[key]bool {
		m := make(map[key]bool, len(es))
		for _, e := range es {
			m[keyOf(e.Dest)] = true
		}
		return m
	}
	ina, inb := in(a.Entries), in(b.Entries)
	for _, e := range b.Entries {
		if !ina[keyOf(e.Dest)] {
			added = append(added, e)
		}
	}
	for _, e := range a.Entries {
		if !inb[keyOf(e.Dest)] {
			removed = append(removed, e)
		}
	}
	return added, removed
}

// key identifies an entry: name or address, port, transport.
type key struct {
	name  string
	addr  netip.Prefix
	port  uint16
	proto uint8
}

func keyOf(d Dest) key {
	if d.Name != "" {
		return key{name: d.Name, port: d.Port, proto: d.Proto}
	}
	return key{addr: d.Addr, port: d.Port, proto: d.Proto}
}

// normName lower-cases a name and drops the root dot; it does not allocate when the name is
// already normal (the hot path).
func normName(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// validName accepts what can appear in DNS answers and SNI: letters, digits, '-', '_', '.',
// '*' as a wildcard label, at most 253 bytes, no empty labels.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '*':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}
