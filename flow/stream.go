package flow

import "bytes"

// Stream is one direction's reassembled TCP payload: the contiguous,
// in-order prefix of the bytes this side sent, from its first payload byte
// (or, when the handshake was seen, from ISN+1) up to Config.StreamDepth
// bytes. Fields are read-only for callers except Resync, which a parser
// clears once it has resynchronised.
type Stream struct {
	buf []byte // len = contiguous prefix; bytes in buf[len:cap] may hold queued out-of-order data

	// Base is the sequence number of Data()[0]. After a skipped hole the
	// bytes past GapOffset no longer sit at Base+offset.
	Base uint32
	next uint32 // sequence number of the byte after the prefix
	ack  uint32 // highest cumulative ACK the peer sent for this direction

	// GapOffset is the offset in Data() where the bytes after the most
	// recently skipped hole begin.
	GapOffset int32

	// Truncated: the prefix reached StreamDepth (or the reassembly budget
	// ran out); later bytes are not stored.
	Truncated bool
	// Gap: at least one hole was skipped, so Data() is not exactly what
	// was sent.
	Gap bool
	// Resync: a hole was skipped since the caller last cleared Resync; a
	// line-oriented parser should drop its partial line and restart at
	// the first newline at or after GapOffset.
	Resync bool

	init   bool // Base/next known
	hasAck bool
	framed bool // message-framed (Table.Framed): the caller consumes, the window is MessageDepth
	ooo    *oooQueue

	// Consumed is the number of bytes the caller dropped from the front with Consume.
	Consumed uint64
}

// Data returns the contiguous in-order payload prefix. It aliases the
// stream's buffer: valid until the next call into the Table.
func (s *Stream) Data() []byte { return s.buf }

// Queued returns the number of out-of-order bytes waiting for a hole to fill.
func (s *Stream) Queued() int {
	if s.ooo == nil {
		return 0
	}
	return s.ooo.bytes
}

// maxOOORanges bounds the number of disjoint out-of-order ranges per
// direction, so a peer sending every other byte cannot grow metadata; more
// ranges than this forces the first hole to be skipped.
const maxOOORanges = 16

type span struct{ lo, hi int } // buffer indices [lo, hi)

// oooQueue records which bytes beyond the prefix are already in the
// stream's buffer (kept sorted and disjoint, never touching the prefix).
type oooQueue struct {
	r     [maxOOORanges + 1]span // one spare: a new span is inserted, then the limit enforced
	n     int
	bytes int
}

// ReassemblyStats counts reassembly events across all flows of a Table.
type ReassemblyStats struct {
	Gaps            uint64 // holes skipped, or still open when the stream was released
	Overlaps        uint64 // segments overlapping bytes already held (retransmissions included)
	OverlapMismatch uint64 // overlapping bytes that differed from the first copy (kept)
	OOOQueued       uint64 // out-of-order segments queued
	OOODropped      uint64 // out-of-order segments beyond the depth window
	DepthReached    uint64 // streams that reached StreamDepth
	BudgetExhausted uint64 // buffer requests refused by MaxReassemblyTotal
	BytesInUse      int64  // buffer bytes held by streams
	BytesAllocated  int64  // buffer bytes held by streams plus free lists (≤ MaxReassemblyTotal)
}

// minBufClass is the smallest stream buffer: most streams that matter (a
// Stratum login, a ClientHello) need a few hundred bytes, and keeping small
// streams small is what keeps a full table within its memory bound (a flood
// flow's first segment, which the engine keeps to look at again, fits in 64).
const minBufClass = 64

// reassembler holds what all streams of a Table share: the buffer free
// lists, the global budget, and the counters.
type reassembler struct {
	depth   int
	msg     int // window of framed streams (≥ depth)
	maxOOO  int
	classes []int      // buffer sizes, ascending; the last is depth
	free    [][][]byte // per class
	freeOOO []*oooQueue
	budget  int64
	stats   ReassemblyStats
}

func newReassembler(depth, msg, maxOOO int, budget int64) *reassembler {
	msg = max(msg, depth)
	r := &reassembler{depth: depth, msg: msg, maxOOO: maxOOO, budget: budget}
	for c := minBufClass; c < depth; c *= 2 {
		r.classes = append(r.classes, c)
	}
	r.classes = append(r.classes, depth)
	if msg > depth {
		r.classes = append(r.classes, msg)
	}
	r.free = make([][][]byte, len(r.classes))
	return r
}

func (r *reassembler) classFor(n int) int {
	for i, c := range r.classes {
		if c >= n {
			return i
		}
	}
	return len(r.classes) - 1
}

// depthOf is the most bytes s holds: StreamDepth, or for a framed stream the bytes not
// yet consumed, MessageDepth.
func (r *reassembler) depthOf(s *Stream) int {
	if s.framed {
		return r.msg
	}
	return r.depth
}

// get returns an empty buffer with capacity of at least n (n ≤ msg), or
// false when the budget does not allow one.
func (r *reassembler) get(n int) ([]byte, bool) {
	ci := r.classFor(n)
	if fl := r.free[ci]; len(fl) > 0 {
		b := fl[len(fl)-1]
		fl[len(fl)-1] = nil
		r.free[ci] = fl[:len(fl)-1]
		r.stats.BytesInUse += int64(cap(b))
		return b[:0], true
	}
	size := int64(r.classes[ci])
	// Drop pooled buffers of other sizes before refusing: the budget
	// bounds what is allocated, not just what is in use.
	for i := len(r.free) - 1; i >= 0 && r.stats.BytesAllocated+size > r.budget; i-- {
		for len(r.free[i]) > 0 && r.stats.BytesAllocated+size > r.budget {
			fl := r.free[i]
			r.stats.BytesAllocated -= int64(cap(fl[len(fl)-1]))
			fl[len(fl)-1] = nil
			r.free[i] = fl[:len(fl)-1]
		}
	}
	if r.stats.BytesAllocated+size > r.budget {
		r.stats.BudgetExhausted++
		return nil, false
	}
	r.stats.BytesAllocated += size
	r.stats.BytesInUse += size
	return make([]byte, 0, size), true
}

func (r *reassembler) put(b []byte) {
	if cap(b) == 0 {
		return
	}
	r.stats.BytesInUse -= int64(cap(b))
	ci := r.classFor(cap(b))
	r.free[ci] = append(r.free[ci], b[:0])
}

// release returns the stream's buffers; pending holes count as gaps since
// the data after them was never delivered.
func (s *Stream) release(r *reassembler) {
	if s.ooo != nil {
		r.stats.Gaps += uint64(s.ooo.n)
		*s.ooo = oooQueue{}
		r.freeOOO = append(r.freeOOO, s.ooo)
		s.ooo = nil
	}
	r.put(s.buf)
	s.buf = nil
}

// start sets the sequence number of the first payload byte, if unknown.
func (s *Stream) start(seq uint32) {
	if !s.init {
		s.init = true
		s.Base, s.next = seq, seq
	}
}

// seqAt returns the sequence number of buffer index i (i ≥ len(buf)).
func (s *Stream) seqAt(i int) uint32 { return s.next + uint32(i-len(s.buf)) }

// add feeds one segment's payload. It reports whether the prefix grew.
func (s *Stream) add(r *reassembler, seq uint32, data []byte) bool {
	if s.Truncated || len(data) == 0 {
		return false
	}
	s.start(seq)
	l := len(s.buf)
	// Sequence distance as a signed 32-bit value handles wraparound: the
	// window we track is far smaller than 2^31.
	start := l + int(int32(seq-s.next))
	// Bytes mapping before the first index are before the stream; after a
	// skipped hole, those before GapOffset are from before the hole's end,
	// where buffer index and sequence number no longer line up: both are
	// already accounted for, so they are dropped without comparison.
	first := 0
	if s.Gap {
		first = int(s.GapOffset)
	}
	if start < first {
		if first-start >= len(data) {
			return false
		}
		data = data[first-start:]
		start = first
	}
	depth := r.depthOf(s)
	if start >= depth {
		r.stats.OOODropped++
		return false
	}
	if end := start + len(data); end > depth {
		data = data[:depth-start]
	}
	overlapped, mismatch := false, false
	if start < l { // overlaps the prefix
		n := min(l-start, len(data))
		overlapped = true
		mismatch = !bytes.Equal(s.buf[start:start+n], data[:n])
		data, start = data[n:], start+n
	}
	if len(data) > 0 {
		end := start + len(data)
		if cap(s.buf) < end && !s.grow(r, end) {
			if start == l {
				// In-order data we cannot store: stop rather than
				// leave a silent hole.
				s.Truncated = true
			}
		} else {
			o, m := s.fill(start, data)
			overlapped, mismatch = overlapped || o, mismatch || m
			if start > l {
				r.stats.OOOQueued++
				s.queue(r, start, end)
				s.skipAcked(r)
				for s.ooo != nil && (s.ooo.n > maxOOORanges || s.ooo.bytes > r.maxOOO) {
					s.skipHole(r)
				}
			} else {
				s.extend(end)
			}
		}
	}
	if overlapped {
		r.stats.Overlaps++
		if mismatch {
			r.stats.OverlapMismatch++
		}
	}
	s.checkDepth(r)
	return len(s.buf) > l
}

// onAck records the peer's cumulative ACK for this direction and skips
// holes it proves lost. It reports whether the prefix grew.
func (s *Stream) onAck(r *reassembler, ack uint32) bool {
	if !s.init || s.Truncated {
		return false
	}
	if !s.hasAck || int32(ack-s.ack) > 0 {
		s.ack, s.hasAck = ack, true
	}
	if s.ooo == nil || s.ooo.n == 0 {
		return false
	}
	l := len(s.buf)
	s.skipAcked(r)
	s.checkDepth(r)
	return len(s.buf) > l
}

// skipAcked skips every hole the peer has acknowledged past: the receiver
// had those bytes, so the capture lost them and no retransmission will come.
func (s *Stream) skipAcked(r *reassembler) {
	for s.hasAck && s.ooo != nil && s.ooo.n > 0 && int32(s.ack-s.seqAt(s.ooo.r[0].lo)) >= 0 {
		s.skipHole(r)
	}
}

// skipHole drops the hole before the first queued range: the bytes after
// it move down to the end of the prefix and the prefix absorbs them.
func (s *Stream) skipHole(r *reassembler) {
	q := s.ooo
	l := len(s.buf)
	hole := q.r[0].lo - l
	full := s.buf[:cap(s.buf)]
	copy(full[l:], full[q.r[0].lo:q.r[q.n-1].hi])
	for i := 0; i < q.n; i++ {
		q.r[i].lo -= hole
		q.r[i].hi -= hole
	}
	s.next += uint32(hole)
	s.GapOffset = int32(l)
	s.Gap, s.Resync = true, true
	r.stats.Gaps++
	s.extend(l)
}

func (s *Stream) checkDepth(r *reassembler) {
	if !s.Truncated && len(s.buf) >= r.depthOf(s) {
		s.Truncated = true
		r.stats.DepthReached++
	}
}

// Consume drops the first n bytes of the prefix (n ≤ len(Data())), which the caller has
// parsed and no longer needs, moving the rest (and queued out-of-order bytes) to the front.
// A framed stream (Table.Framed) holds at most MessageDepth unconsumed bytes, so by consuming
// each message as it completes, the caller follows a long connection with bounded memory.
// Offsets into Data() shift down by n; GapOffset too (floored at 0).
func (s *Stream) Consume(n int) {
	n = min(n, len(s.buf))
	if n <= 0 {
		return
	}
	used := len(s.buf)
	if s.ooo != nil && s.ooo.n > 0 {
		used = s.ooo.r[s.ooo.n-1].hi
		for i := 0; i < s.ooo.n; i++ {
			s.ooo.r[i].lo -= n
			s.ooo.r[i].hi -= n
		}
	}
	full := s.buf[:cap(s.buf)]
	copy(full, full[n:used])
	s.buf = s.buf[:len(s.buf)-n]
	s.Base += uint32(n)
	s.GapOffset = max(0, s.GapOffset-int32(n))
	s.Consumed += uint64(n)
}

// grow moves the stream to a buffer of at least n bytes.
func (s *Stream) grow(r *reassembler, n int) bool {
	nb, ok := r.get(n)
	if !ok {
		return false
	}
	used := len(s.buf)
	if s.ooo != nil && s.ooo.n > 0 {
		used = s.ooo.r[s.ooo.n-1].hi
	}
	copy(nb[:used], s.buf[:used])
	r.put(s.buf)
	s.buf = nb[:len(s.buf)]
	return true
}

// fill writes data at buffer index start (≥ the prefix length), keeping
// bytes already queued (first copy wins). It reports whether data
// overlapped queued bytes and whether any of them differed.
func (s *Stream) fill(start int, data []byte) (overlapped, mismatch bool) {
	full := s.buf[:cap(s.buf)]
	pos, end := start, start+len(data)
	if s.ooo != nil {
		for i := 0; i < s.ooo.n && pos < end; i++ {
			q := s.ooo.r[i]
			if q.hi <= pos {
				continue
			}
			if q.lo >= end {
				break
			}
			if q.lo > pos {
				copy(full[pos:q.lo], data[pos-start:])
				pos = q.lo
			}
			oe := min(q.hi, end)
			overlapped = true
			if !bytes.Equal(full[pos:oe], data[pos-start:oe-start]) {
				mismatch = true
			}
			pos = oe
		}
	}
	if pos < end {
		copy(full[pos:end], data[pos-start:])
	}
	return overlapped, mismatch
}

// queue records [lo, hi) (beyond the prefix) as held, merging it with the
// ranges it overlaps or touches.
func (s *Stream) queue(r *reassembler, lo, hi int) {
	if s.ooo == nil {
		if n := len(r.freeOOO); n > 0 {
			s.ooo = r.freeOOO[n-1]
			r.freeOOO = r.freeOOO[:n-1]
		} else {
			s.ooo = new(oooQueue)
		}
	}
	q := s.ooo
	i := 0
	for i < q.n && q.r[i].hi < lo {
		i++
	}
	j := i
	for j < q.n && q.r[j].lo <= hi {
		lo, hi = min(lo, q.r[j].lo), max(hi, q.r[j].hi)
		j++
	}
	switch {
	case j == i: // no neighbour: insert
		copy(q.r[i+1:q.n+1], q.r[i:q.n])
		q.n++
	case j > i+1: // several merged into one
		copy(q.r[i+1:], q.r[j:q.n])
		q.n -= j - i - 1
	}
	q.r[i] = span{lo, hi}
	q.recount()
}

// extend makes the prefix reach end (≥ its length) and absorbs queued
// ranges that now touch it.
func (s *Stream) extend(end int) {
	l := len(s.buf)
	if q := s.ooo; q != nil && q.n > 0 {
		k := 0
		for k < q.n && q.r[k].lo <= end {
			end = max(end, q.r[k].hi)
			k++
		}
		if k > 0 {
			copy(q.r[:], q.r[k:q.n])
			q.n -= k
			q.recount()
		}
	}
	s.buf = s.buf[:end]
	s.next += uint32(end - l)
}

func (q *oooQueue) recount() {
	q.bytes = 0
	for i := 0; i < q.n; i++ {
		q.bytes += q.r[i].hi - q.r[i].lo
	}
}
