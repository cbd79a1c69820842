package flow

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"
)

// DefragConfig bounds IP fragment reassembly. Zero fields take the defaults shown.
type DefragConfig struct {
	// Memcap bounds the bytes of reassembly buffers (in use and pooled) plus a fixed
	// overhead per datagram in progress: 16 MiB, about 250 datagrams of the largest size
	// or thousands of ordinary MTU-split ones. Like Suricata's defrag memcap.
	Memcap int64
	// Timeout is how long (packet time) a datagram may wait for its missing fragments
	// after its first one arrived: 30 s, Linux's ipfrag_time.
	Timeout time.Duration
	// MaxFrags bounds the fragments of one datagram: 64 (a 64 KiB datagram split for a
	// 1,280-byte IPv6 MTU takes 52). More drops the datagram.
	MaxFrags int
}

func (c DefragConfig) withDefaults() DefragConfig {
	if c.Memcap <= 0 {
		c.Memcap = 16 << 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxFrags <= 0 {
		c.MaxFrags = 64
	}
	return c
}

// DefragStats counts fragment reassembly.
type DefragStats struct {
	Fragments       uint64 // fragments taken
	Reassembled     uint64 // datagrams completed and passed on
	Timeout         uint64 // datagrams dropped: incomplete after Timeout
	Memcap          uint64 // datagrams dropped to stay within Memcap (oldest first)
	TooMany         uint64 // datagrams dropped: more than MaxFrags fragments
	Invalid         uint64 // datagrams dropped: inconsistent fragments (past 64 KiB, two ends, unaligned)
	Overlaps        uint64 // fragments overlapping bytes already held (duplicates included)
	OverlapMismatch uint64 // of those, with different bytes: the first copy is kept
	Datagrams       int    // datagrams in progress now
	Bytes           int64  // memory charged against Memcap now
}

// Defrag reassembles IPv4 and IPv6 datagrams from their fragments, keyed by scope, source,
// destination, IP ID (and protocol, for IPv4), so that what a miner sends only in fragments
// goes through the same pipeline as everything else.
//
// Overlaps: the FIRST copy of every byte wins (Suricata's "first" policy; Windows keeps the
// first copy too, and so do we on TCP streams), and differing overlaps are counted. The
// containers we watch run on Linux, which since 4.19 (and RFC 5722 for IPv6) discards a
// datagram whose fragments overlap at all: overlapping data never reaches a Linux socket,
// so any single policy is as good for detection, and the counter is what an operator needs
// to see someone trying. Non-final fragments must be multiples of 8 bytes and a datagram
// must fit 64 KiB, or the datagram is dropped (Invalid).
//
// Memory: buffers come from size-classed free lists charged against Memcap; when a new
// buffer would pass it, the oldest datagrams in progress are dropped first (a datagram
// being sent completes within microseconds, so the stale ones are an attacker's or lost).
// A Defrag is not safe for concurrent use.
type Defrag struct {
	cfg     DefragConfig
	m       map[fragKey]*fragTracker
	head    *fragTracker // oldest first
	tail    *fragTracker
	freeT   []*fragTracker
	free    [numFragClasses][][]byte
	charged int64 // buffers (in use and pooled) + overhead of live trackers
	out     []byte
	stats   DefragStats
}

// fragTrackerCost is what each datagram in progress is charged beyond its buffer: the
// tracker, its span list and its map entry, rounded up.
const fragTrackerCost = 512

// maxFreeTrackers bounds the trackers kept for reuse; after a flood, the rest go to the
// garbage collector.
const maxFreeTrackers = 1024

// Buffer classes: 1 KiB doubling to 64 KiB (the largest IP payload).
const (
	minFragClass   = 1 << 10
	numFragClasses = 7
	maxFragPayload = 65535
)

type fragKey struct {
	scope    uint64
	src, dst netip.Addr
	id       uint32
	proto    uint8 // IPv4 only (RFC 791); IPv6 keys on addresses and ID (RFC 8200)
}

type fragTracker struct {
	key        fragKey
	first      time.Time
	buf        []byte // payload at its offset; len = cap
	spans      []span // bytes held, sorted, disjoint, not touching
	frags      int
	total      int // payload length, -1 until the last fragment came
	hdr        [60]byte
	hdrLen     int // 0 until the first fragment came
	v6         bool
	prev, next *fragTracker
}

// NewDefrag returns an empty reassembler.
func NewDefrag(cfg DefragConfig) *Defrag {
	return &Defrag{cfg: cfg.withDefaults(), m: make(map[fragKey]*fragTracker, 64), out: make([]byte, 0, 60+maxFragPayload)}
}

// Stats returns the counters.
func (d *Defrag) Stats() DefragStats {
	s := d.stats
	s.Datagrams = len(d.m)
	s.Bytes = d.charged
	return s
}

// Add takes one fragment: ip is the whole IP packet (Packet.IP) seen in scope at now.
// When it completes its datagram, Add returns the datagram as one unfragmented IP packet
// (IPv4 with the first fragment's header; IPv6 with its fixed header, the extension
// headers before the fragment header dropped), valid until the next call; else nil.
func (d *Defrag) Add(ip []byte, scope uint64, now time.Time) []byte {
	d.stats.Fragments++
	d.Expire(now)
	var k fragKey
	var off, hl int
	var more bool
	var payload []byte
	var next6 uint8
	k.scope = scope
	switch {
	case len(ip) >= 20 && ip[0]>>4 == 4:
		hl = int(ip[0]&0x0F) * 4
		if hl < 20 || hl > len(ip) {
			return nil
		}
		k.src = netip.AddrFrom4([4]byte(ip[12:16]))
		k.dst = netip.AddrFrom4([4]byte(ip[16:20]))
		k.id = uint32(binary.BigEndian.Uint16(ip[4:6]))
		k.proto = ip[9]
		fo := binary.BigEndian.Uint16(ip[6:8])
		off, more = int(fo&0x1FFF)*8, fo&0x2000 != 0
		payload = ip[hl:]
	case len(ip) >= 40 && ip[0]>>4 == 6:
		k.src = netip.AddrFrom16([16]byte(ip[8:24]))
		k.dst = netip.AddrFrom16([16]byte(ip[24:40]))
		next, rest := ip[6], ip[40:]
		found := false
		for i := 0; i < maxIPv6Ext && !found; i++ {
			switch next {
			case 0, 43, 60, 135:
				if len(rest) < 8 || len(rest) < (int(rest[1])+1)*8 {
					return nil
				}
				next, rest = rest[0], rest[(int(rest[1])+1)*8:]
			case 51:
				if len(rest) < 8 || len(rest) < (int(rest[1])+2)*4 {
					return nil
				}
				next, rest = rest[0], rest[(int(rest[1])+2)*4:]
			case 44:
				if len(rest) < 8 {
					return nil
				}
				found = true
				fo := binary.BigEndian.Uint16(rest[2:4])
				off, more = int(fo>>3)*8, fo&1 != 0
				k.id = binary.BigEndian.Uint32(rest[4:8])
				hl = 40
				payload = rest[8:]
				next6 = rest[0] // the datagram's protocol
			default:
				return nil
			}
		}
		if !found {
			return nil
		}
	default:
		return nil
	}
	return d.add(k, ip, hl, off, more, payload, next6, now)
}

func (d *Defrag) add(k fragKey, ip []byte, hl, off int, more bool, payload []byte, next6 uint8, now time.Time) []byte {
	t := d.m[k]
	if t == nil {
		t = d.newTracker(k, now)
	}
	t.frags++
	end := off + len(payload)
	limit := maxFragPayload - 8 // IPv6: the payload length counts the fragment header
	if k.src.Is4() {
		limit = maxFragPayload - 20
	}
	switch {
	case t.frags > d.cfg.MaxFrags:
		d.stats.TooMany++
		d.drop(t)
		return nil
	case end > limit,
		more && len(payload)%8 != 0,
		t.total >= 0 && (end > t.total || !more && end != t.total),
		!more && len(t.spans) > 0 && t.spans[len(t.spans)-1].hi > end:
		d.stats.Invalid++
		d.drop(t)
		return nil
	}
	if !more {
		t.total = end
	}
	if off == 0 && t.hdrLen == 0 {
		t.v6 = ip[0]>>4 == 6
		t.hdrLen = copy(t.hdr[:], ip[:hl])
		if t.v6 {
			t.hdr[6] = next6
		}
	}
	if len(payload) > 0 {
		if end > len(t.buf) && !d.grow(t, end) {
			return nil // dropped for the memcap
		}
		d.place(t, off, payload)
	}
	if t.hdrLen == 0 || t.total < 0 || len(t.spans) != 1 || t.spans[0].lo != 0 || t.spans[0].hi != t.total {
		return nil
	}
	if !t.v6 && t.hdrLen+t.total > maxFragPayload {
		// IPv4 options made the whole datagram longer than an IP length can say.
		d.stats.Invalid++
		d.drop(t)
		return nil
	}
	out := append(d.out[:0], t.hdr[:t.hdrLen]...)
	out = append(out, t.buf[:t.total]...)
	if t.v6 {
		binary.BigEndian.PutUint16(out[4:6], uint16(t.total))
	} else {
		binary.BigEndian.PutUint16(out[2:4], uint16(t.hdrLen+t.total))
		out[6], out[7] = 0, 0 // no longer a fragment; the checksum is not read downstream
	}
	d.out = out
	d.stats.Reassembled++
	d.drop(t)
	return out
}

// place copies payload to offset off, keeping bytes already held (first copy wins).
func (d *Defrag) place(t *fragTracker, off int, payload []byte) {
	end := off + len(payload)
	overlap, mismatch := false, false
	pos := off
	for _, s := range t.spans {
		if s.hi <= pos {
			continue
		}
		if s.lo >= end {
			break
		}
		if s.lo > pos {
			copy(t.buf[pos:s.lo], payload[pos-off:])
		}
		lo, hi := max(s.lo, pos), min(s.hi, end)
		overlap = true
		if !bytes.Equal(t.buf[lo:hi], payload[lo-off:hi-off]) {
			mismatch = true
		}
		pos = hi
	}
	if pos < end {
		copy(t.buf[pos:end], payload[pos-off:])
	}
	if overlap {
		d.stats.Overlaps++
		if mismatch {
			d.stats.OverlapMismatch++
		}
	}
	// Merge [off, end) into the spans.
	i := 0
	for i < len(t.spans) && t.spans[i].hi < off {
		i++
	}
	j := i
	lo, hi := off, end
	for j < len(t.spans) && t.spans[j].lo <= hi {
		lo, hi = min(lo, t.spans[j].lo), max(hi, t.spans[j].hi)
		j++
	}
	switch {
	case j == i:
		t.spans = append(t.spans, span{})
		copy(t.spans[i+1:], t.spans[i:])
	case j > i+1:
		t.spans = append(t.spans[:i+1], t.spans[j:]...)
	}
	t.spans[i] = span{lo, hi}
}

func (d *Defrag) newTracker(k fragKey, now time.Time) *fragTracker {
	var t *fragTracker
	if n := len(d.freeT); n > 0 {
		t = d.freeT[n-1]
		d.freeT = d.freeT[:n-1]
	} else {
		t = &fragTracker{spans: make([]span, 0, 8)}
	}
	t.key, t.first, t.total, t.frags, t.hdrLen, t.v6 = k, now, -1, 0, 0, false
	d.m[k] = t
	d.charged += fragTrackerCost
	t.prev = d.tail
	if d.tail != nil {
		d.tail.next = t
	} else {
		d.head = t
	}
	d.tail = t
	return t
}

// drop forgets t and recycles its buffer.
func (d *Defrag) drop(t *fragTracker) {
	delete(d.m, t.key)
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		d.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		d.tail = t.prev
	}
	t.prev, t.next = nil, nil
	if t.buf != nil {
		c := fragClass(cap(t.buf))
		d.free[c] = append(d.free[c], t.buf[:0])
		t.buf = nil
	}
	t.spans = t.spans[:0]
	t.key = fragKey{}
	d.charged -= fragTrackerCost
	if len(d.freeT) < maxFreeTrackers {
		d.freeT = append(d.freeT, t)
	}
}

func fragClass(n int) int {
	c := 0
	for minFragClass<<c < n {
		c++
	}
	return c
}

// grow gives t a buffer of at least n bytes, dropping the oldest other datagrams if the
// memcap requires; false (t dropped, counted) when even that is not enough.
func (d *Defrag) grow(t *fragTracker, n int) bool {
	c := fragClass(n)
	var nb []byte
	if fl := d.free[c]; len(fl) > 0 {
		nb = fl[len(fl)-1][:minFragClass<<c]
		d.free[c] = fl[:len(fl)-1]
	} else {
		size := int64(minFragClass << c)
		// Pooled buffers of other classes go first, then the oldest datagrams.
		for i := numFragClasses - 1; i >= 0 && d.charged+size > d.cfg.Memcap; i-- {
			for len(d.free[i]) > 0 && d.charged+size > d.cfg.Memcap {
				d.free[i] = d.free[i][:len(d.free[i])-1]
				d.charged -= int64(minFragClass << i)
			}
		}
		for v := d.head; d.charged+size > d.cfg.Memcap && v != nil; {
			nx := v.next
			if v != t {
				d.stats.Memcap++
				d.release(v)
			}
			v = nx
		}
		if d.charged+size > d.cfg.Memcap {
			d.stats.Memcap++
			d.drop(t)
			return false
		}
		d.charged += size
		nb = make([]byte, size)
	}
	if t.buf != nil {
		copy(nb, t.buf)
		oc := fragClass(cap(t.buf))
		d.free[oc] = append(d.free[oc], t.buf[:0])
	}
	t.buf = nb
	return true
}

// release drops t and gives its buffer back to the memcap rather than the pool.
func (d *Defrag) release(t *fragTracker) {
	if t.buf != nil {
		d.charged -= int64(cap(t.buf))
		t.buf = nil
	}
	d.drop(t)
}

// Expire drops the datagrams whose first fragment is at least Timeout older than now.
func (d *Defrag) Expire(now time.Time) {
	for d.head != nil && now.Sub(d.head.first) >= d.cfg.Timeout {
		d.stats.Timeout++
		d.drop(d.head)
	}
}
