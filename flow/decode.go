package flow

import (
	"encoding/binary"
	"net/netip"
)

// LinkType is a pcap LINKTYPE number (https://www.tcpdump.org/linktypes.html).
type LinkType uint16

// Link types understood by Decode.
const (
	LinkNull     LinkType = 0   // BSD loopback: 4-byte address family in the capturing host's byte order
	LinkEthernet LinkType = 1   // Ethernet II / 802.3
	LinkRawDLT12 LinkType = 12  // DLT_RAW on most BSDs: raw IPv4/IPv6
	LinkRawDLT14 LinkType = 14  // DLT_RAW on OpenBSD: raw IPv4/IPv6
	LinkRaw      LinkType = 101 // raw IPv4/IPv6, version from the first nibble
	LinkLoop     LinkType = 108 // OpenBSD loopback: address family big-endian
	LinkSLL      LinkType = 113 // Linux cooked capture v1
	LinkIPv4     LinkType = 228
	LinkIPv6     LinkType = 229
	LinkSLL2     LinkType = 276 // Linux cooked capture v2
)

// IP protocol numbers that Decode parses further.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// TCP flag bits as found in Packet.TCPFlags.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
)

// Fragment values of Packet.Fragment.
const (
	NotFragment   uint8 = 0
	FirstFragment uint8 = 1 // offset 0, more fragments follow: L4 header decoded
	LaterFragment uint8 = 2 // offset > 0: no L4 header, ports unknown
)

// MaxVLANs is the deepest stack of 802.1Q/802.1ad tags Decode walks through.
const MaxVLANs = 8

// maxIPv6Ext bounds the IPv6 extension-header chain so a crafted chain
// cannot make Decode loop for long.
const maxIPv6Ext = 8

// Packet is the decoded L3/L4 summary of one frame. All slices alias the
// frame passed to Decode.
type Packet struct {
	Src, Dst netip.Addr // IPv4 or IPv6 (v4-mapped IPv6 addresses are kept as IPv6)
	Proto    uint8      // IP protocol of the transport header (after IPv6 extension headers)

	SrcPort, DstPort uint16 // TCP/UDP only
	TCPFlags         uint8  // TCPFin | TCPSyn | ...
	Seq, Ack         uint32 // TCP only

	// Payload is the L4 payload: a sub-slice of the frame, trimmed to the IP
	// length so link-layer padding is not payload. It may be shorter than
	// the IP header claims when the capture snapped the frame (Snapped).
	Payload []byte

	// IP is the whole IP packet (header to the end of the IP length), set for fragments
	// only: what a Defrag reassembles.
	IP []byte

	VLANs    uint8 // number of 802.1Q/802.1ad tags walked
	Fragment uint8 // NotFragment, FirstFragment or LaterFragment
	Snapped  bool  // the frame is shorter than the IP length (capture snaplen)

	// WireLen is len(frame) as passed to Decode; callers that know the
	// original wire length (pcap orig_len) may overwrite it.
	WireLen int
}

// Status is the outcome of Decode. Everything from ErrTruncated on is a
// malformed packet and should be counted as a decode error.
type Status uint8

// Decode outcomes.
const (
	OK          Status = iota // IPv4/IPv6 carrying TCP or UDP (or a later fragment)
	Unsupported               // well-formed but not IP/TCP/UDP (ARP, ICMP, LLDP, ...): skipped, not an error
	ErrTruncated
	ErrBadLink      // link header invalid (unknown link type, bad address family, too many VLAN tags)
	ErrBadIPHeader  // IHL < 5, version mismatch, total length < header
	ErrBadIPv6Ext   // IPv6 extension chain runs past the packet or is too long
	ErrBadTCPHeader // data offset < 5 or past the end
	ErrBadUDPHeader // UDP length < 8
	numStatus
)

var statusNames = [numStatus]string{
	OK:              "ok",
	Unsupported:     "unsupported",
	ErrTruncated:    "truncated",
	ErrBadLink:      "bad_link",
	ErrBadIPHeader:  "bad_ip_header",
	ErrBadIPv6Ext:   "bad_ipv6_ext",
	ErrBadTCPHeader: "bad_tcp_header",
	ErrBadUDPHeader: "bad_udp_header",
}

// String returns a short name suitable as a metric label value.
func (s Status) String() string {
	if s < numStatus {
		return statusNames[s]
	}
	return "unknown"
}

// Malformed reports whether s is a decode error (as opposed to OK or a
// packet that is merely of a kind we skip).
func (s Status) Malformed() bool { return s >= ErrTruncated }

// Statuses lists every Status, so metrics can pre-create their series.
func Statuses() []Status {
	s := make([]Status, numStatus)
	for i := range s {
		s[i] = Status(i)
	}
	return s
}

// EtherTypes walked by Decode.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86DD
	etherVLAN   = 0x8100 // 802.1Q
	etherQinQ   = 0x88A8 // 802.1ad
	etherQinQv1 = 0x9100 // pre-standard QinQ
)

// Decode parses one frame of the given link type into p. It never
// allocates, never panics and always overwrites all of *p.
func Decode(link LinkType, data []byte, p *Packet) Status {
	*p = Packet{WireLen: len(data)}
	switch link {
	case LinkEthernet:
		if len(data) < 14 {
			return ErrTruncated
		}
		return decodeEther(binary.BigEndian.Uint16(data[12:14]), data[14:], p)
	case LinkSLL:
		if len(data) < 16 {
			return ErrTruncated
		}
		return decodeEther(binary.BigEndian.Uint16(data[14:16]), data[16:], p)
	case LinkSLL2:
		if len(data) < 20 {
			return ErrTruncated
		}
		return decodeEther(binary.BigEndian.Uint16(data[0:2]), data[20:], p)
	case LinkRaw, LinkRawDLT12, LinkRawDLT14:
		return decodeRawIP(data, p)
	case LinkIPv4:
		return decodeIPv4(data, p)
	case LinkIPv6:
		return decodeIPv6(data, p)
	case LinkNull, LinkLoop:
		if len(data) < 4 {
			return ErrTruncated
		}
		af := binary.BigEndian.Uint32(data[:4])
		if link == LinkNull && af&0xFFFF0000 != 0 {
			// Host byte order of the capturing machine: AF values are
			// small, so a big value means the other order (little-endian).
			af = binary.LittleEndian.Uint32(data[:4])
		}
		switch af {
		case 2: // AF_INET everywhere
			return decodeIPv4(data[4:], p)
		case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			return decodeIPv6(data[4:], p)
		}
		if af > 0xFFFF {
			return ErrBadLink
		}
		return Unsupported
	}
	return ErrBadLink
}

func decodeRawIP(data []byte, p *Packet) Status {
	if len(data) < 1 {
		return ErrTruncated
	}
	switch data[0] >> 4 {
	case 4:
		return decodeIPv4(data, p)
	case 6:
		return decodeIPv6(data, p)
	}
	return ErrBadIPHeader
}

// decodeEther walks VLAN tags starting at an EtherType and dispatches to IP.
func decodeEther(etype uint16, data []byte, p *Packet) Status {
	for etype == etherVLAN || etype == etherQinQ || etype == etherQinQv1 {
		if p.VLANs == MaxVLANs {
			return ErrBadLink
		}
		if len(data) < 4 {
			return ErrTruncated
		}
		p.VLANs++
		etype = binary.BigEndian.Uint16(data[2:4])
		data = data[4:]
	}
	switch etype {
	case etherIPv4:
		return decodeIPv4(data, p)
	case etherIPv6:
		return decodeIPv6(data, p)
	}
	return Unsupported
}

func decodeIPv4(data []byte, p *Packet) Status {
	if len(data) < 20 {
		return ErrTruncated
	}
	if data[0]>>4 != 4 {
		return ErrBadIPHeader
	}
	hl := int(data[0]&0x0F) * 4
	if hl < 20 {
		return ErrBadIPHeader
	}
	if len(data) < hl {
		return ErrTruncated
	}
	total := int(binary.BigEndian.Uint16(data[2:4]))
	switch {
	case total == 0 && len(data) > hl:
		// Linux TSO/BIG TCP packets captured before segmentation carry
		// total length 0: the frame is the packet.
		total = len(data)
	case total < hl:
		return ErrBadIPHeader
	case total > len(data):
		p.Snapped = true
		total = len(data)
	}
	data = data[:total] // drops Ethernet padding
	p.Src = netip.AddrFrom4([4]byte(data[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(data[16:20]))
	p.Proto = data[9]
	frag := binary.BigEndian.Uint16(data[6:8])
	off, more := frag&0x1FFF, frag&0x2000 != 0
	switch {
	case off != 0:
		p.Fragment, p.IP = LaterFragment, data
		return laterFragment(p)
	case more:
		p.Fragment, p.IP = FirstFragment, data
		return firstFragment(data[hl:], p)
	}
	return decodeL4(data[hl:], p)
}

// firstFragment decodes the L4 header of a first fragment when it holds one: a first
// fragment too short for its TCP header (a tiny-fragment evasion) is still a valid IP
// fragment, classified like a later one, and left to reassembly.
func firstFragment(data []byte, p *Packet) Status {
	if st := decodeL4(data, p); !st.Malformed() {
		return st
	}
	p.SrcPort, p.DstPort, p.TCPFlags, p.Seq, p.Ack, p.Payload = 0, 0, 0, 0, 0, nil
	return laterFragment(p)
}

func decodeIPv6(data []byte, p *Packet) Status {
	if len(data) < 40 {
		return ErrTruncated
	}
	if data[0]>>4 != 6 {
		return ErrBadIPHeader
	}
	plen := int(binary.BigEndian.Uint16(data[4:6]))
	switch {
	case plen == 0 && len(data) > 40:
		// Jumbogram / BIG TCP GSO: the payload length lives in a
		// hop-by-hop option; the captured frame is the packet.
		plen = len(data) - 40
	case plen > len(data)-40:
		p.Snapped = true
		plen = len(data) - 40
	}
	p.Src = netip.AddrFrom16([16]byte(data[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(data[24:40]))
	next := data[6]
	ip := data[:40+plen]
	data = data[40 : 40+plen]
	for i := 0; ; i++ {
		switch next {
		case 0, 43, 60, 135: // hop-by-hop, routing, destination options, mobility
			if i == maxIPv6Ext {
				return ErrBadIPv6Ext
			}
			if len(data) < 8 {
				return ErrBadIPv6Ext
			}
			n := (int(data[1]) + 1) * 8
			if len(data) < n {
				return ErrBadIPv6Ext
			}
			next, data = data[0], data[n:]
			continue
		case 51: // AH: length in 4-octet units minus 2
			if i == maxIPv6Ext {
				return ErrBadIPv6Ext
			}
			if len(data) < 8 {
				return ErrBadIPv6Ext
			}
			n := (int(data[1]) + 2) * 4
			if len(data) < n {
				return ErrBadIPv6Ext
			}
			next, data = data[0], data[n:]
			continue
		case 44: // fragment
			if i == maxIPv6Ext {
				return ErrBadIPv6Ext
			}
			if len(data) < 8 {
				return ErrBadIPv6Ext
			}
			fo := binary.BigEndian.Uint16(data[2:4])
			off, more := fo>>3, fo&1 != 0
			next, data = data[0], data[8:]
			if off != 0 {
				p.Proto = next
				p.Fragment, p.IP = LaterFragment, ip
				return laterFragment(p)
			}
			if more {
				p.Fragment, p.IP = FirstFragment, ip
				p.Proto = next
				if next == 0 || next == 43 || next == 60 || next == 135 || next == 51 || next == 44 {
					// More extension headers in the fragmentable part: reassembly reads them.
					return laterFragment(p)
				}
				return firstFragment(data, p)
			} // else an atomic fragment (RFC 6946): a whole packet
			continue
		}
		break
	}
	p.Proto = next
	return decodeL4(data, p)
}

// laterFragment classifies a non-first fragment by its protocol alone: it
// carries no L4 header.
func laterFragment(p *Packet) Status {
	if p.Proto == ProtoTCP || p.Proto == ProtoUDP {
		return OK
	}
	return Unsupported
}

func decodeL4(data []byte, p *Packet) Status {
	switch p.Proto {
	case ProtoTCP:
		if len(data) < 20 {
			return ErrTruncated
		}
		doff := int(data[12]>>4) * 4
		if doff < 20 || doff > len(data) {
			return ErrBadTCPHeader
		}
		p.SrcPort = binary.BigEndian.Uint16(data[0:2])
		p.DstPort = binary.BigEndian.Uint16(data[2:4])
		p.Seq = binary.BigEndian.Uint32(data[4:8])
		p.Ack = binary.BigEndian.Uint32(data[8:12])
		p.TCPFlags = data[13]
		p.Payload = data[doff:]
		return OK
	case ProtoUDP:
		if len(data) < 8 {
			return ErrTruncated
		}
		ulen := int(binary.BigEndian.Uint16(data[4:6]))
		switch {
		case ulen == 0: // jumbogram (RFC 2675) or GSO: length from IP
		case ulen < 8:
			return ErrBadUDPHeader
		case ulen <= len(data):
			data = data[:ulen]
		}
		p.SrcPort = binary.BigEndian.Uint16(data[0:2])
		p.DstPort = binary.BigEndian.Uint16(data[2:4])
		p.Payload = data[8:]
		return OK
	}
	return Unsupported
}
