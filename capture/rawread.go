package capture

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// rawFile reads a regular file with read(2) called as a raw system call, outside the Go
// scheduler's system call bookkeeping. A read(2) of 1 MiB from the page cache takes ~100 µs,
// longer than the 20 µs after which the runtime's monitor thread takes the processor of a
// goroutine in a system call away; so during a replay the monitor woke every 20 µs for the
// whole run and handed the processor around, which cost ~5 % of a replay's CPU in context
// switches (perf: nanosleep → schedule, the most expensive thing a thread does on this VM).
// A read of a regular file cannot wait on anything but the disk, so holding the processor
// through it is safe; pipes and terminals (stdin) keep the ordinary path.
type rawFile struct{ fd uintptr }

// FileReader is how this package reads f: with raw read(2) calls when f is a regular file,
// else f itself. bench/walk reads through it too, so its yardstick reads as replay does.
func FileReader(f *os.File) io.Reader {
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		return rawFile{f.Fd()}
	}
	return f
}

func (r rawFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, r.fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			return 0, &os.PathError{Op: "read", Err: errno}
		case n == 0:
			return 0, io.EOF
		}
		return int(n), nil
	}
}
