//go:build !amd64 && !arm64

package flow

import "unsafe"

// prefetch is a no-op where no assembly version exists.
func prefetch(p unsafe.Pointer) {}
