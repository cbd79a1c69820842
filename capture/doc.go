// Package capture owns where packets come from. In this version that is capture files: pcap and
// pcapng (several interfaces and link types in one file), gzip-compressed or not, from a path or
// stdin. Every source yields the same Frame, so replay and the live sensor share everything
// downstream.
//
// Live, it owns AF_PACKET capture per network namespace: Namespaces finds every netns on the
// host (/proc/*/ns/net, /var/run/netns, /var/run/docker/netns; deduplicated by nsfs inode; the
// host's skipped unless asked), a Watcher rescans and reports namespaces added and removed,
// and OpenRing opens a TPACKET_V3 ring inside one namespace (setns on a locked thread that
// never returns to the pool in a foreign namespace), loopback filtered in the kernel, with
// the kernel's packet, drop and freeze counters. This package is the only code that calls
// setns. A ring's socket keeps its namespace alive until Close.
package capture
