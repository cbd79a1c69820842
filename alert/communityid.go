package alert

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
)

// CommunityID returns the Community ID v1 flow hash (seed 0) that Zeek, Suricata and Elastic
// compute, so an alert can be joined with their records of the same flow.
func CommunityID(src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto uint8) string {
	src, dst = src.Unmap(), dst.Unmap()
	if dst.Less(src) || (src == dst && dport < sport) {
		src, dst, sport, dport = dst, src, dport, sport
	}
	var buf [2 + 16 + 16 + 1 + 1 + 2 + 2]byte
	n := 2 // seed 0
	s, d := src.AsSlice(), dst.AsSlice()
	n += copy(buf[n:], s)
	n += copy(buf[n:], d)
	buf[n] = proto
	n += 2
	binary.BigEndian.PutUint16(buf[n:], sport)
	binary.BigEndian.PutUint16(buf[n+2:], dport)
	n += 4
	sum := sha1.Sum(buf[:n])
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}
