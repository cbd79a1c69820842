// Package capture owns where packets come from. In this version that is capture files: pcap and
// pcapng (several interfaces and link types in one file), gzip-compressed or not, from a path or
// stdin. Every source yields the same Frame, so replay and the live sensor share everything
// downstream.
package capture
