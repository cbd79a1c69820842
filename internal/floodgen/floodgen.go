// Package floodgen writes the flood captures of issue 14: many distinct TCP flows that never
// decide anything (a SYN and 27 bytes of HTTP each) with real Stratum sessions spread through
// them, and flows that send long runs without a newline. bench/gen writes them for the
// benchmarks, the replay and live flood tests use them directly.
package floodgen

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Options describe the flood capture of issue 14: many distinct TCP flows (a SYN and one
// short HTTP segment each, never answered) spread evenly over a span of capture time, with
// real Stratum sessions (replayed from a recorded miner's capture, each from its own client
// address) starting at even intervals through it.
type Options struct {
	Flows    int
	Span     time.Duration
	Sessions int
	Miner    string // pcap of a real miner session; its TCP packets are replayed per session
	Payload  string // each flood flow's one segment; default Payload
}

// Summary is what Write and NoNewline report.
type Summary struct {
	Packets, Flows, Sessions int
	SessionClients           []netip.AddrPort
}

// Payload is 27 bytes of an HTTP request that never completes, as in issue 14.
const Payload = "GET / HTTP/1.1\r\nHost: x.y\r\n"

// SessionPacket is one TCP packet of the recorded miner session, with its offset from the
// session's first packet.
type SessionPacket struct {
	At      time.Duration
	FromCli bool
	TCP     layers.TCP
	Payload []byte
	Srv     netip.AddrPort
}

// ReadSession returns the TCP packets of the first TCP connection in a capture; the client
// is the side that sent the SYN.
func ReadSession(path string) ([]SessionPacket, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []SessionPacket
	var cli netip.AddrPort
	var first time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			continue
		}
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip.SrcIP.To4())), uint16(tcp.SrcPort))
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip.DstIP.To4())), uint16(tcp.DstPort))
		if !cli.IsValid() {
			if !tcp.SYN || tcp.ACK {
				continue
			}
			cli, first = src, ci.Timestamp
		}
		sp := SessionPacket{At: ci.Timestamp.Sub(first), TCP: *tcp, Payload: append([]byte(nil), tcp.Payload...)}
		switch {
		case src == cli:
			sp.FromCli, sp.Srv = true, dst
		case dst == cli:
			sp.Srv = src
		default:
			continue
		}
		out = append(out, sp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no TCP connection with its SYN", path)
	}
	return out, nil
}

type timedFrame struct {
	ts    time.Time
	frame []byte
}

// Write writes the flood capture to w.
func Write(w io.Writer, o Options) (Summary, error) {
	var s Summary
	if o.Flows <= 0 || o.Span <= 0 {
		return s, fmt.Errorf("flood: flows and span must be positive")
	}
	if o.Payload == "" {
		o.Payload = Payload
	}
	sess, err := ReadSession(o.Miner)
	if err != nil {
		return s, err
	}
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	// The sessions' packets, each session from 10.77.1.<i+1>, sorted by time.
	var miners []timedFrame
	for i := range o.Sessions {
		at := start.Add(o.Span * time.Duration(2*i+1) / time.Duration(2*o.Sessions))
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 77, 1, byte(i + 1)}), uint16(40000+i))
		s.SessionClients = append(s.SessionClients, cli)
		for _, sp := range sess {
			src, dst := cli, sp.Srv
			if !sp.FromCli {
				src, dst = sp.Srv, cli
			}
			tcp := sp.TCP
			tcp.SrcPort, tcp.DstPort = layers.TCPPort(src.Port()), layers.TCPPort(dst.Port())
			b, err := TCPPacket(src.Addr(), dst.Addr(), &tcp, sp.Payload)
			if err != nil {
				return s, err
			}
			miners = append(miners, timedFrame{at.Add(sp.At), b})
		}
	}
	sort.SliceStable(miners, func(i, j int) bool { return miners[i].ts.Before(miners[j].ts) })
	s.Sessions = o.Sessions

	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return s, err
	}
	write := func(f timedFrame) error {
		s.Packets++
		return pw.WritePacket(gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(f.frame), Length: len(f.frame)}, f.frame)
	}
	// One template per packet kind; addresses and ports are patched per flow (checksums
	// recomputed) rather than serialised a million times.
	dst := netip.AddrFrom4([4]byte{10, 2, 0, 1})
	src0 := netip.AddrFrom4([4]byte{10, 100, 0, 0})
	syn, err := TCPPacket(src0, dst, &layers.TCP{DstPort: 80, Seq: 1, SYN: true, Window: 64240}, nil)
	if err != nil {
		return s, err
	}
	data, err := TCPPacket(src0, dst, &layers.TCP{DstPort: 80, Seq: 2, ACK: true, PSH: true, Window: 64240}, []byte(o.Payload))
	if err != nil {
		return s, err
	}
	m := 0
	for k := range o.Flows {
		ts := start.Add(o.Span * time.Duration(k) / time.Duration(o.Flows))
		for ; m < len(miners) && !miners[m].ts.After(ts); m++ {
			if err := write(miners[m]); err != nil {
				return s, err
			}
		}
		ip := [4]byte{10, 100, byte(k / 50000 >> 8), byte(k / 50000)}
		port := uint16(10000 + k%50000)
		for _, fr := range [][]byte{syn, data} {
			PatchFlow(fr, ip, port)
			if err := write(timedFrame{ts, fr}); err != nil {
				return s, err
			}
		}
		s.Flows++
	}
	for ; m < len(miners); m++ {
		if err := write(miners[m]); err != nil {
			return s, err
		}
	}
	return s, nil
}

// TCPPacket serialises an Ethernet/IPv4/TCP frame with correct checksums.
func TCPPacket(src, dst netip.Addr, tcp *layers.TCP, payload []byte) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	s4, d4 := src.As4(), dst.As4()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: s4[:], DstIP: d4[:], Flags: layers.IPv4DontFragment}
	t := *tcp
	t.Options = nil // the recorded options (timestamps) are not needed and would be stale
	t.Padding = nil
	t.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, &t, gopacket.Payload(payload)); err != nil {
		return nil, err
	}
	return append([]byte(nil), buf.Bytes()...), nil
}

// PatchFlow rewrites the IPv4 source address and TCP source port of a frame built by
// TCPPacket and fixes both checksums.
func PatchFlow(fr []byte, src [4]byte, port uint16) {
	const ipOff, tcpOff = 14, 14 + 20
	copy(fr[ipOff+12:], src[:])
	binary.BigEndian.PutUint16(fr[tcpOff:], port)
	binary.BigEndian.PutUint16(fr[ipOff+10:], 0)
	binary.BigEndian.PutUint16(fr[ipOff+10:], ^fold(sum16(fr[ipOff:tcpOff], 0)))
	// The segment's length comes from the IP header: short frames carry Ethernet padding.
	tcpLen := int(binary.BigEndian.Uint16(fr[ipOff+2:])) - (tcpOff - ipOff)
	ph := uint32(6) + uint32(tcpLen)
	ph = sum16(fr[ipOff+12:ipOff+20], ph)
	binary.BigEndian.PutUint16(fr[tcpOff+16:], 0)
	binary.BigEndian.PutUint16(fr[tcpOff+16:], ^fold(sum16(fr[tcpOff:tcpOff+tcpLen], ph)))
}

// NoNewline writes flows TCP connections that each send size bytes without a newline
// (after a Stratum-looking opening, so a line parser keeps reading), interleaved segment by
// segment so that every flow is open at once: the worst case for reassembly memory (issue 14,
// docs/testing.md R2).
func NoNewline(w io.Writer, flows, size int) (Summary, error) {
	s, _, err := noNewline(w, flows, size)
	return s, err
}

// Fragments describe a flood of IPv4 datagrams that never complete: each sends one fragment
// of Bytes payload bytes at byte offset Offset with More Fragments set, from its own source
// address and IP ID, so that every one holds a reassembly buffer until the defrag memcap
// evicts it (issue 14's memory budget: the defrag memcap beside the stream budget).
type Fragments struct {
	Datagrams int
	Bytes     int // payload of each fragment, a multiple of 8
	Offset    int // byte offset of each fragment, a multiple of 8: the buffer it needs is Offset+Bytes
}

// NoNewlineFragments writes the NoNewline flows (all left open, holding the stream budget)
// followed by the fragment flood f, 1 µs apart: the worst case for replay memory, every
// reassembly budget full at once. flows may be 0.
func NoNewlineFragments(w io.Writer, flows, size int, f Fragments) (Summary, error) {
	if f.Bytes <= 0 || f.Bytes%8 != 0 || f.Offset < 0 || f.Offset%8 != 0 || f.Offset+f.Bytes > 65535-20 || f.Datagrams >= 1<<24 {
		return Summary{}, fmt.Errorf("fragments: bytes %d and offset %d must be multiples of 8 within an IP datagram, at most 2^24 datagrams", f.Bytes, f.Offset)
	}
	s, pw, err := noNewline(w, flows, size)
	if err != nil {
		return s, err
	}
	ts := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC).Add(time.Duration(s.Packets) * time.Microsecond)
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 102, 0, 0}, DstIP: []byte{10, 3, 0, 2},
		Flags: layers.IPv4MoreFragments, FragOffset: uint16(f.Offset / 8)}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, gopacket.Payload(make([]byte, f.Bytes))); err != nil {
		return s, err
	}
	fr := buf.Bytes()
	const ipOff = 14
	for k := range f.Datagrams {
		// The key (source, ID) differs for every datagram: 2^16 IDs per source address.
		binary.BigEndian.PutUint16(fr[ipOff+4:], uint16(k))
		fr[ipOff+14], fr[ipOff+15] = byte(k>>24), byte(k>>16)
		binary.BigEndian.PutUint16(fr[ipOff+10:], 0)
		binary.BigEndian.PutUint16(fr[ipOff+10:], ^fold(sum16(fr[ipOff:ipOff+20], 0)))
		ts = ts.Add(time.Microsecond)
		if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(fr), Length: len(fr)}, fr); err != nil {
			return s, err
		}
		s.Packets++
	}
	return s, nil
}

func noNewline(w io.Writer, flows, size int) (Summary, *pcapgo.Writer, error) {
	var s Summary
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return s, pw, err
	}
	const mss = 1448
	dst := netip.AddrFrom4([4]byte{10, 3, 0, 1})
	src0 := netip.AddrFrom4([4]byte{10, 101, 0, 0})
	syn, err := TCPPacket(src0, dst, &layers.TCP{DstPort: 3333, Seq: 0, SYN: true, Window: 64240}, nil)
	if err != nil {
		return s, pw, err
	}
	seg := make([]byte, mss)
	for i := range seg {
		seg[i] = 'a'
	}
	copy(seg, `{"id":1,"method":"mining.subscribe","params":["`)
	data, err := TCPPacket(src0, dst, &layers.TCP{DstPort: 3333, Seq: 1, ACK: true, PSH: true, Window: 64240}, seg)
	if err != nil {
		return s, pw, err
	}
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	ts := start
	addr := func(k int) ([4]byte, uint16) {
		return [4]byte{10, 101, byte(k / 50000 >> 8), byte(k / 50000)}, uint16(10000 + k%50000)
	}
	emit := func(fr []byte) error {
		s.Packets++
		ts = ts.Add(time.Microsecond)
		return pw.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(fr), Length: len(fr)}, fr)
	}
	for k := range flows {
		ip, port := addr(k)
		PatchFlow(syn, ip, port)
		if err := emit(syn); err != nil {
			return s, pw, err
		}
	}
	for off := 0; off < size; off += mss {
		if off == mss {
			for i := range len(`{"id":1,"method":"mining.subscribe","params":["`) {
				data[len(data)-mss+i] = 'a' // only the first segment opens the line
			}
		}
		binary.BigEndian.PutUint32(data[14+20+4:], uint32(1+off))
		for k := range flows {
			ip, port := addr(k)
			PatchFlow(data, ip, port)
			if err := emit(data); err != nil {
				return s, pw, err
			}
		}
	}
	s.Flows = flows
	return s, pw, nil
}

func sum16(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = (s & 0xffff) + s>>16
	}
	return uint16(s)
}
