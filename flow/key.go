package flow

import (
	"net/netip"
)

// Key identifies a flow independently of direction: the two endpoints are
// stored in a canonical order (lower address/port first). Scope separates
// identical 5-tuples seen in different network namespaces or interfaces.
// Key is comparable and contains no pointers, so it hashes as plain memory.
type Key struct {
	scope          uint64
	lo, hi         [16]byte // IPv4 in the first 4 bytes
	loPort, hiPort uint16
	proto          uint8
	v6             bool
}

// KeyOf returns the canonical key of p within scope and whether p travels
// from the key's high endpoint to its low one (swapped).
func KeyOf(p *Packet, scope uint64) (k Key, swapped bool) {
	return keyOf(p.Src, p.SrcPort, p.Dst, p.DstPort, p.Proto, scope)
}

func keyOf(src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto uint8, scope uint64) (k Key, swapped bool) {
	k.scope = scope
	k.proto = proto
	k.v6 = src.Is6()
	s, d := addrBytes(src), addrBytes(dst)
	if cmpEndpoint(&s, sport, &d, dport) <= 0 {
		k.lo, k.loPort, k.hi, k.hiPort = s, sport, d, dport
		return k, false
	}
	k.lo, k.loPort, k.hi, k.hiPort = d, dport, s, sport
	return k, true
}

func addrBytes(a netip.Addr) [16]byte {
	if a.Is4() {
		var b [16]byte
		v4 := a.As4()
		copy(b[:], v4[:])
		return b
	}
	return a.As16()
}

func cmpEndpoint(a *[16]byte, ap uint16, b *[16]byte, bp uint16) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case ap < bp:
		return -1
	case ap > bp:
		return 1
	}
	return 0
}

// Scope returns the scope the key was built with.
func (k Key) Scope() uint64 { return k.scope }

// Proto returns the IP protocol of the key.
func (k Key) Proto() uint8 { return k.proto }

// Endpoints returns the two endpoints in canonical order.
func (k Key) Endpoints() (lo, hi netip.AddrPort) {
	return netip.AddrPortFrom(k.addr(k.lo), k.loPort), netip.AddrPortFrom(k.addr(k.hi), k.hiPort)
}

func (k Key) addr(b [16]byte) netip.Addr {
	if k.v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}
