package behaviour

import "time"

// Directions, as the flow table numbers them: the side that opened the connection is 0.
const (
	Up   = 0 // client → server
	Down = 1 // server → client
)

// TLS record content types.
const (
	recHandshake = 22
	recAppData   = 23
)

// Checkpoint is when a flow is scored: this long after its first application-data record.
// Pool protocols show their shape within it (login, job, the first submits and job pushes),
// and the issue asks for an alert within 60 s of the session's start.
const Checkpoint = 40 * time.Second

// Idle is the pause after which a record is the start of a new exchange rather than a
// continuation: a server record after Idle is a push, a client record after Idle a request.
const Idle = time.Second

// answerWithin bounds the time from a client request to the server record that answers it.
const answerWithin = time.Second

// dir is one direction's record walk over TCP segments: where the next record header starts.
type dir struct {
	next  uint32  // sequence number of the next byte expected
	left  uint32  // bytes of the current record still to come; 0: a header starts at next
	hdrN  uint8   // bytes of a header split across segments, kept in hdr
	state uint8   // dirUnsynced, dirSynced, dirLost
	hdr   [4]byte // the split header's first bytes (type, version, length hi)
}

const (
	dirUnsynced uint8 = iota // the first payload of this direction starts at a record
	dirSynced
	dirLost // a hole or a non-TLS header: this direction is not read any more
)

// Flow is the bounded per-flow state of the behaviour detector (about 90 bytes): the record
// walk of both directions and running sums, no record list. Times are packet times in
// nanoseconds.
type Flow struct {
	d [2]dir

	first, last, lastReq int64 // first app record, last record (either way), last client request
	lastDir              uint8
	done                 bool
	Lost                 bool // a direction lost its record walk (a hole, a non-TLS record)

	n      [2]uint16 // app-data records per direction
	bytes  [2]uint32 // their lengths summed
	pushes uint16    // server records that came after Idle (unsolicited: job pushes, publications)
	pushB  uint32
	pushMx uint16
	pushMn uint16
	reqs   uint16 // client records that came after Idle (submits, polls, keepalives)
	reqB   uint32
	answ   uint16 // server records within answerWithin of a request (its answer)
	answB  uint32
}

// Reset makes f ready for a new flow.
func (f *Flow) Reset() { *f = Flow{} }

// Sync starts direction d's walk at the stream prefix the engine already holds: data are the
// bytes from the direction's first payload byte, base their first sequence number. With no
// data yet the walk starts at the direction's first payload segment.
func (f *Flow) Sync(d int, base uint32, data []byte) {
	s := &f.d[d]
	if len(data) == 0 {
		return
	}
	s.state, s.next = dirSynced, base
	f.walk(d, base, data, 0)
}

// Feed reads one TCP segment of direction d (seq: its first byte's sequence number) at ts.
// Retransmitted bytes are skipped; a hole loses the direction (the record boundary is no
// longer known). It does not allocate.
func (f *Flow) Feed(d int, seq uint32, payload []byte, ts time.Time) {
	if f.done || len(payload) == 0 {
		return
	}
	s := &f.d[d]
	switch s.state {
	case dirLost:
		return
	case dirUnsynced:
		s.state, s.next = dirSynced, seq
	}
	off := int32(s.next - seq)
	if off < 0 {
		s.state, f.Lost = dirLost, true // a hole: bytes before seq were not seen
		return
	}
	if int(off) >= len(payload) {
		return // a retransmission of bytes already read
	}
	f.walk(d, seq+uint32(off), payload[off:], ts.UnixNano())
}

// walk advances direction d over b (starting at sequence seq), counting each record whose
// header it reads; now is 0 while syncing over bytes of the past (no timing then).
func (f *Flow) walk(d int, seq uint32, b []byte, now int64) {
	s := &f.d[d]
	s.next = seq + uint32(len(b))
	for len(b) > 0 {
		if s.left > 0 {
			k := min(uint32(len(b)), s.left)
			s.left -= k
			b = b[k:]
			continue
		}
		// A header, maybe split over segments.
		need := 5 - int(s.hdrN)
		if len(b) < need {
			copy(s.hdr[s.hdrN:], b)
			s.hdrN += uint8(len(b))
			b = b[len(b):]
			break
		}
		var h [5]byte
		copy(h[:], s.hdr[:s.hdrN])
		copy(h[s.hdrN:], b[:need])
		b = b[need:]
		s.hdrN = 0
		typ, n := h[0], uint32(h[3])<<8|uint32(h[4])
		if typ < 20 || typ > 24 || h[1] != 3 || n > 1<<14+2048 {
			s.state, f.Lost = dirLost, true
			return
		}
		s.left = n
		if typ == recAppData && now != 0 {
			f.record(d, n, now)
		}
	}
}

// record counts one application-data record of length n in direction d at now.
func (f *Flow) record(d int, n uint32, now int64) {
	if f.first == 0 {
		// The session starts at the client's first app-data record (TLS 1.3: its Finished);
		// what the server sent before is handshake.
		if d == Down {
			return
		}
		f.first, f.last, f.lastDir = now, now, Up
		return
	}
	idle := f.last == 0 || now-f.last >= int64(Idle)
	if f.n[d] < 0xffff {
		f.n[d]++
	}
	f.bytes[d] += n
	n16 := uint16(min(n, 0xffff))
	switch {
	case d == Down && idle:
		f.pushes++
		f.pushB += n
		if n16 > f.pushMx {
			f.pushMx = n16
		}
		if f.pushMn == 0 || n16 < f.pushMn {
			f.pushMn = n16
		}
	case d == Up && idle:
		f.reqs++
		f.reqB += n
		f.lastReq = now
	case d == Down && f.lastDir == Up && f.lastReq != 0 && now-f.lastReq < int64(answerWithin):
		f.answ++
		f.answB += n
	}
	f.last, f.lastDir = now, uint8(d)
}
