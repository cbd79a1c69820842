package engine

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/profile"
)

// Profiles is the book of learned egress profiles: the engine checks each new destination of a
// workload against it and, while the workload is learning, teaches it the flows no detector
// flagged. *profile.Book implements it.
type Profiles interface {
	Check(workload string, d profile.Dest, ip netip.Addr, now time.Time) profile.Result
	Learn(workload string, o profile.Observation, now time.Time)
	Poison(workload string, d profile.Dest, now time.Time)
}

// Enforcer puts a drop verdict into the data path (XDP). Block reports whether the flow is
// now being dropped; false (no data path, map full, workload in flag-only mode) leaves the
// alert's action "allowed". Unblock is called when a blocked flow leaves the flow table, so
// per-flow drop entries do not outlive their flows.
type Enforcer interface {
	Block(b Block) bool
	Unblock(b Block)
}

// Block is a flow the verdict says to drop, with what the data path needs to drop it and
// the flow's later retries.
type Block struct {
	FlowID   uint64 // the flow's EVE flow_id, for alerts about the block itself
	Scope    uint64
	Workload string
	Src, Dst netip.AddrPort // Src is the workload's side
	Proto    uint8
	Reasons  detect.Reasons
	Tunnel   bool // the destination is a proxy the flow went through, not the pool itself
}

// Profile bits of a flow (state.prof).
const (
	profChecked       uint8 = 1 << iota // the destination was checked against the profile
	profLearning                        // the workload was learning when it was checked
	profLearned                         // taught to (or poisoned in) the profile
	profBlocked                         // the enforcer is dropping the flow
	profPoisoned                        // its flagged destination was poisoned in the profile
	profTarget                          // a tunnel's target was checked against the profile (checkTarget)
	profTargetLearned                   // the tunnel's target was taught to the profile
)

// workloadOf is the workload that opened f, or nil when none is known (an inbound
// connection, or a source outside every mapped workload).
func (e *Engine) workloadOf(f *flow.Flow[state]) *alert.Workload {
	if e.opt.Workload == nil {
		return nil
	}
	return e.opt.Workload(f.Scope, f.Orig.Addr())
}

// workloadName is the identity of workloadOf(f), "" when none is known.
func (e *Engine) workloadName(f *flow.Flow[state]) string {
	if w := e.workloadOf(f); w != nil {
		return w.Identity
	}
	return ""
}

// dest is f's destination as the profile keys it: the name a DNS answer in the same scope
// gave for the address, else the TLS server name, else the address. For a tunnel it is the
// proxy (what the workload connects to); its target is an entry of its own (target).
func (e *Engine) dest(f *flow.Flow[state]) profile.Dest {
	d := profile.Dest{Port: f.Resp.Port(), Proto: f.Proto, App: f.App.app.String()}
	if det := f.App.det; det != nil {
		d.Name = det.facts.DstName
		if det.tunnel != nil && det.tunnel.Target != "" {
			d.Name = det.proxyName // DstName is the target's; a server name inside names it too
		}
		if e.opt.NameScope != nil {
			d.Name = det.ownName
		}
		if d.Name == "" && (det.tunnel == nil || det.tunnel.Target == "") {
			d.Name = det.facts.SNI
		}
	}
	if k := encKind(f); k != "" {
		d.App = k // shown in the profile: this workload resolves names over encrypted DNS
	}
	if d.Name == "" {
		a := f.Resp.Addr()
		d.Addr = netip.PrefixFrom(a, a.BitLen())
	}
	return d
}

// target is the destination a proxy tunnel on f leads to, as the profile keys it: the host
// the client asked the proxy for, or, when it asked for an address, the server name of the
// TLS inside, else that address; on the port asked for, app the tunnel's kind. ip is the
// address when the client gave one. ok is false when f is no proxy tunnel (WebSocket is not
// one: its server is the flow's own destination).
func (e *Engine) target(f *flow.Flow[state]) (d profile.Dest, ip netip.Addr, ok bool) {
	det := f.App.det
	if det == nil || det.tunnel == nil || det.tunnel.Target == "" {
		return d, ip, false
	}
	host, port, err := net.SplitHostPort(det.tunnel.Target)
	pn, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || host == "" {
		return d, ip, false
	}
	d = profile.Dest{Port: uint16(pn), Proto: profile.TCP, App: det.tunnel.Kind.String()}
	if a, err := netip.ParseAddr(host); err == nil {
		ip = a.Unmap()
		if d.Name = det.facts.SNI; d.Name == "" {
			d.Addr = netip.PrefixFrom(ip, ip.BitLen())
		}
		return d, ip, true
	}
	d.Name = strings.ToLower(strings.TrimSuffix(host, "."))
	return d, ip, true
}

// checkProfiles runs both once-per-flow profile checks, the destination's and a tunnel
// target's: where a flow's names are final (its hello read, inspection over, its end).
func (e *Engine) checkProfiles(f *flow.Flow[state]) {
	e.checkProfile(f, false)
	e.checkTarget(f)
}

// checkTarget checks the target of f's proxy tunnel against the workload's profile, once,
// as a destination of its own (issue 15): a workload that always uses its proxy still meets
// its profile for what it reaches through it. It is learned and poisoned like f's own
// destination, and a violation is the flow's egress-not-in-profile (or unresolved-ip, for an
// address that no name came with).
func (e *Engine) checkTarget(f *flow.Flow[state]) {
	s := &f.App
	if e.opt.Profiles == nil || s.prof&profTarget != 0 {
		return
	}
	d, ip, ok := e.target(f)
	if !ok {
		return
	}
	s.prof |= profTarget
	wl := e.workloadName(f)
	if wl == "" {
		return
	}
	e.judgeProfile(f, d, e.opt.Profiles.Check(wl, d, ip, e.now))
}

// checkProfile checks f's destination against its workload's profile once, as soon as the
// destination's name is as good as it will get: at the first packet when a DNS answer named
// it or the flow is UDP, else after the ClientHello (its server name) or when inspection ends.
//
// early is the first packet of a TCP flow to an address no answer named: it is judged then
// only when waiting for its ClientHello cannot change the verdict (its workload enforces, the
// address is not in the profile, and no name entry on that port and transport could match a
// server name). Its block is then in place before its first payload; the SYN itself has
// already passed. Otherwise it is checked again later; monitoring always waits, so the alert
// carries the server name.
func (e *Engine) checkProfile(f *flow.Flow[state], early bool) {
	s := &f.App
	if e.opt.Profiles == nil || s.prof&profChecked != 0 || (early && e.opt.Enforcer == nil) {
		return
	}
	wl := e.workloadName(f)
	if wl == "" {
		s.prof |= profChecked
		return
	}
	d := e.dest(f)
	r := e.opt.Profiles.Check(wl, d, f.Resp.Addr(), e.now)
	if early {
		if r.State != profile.Enforcing || r.In || r.NameMayMatch {
			return
		}
		e.stats.ProfileEarly++
	}
	s.prof |= profChecked
	e.judgeProfile(f, d, r)
}

// judgeProfile acts on the check of f's destination: learn it, pass it, or flag it.
func (e *Engine) judgeProfile(f *flow.Flow[state], d profile.Dest, r profile.Result) {
	s := &f.App
	e.stats.ProfileChecks++
	if !r.Exists || r.State == profile.Learning {
		s.prof |= profLearning
		e.learnProfile(f)
		return
	}
	if r.In && !r.Denied {
		return
	}
	e.stats.ProfileViolations++
	det := e.detail(f)
	det.facts.OutOfProfile = true
	// A resolver is always reached by address (resolv.conf): that is not what unresolved-ip
	// is about.
	det.facts.Unresolved = d.Name == "" && d.Port != 53
	det.facts.Profile = detect.ProfileMonitoring
	if r.State == profile.Enforcing {
		det.facts.Profile = detect.ProfileEnforcing
	}
	det.facts.ProfileDest = d.String()
	e.evaluate(f)
}

// learnProfile teaches f to its workload's profile when the workload was learning at the time
// f was checked: as soon as it is checked, so a long-lived connection counts from its start.
// A flow a detector flags (then or later) is not learned: its destination is poisoned, which
// also takes it back out of the profile.
func (e *Engine) learnProfile(f *flow.Flow[state]) {
	s := &f.App
	if s.prof&profLearning == 0 || s.prof&profPoisoned != 0 {
		return
	}
	w := e.workloadOf(f)
	if w == nil {
		return
	}
	d := e.dest(f)
	if s.app == appDNS {
		// A lookup of a pool flags the query, not the resolver: the name is poisoned and the
		// resolver stays learned.
		if s.alerted.Has(detect.ReasonPoolDNS) && s.det != nil {
			e.opt.Profiles.Poison(w.Identity, profile.Dest{Name: s.det.facts.DNSQuery}, e.now)
			e.stats.ProfilePoisoned++
		}
		if s.alerted&^(1<<detect.ReasonPoolDNS) == 0 {
			e.learn(f, w, d)
			return
		}
	}
	t, tip, tunnel := e.target(f)
	if s.alerted != 0 {
		s.prof |= profPoisoned
		if !tunnel {
			e.opt.Profiles.Poison(w.Identity, d, e.now)
			e.stats.ProfilePoisoned++
			return
		}
		// Through a proxy, what was flagged is what the flow reached through it: its target is
		// poisoned, and the proxy, which the workload's other flows use, is still learned.
		e.opt.Profiles.Poison(w.Identity, t, e.now)
		e.stats.ProfilePoisoned++
		if s.prof&profChecked != 0 {
			e.learn(f, w, d)
		}
		return
	}
	if s.prof&profChecked != 0 {
		e.learn(f, w, d)
	}
	if tunnel && s.prof&profTarget != 0 && s.prof&profTargetLearned == 0 {
		s.prof |= profTargetLearned
		e.observe(f, w, t, tip)
	}
}

// learn teaches f's destination once.
func (e *Engine) learn(f *flow.Flow[state], w *alert.Workload, d profile.Dest) {
	if f.App.prof&profLearned != 0 {
		return
	}
	f.App.prof |= profLearned
	e.observe(f, w, d, f.Resp.Addr())
}

// observe teaches d, reached at ip (invalid when only a name is known), to w's profile.
func (e *Engine) observe(f *flow.Flow[state], w *alert.Workload, d profile.Dest, ip netip.Addr) {
	o := profile.Observation{Dest: d, IP: ip, Replica: w.Pod, Node: w.Node}
	if o.Replica == "" {
		o.Replica = w.Netns
	}
	if o.Replica == "" {
		o.Replica = strconv.FormatUint(f.Scope, 10)
	}
	e.opt.Profiles.Learn(w.Identity, o, e.now)
	e.stats.ProfileLearned++
}

// block asks the enforcer to drop f once its verdict says so.
func (e *Engine) block(f *flow.Flow[state], v *detect.Verdict) bool {
	s := &f.App
	if v.Action != detect.Drop || e.opt.Enforcer == nil {
		return false
	}
	if s.prof&profBlocked != 0 {
		return true
	}
	b := e.blockOf(f)
	for i := 0; i < v.N; i++ {
		b.Reasons = b.Reasons.With(v.Findings[i].Reason)
	}
	if !e.opt.Enforcer.Block(b) {
		e.stats.BlockFailed++
		return false
	}
	s.prof |= profBlocked
	e.stats.Blocked++
	return true
}

func (e *Engine) blockOf(f *flow.Flow[state]) Block {
	return Block{FlowID: e.flowID(f), Scope: f.Scope, Workload: e.workloadName(f), Src: f.Orig, Dst: f.Resp, Proto: f.Proto,
		Reasons: f.App.alerted, Tunnel: f.App.det != nil && f.App.det.tunnel != nil}
}
