package engine

import (
	"github.com/minerguard/minerguard/flow"
)

// wsData returns the unwrapped WebSocket messages of direction dir (each followed by '\n'),
// decoding whatever arrived since the last call. Memory is bounded by maxWSBuffer.
func (e *Engine) wsData(in *inspect, dir flow.Dir, data []byte) []byte {
	w := &in.ws[dir]
	if w.out == nil {
		w.out = make([]byte, 0, maxWSBuffer)
	}
	if w.consumed < len(data) && len(w.out) < cap(w.out) {
		out, n, err := w.dec.Decode(w.out, data[w.consumed:])
		w.out = out
		w.consumed += n
		if err != nil {
			e.stats.DecodeErrors[ProtoWebSocket]++
			in.wsFailed = true
		}
		if len(w.out) == cap(w.out) {
			// The unwrapped messages filled their buffer: the rest of the tunnel is not read.
			e.stats.WSBufferFull++
		}
	}
	return w.out
}
