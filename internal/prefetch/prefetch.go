//go:build amd64 || arm64

// Package prefetch asks the CPU to bring memory into its caches ahead of use. Unlike a load,
// a prefetch instruction retires at once and never faults, so a batch of them keeps many
// cache misses in flight together (the hot path of replay looks ahead this way). Go has no
// prefetch builtin (the runtime's is internal), hence the assembly; elsewhere they do nothing.
package prefetch

import "unsafe"

// Line prefetches the cache line holding p.
//
//go:noescape
func Line(p unsafe.Pointer)

// Bytes prefetches every cache line b touches, in one call.
//
//go:noescape
func Bytes(b []byte)
