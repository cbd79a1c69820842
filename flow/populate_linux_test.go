package flow

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// populate makes the whole pages of a range resident (what saves the page faults) and
// changes none of its bytes; a range that holds no whole page is left alone.
func TestPopulate(t *testing.T) {
	page := os.Getpagesize()
	m, err := unix.Mmap(-1, 0, 16*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer unix.Munmap(m)
	m[5*page+7] = 42
	resident := func() int {
		vec := make([]byte, 16)
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal(errno)
		}
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	if n := resident(); n != 1 {
		t.Fatalf("%d pages resident before, want 1", n)
	}
	populate(m[100 : page+50]) // no whole page
	if n := resident(); n != 1 {
		t.Fatalf("%d pages resident after a range without a whole page, want 1", n)
	}
	populate(m[1 : 12*page+1]) // pages 1..11 whole: page 0 and 12 are cut
	if n := resident(); n < 11 {
		if err := unix.Madvise(m[page:2*page], unix.MADV_POPULATE_WRITE); err != nil {
			t.Skipf("kernel without MADV_POPULATE_WRITE: %v", err)
		}
		t.Fatalf("%d pages resident after populate, want at least 11", n)
	}
	for i, b := range m {
		if b != 0 && i != 5*page+7 || i == 5*page+7 && b != 42 {
			t.Fatalf("byte %d is %d after populate", i, b)
		}
	}
}
