package capture

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Addresses lists the interface addresses of a network namespace (its own addresses, so the
// sensor can tell a workload's egress from connections made to it). The host namespace is
// ns.Path == "".
func Addresses(ns Netns) ([]netip.Addr, error) {
	var out []netip.Addr
	list := func() error {
		as, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					out = append(out, ip.Unmap())
				}
			}
		}
		return nil
	}
	if ns.Path == "" {
		return out, list()
	}
	nsfd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ns.Path, err)
	}
	defer unix.Close(nsfd)
	return out, inNetns(nsfd, list)
}
