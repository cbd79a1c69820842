// Package caps owns the one question both BPF users (capture's socket filter, xdp's
// enforcement) ask before loading a program: does this process hold a capability.
package caps

import "golang.org/x/sys/unix"

// Capability numbers from linux/capability.h.
const (
	NetAdmin = 12
	SysAdmin = 21
	BPF      = 39
)

// Have reports whether capability c is in the process's effective set (false when it
// cannot be asked).
func Have(c uint) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}
