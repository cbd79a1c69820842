package flow

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// populate asks the kernel to fault in the whole pages of b now, in one call
// (MADV_POPULATE_WRITE, Linux 5.14), rather than one page fault at a time as
// new flows first touch them: a new chunk of flows is ~90 pages, and a fault
// per page was most of the cost of creating a flow in a new chunk. It changes
// no byte; on an older kernel it is refused and the faults come as before.
func populate(b []byte) {
	page := uintptr(os.Getpagesize())
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	start := (p + page - 1) &^ (page - 1)
	end := (p + uintptr(len(b))) &^ (page - 1)
	if end <= start {
		return
	}
	_ = unix.Madvise(b[start-p:end-p], unix.MADV_POPULATE_WRITE)
}
