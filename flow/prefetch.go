//go:build amd64 || arm64

package flow

import "unsafe"

// prefetch asks the CPU to bring p's cache line in without waiting for it: unlike a load, the
// instruction retires at once, so a batch's misses all overlap (Go has no prefetch builtin;
// the runtime's is internal). It never faults, whatever p points at.
//
//go:noescape
func prefetch(p unsafe.Pointer)
