package engine

import (
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/detect/behaviour"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/protocols/proxy"
	"github.com/minerguard/minerguard/protocols/stratum"
)

// state is the engine's per-flow state, stored inline in the flow table's slab. It is kept
// to a few words because the table holds up to MaxFlows of them (262,144 by default): what
// only some flows need lives behind two pointers, detail (what was learned about the flow,
// allocated when there is something to say) and inspect (parser state, only while the flow
// is being inspected, recycled). A flow inspected without a slot (deferred) keeps what its
// parsers decided in look, looked and dnsNext, 17 bytes, so it can be looked at again later.
type state struct {
	flags    uint8
	app      appProto
	prof     uint8 // profile bits (profChecked, ...)
	look     uint8 // deferred: the parser verdicts reached so far (lookTLSDone, ...)
	dnsType  uint16
	alerted  detect.Reasons
	firstLen [2]uint16 // size of the first payload segment per direction (SV2 signature)
	looked   [2]uint32 // deferred: bytes of each direction already looked at
	dnsNext  [2]uint32 // deferred: TCP DNS offset of the next length prefix per direction
	insp     *inspect
	det      *detail
}

const (
	flagInit     uint8 = 1 << iota
	flagDone           // every detector decided: the rest of the flow is counted only (see finish)
	flagDeferred       // undecided and holding no slot: looked at again at its next payload
	flagEncDNS         // the flow carries encrypted DNS (recorded once, see Engine.record)
	// flagWatched mirrors det.beh != nil (the behaviour detector watches the flow), so that
	// each packet tests a bit of the flow, not a field of its detail: that load was a cache
	// miss per packet, 4 % of replay.
	flagWatched
)

// look bits: what a deferred flow's parsers had decided when it lost (or never got) its slot.
const (
	lookTLSDone uint8 = 1 << iota
	lookIsTLS
	lookProxyDone
	lookWSFailed
	lookScanDone0
	lookScanDone1
	lookDNSDead0 // TCP DNS parsing ended in direction 0 (lookDNSDead0<<1: direction 1)
	lookDNSDead1
)

// appProto is the EVE app_proto of a flow.
type appProto uint8

const (
	appNone appProto = iota
	appDNS
	appTLS
	appStratum
)

func (a appProto) String() string {
	switch a {
	case appDNS:
		return "dns"
	case appTLS:
		return "tls"
	case appStratum:
		return "stratum"
	}
	return ""
}

// detail is what the detectors learned about a flow.
type detail struct {
	facts detect.Facts // the name-bearing facts; addresses come from the flow
	// ownName is the name an answer to the flow's own workload gave its destination, when
	// Options.NameScope narrows names (facts.DstName is from any answer in the capture).
	ownName string
	// proxyName is the name a DNS answer gave the proxy of a tunnelled flow (facts.DstName
	// then holds the tunnel's target, for the intel checks).
	proxyName string
	stratum   stratum.Result
	hello     *alert.TLS
	tunnel    *proxy.Tunnel
	// beh is the behaviour detector's tracker while it watches the flow; behaviour what it
	// found (for the alert); noALPN from the ClientHello.
	beh       *behaviour.Flow
	behaviour *alert.Behaviour
	noALPN    bool
	watchIdx  int // index in Engine.watched while beh is set
}

// inspect is the parser state of a flow under inspection. Objects are recycled through a
// free list and their number is capped (Options.MaxInspecting), so neither a flood of
// half-open flows nor steady traffic allocates or grows memory without bound.
type inspect struct {
	owner     *flow.Flow[state] // the flow holding this object; nil when free
	since     time.Time         // packet time the flow took this slot
	key       uint64            // fairness scope the slot is counted against (Engine.fairKey)
	looks     int               // payload inspections since the slot was taken
	dnsNext   [2]int            // TCP DNS: offset of the next length prefix per direction
	dnsDead   [2]bool           // TCP DNS: framing lost or window passed; no more messages read
	base      [2]int            // offset in Stream.Data where parsers start (after a tunnel preamble or a hole)
	resync    [2]bool
	scanDone  [2]bool
	tlsDone   bool
	isTLS     bool
	proxyDone bool
	wsFailed  bool
	overflows [2]int
	sc        [2]stratum.Scanner
	ws        [2]wsDir
}

// wsDir is the WebSocket unwrapping state of one direction; out is allocated only for tunnels.
type wsDir struct {
	dec      proxy.WSDecoder
	out      []byte
	consumed int
}

// maxWSBuffer bounds the unwrapped WebSocket messages kept per direction.
const maxWSBuffer = 64 << 10

// pool recycles inspect objects; all holds every object ever made (at most max), for the
// clock hand that looks for one to take back. byKey counts the slots each fairness scope
// holds, so that one scope's flood can be made to give slots back to the others.
type pool struct {
	free  []*inspect
	all   []*inspect
	hand  int
	inUse int
	max   int
	byKey map[uint64]int // scopes holding no slot are deleted: the map stays as small as the pool
}

// get returns a free object counted against key, or nil when all max are in use.
func (p *pool) get(key uint64) *inspect {
	if p.inUse >= p.max {
		return nil
	}
	p.inUse++
	var in *inspect
	if n := len(p.free); n > 0 {
		in = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		in = new(inspect)
		p.all = append(p.all, in)
	}
	if p.byKey == nil {
		p.byKey = map[uint64]int{}
	}
	p.byKey[key]++
	in.key = key
	return in
}

func (p *pool) put(in *inspect) {
	p.inUse--
	if n := p.byKey[in.key] - 1; n > 0 {
		p.byKey[in.key] = n
	} else {
		delete(p.byKey, in.key)
	}
	// WebSocket buffers are rare and large: they go to the garbage collector rather than
	// sitting in the free list.
	*in = inspect{}
	p.free = append(p.free, in)
}

// share is a scope's fair share of the slots while the pool is full: an equal part for each
// scope holding slots, the asking scope included.
func (p *pool) share(key uint64) int {
	n := len(p.byKey)
	if _, ok := p.byKey[key]; !ok {
		n++
	}
	return max(1, p.max/n)
}
