package proxy

import (
	"encoding/binary"
	"errors"
)

// Errors returned by WSDecoder for frames that violate RFC 6455. The
// decoder stays in the error state: the stream is no longer WebSocket.
var (
	ErrWSOpcode   = errors.New("websocket: reserved opcode")
	ErrWSControl  = errors.New("websocket: fragmented or oversized control frame")
	ErrWSLength   = errors.New("websocket: payload length with top bit set")
	ErrWSSequence = errors.New("websocket: continuation without a message, or new message inside a fragmented one")
)

// WSDecoder turns a WebSocket byte stream (after the upgrade) into message
// payloads, each followed by '\n'. Client frames are unmasked; control
// frames are skipped; messages compressed with permessage-deflate (RSV1)
// cannot be read and are skipped and counted in Compressed.
// The zero value is ready; keep one per direction.
type WSDecoder struct {
	// Compressed counts messages skipped because they were compressed.
	Compressed int

	inFrame   bool
	remaining uint64 // payload bytes left in the current frame
	mask      [4]byte
	masked    bool
	maskPos   uint8
	skip      bool // current frame's payload is not output
	fin       bool
	inMessage bool // inside a fragmented data message
	msgSkip   bool // the current data message is being skipped
	pendingNL bool
	err       error
}

// Decode appends the payload bytes decodable from src to dst, writing at
// most up to cap(dst), and returns how many bytes of src it consumed. An
// incomplete frame header is left unconsumed for the next call (pass the
// remaining bytes again, followed by new ones); payloads are streamed.
func (d *WSDecoder) Decode(dst []byte, src []byte) (out []byte, consumed int, err error) {
	out = dst
	if d.err != nil {
		return out, 0, d.err
	}
	for {
		if d.pendingNL {
			if len(out) == cap(out) {
				return out, consumed, nil
			}
			out = append(out, '\n')
			d.pendingNL = false
		}
		if !d.inFrame {
			n, err := d.header(src[consumed:])
			if err != nil {
				d.err = err
				return out, consumed, err
			}
			if n == 0 {
				return out, consumed, nil
			}
			consumed += n
		}
		avail := uint64(len(src) - consumed)
		n := min(d.remaining, avail)
		if !d.skip {
			n = min(n, uint64(cap(out)-len(out)))
			if n > 0 {
				start := len(out)
				out = out[:start+int(n)]
				p := out[start:]
				copy(p, src[consumed:consumed+int(n)])
				if d.masked {
					for i := range p {
						p[i] ^= d.mask[d.maskPos&3]
						d.maskPos++
					}
				}
			}
		}
		consumed += int(n)
		d.remaining -= n
		if d.remaining > 0 {
			return out, consumed, nil // need more input or more room
		}
		d.inFrame = false
		if d.fin { // only data frames set fin
			d.inMessage = false
			if d.msgSkip {
				d.msgSkip = false
			} else {
				d.pendingNL = true
			}
		}
	}
}

// header parses one frame header; 0 means incomplete.
func (d *WSDecoder) header(h []byte) (int, error) {
	if len(h) < 2 {
		return 0, nil
	}
	b0, b1 := h[0], h[1]
	fin, rsv1, op := b0&0x80 != 0, b0&0x40 != 0, b0&0x0f
	masked := b1&0x80 != 0
	l := uint64(b1 & 0x7f)
	n := 2
	switch l {
	case 126:
		if len(h) < 4 {
			return 0, nil
		}
		l, n = uint64(binary.BigEndian.Uint16(h[2:])), 4
	case 127:
		if len(h) < 10 {
			return 0, nil
		}
		l, n = binary.BigEndian.Uint64(h[2:]), 10
		if l>>63 != 0 {
			return 0, ErrWSLength
		}
	}
	if masked {
		if len(h) < n+4 {
			return 0, nil
		}
		copy(d.mask[:], h[n:n+4])
		n += 4
	}
	switch {
	case op >= 8:
		if op > 10 {
			return 0, ErrWSOpcode
		}
		if !fin || l > 125 {
			return 0, ErrWSControl
		}
		d.skip = true
		// A control frame inside a fragmented message must not end it.
		d.fin = false
	case op == 0:
		if !d.inMessage {
			return 0, ErrWSSequence
		}
		d.skip, d.fin = d.msgSkip, fin
	case op == 1 || op == 2:
		if d.inMessage {
			return 0, ErrWSSequence
		}
		d.inMessage = true
		d.msgSkip = rsv1
		if rsv1 {
			d.Compressed++
		}
		d.skip, d.fin = d.msgSkip, fin
	default:
		return 0, ErrWSOpcode
	}
	d.masked, d.maskPos = masked, 0
	d.remaining = l
	d.inFrame = true
	return n, nil
}
