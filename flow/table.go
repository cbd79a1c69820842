package flow

import (
	"math/rand/v2"
	"net/netip"
	"time"
	"unsafe"

	"github.com/minerguard/minerguard/internal/prefetch"
)

// Dir is the direction of a packet within its flow.
type Dir uint8

// Directions.
const (
	DirOrig  Dir = 0 // from the initiator (Flow.Orig)
	DirReply Dir = 1 // from the responder (Flow.Resp)
)

// TCPState is a coarse TCP connection state, enough to pick a timeout.
type TCPState uint8

// TCP states. UDP and other flows stay New, then Established once both
// sides have sent.
const (
	StateNew         TCPState = iota // handshake seen or in progress
	StateEstablished                 // both sides sent, or picked up mid-stream
	StateClosing                     // FIN from one side
	StateClosed                      // RST, or FIN from both sides
)

func (s TCPState) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateEstablished:
		return "established"
	case StateClosing:
		return "closing"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// EvictReason says why a flow left the table.
type EvictReason uint8

// Eviction reasons.
const (
	EvictTimeout EvictReason = iota // idle past its state's timeout (packet time)
	EvictCap                        // table full: least recently seen flow evicted for a new one
	EvictFlush                      // Flush (end of replay, shutdown)
	EvictReuse                      // a new SYN reused the 5-tuple of a closed connection
)

func (r EvictReason) String() string {
	switch r {
	case EvictTimeout:
		return "timeout"
	case EvictCap:
		return "cap"
	case EvictFlush:
		return "flush"
	case EvictReuse:
		return "reuse"
	}
	return "unknown"
}

// Flow is one bidirectional conversation. The table owns it: a *Flow is
// valid until the next call to Packet, Expire or Flush that evicts it
// (onEvict sees it last). Callers may set Flagged, Bypass and App.
type Flow[T any] struct {
	// The fields a lookup and a packet touch come first, so that most packets touch the
	// first cache line of their flow (plus App) and not the streams.
	Scope      uint64
	Orig, Resp netip.AddrPort // initiator and responder
	Proto      uint8
	State      TCPState
	Midstream  bool // TCP picked up without its handshake: Orig is a guess
	Flagged    bool // set by the caller: evicted last when the table is full
	Bypass     bool // set by the caller: count only, no more reassembly
	fin        [2]bool
	class      uint8
	Last       int64     // packet time of the latest packet, Unix nanoseconds
	Packets    [2]uint64 // by Dir
	Bytes      [2]uint64 // wire bytes by Dir
	App        T         // the caller's detector state

	ID         uint64 // unique within the table, nonzero (EVE flow_id)
	First      int64  // packet time of the first packet, Unix nanoseconds
	prev, next uint32 // LRU links within the class list (slot numbers, 0 = none)
	listed     int64  // packet time f was put at the head of its list
	slot       uint32
	hash       uint32    // the table's hash of the key: eviction finds the index entry without hashing again
	Stream     [2]Stream // TCP reassembly by Dir
}

// Config bounds a Table. Zero fields take the defaults shown.
type Config struct {
	MaxFlows           int   // 262144
	StreamDepth        int   // 65536 bytes reassembled per direction
	MaxOOOPerDir       int   // 1 MiB queued out of order per direction
	MaxReassemblyTotal int64 // 256 MiB of stream buffers in all
	// MessageDepth is the window of a framed stream (Table.Framed: DNS over TCP): the most
	// bytes it holds that the caller has not consumed. The default, 128 KiB, holds the
	// largest DNS message with its length prefix (65,537 bytes) still incomplete plus one
	// more 64 KiB segment (a GRO-merged capture), so nothing is cut while messages are
	// consumed as they complete. Never less than StreamDepth.
	MessageDepth int
	// Defrag bounds IP fragment reassembly (NewDefrag); the table itself does not use it.
	Defrag DefragConfig

	TCPNewTimeout         time.Duration // 30s
	TCPEstablishedTimeout time.Duration // 600s
	TCPClosingTimeout     time.Duration // 60s
	TCPClosedTimeout      time.Duration // 10s
	UDPTimeout            time.Duration // 60s
	OtherTimeout          time.Duration // 30s
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxFlows <= 0 {
		c.MaxFlows = 262144
	}
	if c.StreamDepth <= 0 {
		c.StreamDepth = 64 << 10
	}
	if c.MaxOOOPerDir <= 0 {
		c.MaxOOOPerDir = 1 << 20
	}
	if c.MaxReassemblyTotal <= 0 {
		c.MaxReassemblyTotal = 256 << 20
	}
	if c.MessageDepth <= 0 {
		c.MessageDepth = 128 << 10
	}
	c.MessageDepth = max(c.MessageDepth, c.StreamDepth)
	def(&c.TCPNewTimeout, 30*time.Second)
	def(&c.TCPEstablishedTimeout, 600*time.Second)
	def(&c.TCPClosingTimeout, 60*time.Second)
	def(&c.TCPClosedTimeout, 10*time.Second)
	def(&c.UDPTimeout, 60*time.Second)
	def(&c.OtherTimeout, 30*time.Second)
	return c
}

// Timeout classes: each has its own LRU list, so every list is ordered by
// last-seen time and Expire only touches flows that are due.
const (
	classTCPNew = iota
	classTCPEstablished
	classTCPClosing
	classTCPClosed
	classUDP
	classOther
	numClasses
)

// EvictStats counts evictions by reason.
type EvictStats struct {
	Timeout, Cap, Flush, Reuse uint64
}

// Stats is a snapshot of a Table's counters.
type Stats struct {
	Created    uint64
	Evicted    EvictStats
	Active     int
	Reassembly ReassemblyStats
}

// chunkFlows is how many flows are allocated at a time: the slab grows in
// chunks up to MaxFlows, so a small table stays small and pointers to
// flows never move.
const chunkFlows = 1024

type lruList struct{ head, tail uint32 }

// Table is a bounded flow table. It is not safe for concurrent use: run one
// per capture worker.
type Table[T any] struct {
	cfg      Config
	timeouts [numClasses]int64 // nanoseconds, compared with packet times as integers
	onEvict  func(*Flow[T], EvictReason)

	index    []uint64 // open addressing, linear probing: hash32<<32 | slot; 0 = empty
	mask     uint32
	maxIndex int
	hseed    uint64 // random per table: see flowHash
	chunks   []*[chunkFlows]Flow[T]
	free     []uint32                // free slot numbers
	lists    [2 * numClasses]lruList // unflagged classes, then flagged ones
	n        int
	nextID   uint64

	lastExpire int64 // UnixNano of the last Expire: an integer compare per packet
	r          *reassembler
	stats      Stats
}

// NewTable returns an empty table. onEvict, if not nil, is called with each
// flow as it leaves the table (from Packet, Expire or Flush); it must not
// call back into the table.
func NewTable[T any](cfg Config, onEvict func(f *Flow[T], reason EvictReason)) *Table[T] {
	cfg = cfg.withDefaults()
	t := &Table[T]{
		cfg:     cfg,
		onEvict: onEvict,
		hseed:   rand.Uint64(),
		chunks:  make([]*[chunkFlows]Flow[T], 0, (cfg.MaxFlows+chunkFlows-1)/chunkFlows),
		free:    make([]uint32, 0, chunkFlows),
		r:       newReassembler(cfg.StreamDepth, cfg.MessageDepth, cfg.MaxOOOPerDir, cfg.MaxReassemblyTotal),
	}
	// A load factor ≤ 1/2 keeps probe sequences short; 8 bytes per entry
	// is a fraction of what a Go map of 48-byte keys would take. The index
	// starts small and doubles with the live flows (up to 2×MaxFlows): a
	// 4 MiB index sized for the cap made every lookup a cache miss, about a
	// tenth of replay time, when only a few thousand flows were live.
	t.maxIndex = 16
	for t.maxIndex < 2*cfg.MaxFlows {
		t.maxIndex *= 2
	}
	n := min(t.maxIndex, initialIndex)
	t.index = make([]uint64, n)
	t.mask = uint32(n - 1)
	t.timeouts = [numClasses]int64{
		classTCPNew:         int64(cfg.TCPNewTimeout),
		classTCPEstablished: int64(cfg.TCPEstablishedTimeout),
		classTCPClosing:     int64(cfg.TCPClosingTimeout),
		classTCPClosed:      int64(cfg.TCPClosedTimeout),
		classUDP:            int64(cfg.UDPTimeout),
		classOther:          int64(cfg.OtherTimeout),
	}
	return t
}

// Config returns the table's configuration with defaults filled in.
func (t *Table[T]) Config() Config { return t.cfg }

// Len returns the number of live flows.
func (t *Table[T]) Len() int { return t.n }

// Stats returns a snapshot of the counters.
func (t *Table[T]) Stats() Stats {
	s := t.stats
	s.Active = t.n
	s.Reassembly = t.r.stats
	return s
}

func (t *Table[T]) flow(slot uint32) *Flow[T] {
	return &t.chunks[(slot-1)/chunkFlows][(slot-1)%chunkFlows]
}

// Packet accounts p (from scope, seen at packet time now, Unix nanoseconds) to its flow, creating the
// flow if needed, and feeds TCP payload to the direction's Stream unless
// the flow is bypassed. It returns the flow, the packet's direction, and
// whether a stream of the flow has new contiguous bytes: normally
// direction dir's, rarely the other one's (when this packet's ACK proves a
// hole in it lost), so callers compare each direction's len(Data()) with
// what they have consumed.
//
// IP fragments (p.Fragment != NotFragment) do not belong here: callers pass
// them to a Defrag and pass the datagram it reassembles.
//
// Times are integers on this path: a time.Time compare or subtraction per packet decodes
// its wall and monotonic parts each time.
func (t *Table[T]) Packet(p *Packet, scope uint64, now int64) (f *Flow[T], dir Dir, grew bool) {
	return t.PacketHash(p, scope, now, t.Hash(p, scope))
}

// Hash is the table's hash of p's flow in scope: a caller that looks ahead at a batch of
// packets (Prefetch, PrefetchFlow) computes it once and hands it to PacketHash.
func (t *Table[T]) Hash(p *Packet, scope uint64) uint32 {
	return flowHash(t.hseed, p.Src, p.SrcPort, p.Dst, p.DstPort, p.Proto, scope)
}

// Prefetch asks the CPU for the index entry where the probe for hash h starts, without
// waiting for it; it changes nothing. A caller holding a batch of packets prefetches all their
// entries, then all their flows (PrefetchFlow), then processes them: the two dependent cache
// misses of each lookup overlap with the other packets' instead of coming one after another.
func (t *Table[T]) Prefetch(h uint32) { prefetch.Line(unsafe.Pointer(&t.index[h&t.mask])) }

// PrefetchFlow asks the CPU for the cache lines a packet of the flow the index holds under
// hash h will read (the first entry with that hash: most likely the flow, maybe another of
// the same hash). Every packet reads the key, counters, list links and the caller's App, the
// fields before Stream; a TCP packet (tcp) also its streams, the rest. Slots never move, so the
// address is always a flow's. It reports whether the index holds an entry under h: if not,
// the packet's flow is new (unless a packet before it creates it), and PrefetchFree can
// warm the slot it will get.
func (t *Table[T]) PrefetchFlow(h uint32, tcp bool) bool {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.index[i]
		if e == 0 {
			return false
		}
		if uint32(e>>32) == h {
			t.prefetchSlot(uint32(e), tcp)
			return true
		}
	}
}

// PrefetchFree asks the CPU for the lines of the free slot that the k-th flow created from
// now (k = 0: the next) will take, if no flow is evicted in between: a slot freed long ago
// has left the caches, and filling in a new flow was one miss after another (a third of
// create's time). tcp is as for PrefetchFlow.
func (t *Table[T]) PrefetchFree(k int, tcp bool) {
	if i := len(t.free) - 1 - k; i >= 0 {
		t.prefetchSlot(t.free[i], tcp)
	}
}

// prefetchSlot prefetches the lines of the flow in slot that a packet reads or writes.
func (t *Table[T]) prefetchSlot(slot uint32, tcp bool) {
	f := unsafe.Pointer(t.flow(slot))
	end := unsafe.Offsetof(Flow[T]{}.Stream)
	if tcp {
		end = unsafe.Sizeof(Flow[T]{})
	}
	// One call for all the lines (flows are not line-aligned: 6 or 7 of them).
	prefetch.Bytes(unsafe.Slice((*byte)(f), end))
}

// PacketHash is Packet for a packet whose Hash the caller has computed.
func (t *Table[T]) PacketHash(p *Packet, scope uint64, now int64, h uint32) (f *Flow[T], dir Dir, grew bool) {
	if d := now - t.lastExpire; d >= int64(time.Second) || d < 0 {
		t.Expire(now)
	}
	f = t.lookup(h, p, scope)
	ok := f != nil
	if ok {
		if p.Proto == ProtoTCP && f.State == StateClosed && p.TCPFlags&(TCPSyn|TCPAck) == TCPSyn {
			// A fresh connection on the 5-tuple of a closed one.
			t.evict(f, EvictReuse)
			ok = false
		}
	}
	if !ok {
		f = t.create(h, p, scope, now)
	}
	dir = DirReply
	if p.SrcPort == f.Orig.Port() && p.Src == f.Orig.Addr() {
		dir = DirOrig
	}
	f.Packets[dir]++
	f.Bytes[dir] += uint64(p.WireLen)
	if now > f.Last {
		f.Last = now
	}
	if p.Proto == ProtoTCP {
		grew = t.tcp(f, p, dir)
	} else if f.State == StateNew && f.Packets[0] > 0 && f.Packets[1] > 0 {
		f.State = StateEstablished
	}
	t.touch(f)
	return f, dir, grew
}

func (t *Table[T]) tcp(f *Flow[T], p *Packet, dir Dir) (grew bool) {
	flags := p.TCPFlags
	switch {
	case flags&TCPRst != 0:
		f.State = StateClosed
	case flags&TCPFin != 0:
		f.fin[dir] = true
		if f.fin[0] && f.fin[1] {
			f.State = StateClosed
		} else if f.State < StateClosing {
			f.State = StateClosing
		}
	case f.State == StateNew && flags&TCPSyn == 0 && (len(p.Payload) > 0 || f.Packets[0] > 0 && f.Packets[1] > 0):
		f.State = StateEstablished
	}
	if f.Bypass {
		if f.Stream[0].buf != nil || f.Stream[1].buf != nil || f.Stream[0].ooo != nil || f.Stream[1].ooo != nil {
			f.Stream[0].release(t.r)
			f.Stream[1].release(t.r)
		}
		return false
	}
	s, peer := &f.Stream[dir], &f.Stream[1-dir]
	seq := p.Seq
	if flags&TCPSyn != 0 {
		seq++ // SYN takes one sequence number
		s.start(seq)
		if flags&TCPAck != 0 {
			peer.start(p.Ack) // SYN-ACK: the initiator's first byte
		}
	}
	if flags&TCPRst == 0 && len(p.Payload) > 0 {
		grew = s.add(t.r, seq, p.Payload)
	}
	if flags&TCPAck != 0 && peer.onAck(t.r, p.Ack) {
		grew = true
	}
	return grew
}

// Framed switches both streams of f to message framing: the caller consumes each message
// (Stream.Consume) once parsed, and a stream holds up to Config.MessageDepth unconsumed bytes
// instead of stopping at StreamDepth, for as long as the connection lasts. A stream already
// Truncated stays so.
func (t *Table[T]) Framed(f *Flow[T]) {
	f.Stream[0].framed, f.Stream[1].framed = true, true
}

// Release marks f Bypass and frees its stream buffers now rather than at its next packet, so
// a caller that stops inspecting many flows at once (a flood) gets their memory back at once.
func (t *Table[T]) Release(f *Flow[T]) {
	f.Bypass = true
	f.Stream[0].release(t.r)
	f.Stream[1].release(t.r)
}

func (t *Table[T]) create(h uint32, p *Packet, scope uint64, now int64) *Flow[T] {
	if t.n >= t.cfg.MaxFlows {
		t.evictForCap()
	}
	var slot uint32
	if n := len(t.free); n > 0 {
		slot = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		// All slots handed out: add a chunk and free its slots.
		base := uint32(len(t.chunks)) * chunkFlows
		c := new([chunkFlows]Flow[T])
		populate(unsafe.Slice((*byte)(unsafe.Pointer(c)), unsafe.Sizeof(*c)))
		t.chunks = append(t.chunks, c)
		for i := uint32(chunkFlows); i > 1; i-- {
			t.free = append(t.free, base+i)
		}
		slot = base + 1
	}
	// A free slot is all zeros (a new chunk, or evict cleared it): set the fields, rather
	// than zeroing the whole flow, two Streams included, a second time.
	f := t.flow(slot)
	t.nextID++
	f.ID, f.Scope, f.Proto, f.First, f.Last, f.slot, f.hash = t.nextID, scope, p.Proto, now, now, slot, h

	// Who initiated? SYN sender; SYN-ACK receiver; mid-stream TCP: the
	// higher port is the client's ephemeral one; otherwise the first sender.
	origIsSrc := true
	if p.Proto == ProtoTCP {
		switch syn, ack := p.TCPFlags&TCPSyn != 0, p.TCPFlags&TCPAck != 0; {
		case syn && !ack:
		case syn && ack:
			origIsSrc = false
		default:
			f.Midstream = true
			f.State = StateEstablished
			if p.SrcPort != p.DstPort {
				origIsSrc = p.SrcPort > p.DstPort
			}
		}
	}
	src, dst := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
	if origIsSrc {
		f.Orig, f.Resp = src, dst
	} else {
		f.Orig, f.Resp = dst, src
	}
	f.class = t.classOf(f)
	t.pushFront(f)
	t.insert(h, slot)
	t.n++
	t.stats.Created++
	return f
}

func (t *Table[T]) classOf(f *Flow[T]) uint8 {
	c := timeoutClass(f)
	if f.Flagged {
		c += numClasses
	}
	return c
}

func timeoutClass[T any](f *Flow[T]) uint8 {
	switch f.Proto {
	case ProtoTCP:
		switch f.State {
		case StateNew:
			return classTCPNew
		case StateEstablished:
			return classTCPEstablished
		case StateClosing:
			return classTCPClosing
		}
		return classTCPClosed
	case ProtoUDP:
		if f.State == StateClosed {
			return classTCPClosed
		}
		return classUDP
	}
	return classOther
}

// Close marks a flow the caller knows to be over (a UDP DNS exchange once answered) so it
// gets the short closed timeout (TCPClosedTimeout) instead of its protocol's idle timeout.
// Answered DNS lookups were most of the live flows in a mixed capture: expiring them early
// keeps the table, and the memory a lookup touches, small.
func (t *Table[T]) Close(f *Flow[T]) {
	f.State = StateClosed
	t.touch(f)
}

func (t *Table[T]) lookup(h uint32, p *Packet, scope uint64) *Flow[T] {
	src, dst := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.index[i]
		if e == 0 {
			return nil
		}
		if uint32(e>>32) != h {
			continue
		}
		f := t.flow(uint32(e))
		if f.Scope == scope && f.Proto == p.Proto &&
			(f.Orig == src && f.Resp == dst || f.Orig == dst && f.Resp == src) {
			return f
		}
	}
}

// initialIndex is the starting index size (entries).
const initialIndex = 4096

func (t *Table[T]) insert(h, slot uint32) {
	if 2*(t.n+1) > len(t.index) && len(t.index) < t.maxIndex {
		t.grow()
	}
	i := h & t.mask
	for t.index[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.index[i] = uint64(h)<<32 | uint64(slot)
}

// grow doubles the index; entries keep their hash, so nothing is rehashed.
func (t *Table[T]) grow() {
	old := t.index
	t.index = make([]uint64, 2*len(old))
	t.mask = uint32(len(t.index) - 1)
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := uint32(e>>32) & t.mask
		for t.index[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.index[i] = e
	}
}

// remove deletes slot's entry with backward-shift deletion, so the index
// never accumulates tombstones.
func (t *Table[T]) remove(h, slot uint32) {
	i := h & t.mask
	for uint32(t.index[i]) != slot {
		i = (i + 1) & t.mask
	}
	for {
		t.index[i] = 0
		j := i
		for {
			j = (j + 1) & t.mask
			e := t.index[j]
			if e == 0 {
				return
			}
			home := uint32(e>>32) & t.mask
			// Move e into the hole unless its home lies cyclically in (i, j].
			if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				t.index[i] = e
				i = j
				break
			}
		}
	}
}

// touch keeps f's list position right after a packet. The lists are lazy LRUs: a packet only
// moves its flow when the flow changes class; otherwise the flow stays where it is and
// Expire and evictForCap move a re-seen flow to the front when they meet it at the tail.
// Moving on every packet wrote into two neighbouring flows per packet, cache misses that
// cost more than the lookup itself.
func (t *Table[T]) touch(f *Flow[T]) {
	if c := t.classOf(f); c != f.class {
		t.unlink(f)
		f.class = c
		t.pushFront(f)
	}
}

// refresh moves a flow seen since it was listed to the front of its list. It reports whether
// it moved the flow.
func (t *Table[T]) refresh(f *Flow[T]) bool {
	if f.Last <= f.listed {
		return false
	}
	t.unlink(f)
	t.pushFront(f)
	return true
}

func (t *Table[T]) pushFront(f *Flow[T]) {
	f.listed = f.Last
	l := &t.lists[f.class]
	f.prev, f.next = 0, l.head
	if l.head != 0 {
		t.flow(l.head).prev = f.slot
	} else {
		l.tail = f.slot
	}
	l.head = f.slot
}

func (t *Table[T]) unlink(f *Flow[T]) {
	l := &t.lists[f.class]
	if f.prev != 0 {
		t.flow(f.prev).next = f.next
	} else {
		l.head = f.next
	}
	if f.next != 0 {
		t.flow(f.next).prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = 0, 0
}

// evictForCap makes room for one flow: it evicts the least recently seen
// unflagged flow, or the least recently seen flagged one if all are
// flagged. A flow flagged since its last packet is found here and moved to
// the flagged lists; each flow moves at most once, so this is O(1)
// amortised.
func (t *Table[T]) evictForCap() {
	for {
		victim := t.oldestTail(0, numClasses)
		if victim == nil {
			victim = t.oldestTail(numClasses, 2*numClasses)
		}
		if victim == nil {
			return
		}
		if victim.Flagged && victim.class < numClasses {
			t.touch(victim)
			continue
		}
		t.evict(victim, EvictCap)
		return
	}
}

func (t *Table[T]) oldestTail(from, to int) *Flow[T] {
	var victim *Flow[T]
	for c := from; c < to; c++ {
		for t.lists[c].tail != 0 {
			f := t.flow(t.lists[c].tail)
			// Each flow moves at most once per packet it received, so this is O(1) amortised.
			if t.refresh(f) {
				continue
			}
			if victim == nil || f.Last < victim.Last {
				victim = f
			}
			break
		}
	}
	return victim
}

func (t *Table[T]) evict(f *Flow[T], reason EvictReason) {
	if t.onEvict != nil {
		t.onEvict(f, reason)
	}
	switch reason {
	case EvictTimeout:
		t.stats.Evicted.Timeout++
	case EvictCap:
		t.stats.Evicted.Cap++
	case EvictFlush:
		t.stats.Evicted.Flush++
	case EvictReuse:
		t.stats.Evicted.Reuse++
	}
	f.Stream[0].release(t.r)
	f.Stream[1].release(t.r)
	t.remove(f.hash, f.slot)
	t.unlink(f)
	slot := f.slot
	*f = Flow[T]{}
	t.free = append(t.free, slot)
	t.n--
}

// Expire evicts every flow idle for at least its state's timeout at packet
// time now (Unix nanoseconds), calling onEvict(f, EvictTimeout). Packet also
// calls it about once per second of packet time.
func (t *Table[T]) Expire(now int64) {
	t.lastExpire = now
	for c := range t.lists {
		to := t.timeouts[c%numClasses]
		for t.lists[c].tail != 0 {
			f := t.flow(t.lists[c].tail)
			if now-f.Last < to {
				// Seen recently. If it was also listed recently, so was every flow ahead of
				// it: stop. Otherwise it was re-seen after listing: move it up and go on.
				if t.refresh(f) {
					continue
				}
				break
			}
			t.evict(f, EvictTimeout)
		}
	}
}

// Flush evicts every flow with EvictFlush, e.g. at the end of a replay.
func (t *Table[T]) Flush() {
	for c := range t.lists {
		for t.lists[c].tail != 0 {
			t.evict(t.flow(t.lists[c].tail), EvictFlush)
		}
	}
}
