package engine

import (
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/protocols/proxy"
	"github.com/minerguard/minerguard/protocols/stratum"
)

// state is the engine's per-flow state, stored inline in the flow table's slab. It is kept
// to a few words because the table holds up to MaxFlows of them (262,144 by default): what
// only some flows need lives behind two pointers, detail (what was learned about the flow,
// allocated when there is something to say) and inspect (parser state, only while the flow
// is being inspected, recycled).
type state struct {
	flags    uint8
	app      appProto
	prof     uint8 // profile bits (profChecked, ...)
	dnsType  uint16
	alerted  detect.Reasons
	firstLen [2]uint16 // size of the first payload segment per direction (SV2 signature)
	insp     *inspect
	det      *detail
}

const (
	flagInit uint8 = 1 << iota
	flagDone       // every detector decided: the rest of the flow is counted only
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
	stratum stratum.Result
	hello   *alert.TLS
	tunnel  *proxy.Tunnel
}

// inspect is the parser state of a flow under inspection. Objects are recycled through a
// free list and their number is capped (Options.MaxInspecting), so neither a flood of
// half-open flows nor steady traffic allocates or grows memory without bound.
type inspect struct {
	owner     *flow.Flow[state] // the flow holding this object; nil when free
	since     time.Time         // packet time the flow started being inspected
	dnsNext   [2]int            // TCP DNS: offset of the next length prefix per direction
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
// clock hand that looks for one to take back from a stale flow.
type pool struct {
	free  []*inspect
	all   []*inspect
	hand  int
	inUse int
	max   int
}

func (p *pool) get() *inspect {
	if p.inUse >= p.max {
		return nil
	}
	p.inUse++
	if n := len(p.free); n > 0 {
		in := p.free[n-1]
		p.free = p.free[:n-1]
		return in
	}
	in := new(inspect)
	p.all = append(p.all, in)
	return in
}

func (p *pool) put(in *inspect) {
	p.inUse--
	// WebSocket buffers are rare and large: they go to the garbage collector rather than
	// sitting in the free list.
	*in = inspect{}
	p.free = append(p.free, in)
}
