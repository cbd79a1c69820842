//go:build !amd64 && !arm64

// Package prefetch asks the CPU to bring memory into its caches ahead of use; on this
// architecture there is no assembly version, and its functions do nothing.
package prefetch

import "unsafe"

// Line prefetches the cache line holding p (here: nothing).
func Line(p unsafe.Pointer) {}

// Bytes prefetches every cache line b touches (here: nothing).
func Bytes(b []byte) {}
