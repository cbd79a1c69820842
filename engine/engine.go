package engine

import (
	"net/netip"
	"strings"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/protocols/dns"
	"github.com/minerguard/minerguard/protocols/proxy"
	"github.com/minerguard/minerguard/protocols/stratum"
	"github.com/minerguard/minerguard/protocols/tls"
)

// Sink receives alerts. The engine calls it synchronously; a live sink must not block.
type Sink interface {
	Alert(e *alert.Event)
}

// Options configure an Engine.
type Options struct {
	Flow        flow.Config
	Detector    *detect.Detector
	Sink        Sink
	DNSMaxAddrs int // IP→name cache entries (default 65536)
	RedactLogin bool
	// Workload names the workload of a scope (netns or capture interface); nil leaves it empty.
	Workload func(scope uint64) string
}

// Engine runs the pipeline for one capture source.
type Engine struct {
	opt   Options
	table *flow.Table[state]
	names *dns.Cache
	pkt   flow.Packet
	stats Stats
	now   time.Time
	label string // replay: the capture file being read

	lastExpire time.Time
}

// expireEvery is how often (in packet time) idle flows are swept.
const expireEvery = time.Second

// New builds an engine.
func New(o Options) *Engine {
	if o.DNSMaxAddrs <= 0 {
		o.DNSMaxAddrs = 65536
	}
	e := &Engine{opt: o, names: dns.NewCache(o.DNSMaxAddrs, 1000, 30*time.Second)}
	e.table = flow.NewTable[state](o.Flow, e.evicted)
	return e
}

// SetLabel names the capture source for alerts (replay: the file name).
func (e *Engine) SetLabel(s string) { e.label = s }

// Packet runs one frame through the pipeline. scope separates network namespaces (live) or
// capture interfaces (replay); ts is the packet's capture time and drives every timeout.
func (e *Engine) Packet(link flow.LinkType, data []byte, ts time.Time, scope uint64) {
	e.stats.Packets++
	e.stats.Bytes += uint64(len(data))
	e.now = ts
	p := &e.pkt
	st := flow.Decode(link, data, p)
	e.stats.Decode[st]++
	if st != flow.OK {
		return
	}
	if p.Fragment == flow.LaterFragment {
		e.stats.Fragments++
		return
	}
	if p.Proto != 6 && p.Proto != 17 {
		return
	}
	if ts.Sub(e.lastExpire) >= expireEvery || ts.Before(e.lastExpire) {
		e.table.Expire(ts)
		e.lastExpire = ts
	}
	f, dir, grew := e.table.Packet(p, scope, ts)
	if f == nil {
		return
	}
	s := &f.App
	if !s.init {
		e.newFlow(f)
	}
	if s.done {
		return
	}
	if p.Proto == 17 {
		e.udp(f, dir, p.Payload)
		return
	}
	if len(p.Payload) > 0 && s.firstLen[dir] == 0 {
		s.firstLen[dir] = int32(len(p.Payload))
		e.checkSV2(f)
	}
	if grew {
		e.inspect(f, dir)
	}
}

// Flush ends the capture: every flow is evicted (end of replay).
func (e *Engine) Flush() { e.table.Flush() }

func (e *Engine) newFlow(f *flow.Flow[state]) {
	s := &f.App
	s.init = true
	s.facts.Proto = f.Proto
	s.facts.Dst = f.Resp.Addr()
	s.facts.DstPort = f.Resp.Port()
	if name, ok := e.names.Lookup(f.Scope, f.Resp.Addr(), e.now); ok {
		s.facts.DstName = name
	}
	if f.Proto == 17 && f.Resp.Port() != 53 && f.Orig.Port() != 53 {
		// Only DNS is inspected over UDP; other datagrams are judged by destination alone.
		s.done = true
	}
	e.evaluate(f, noDir)
}

// udp handles one DNS datagram.
func (e *Engine) udp(f *flow.Flow[state], dir flow.Dir, payload []byte) {
	if len(payload) == 0 {
		return
	}
	e.dnsMessage(f, dir, payload)
}

func (e *Engine) dnsMessage(f *flow.Flow[state], dir flow.Dir, b []byte) {
	m, err := dns.Parse(b)
	if err != nil {
		e.stats.DecodeErrors[ProtoDNS]++
		return
	}
	e.stats.DNSMessages++
	s := &f.App
	s.appProto = "dns"
	if !m.Response {
		for _, q := range m.Questions {
			if s.facts.DNSQuery == "" || !s.alerted.Has(detect.ReasonPoolDNS) {
				s.facts.DNSQuery = q.Name
				s.dnsType = q.Type
				e.evaluate(f, dir)
			}
		}
		return
	}
	for _, an := range m.AddrNames() {
		e.names.Add(f.Scope, an.Addr, an.Name, an.TTL, e.now)
	}
	// A response seen without its query (capture started late) still names the lookup.
	if s.facts.DNSQuery == "" && len(m.Questions) > 0 {
		s.facts.DNSQuery = m.Questions[0].Name
		s.dnsType = m.Questions[0].Type
		e.evaluate(f, dir)
	}
}

// inspect runs the stream detectors on direction dir after its prefix grew.
func (e *Engine) inspect(f *flow.Flow[state], dir flow.Dir) {
	s := &f.App
	st := &f.Stream[dir]
	if st.Resync {
		// A hole was skipped: parsers restart after it, as after a mid-stream pickup.
		st.Resync = false
		s.base[dir] = int(st.GapOffset)
		s.sc[dir].Reset()
		s.resync[dir] = true
		s.ws[dir] = wsDir{}
	}
	if f.Resp.Port() == 53 || f.Orig.Port() == 53 {
		e.tcpDNS(f, dir)
		return
	}
	if !s.proxyDone {
		e.detectProxy(f)
	}
	data := f.Stream[dir].Data()
	if s.base[dir] > len(data) {
		return
	}
	data = data[s.base[dir]:]
	if dir == flow.DirOrig && !s.tlsDone {
		e.detectTLS(f, data)
	}
	if s.tunnel.Kind == proxy.WebSocket && !s.wsFailed {
		data = e.wsData(f, dir, data)
	}
	if !s.mining && s.scanDone[dir] == false && !s.isTLS {
		res, ss := s.sc[dir].Scan(data, f.Midstream || s.resync[dir])
		e.stats.StratumOverflows += uint64(s.sc[dir].Overflows - s.overflows[dir])
		s.overflows[dir] = s.sc[dir].Overflows
		switch ss {
		case stratum.Match:
			s.mining = true
			s.stratum = res
			s.facts.Mining = true
			s.appProto = "stratum"
			e.evaluate(f, dir)
		case stratum.NotMining:
			s.scanDone[dir] = true
		}
	}
	e.maybeDone(f)
}

// maybeDone stops inspecting a flow once every detector has decided or the depth is reached.
func (e *Engine) maybeDone(f *flow.Flow[state]) {
	s := &f.App
	scanned := s.mining || s.isTLS || (s.scanDone[0] && s.scanDone[1])
	depth := f.Stream[0].Truncated && f.Stream[1].Truncated
	if (scanned && s.tlsDone && s.proxyDone) || depth {
		s.done = true
		f.Bypass = true
		e.stats.Bypassed++
	}
}

func (e *Engine) tcpDNS(f *flow.Flow[state], dir flow.Dir) {
	s := &f.App
	data := f.Stream[dir].Data()
	s.dnsNext[dir] = dns.SplitTCP(data, s.dnsNext[dir], func(msg []byte) { e.dnsMessage(f, dir, msg) })
}

func (e *Engine) detectProxy(f *flow.Flow[state]) {
	s := &f.App
	t, st := proxy.Detect(f.Stream[0].Data(), f.Stream[1].Data())
	switch st {
	case proxy.NotProxy:
		s.proxyDone = true
	case proxy.Done:
		s.proxyDone = true
		s.tunnel = t
		e.stats.Tunnels++
		// Everything after the preamble is the tunnelled protocol: start the parsers there.
		s.base = [2]int{t.ClientSkip, t.ServerSkip}
		s.sc = [2]stratum.Scanner{}
		s.scanDone = [2]bool{}
		s.tlsDone, s.isTLS = false, false
		if t.Target != "" {
			if host, _, ok := strings.Cut(t.Target, ":"); ok && host != "" {
				if _, err := netip.ParseAddr(host); err != nil {
					// The name the client asked the proxy for is the destination's name.
					s.facts.DstName = strings.ToLower(host)
				}
			}
		}
	}
	if s.proxyDone && s.base[0] == 0 && f.Stream[0].Truncated {
		s.proxyDone = true
	}
}

func (e *Engine) detectTLS(f *flow.Flow[state], data []byte) {
	s := &f.App
	h, st := tls.ParseClientHello(data)
	switch st {
	case tls.NotTLS:
		s.tlsDone = true
	case tls.OK:
		s.tlsDone, s.isTLS = true, true
		s.appProto = "tls"
		s.hello = &alert.TLS{SNI: h.SNI, JA4: h.JA4, ALPN: h.ALPN}
		s.facts.SNI = h.SNI
		s.facts.TLSBare = h.SNI == "" && len(h.ALPN) == 0
		e.stats.TLSHellos++
		e.evaluate(f, flow.DirOrig)
	}
	if st == tls.NeedMore && f.Stream[0].Truncated {
		s.tlsDone = true
	}
}

func (e *Engine) checkSV2(f *flow.Flow[state]) {
	s := &f.App
	if s.firstLen[0] > 0 && s.firstLen[1] > 0 && stratum.IsSV2FirstFlight(int(s.firstLen[0]), int(s.firstLen[1])) {
		s.facts.SV2 = true
		e.evaluate(f, flow.DirReply)
	}
}

// noDir marks an evaluation not caused by a packet of either direction.
const noDir flow.Dir = 255

// evaluate asks detect for a verdict and alerts once for each reason not yet alerted on f.
func (e *Engine) evaluate(f *flow.Flow[state], dir flow.Dir) {
	s := &f.App
	v := e.opt.Detector.Evaluate(&s.facts)
	for i := 0; i < v.N; i++ {
		fd := v.Findings[i]
		if s.alerted.Has(fd.Reason) {
			continue
		}
		s.alerted = s.alerted.With(fd.Reason)
		f.Flagged = true
		e.emit(f, &v, fd)
	}
}

func (e *Engine) evicted(f *flow.Flow[state], reason flow.EvictReason) {
	e.stats.FlowsEnded++
	if f.App.alerted != 0 {
		e.stats.FlaggedFlows++
	}
	f.App = state{}
}

// Stats returns the engine's counters together with the flow table's.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Flow = e.table.Stats()
	s.DNSCache = e.names.Stats()
	return s
}
