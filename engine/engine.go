package engine

import (
	"bytes"
	"net/netip"
	"strings"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/detect/behaviour"
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
	Flow     flow.Config
	Detector *detect.Detector
	Sink     Sink
	// DNSMaxAddrs bounds the answer→name cache (default 65,536 addresses).
	DNSMaxAddrs int
	// MaxInspecting bounds the flows that hold parser state between packets (default
	// 16,384). A slot only saves re-parsing: a flow without one is still looked at, from its
	// stored bytes, at every payload (its first bytes always), and keeps waiting for a slot
	// while undecided (deferred). When all are held, a scope holding more than its fair share
	// gives one up to another scope's flow, and a flow undecided after ReclaimAfter or
	// ReclaimLooks segments gives its slot up to any flow. Every outcome is counted.
	MaxInspecting int
	RedactLogin   bool
	// Workload names the workload that opened a flow, from its scope (netns or capture
	// interface) and source address; nil (or a nil result) leaves it out of alerts and
	// profiles. It is called when an alert is raised and when a flow meets a profile.
	Workload func(scope uint64, src netip.Addr) *alert.Workload
	// NameScope, when set, narrows the DNS answers that name a flow's destination for its
	// profile: an answer to a client is also kept under NameScope(scope, client), and a flow's
	// profile destination takes its name from NameScope(scope, its source) only. Replay of a
	// capture holding several workloads uses it, so one workload's lookups do not make
	// another's address literal "resolved" (live, the scope is already the workload's
	// namespace). Detection still reads every answer of the scope.
	NameScope func(scope uint64, client netip.Addr) uint64
	// Profiles, when set, checks every flow's destination against its workload's learned
	// egress profile and teaches the profiles that are learning.
	Profiles Profiles
	// Enforcer, when set, is asked to drop the flows whose verdict is Drop.
	Enforcer Enforcer
	// FlowSalt goes into every flow_id (alert.FlowHash): the live sensor draws it at random
	// so ids of two nodes or runs do not collide; replay leaves it 0 for repeatable ids.
	FlowSalt uint64
	// Behaviour is the behaviour detector's model for TLS flows nothing else flagged;
	// nil uses behaviour.Builtin. MaxBehaviour bounds the flows it watches at once (65,536).
	Behaviour    *behaviour.Model
	MaxBehaviour int
	// Records, when set, receives the records of RecordTypes written beside alerts (flow,
	// dns, tls; records.go). FlowSample writes a flow record for one flow in FlowSample
	// (0 or 1: every flow), and always for a flow that alerted.
	Records     Recorder
	RecordTypes RecordTypes
	FlowSample  uint32
	// Offloader, when set, hears once per flow that the engine needs nothing more of it, so
	// the capture below can stop copying it up (the live sensor's kernel bypass).
	Offloader Offloader
}

// Offloader is told when a flow is done: every detector decided, or its stream depth passed
// in both directions. It must not block; orig and resp are as the flow table saw them.
type Offloader interface {
	Done(scope uint64, proto uint8, orig, resp netip.AddrPort)
}

// Engine runs the pipeline for one capture source. It is not safe for concurrent use.
type Engine struct {
	opt   Options
	table *flow.Table[state]
	frags *flow.Defrag
	names *dns.Cache
	// encDNS: the name scopes (workloads) that used encrypted DNS lately, a behaviour signal.
	encDNS *behaviour.Recent
	dnsp   dns.Parser // reused per message: no allocation per answer
	tlsp   tls.Parser // keeps the strings of hellos seen before: no allocation per repeated one
	insp   pool
	// scratch is the parser state of a flow looked at without a slot; it lives only for the
	// duration of one inspect call.
	scratch inspect
	beh     behPool
	dets    []*detail // recycled details (evicted), see detail
	// watched are the flows the behaviour detector watches (Tick scores those past their
	// checkpoint); at most MaxBehaviour.
	watched []*flow.Flow[state]
	model   *behaviour.Model
	pkt     flow.Packet
	ahead   [batchMax]ahead // PacketBatch's look-ahead
	stats   Stats
	now     time.Time
	label   string   // replay: the capture file being read
	base    uint64   // stats.Packets when label was set: pcap_cnt counts from the file's start
	dir     flow.Dir // of the packet being processed: an alert's direction

	rec alert.Event // the record being written (records.go): reused, not allocated per record

	lastExpire int64 // UnixNano of the last sweep: an integer compare per packet, not time.Time.Sub
}

// expireEvery is how often (in packet time) idle flows are swept.
const expireEvery = time.Second

// New builds an engine.
func New(o Options) *Engine {
	if o.DNSMaxAddrs <= 0 {
		o.DNSMaxAddrs = 65536
	}
	if o.MaxInspecting <= 0 {
		o.MaxInspecting = 16384
	}
	e := &Engine{opt: o, names: dns.NewCache(o.DNSMaxAddrs, 1000, 30*time.Second), encDNS: behaviour.NewRecent(0)}
	e.insp.max = o.MaxInspecting
	e.model = o.Behaviour
	if e.model == nil {
		e.model = &behaviour.Builtin
	}
	e.beh.max = o.MaxBehaviour
	if e.beh.max <= 0 {
		e.beh.max = maxBehaviour
	}
	e.table = flow.NewTable[state](o.Flow, e.evicted)
	e.frags = flow.NewDefrag(o.Flow.Defrag)
	return e
}

// FlowConfig is the flow table's configuration with its defaults filled in.
func (e *Engine) FlowConfig() flow.Config { return e.table.Config() }

// Now is the time of the last packet (packet time in replay).
func (e *Engine) Now() time.Time { return e.now }

// SetLabel names the capture source for alerts (replay: the file name).
func (e *Engine) SetLabel(s string) { e.label, e.base = s, e.stats.Packets }

// Packet runs one frame through the pipeline. scope separates network namespaces (live) or
// capture interfaces (replay); ts is the packet's capture time and drives every timeout.
func (e *Engine) Packet(link flow.LinkType, data []byte, ts time.Time, scope uint64) {
	p := &e.pkt
	st := flow.Decode(link, data, p)
	e.packet(p, st, len(data), ts, scope, 0, false)
}

// Frame is one packet for PacketBatch: what Packet takes.
type Frame struct {
	Link  flow.LinkType
	Data  []byte
	TS    time.Time
	Scope uint64
}

// batchMax is how many packets PacketBatch looks ahead at: enough for their cache misses to
// overlap, few enough that the touched lines are still cached when each packet's turn comes.
const batchMax = 16

// ahead is a packet of a batch, decoded and hashed before its turn.
type ahead struct {
	p      flow.Packet
	st     flow.Status
	hashed bool
	h      uint32
}

// PacketBatch runs each frame of fs through the pipeline in order, exactly as Packet would
// one by one (same alerts, same order), but looks ahead first: it decodes and hashes every
// packet of a batch, loads their flow index entries, then their flows' first lines and
// details (for a packet of a new flow, the free slot it will take), and only then runs the
// per-packet work. A lookup costs two dependent cache misses (index entry, then the flow);
// one packet at a time they come back to back, here the misses of a whole batch are in
// flight together. Data of every frame must stay valid until the call returns.
func (e *Engine) PacketBatch(fs []Frame) {
	for len(fs) > 0 {
		n := min(len(fs), batchMax)
		e.batch(fs[:n])
		fs = fs[n:]
	}
}

func (e *Engine) batch(fs []Frame) {
	b := e.ahead[:len(fs)]
	for i := range fs {
		a := &b[i]
		a.st = flow.Decode(fs[i].Link, fs[i].Data, &a.p)
		a.hashed = a.st == flow.OK && a.p.Fragment == flow.NotFragment && (a.p.Proto == 6 || a.p.Proto == 17)
		if a.hashed {
			a.h = e.table.Hash(&a.p, fs[i].Scope)
			e.table.Prefetch(a.h)
		}
	}
	k := 0 // new flows so far in the batch: each will take the next free slot
	for i := range b {
		if b[i].hashed && !e.table.PrefetchFlow(b[i].h, b[i].p.Proto == 6) {
			e.table.PrefetchFree(k, b[i].p.Proto == 6)
			k++
		}
	}
	for i := range b {
		a := &b[i]
		e.packet(&a.p, a.st, len(fs[i].Data), fs[i].TS, fs[i].Scope, a.h, a.hashed)
	}
}

// packet is Packet after the decode (st), with the flow hash h when hashed.
func (e *Engine) packet(p *flow.Packet, st flow.Status, size int, ts time.Time, scope uint64, h uint32, hashed bool) {
	e.stats.Packets++
	e.stats.Bytes += uint64(size)
	// now is ts as an integer, converted once: the flow table works in integers.
	e.now = ts
	now := ts.UnixNano()
	e.stats.Decode[st]++
	if p.Fragment != flow.NotFragment && (st == flow.OK || st == flow.Unsupported && isIPv6Ext(p.Proto)) {
		// Every fragment goes to reassembly; only the whole datagram goes on.
		if !e.defragment(p, scope, ts) {
			return
		}
		st = flow.OK
	}
	if st != flow.OK {
		return
	}
	if p.Proto != 6 && p.Proto != 17 {
		e.stats.OtherProto++
		return
	}
	// The flow table expires its own flows as packets come; only the DNS answers are
	// swept here.
	if now-e.lastExpire >= int64(expireEvery) || now < e.lastExpire {
		e.names.Expire(ts)
		e.tickBehaviour(ts)
		e.lastExpire = now
	}
	if !hashed {
		h = e.table.Hash(p, scope)
	}
	f, dir, grew := e.table.PacketHash(p, scope, now, h)
	if f == nil {
		return
	}
	e.dir = dir
	s := &f.App
	if s.flags&flagInit == 0 {
		e.newFlow(f)
	}
	if s.flags&flagWatched != 0 {
		e.behave(f, dir, p)
	}
	if s.flags&flagDone != 0 {
		return
	}
	if p.Proto == 17 {
		if len(p.Payload) > 0 {
			e.dnsMessage(f, dir, p.Payload)
		}
		return
	}
	if len(p.Payload) > 0 && s.firstLen[dir] == 0 {
		s.firstLen[dir] = uint16(min(len(p.Payload), 0xffff))
		e.checkSV2(f)
	}
	if grew {
		e.inspect(f, dir)
	}
	if s.flags&flagDone == 0 && f.State == flow.StateClosed && dnsTCP(f) {
		// DNS over TCP stays under inspection while messages may come; not after a close.
		e.finish(f, finishDecided)
	}
}

// isIPv6Ext reports whether an IPv6 fragment's next header is an extension header: only
// the reassembled datagram says which transport follows. (Fragments of other transports,
// ICMP and the like, are not reassembled: nothing here reads them.)
func isIPv6Ext(proto uint8) bool {
	return proto == 0 || proto == 43 || proto == 60 || proto == 135 || proto == 51
}

// defragment feeds the fragment in p to reassembly; when it completes a datagram, p is
// overwritten with the datagram and defragment reports true.
func (e *Engine) defragment(p *flow.Packet, scope uint64, ts time.Time) bool {
	e.stats.Fragments++
	if p.Snapped {
		// The capture cut the fragment short: its bytes cannot be placed.
		e.stats.FragmentsSnapped++
		return false
	}
	dg := e.frags.Add(p.IP, scope, ts)
	if dg == nil {
		return false
	}
	if st := flow.Decode(flow.LinkRaw, dg, p); st != flow.OK || p.Fragment != flow.NotFragment {
		if st.Malformed() {
			e.stats.Decode[st]++
		}
		return false
	}
	return true
}

// Tick expires idle flows and DNS answers at now. Packet does this as packets come; a live
// caller also calls Tick on a timer so that quiet periods release memory.
func (e *Engine) Tick(now time.Time) {
	e.tickBehaviour(now)
	e.table.Expire(now.UnixNano())
	e.names.Expire(now)
	e.frags.Expire(now)
	e.lastExpire = now.UnixNano()
}

// Flush ends the capture: every flow is evicted (end of replay).
func (e *Engine) Flush() { e.table.Flush() }

func (e *Engine) newFlow(f *flow.Flow[state]) {
	s := &f.App
	s.flags |= flagInit
	named := false
	if name, ok := e.names.Lookup(f.Scope, f.Resp.Addr(), e.now); ok {
		e.detail(f).facts.DstName = name
		named = true
	}
	if e.opt.NameScope != nil {
		// The profile takes the name from the workload's own answers only.
		own := ""
		if ns := e.nameScope(f); ns == f.Scope {
			if named {
				own = s.det.facts.DstName
			}
		} else if name, ok := e.names.Lookup(ns, f.Resp.Addr(), e.now); ok {
			own = name
		}
		if own != "" {
			e.detail(f).ownName = own
		}
		named = own != ""
	}
	e.evaluate(f)
	if dnsTCP(f) {
		// DNS over TCP is followed message by message for the connection's life, past
		// StreamDepth: each message is consumed once parsed (see dnsFrames).
		e.table.Framed(f)
	}
	if f.Proto == 17 && f.Resp.Port() != 53 && f.Orig.Port() != 53 {
		// Only DNS is inspected over UDP; other datagrams are judged by destination alone.
		e.finish(f, finishUDP) // checks the profile too
		return
	}
	if named || f.Proto == 17 {
		// A TCP flow to an address no answer named waits for its ClientHello: the server
		// name is a better key than the address.
		e.checkProfile(f, false)
	} else {
		e.checkProfile(f, true)
	}
}

// nameScope is where f's DNS answers are kept and its destination's name is looked up: f's
// scope, narrowed to its client's workload when Options.NameScope says so.
func (e *Engine) nameScope(f *flow.Flow[state]) uint64 {
	if e.opt.NameScope == nil {
		return f.Scope
	}
	client := f.Orig.Addr()
	if f.Orig.Port() == 53 && f.Resp.Port() != 53 {
		client = f.Resp.Addr() // an answer seen without its query opened the flow
	}
	return e.opt.NameScope(f.Scope, client)
}

func (e *Engine) dnsMessage(f *flow.Flow[state], dir flow.Dir, b []byte) {
	m, err := e.dnsp.Parse(b)
	if err != nil {
		e.stats.DecodeErrors[ProtoDNS]++
		return
	}
	e.stats.DNSMessages++
	s := &f.App
	s.app = appDNS
	if !m.Response {
		for _, q := range m.Questions {
			if !s.alerted.Has(detect.ReasonPoolDNS) {
				e.detail(f).facts.DNSQuery, s.dnsType = q.Name, q.Type
				e.evaluate(f)
			}
		}
		if e.recording(RecordDNS) {
			e.recordDNS(f, dir, m, b)
		}
		return
	}
	for _, an := range e.dnsp.AddrNames() {
		// Detection reads the whole capture's answers (a pool name resolved by anyone
		// marks its address); profiles read the workload's own (NameScope).
		e.names.Add(f.Scope, an.Addr, an.Name, an.TTL, e.now)
		if e.opt.NameScope != nil {
			if ns := e.nameScope(f); ns != f.Scope {
				e.names.Add(ns, an.Addr, an.Name, an.TTL, e.now)
			}
		}
	}
	if f.Proto == 17 && f.Packets[flow.DirOrig] > 0 {
		// The lookup was answered: nothing more will come that matters.
		e.table.Close(f)
	}
	// A response seen without its query (capture started late) still names the lookup.
	if (s.det == nil || s.det.facts.DNSQuery == "") && len(m.Questions) > 0 {
		e.detail(f).facts.DNSQuery, s.dnsType = m.Questions[0].Name, m.Questions[0].Type
		e.evaluate(f)
	}
	if e.recording(RecordDNS) {
		e.recordDNS(f, dir, m, b)
	}
}

// inspect runs the stream detectors on direction dir after its prefix grew. A flow holding a
// slot continues where its parsers stopped; one without a slot is looked at with the scratch
// parser state (relook), so its first payload in each direction, and every later one, is
// always parsed, and then takes a slot if its scope can have one, or stays deferred.
func (e *Engine) inspect(f *flow.Flow[state], dir flow.Dir) {
	s := &f.App
	in := s.insp
	if in == nil {
		in = e.relook(f)
		e.stats.InspectSlotless++
	}
	in.looks++
	if e.run(f, in, dir) {
		e.finish(f, finishDecided)
		return
	}
	if in == &e.scratch {
		e.keep(f, in)
	}
}

// run is one inspection of direction dir with parser state in; it reports whether every
// detector has decided f.
func (e *Engine) run(f *flow.Flow[state], in *inspect, dir flow.Dir) bool {
	s := &f.App
	st := &f.Stream[dir]
	isDNS := dnsTCP(f)
	if st.Resync {
		// A hole was skipped: parsers restart after it, as after a mid-stream pickup.
		st.Resync = false
		in.base[dir] = int(st.GapOffset)
		in.sc[dir].Reset()
		in.scanDone[dir] = false
		in.resync[dir] = true
		in.ws[dir] = wsDir{}
		if isDNS {
			// The length prefixes after a hole cannot be found again.
			e.dnsStop(in, dir, true)
		}
	}
	if isDNS && !in.dnsDead[dir] {
		// DNS over TCP. The other detectors still run: port 53 is a classic hiding place.
		in.dnsNext[dir] = dns.SplitTCP(st.Data(), in.dnsNext[dir], func(msg []byte) { e.dnsMessage(f, dir, msg) })
	}
	if !in.proxyDone {
		e.detectProxy(f, in)
	}
	e.scan(f, in, dir)
	if isDNS {
		e.dnsFrames(f, in, dir)
	}
	mining := s.det != nil && s.det.facts.Mining
	scanned := mining || in.isTLS || (in.scanDone[0] && in.scanDone[1])
	done := (scanned && in.tlsDone && in.proxyDone) || (f.Stream[0].Truncated && f.Stream[1].Truncated)
	if done && isDNS && (!in.dnsDead[0] || !in.dnsDead[1]) {
		return false // more DNS messages may come
	}
	return done
}

// scan runs the TLS, WebSocket and Stratum parsers on direction dir.
func (e *Engine) scan(f *flow.Flow[state], in *inspect, dir flow.Dir) {
	s := &f.App
	data := f.Stream[dir].Data()
	if in.base[dir] > len(data) {
		return
	}
	data = data[in.base[dir]:]
	if dir == flow.DirOrig && !in.tlsDone {
		e.detectTLS(f, in, data)
	}
	if s.det != nil && s.det.tunnel != nil && s.det.tunnel.Kind == proxy.WebSocket && !in.wsFailed {
		data = e.wsData(in, dir, data)
	}
	mining := s.det != nil && s.det.facts.Mining
	if !mining && !in.scanDone[dir] && !in.isTLS {
		res, ss := in.sc[dir].Scan(data, f.Midstream || in.resync[dir])
		e.stats.StratumOverflows += uint64(in.sc[dir].Overflows - in.overflows[dir])
		in.overflows[dir] = in.sc[dir].Overflows
		switch ss {
		case stratum.Match:
			d := e.detail(f)
			mining = true
			d.stratum = res
			d.facts.Mining = true
			s.app = appStratum
			e.evaluate(f)
		case stratum.NotMining:
			in.scanDone[dir] = true
		}
	}
	if in.tlsDone {
		// The hello was read (or there is none): the destination's name, and a tunnel
		// target's, are as good as they will get.
		e.checkProfiles(f)
	}
}

// dnsTCP reports whether f is DNS over TCP (port 53 either side).
func dnsTCP(f *flow.Flow[state]) bool {
	return f.Proto == 6 && (f.Resp.Port() == 53 || f.Orig.Port() == 53)
}

// dnsFrames releases direction dir's DNS messages that were parsed, so a DNS-over-TCP
// connection is followed for its whole life within its framed stream's window
// (flow.Config.MessageDepth). The other parsers read the same bytes, so they are consumed
// only once those have decided on dir, or have had StreamDepth bytes of it, as on any flow.
// A window that filled up (a message longer than it, or bytes lost to the reassembly
// budget) ends DNS parsing of dir, counting the message that could not complete.
func (e *Engine) dnsFrames(f *flow.Flow[state], in *inspect, dir flow.Dir) {
	st := &f.Stream[dir]
	if in.dnsDead[dir] {
		return
	}
	if st.Truncated {
		e.dnsStop(in, dir, in.dnsNext[dir] < len(st.Data()))
		return
	}
	mining := f.App.det != nil && f.App.det.facts.Mining
	done := (mining || in.isTLS || in.scanDone[dir]) && in.proxyDone && (dir == flow.DirReply || in.tlsDone)
	if !done {
		cfg := e.table.Config()
		if len(st.Data()) < min(cfg.StreamDepth, cfg.MessageDepth/2) {
			return
		}
		// The other parsers had a whole stream depth of dir: they stop here, as they
		// would on any other flow.
		in.scanDone[dir], in.proxyDone = true, true
		if dir == flow.DirOrig {
			in.tlsDone = true
		}
	}
	if n := in.dnsNext[dir]; n > 0 {
		st.Consume(n)
		in.dnsNext[dir] = 0
		in.base[dir] = max(0, in.base[dir]-n)
	}
}

// dnsStop ends DNS parsing of direction dir; partial says a message had begun and will not
// be read whole, which is counted.
func (e *Engine) dnsStop(in *inspect, dir flow.Dir, partial bool) {
	if in.dnsDead[dir] {
		return
	}
	in.dnsDead[dir] = true
	if partial {
		e.stats.DNSIncomplete++
	}
}

// dnsAbandon counts the DNS-over-TCP messages of f left incomplete when its inspection ends
// (the flow ended or was finished), from its slot or, deferred, from what it recorded.
func (e *Engine) dnsAbandon(f *flow.Flow[state]) {
	s := &f.App
	if !dnsTCP(f) || s.flags&flagDone != 0 {
		return
	}
	for d := flow.DirOrig; d <= flow.DirReply; d++ {
		next, dead := 0, false
		switch {
		case s.insp != nil:
			next, dead = s.insp.dnsNext[d], s.insp.dnsDead[d]
		case s.flags&flagDeferred != 0:
			next, dead = int(s.dnsNext[d]), s.look&(lookDNSDead0<<d) != 0
		default:
			continue
		}
		if !dead && next < len(f.Stream[d].Data()) {
			e.stats.DNSIncomplete++
		}
	}
}

// Slot reclaim bounds: a flow that has sent nothing decisive for this long (packet time), or
// in this many payload segments, gives its slot up when another flow needs one. Miners speak
// in their first message and pools answer it within a round trip, so both are generous.
const (
	ReclaimAfter = 250 * time.Millisecond
	ReclaimLooks = 16
)

// relookFull is the stream length up to which a flow without a slot is parsed again from its
// first byte (a message split over segments is seen whole); past it, a retry resumes at the
// last line boundary already looked at, so a deferred flow costs O(new bytes) per packet.
const relookFull = 4 << 10

// relook prepares the scratch parser state for f, which holds no slot, from what its earlier
// looks decided.
func (e *Engine) relook(f *flow.Flow[state]) *inspect {
	s := &f.App
	in := &e.scratch
	*in = inspect{owner: f}
	in.tlsDone = s.look&lookTLSDone != 0
	in.isTLS = s.look&lookIsTLS != 0
	in.proxyDone = s.look&lookProxyDone != 0
	in.wsFailed = s.look&lookWSFailed != 0
	in.scanDone = [2]bool{s.look&lookScanDone0 != 0, s.look&lookScanDone1 != 0}
	in.dnsNext = [2]int{int(s.dnsNext[0]), int(s.dnsNext[1])}
	in.dnsDead = [2]bool{s.look&lookDNSDead0 != 0, s.look&lookDNSDead1 != 0}
	var skip [2]int
	if s.det != nil && s.det.tunnel != nil {
		skip = [2]int{s.det.tunnel.ClientSkip, s.det.tunnel.ServerSkip}
	}
	for d := range 2 {
		if in.scanDone[d] {
			in.base[d] = skip[d] // the line scanner is done here: no resume point to find
			continue
		}
		st := &f.Stream[d]
		data := st.Data()
		seen := min(int(s.looked[d]), len(data))
		if !st.Gap && (seen == 0 || len(data) <= relookFull) {
			in.base[d] = skip[d]
			continue
		}
		// Resume in mid-stream mode at the newline that ended the last complete line looked
		// at (the scanner skips up to the first newline), after any hole and preamble.
		b := skip[d]
		if st.Gap {
			b = max(b, int(st.GapOffset))
		}
		// The search looks back at most relookFull bytes, so a retry costs O(new bytes).
		b = min(max(b, seen-relookFull), seen)
		if i := bytes.LastIndexByte(data[b:seen], '\n'); i >= 0 {
			b += i
		} else {
			b = seen
		}
		in.base[d], in.resync[d] = b, true
	}
	return in
}

// keep gives f, undecided after a look with the scratch state in, a slot to continue in, or
// leaves it deferred with what the look decided.
func (e *Engine) keep(f *flow.Flow[state], in *inspect) {
	s := &f.App
	slot := e.takeInspect(e.fairKey(f))
	if slot == nil {
		e.stats.InspectDeferred++
		e.deferFlow(f, in)
		return
	}
	key := slot.key
	*slot = *in
	slot.owner, slot.since, slot.key, slot.looks = f, e.now, key, 0
	s.insp = slot
	s.flags &^= flagDeferred
	*in = inspect{}
}

// deferFlow records what in decided about f, which is left without a slot.
func (e *Engine) deferFlow(f *flow.Flow[state], in *inspect) {
	s := &f.App
	var b uint8
	for _, x := range [...]struct {
		set bool
		bit uint8
	}{{in.tlsDone, lookTLSDone}, {in.isTLS, lookIsTLS}, {in.proxyDone, lookProxyDone}, {in.wsFailed, lookWSFailed}, {in.scanDone[0], lookScanDone0}, {in.scanDone[1], lookScanDone1}, {in.dnsDead[0], lookDNSDead0}, {in.dnsDead[1], lookDNSDead1}} {
		if x.set {
			b |= x.bit
		}
	}
	s.look = b
	s.dnsNext = [2]uint32{uint32(in.dnsNext[0]), uint32(in.dnsNext[1])}
	s.looked = [2]uint32{uint32(len(f.Stream[0].Data())), uint32(len(f.Stream[1].Data()))}
	s.flags |= flagDeferred
}

// fairKey is the scope whose share of the slots f counts against: its workload where replay
// maps addresses to workloads (NameScope), else its capture scope (netns live, capture
// interface in replay).
func (e *Engine) fairKey(f *flow.Flow[state]) uint64 { return e.nameScope(f) }

// stealProbes bounds the clock hand's walk per slot request, so a full pool costs O(1) per
// flow.
const stealProbes = 64

// takeInspect returns a slot counted against key: a free one, or one taken back from an
// undecided flow (which is deferred, not dropped) when key is under its fair share and the
// holder's scope over it, or when the holder has sent nothing decisive within ReclaimAfter
// or ReclaimLooks.
func (e *Engine) takeInspect(key uint64) *inspect {
	p := &e.insp
	if in := p.get(key); in != nil {
		return in
	}
	share := p.share(key)
	under := p.byKey[key] < share
	for i := 0; i < stealProbes && len(p.all) > 0; i++ {
		in := p.all[p.hand]
		p.hand = (p.hand + 1) % len(p.all)
		if in.owner == nil {
			continue
		}
		var why ReclaimReason
		switch {
		case under && in.key != key && p.byKey[in.key] > share:
			why = ReclaimFair
		case e.now.Sub(in.since) >= ReclaimAfter:
			why = ReclaimAge
		case in.looks >= ReclaimLooks:
			why = ReclaimSegments
		default:
			continue
		}
		e.stats.InspectReclaimed[why]++
		owner := in.owner
		e.deferFlow(owner, in)
		owner.App.insp = nil
		p.put(in)
		return p.get(key)
	}
	return nil
}

// finishReason says why a flow is done.
type finishReason uint8

const (
	finishDecided finishReason = iota // every detector decided, or both directions reached the depth
	finishUDP                         // a datagram flow other than DNS: judged by destination only
)

// finish is the one place a flow becomes done: it stops inspecting f, releases its stream
// buffers and marks it Bypass, so the rest of it is counted, not parsed. Whatever must happen
// when a flow stops being inspected (a kernel bypass) belongs here.
func (e *Engine) finish(f *flow.Flow[state], why finishReason) {
	s := &f.App
	e.dnsAbandon(f)
	if s.insp != nil {
		e.insp.put(s.insp)
		s.insp = nil
	}
	if s.det != nil && s.det.beh != nil {
		// The behaviour detector still reads its packets (record headers): not done until
		// it decides (unwatch), but its streams are not needed.
		s.flags &^= flagDeferred
		e.table.Release(f)
		e.checkProfiles(f)
		return
	}
	s.flags = s.flags&^flagDeferred | flagDone
	e.table.Release(f)
	if why == finishDecided {
		e.stats.Bypassed++
	}
	e.offload(f)
	e.checkProfiles(f) // learns it too while its workload is learning
}

// offload tells the capture below that f is done (called once, where a flow becomes done).
func (e *Engine) offload(f *flow.Flow[state]) {
	if e.opt.Offloader != nil {
		e.opt.Offloader.Done(f.Scope, f.Proto, f.Orig, f.Resp)
	}
}

func (e *Engine) detectProxy(f *flow.Flow[state], in *inspect) {
	t, st := proxy.Detect(f.Stream[0].Data(), f.Stream[1].Data())
	switch st {
	case proxy.NotProxy:
		in.proxyDone = true
	case proxy.NeedMore:
		if f.Stream[0].Truncated {
			in.proxyDone = true
		}
	case proxy.Done:
		in.proxyDone = true
		tt := t // copied here, so that only a found tunnel is allocated, not every t
		e.detail(f).tunnel = &tt
		e.stats.Tunnels++
		// Everything after the preamble is the tunnelled protocol: start the parsers there.
		in.base = [2]int{t.ClientSkip, t.ServerSkip}
		in.sc = [2]stratum.Scanner{}
		in.scanDone = [2]bool{}
		in.tlsDone, in.isTLS = false, false
		if host, _, ok := strings.Cut(t.Target, ":"); ok && host != "" {
			if _, err := netip.ParseAddr(host); err != nil {
				// The name the client asked the proxy for is the destination's name.
				d := e.detail(f)
				d.proxyName, d.facts.DstName = d.facts.DstName, strings.ToLower(host)
				e.evaluate(f)
			}
		}
	}
}

func (e *Engine) detectTLS(f *flow.Flow[state], in *inspect, data []byte) {
	s := &f.App
	h, st := e.tlsp.ParseClientHello(data)
	switch st {
	case tls.NotTLS:
		in.tlsDone = true
	case tls.NeedMore:
		if f.Stream[0].Truncated {
			in.tlsDone = true
		}
	case tls.OK:
		in.tlsDone, in.isTLS = true, true
		s.app = appTLS
		d := e.detail(f)
		// h.ALPN may be shared with other flows' hellos (tls.Parser): events only read it.
		d.hello = &alert.TLS{SNI: h.SNI, JA4: h.JA4, ALPN: h.ALPN}
		d.facts.SNI = h.SNI
		d.facts.TLSBare = h.SNI == "" && len(h.ALPN) == 0
		e.stats.TLSHellos++
		e.evaluate(f)
		if e.recording(RecordTLS) {
			e.recordTLS(f, d.hello)
		}
		e.watch(f, in.base, len(h.ALPN) == 0)
	}
}

func (e *Engine) checkSV2(f *flow.Flow[state]) {
	s := &f.App
	if s.firstLen[0] > 0 && s.firstLen[1] > 0 && stratum.IsSV2FirstFlight(int(s.firstLen[0]), int(s.firstLen[1])) {
		e.detail(f).facts.SV2 = true
		e.evaluate(f)
	}
}

// evaluate asks detect for a verdict and alerts once for each reason not yet alerted on f.
func (e *Engine) evaluate(f *flow.Flow[state]) {
	s := &f.App
	var fa detect.Facts
	if s.det != nil {
		fa = s.det.facts
	}
	fa.Proto, fa.Dst, fa.DstPort = f.Proto, f.Resp.Addr(), f.Resp.Port()
	v := e.opt.Detector.Evaluate(&fa)
	if v.N == 0 {
		return
	}
	blocked := e.block(f, &v)
	before := s.alerted
	for i := 0; i < v.N; i++ {
		fd := v.Findings[i]
		if fd.Reason.Record() {
			e.record(f, fd)
			continue
		}
		if s.alerted.Has(fd.Reason) {
			continue
		}
		s.alerted = s.alerted.With(fd.Reason)
		f.Flagged = true
		e.emit(f, fd, blocked)
	}
	if s.alerted != before && s.prof&profLearning != 0 {
		e.learnProfile(f) // a destination learned before the flag was raised is poisoned
	}
}

func (e *Engine) evicted(f *flow.Flow[state], reason flow.EvictReason) {
	if e.recording(RecordFlow) {
		e.recordFlow(f, reason)
	}
	// A flow that ended before anything decided it (a refused connect, a lone datagram) is
	// still checked, and learned while its workload is learning.
	e.checkProfiles(f)
	e.dnsAbandon(f)
	if f.App.prof&profBlocked != 0 {
		e.opt.Enforcer.Unblock(e.blockOf(f))
	}
	e.stats.FlowsEnded++
	if f.App.alerted != 0 {
		e.stats.FlaggedFlows++
	}
	if f.App.insp != nil {
		e.insp.put(f.App.insp)
	}
	if d := f.App.det; d != nil {
		// The flag, not d.beh: an evicted flow's detail has left the caches long ago, and a
		// load from it was a miss per DNS or TLS flow; zeroing it below only stores.
		if f.App.flags&flagWatched != 0 {
			e.dropWatched(f)
		}
		// Events copy what they take from a detail (its pointers are to objects of their
		// own), so it can be reused: a new detail per DNS or TLS flow was a tenth of replay's
		// CPU in allocation, page faults and GC.
		if len(e.dets) < maxFreeDetails {
			*d = detail{}
			e.dets = append(e.dets, d)
		}
	}
	f.App = state{}
}

// maxFreeDetails bounds the recycled details kept (about 200 bytes each).
const maxFreeDetails = 1 << 16

// detail returns f's detail, allocating it on first use.
func (e *Engine) detail(f *flow.Flow[state]) *detail {
	if f.App.det == nil {
		if n := len(e.dets); n > 0 {
			f.App.det = e.dets[n-1]
			e.dets = e.dets[:n-1]
		} else {
			f.App.det = new(detail)
		}
	}
	return f.App.det
}

// Stats returns the engine's counters together with the flow table's.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Flow = e.table.Stats()
	s.DNSCache = e.names.Stats()
	s.Defrag = e.frags.Stats()
	s.Inspecting = e.insp.inUse
	s.Watching = e.beh.inUse
	return s
}
