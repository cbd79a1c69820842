package prefetch

import (
	"testing"
	"unsafe"
)

// Prefetching changes nothing: empty, unaligned and odd-sized ranges, and the last byte's
// line.
func TestPrefetchChangesNothing(t *testing.T) {
	b := make([]byte, 4099)
	for i := range b {
		b[i] = byte(i * 7)
	}
	Bytes(nil)
	Bytes(b[:0])
	Bytes(b[1:])
	Bytes(b[3:70])
	Line(unsafe.Pointer(&b[len(b)-1]))
	for i := range b {
		if b[i] != byte(i*7) {
			t.Fatalf("byte %d changed", i)
		}
	}
}
