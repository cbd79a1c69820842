// Package detect owns the verdict: it joins what the protocol detectors saw on a flow with the
// pool intel into an action (allow, flag, drop) and the reasons for it. It is pure: no I/O, no
// clock of its own, so replay and live reach the same verdicts for the same packets.
package detect

import (
	"net/netip"
	"sync/atomic"

	"github.com/minerguard/minerguard/intel"
)

// Reason is why a flow was flagged. Each reason is its own alert signature.
type Reason uint8

const (
	ReasonStratum      Reason = iota + 1 // a mining protocol message, any dialect, any port
	ReasonPoolDNS                        // a DNS query for a listed pool domain
	ReasonPoolSNI                        // a TLS ClientHello naming a listed pool
	ReasonPoolIP                         // a flow to a listed pool address, or to an address a DNS answer tied to a pool name
	ReasonDoH                            // encrypted DNS (DoT, DoH to a listed resolver): a record, not an alert (Record)
	ReasonSV2Handshake                   // the Stratum V2 Noise first flight (64 bytes out, 170 back)
	ReasonTLSBare                        // a ClientHello with neither server name nor ALPN, as XMRig sends by default
	ReasonNotInProfile                   // a destination outside the workload's learned egress profile
	ReasonUnresolvedIP                   // out of profile, to an address no DNS answer or server name named
	reasonXDP                            // 9400010: not a detection, the sensor's "enforcement degraded" (sensor.SIDMapFull)
	ReasonBehaviour                      // an encrypted session shaped like a pool session (behaviour package's model)
	numReasons
)

var reasonInfo = [numReasons]struct {
	name, signature string
	severity        int
}{
	ReasonStratum:      {"stratum", "MINERGUARD Mining protocol (Stratum family) session", 1},
	ReasonPoolDNS:      {"pool-dns", "MINERGUARD DNS lookup of a mining pool domain", 2},
	ReasonPoolSNI:      {"pool-sni", "MINERGUARD TLS session to a mining pool (SNI)", 1},
	ReasonPoolIP:       {"pool-ip", "MINERGUARD Connection to a mining pool address", 2},
	ReasonDoH:          {"doh", "MINERGUARD Encrypted DNS (DoT/DoH) in use: lookups the sensor cannot see", 3},
	ReasonSV2Handshake: {"stratum-v2", "MINERGUARD Stratum V2 encrypted handshake length signature", 2},
	ReasonTLSBare:      {"tls-no-sni", "MINERGUARD TLS without server name or ALPN (miner-style ClientHello)", 3},
	ReasonNotInProfile: {"egress-not-in-profile", "MINERGUARD Egress to a destination outside the workload's learned profile", 2},
	ReasonUnresolvedIP: {"unresolved-ip", "MINERGUARD Egress to an address no DNS answer in the workload named", 2},
	reasonXDP:          {"xdp", "MINERGUARD Enforcement degraded (not a detection)", 3},
	ReasonBehaviour:    {"behaviour", "MINERGUARD Encrypted session shaped like a mining pool session (record sizes and timing)", 3},
}

// SignatureBase is the first signature_id of minerguard's alerts: clear of ET's 2000000–2999999
// and Suricata's local range 1000000–1999999.
const SignatureBase = 9400000

// Category is the EVE category of every minerguard alert (Suricata's coin-mining classtype).
const Category = "Crypto Currency Mining Activity Detected"

func (r Reason) String() string {
	if r == 0 || r >= numReasons {
		return "unknown"
	}
	return reasonInfo[r].name
}

// SignatureID is the stable EVE signature_id of the reason.
func (r Reason) SignatureID() int { return SignatureBase + int(r) }

// Signature is the EVE signature text.
func (r Reason) Signature() string {
	if r == 0 || r >= numReasons {
		return "MINERGUARD unknown"
	}
	return reasonInfo[r].signature
}

// Severity follows EVE: 1 is the most severe.
func (r Reason) Severity() int {
	if r == 0 || r >= numReasons {
		return 3
	}
	return reasonInfo[r].severity
}

// Blocking reports whether the reason is strong enough to drop a flow in enforce mode. The
// low-severity ones (a bare ClientHello; encrypted DNS, a record) have benign users too: they
// are flagged or recorded, never dropped.
func (r Reason) Blocking() bool { return r.Severity() <= 2 }

// OptInDrop reports whether an operator may make the reason drop in enforce mode
// (Detector.SetDropAlso, the sensor's enforcement.drop_signatures). These are flagged by
// default: they are judgements (the behaviour score) or habits of some benign clients (a bare
// ClientHello) that an operator can weigh for their own workloads. Records never drop, and the
// other reasons drop already.
func (r Reason) OptInDrop() bool { return r == ReasonBehaviour || r == ReasonTLSBare }

// ReasonOf is the reason whose signature_id is id.
func ReasonOf(id int) (Reason, bool) {
	r := Reason(id - SignatureBase)
	if id < SignatureBase || r == 0 || r >= numReasons {
		return 0, false
	}
	return r, true
}

// Record reports whether the reason is a fact about the workload rather than a sign of mining:
// it is written as an EVE anomaly record, never raises an alert or flags the flow on its own,
// and the flow is learned by a learning profile like any other. Encrypted DNS is one: kdig
// +tls, an unbound stub or a browser's DoH use it as much as a miner hiding its pool lookup
// does (6 false alarms in 26 benign flows when it was an alert, issue 15). It matters through
// the profile (a workload that never used it starts to: out of profile) and as a signal that
// the workload's unresolved destinations were named where the sensor cannot see.
func (r Reason) Record() bool { return r == ReasonDoH }

// Reasons is a set of reasons.
type Reasons uint32

// Has reports whether r is in the set.
func (s Reasons) Has(r Reason) bool { return s&(1<<r) != 0 }

// With returns the set plus r.
func (s Reasons) With(r Reason) Reasons { return s | 1<<r }

// Action is what the sensor does with a flow.
type Action uint8

const (
	Allow Action = iota
	Flag
	Drop
)

func (a Action) String() string {
	switch a {
	case Flag:
		return "flag"
	case Drop:
		return "drop"
	}
	return "allow"
}

// Facts are what the detectors learned about one flow so far.
type Facts struct {
	Proto    uint8
	Dst      netip.Addr
	DstPort  uint16
	DstName  string // name a DNS answer in the same namespace gave for Dst, if any
	DNSQuery string // DNS flows: the queried name (lower case, no trailing dot)
	SNI      string // TLS flows: the ClientHello server name
	Mining   bool   // a mining protocol message was recognised
	SV2      bool   // the Stratum V2 first-flight length signature was seen
	// TLSBare: the ClientHello named no server and offered no ALPN. Browsers, curl and HTTP
	// libraries always send one or the other; XMRig (stratum+ssl without "sni": true) sends
	// neither. Low severity on its own; the learned profile (issue 5) sharpens it.
	TLSBare bool
	// Behaviour: the behaviour model scored the flow's encrypted records at or above its
	// threshold. A flag, never a drop on its own (severity 3): it is a statistical judgement.
	Behaviour bool

	// Profile is the state of the workload's learned egress profile when the flow was checked;
	// ProfileNone while there is none or it is still learning (no verdict from it then).
	Profile ProfileState
	// OutOfProfile: the destination (name when known, else address; port; transport) is not
	// in the profile, or is on its deny list.
	OutOfProfile bool
	// Unresolved: no DNS answer in the workload's namespace and no server name named the
	// destination address.
	Unresolved bool
	// ProfileDest is the destination as the profile saw it ("name:port/tcp"), for the alert.
	ProfileDest string
}

// ProfileState is the part of a profile's lifecycle that matters to a verdict.
type ProfileState uint8

const (
	ProfileNone       ProfileState = iota // no profile, or still learning
	ProfileMonitoring                     // out-of-profile egress is flagged
	ProfileEnforcing                      // out-of-profile egress is dropped (in enforce mode)
)

// Finding is one reason with the indicator that triggered it.
type Finding struct {
	Reason    Reason
	Indicator string // the pool name or address that matched ("" for protocol findings)
	Source    string // intel list of the indicator
}

// MaxFindings bounds the findings of one verdict (one per reason at most).
const MaxFindings = int(numReasons)

// Verdict is the outcome for a flow.
type Verdict struct {
	Action   Action
	Findings [MaxFindings]Finding
	N        int
}

// Has reports whether the verdict carries reason r.
func (v *Verdict) Has(r Reason) bool {
	for i := 0; i < v.N; i++ {
		if v.Findings[i].Reason == r {
			return true
		}
	}
	return false
}

func (v *Verdict) add(r Reason, ind, src string) {
	if v.N < MaxFindings && !v.Has(r) {
		v.Findings[v.N] = Finding{r, ind, src}
		v.N++
	}
}

// alerts counts the findings that are alerts (not records).
func (v *Verdict) alerts() int {
	n := 0
	for i := 0; i < v.N; i++ {
		if !v.Findings[i].Reason.Record() {
			n++
		}
	}
	return n
}

// Mode is how the sensor acts on a flagged flow.
type Mode uint8

const (
	ModeMonitor Mode = iota // flag only
	ModeEnforce             // drop where the data path can
)

// Detector evaluates facts against the current intel. Safe for concurrent use; the intel set
// is swapped atomically on reload.
type Detector struct {
	intel atomic.Pointer[intel.Set]
	mode  Mode
	// dropAlso: the OptInDrop reasons the operator made drop in enforce mode (a Reasons set).
	dropAlso atomic.Uint32
}

// New returns a detector using set.
func New(set *intel.Set, mode Mode) *Detector {
	d := &Detector{mode: mode}
	d.intel.Store(set)
	return d
}

// SetIntel swaps in a new intel set.
func (d *Detector) SetIntel(s *intel.Set) { d.intel.Store(s) }

// SetDropAlso makes the reasons in rs that allow it (OptInDrop) drop in enforce mode, as the
// strong ones do; the others in rs are ignored (the sensor's config check rejects them). It
// replaces the previous set and is safe while flows are evaluated.
func (d *Detector) SetDropAlso(rs Reasons) {
	var ok Reasons
	for r := Reason(1); r < numReasons; r++ {
		if rs.Has(r) && r.OptInDrop() {
			ok = ok.With(r)
		}
	}
	d.dropAlso.Store(uint32(ok))
}

// DropAlso is the set SetDropAlso left.
func (d *Detector) DropAlso() Reasons { return Reasons(d.dropAlso.Load()) }

// Intel returns the current intel set.
func (d *Detector) Intel() *intel.Set { return d.intel.Load() }

// dotPort is DNS over TLS.
const dotPort = 853

// Evaluate returns the verdict for f. It does not allocate.
func (d *Detector) Evaluate(f *Facts) Verdict {
	var v Verdict
	set := d.intel.Load()
	if f.Mining {
		v.add(ReasonStratum, "", "")
	}
	if f.SV2 {
		v.add(ReasonSV2Handshake, "", "")
	}
	if f.DNSQuery != "" {
		if e, ok := set.Domain(f.DNSQuery); ok {
			v.add(reasonFor(e.Kind, ReasonPoolDNS), e.Value, e.Source)
		}
	}
	if f.TLSBare {
		v.add(ReasonTLSBare, "", "")
	}
	if f.Behaviour {
		v.add(ReasonBehaviour, "", "")
	}
	if f.SNI != "" {
		if e, ok := set.Domain(f.SNI); ok {
			v.add(reasonFor(e.Kind, ReasonPoolSNI), e.Value, e.Source)
		}
	}
	if f.Dst.IsValid() {
		if e, ok := set.Addr(f.Dst, f.DstPort); ok {
			// A resolver address is DoH only on the HTTPS/DoT ports; plain DNS to 8.8.8.8 is
			// visible to the sensor and fine.
			if e.Kind == intel.KindPool || f.DstPort == 443 || f.DstPort == dotPort {
				v.add(reasonFor(e.Kind, ReasonPoolIP), e.Value, e.Source)
			}
		}
		if f.DstName != "" {
			if e, ok := set.Domain(f.DstName); ok && e.Kind == intel.KindPool {
				v.add(ReasonPoolIP, f.DstName, e.Source)
			}
		}
		if f.Proto == 6 && f.DstPort == dotPort {
			v.add(ReasonDoH, "", "")
		}
	}
	if f.Profile != ProfileNone && f.OutOfProfile {
		v.add(ReasonNotInProfile, f.ProfileDest, "profile")
		if f.Unresolved {
			v.add(ReasonUnresolvedIP, f.ProfileDest, "profile")
		}
	}
	if v.alerts() > 0 {
		v.Action = Flag
		if d.mode == ModeEnforce && d.blocks(f, &v) {
			v.Action = Drop
		}
	}
	return v
}

// blocks decides whether a flagged flow is dropped in enforce mode: a strong detector reason
// always, a flag-only one when the operator opted in (SetDropAlso); the profile's reasons only
// once that workload's profile is enforcing, so a profile that is merely monitored never
// breaks traffic.
func (d *Detector) blocks(f *Facts, v *Verdict) bool {
	also := Reasons(d.dropAlso.Load())
	for i := 0; i < v.N; i++ {
		switch r := v.Findings[i].Reason; r {
		case ReasonNotInProfile, ReasonUnresolvedIP:
			if f.Profile == ProfileEnforcing {
				return true
			}
		default:
			if (r.Blocking() || also.Has(r)) && !r.Record() {
				return true
			}
		}
	}
	return false
}

func reasonFor(k intel.Kind, pool Reason) Reason {
	if k == intel.KindDoH {
		return ReasonDoH
	}
	return pool
}
