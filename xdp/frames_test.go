package xdp

import (
	"encoding/binary"
	"net/netip"
)

// Hand-built frames for BPF_PROG_TEST_RUN. Checksums are left zero: XDP does not check them.

type l4 struct {
	proto        uint8
	sport, dport uint16
}

func ethHdr(ethertype uint16, vlans ...uint16) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2}
	for _, tpid := range vlans {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, 100) // TCI: VLAN 100
	}
	return binary.BigEndian.AppendUint16(b, ethertype)
}

func ports(p l4) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, p.sport)
	b = binary.BigEndian.AppendUint16(b, p.dport)
	if p.proto == 6 {
		return append(b, make([]byte, 16)...) // rest of a 20-byte TCP header
	}
	return append(b, 0, 8, 0, 0) // UDP length, checksum
}

// ipv4 builds an IPv4 header with optWords 32-bit words of options and the given
// fragment offset (in 8-byte units), then the transport ports unless fragOff != 0.
func ipv4(src, dst netip.Addr, p l4, optWords int, fragOff uint16) []byte {
	var payload []byte
	if fragOff == 0 {
		payload = ports(p)
	} else {
		payload = make([]byte, 8)
	}
	ihl := 5 + optWords
	b := []byte{byte(0x40 | ihl), 0}
	b = binary.BigEndian.AppendUint16(b, uint16(ihl*4+len(payload)))
	b = append(b, 0, 1)
	b = binary.BigEndian.AppendUint16(b, fragOff&0x1fff)
	b = append(b, 64, p.proto, 0, 0)
	s, d := src.As4(), dst.As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	for range optWords {
		b = append(b, 1, 1, 1, 1) // NOP options
	}
	return append(b, payload...)
}

// ipv6 builds an IPv6 header followed by the given extension headers (each 8 bytes, by
// next-header number; 44 is a fragment header with offset fragOff) and the ports.
func ipv6(src, dst netip.Addr, p l4, exts []uint8, fragOff uint16) []byte {
	var body []byte
	for i, e := range exts {
		next := p.proto
		if i+1 < len(exts) {
			next = exts[i+1]
		}
		h := make([]byte, 8)
		h[0] = next
		if e == 44 {
			binary.BigEndian.PutUint16(h[2:], fragOff<<3)
		} else if e == 51 {
			h[1] = 0 // AH: (0+2)*4 = 8 bytes
		}
		body = append(body, h...)
	}
	if fragOff == 0 {
		body = append(body, ports(p)...)
	} else {
		body = append(body, make([]byte, 8)...)
	}
	first := p.proto
	if len(exts) > 0 {
		first = exts[0]
	}
	b := []byte{0x60, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	b = append(b, first, 64)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, body...)
}

// packet is one frame from src to dst, in one of several encapsulations.
type encap int

const (
	encPlain encap = iota
	encIPOpts
	encVLAN
	encQinQ
	encV6Ext
)

func (e encap) String() string {
	return [...]string{"plain", "ipv4-options", "802.1Q", "QinQ", "ipv6-ext"}[e]
}

func frame(e encap, src, dst netip.AddrPort, proto uint8) []byte {
	p := l4{proto, src.Port(), dst.Port()}
	var vlans []uint16
	switch e {
	case encVLAN:
		vlans = []uint16{0x8100}
	case encQinQ:
		vlans = []uint16{0x88a8, 0x8100}
	}
	if src.Addr().Is4() {
		opts := 0
		if e == encIPOpts {
			opts = 3
		}
		return append(ethHdr(0x0800, vlans...), ipv4(src.Addr(), dst.Addr(), p, opts, 0)...)
	}
	var exts []uint8
	if e == encV6Ext {
		exts = []uint8{0, 60, 43, 51}
	}
	return append(ethHdr(0x86dd, vlans...), ipv6(src.Addr(), dst.Addr(), p, exts, 0)...)
}
