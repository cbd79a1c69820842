package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// summary is what generate reports; run.sh parses the printed form.
type summary struct {
	Packets     int
	Bytes       int64 // wire bytes (frame lengths before snaplen)
	Flows       int
	MiningFlows int
	MiningPkts  int
	DNSFlows    int
	Duration    time.Duration // capture time span
}

// TCP flag bits.
const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fPSH = 0x08
	fACK = 0x10
)

// activeFlows is how many flows are interleaved at once; enough that
// consecutive packets rarely belong to the same flow, as on a busy node.
const activeFlows = 768

type endpoint struct {
	ip  [16]byte // IPv4 uses the first 4 bytes
	mac [6]byte
}

// pkt is one scripted segment; seq/ack numbers are filled in when emitted.
type pkt struct {
	fromSrv bool
	flags   uint8
	data    []byte
}

type flow struct {
	v6           bool
	udp          bool
	mining       bool
	cli, srv     endpoint
	cport, sport uint16
	cseq, sseq   uint32 // next sequence number each side sends
	pkts         []pkt
	pos          int
	next         *flow // started in this flow's slot when it ends (DNS answer → connection)
	wl           workload
	name         string // server name, for a preceding DNS lookup
}

type workload struct {
	ep endpoint
	v6 bool
}

type generator struct {
	rng       *rand.Rand
	opts      options
	workloads []workload
	noise     []byte     // random bytes that payloads are sliced from
	text      []byte     // printable bytes for HTTP bodies
	tlsBig    *recStream // full-size records: server bulk
	tlsSmall  *recStream // small records: requests, Stratum inside TLS
	buf       []byte
	ipid      uint16
	nextPort  uint16
	sum       summary
}

// generate writes a pcap of o.packets packets to w.
func generate(w io.Writer, o options) (summary, error) {
	if o.packets <= 0 {
		return summary{}, fmt.Errorf("packets must be positive, got %d", o.packets)
	}
	if o.snaplen <= 0 {
		o.snaplen = 65535
	}
	if o.workloads <= 0 {
		o.workloads = 2000
	}
	g := &generator{
		rng:      rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15)),
		opts:     o,
		buf:      make([]byte, 0, 2048),
		nextPort: 32768,
	}
	g.noise = make([]byte, 1<<17)
	for i := range g.noise {
		g.noise[i] = byte(g.rng.Uint32())
	}
	const printable = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.:{}[]\"_-\n"
	g.text = make([]byte, 1<<16)
	for i := range g.text {
		g.text[i] = printable[g.rng.IntN(len(printable))]
	}
	g.tlsBig = newRecStream(g, 16384, 64*1024)
	g.tlsSmall = newRecStream(g, 211, 4096)
	g.workloads = make([]workload, o.workloads)
	for i := range g.workloads {
		n := i + 1
		wl := &g.workloads[i]
		// One workload in five is IPv6-only, like a dual-stack cluster's v6 pods.
		if i%5 == 4 {
			wl.v6 = true
			copy(wl.ep.ip[:], ip6(0x20010db8, 0x00100000, 0, uint32(n)))
		} else {
			copy(wl.ep.ip[:], []byte{10, byte(1 + n>>16), byte(n >> 8), byte(n)})
		}
		wl.ep.mac = [6]byte{0x02, 0x42, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}

	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(uint32(o.snaplen), layers.LinkTypeEthernet); err != nil {
		return summary{}, err
	}

	active := make([]*flow, activeFlows)
	for i := range active {
		active[i] = g.newFlow()
	}
	start := time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	ts := start
	for g.sum.Packets < o.packets {
		i := g.rng.IntN(len(active))
		f := active[i]
		frame := g.frame(f)
		if f.mining {
			g.sum.MiningPkts++
		}
		f.pos++
		if f.pos == len(f.pkts) {
			if f.next != nil {
				active[i] = f.next
			} else {
				active[i] = g.newFlow()
			}
		}
		// Mean gap 20 µs: ~50 kpps on the wire, about 200 Mbit/s.
		ts = ts.Add(time.Duration(1000 + g.rng.IntN(38000)))
		ci := gopacket.CaptureInfo{Timestamp: ts, Length: len(frame), CaptureLength: min(len(frame), o.snaplen)}
		if err := pw.WritePacket(ci, frame[:ci.CaptureLength]); err != nil {
			return g.sum, err
		}
		g.sum.Packets++
		g.sum.Bytes += int64(len(frame))
	}
	g.sum.Duration = ts.Sub(start)
	return g.sum, nil
}

func ip6(a, b, c, d uint32) []byte {
	var ip [16]byte
	binary.BigEndian.PutUint32(ip[0:], a)
	binary.BigEndian.PutUint32(ip[4:], b)
	binary.BigEndian.PutUint32(ip[8:], c)
	binary.BigEndian.PutUint32(ip[12:], d)
	return ip[:]
}

// routerMAC is the next hop for everything outside the workload's node.
var routerMAC = [6]byte{0x02, 0x42, 0xff, 0xff, 0xff, 0x01}

// server returns an endpoint in the given block: kind 0 internal service,
// 1 external benign, 2 mining pool (documentation ranges, never routable).
func (g *generator) server(v6 bool, kind int) endpoint {
	var e endpoint
	e.mac = routerMAC
	if v6 {
		hi := [...]uint32{0x00100200, 0xf0000000, 0xf1000000}[kind]
		copy(e.ip[:], ip6(0x20010db8, hi, 0, uint32(1+g.rng.IntN(4000))))
		return e
	}
	switch kind {
	case 0:
		n := 1 + g.rng.IntN(2000)
		copy(e.ip[:], []byte{10, 200, byte(n >> 8), byte(n)})
		e.mac = [6]byte{0x02, 0x42, 0xc8, 0, byte(n >> 8), byte(n)}
	case 1:
		if g.rng.IntN(2) == 0 {
			copy(e.ip[:], []byte{198, 51, 100, byte(1 + g.rng.IntN(254))})
		} else {
			copy(e.ip[:], []byte{192, 0, 2, byte(1 + g.rng.IntN(254))})
		}
	default:
		copy(e.ip[:], []byte{203, 0, 113, byte(1 + g.rng.IntN(254))})
	}
	return e
}

func (g *generator) resolver(v6 bool) endpoint {
	e := endpoint{mac: [6]byte{0x02, 0x42, 0x0a, 0x60, 0, 0x0a}}
	if v6 {
		copy(e.ip[:], ip6(0x20010db8, 0x0010ffff, 0, 0x53))
	} else {
		copy(e.ip[:], []byte{10, 96, 0, 10})
	}
	return e
}

func (g *generator) ephemeral() uint16 {
	g.nextPort++
	if g.nextPort < 32768 {
		g.nextPort = 32768
	}
	return g.nextPort
}

// frame encodes f.pkts[f.pos] as an Ethernet frame in g.buf and advances
// the sender's sequence number.
func (g *generator) frame(f *flow) []byte {
	p := &f.pkts[f.pos]
	src, dst := &f.cli, &f.srv
	sport, dport := f.cport, f.sport
	seq, ack := &f.cseq, &f.sseq
	if p.fromSrv {
		src, dst = dst, src
		sport, dport = dport, sport
		seq, ack = ack, seq
	}
	b := g.buf[:0]
	b = append(b, dst.mac[:]...)
	b = append(b, src.mac[:]...)
	l4len := 8
	proto := byte(17)
	if !f.udp {
		proto = 6
		l4len = 20
		if p.flags&fSYN != 0 {
			l4len = 24 // MSS option
		}
	}
	l4len += len(p.data)
	var l4 int
	if f.v6 {
		b = append(b, 0x86, 0xdd)
		b = append(b, 0x60, 0, 0, 0, byte(l4len>>8), byte(l4len), proto, 64)
		b = append(b, src.ip[:]...)
		b = append(b, dst.ip[:]...)
	} else {
		b = append(b, 0x08, 0x00)
		g.ipid++
		tot := 20 + l4len
		ipStart := len(b)
		b = append(b, 0x45, 0, byte(tot>>8), byte(tot), byte(g.ipid>>8), byte(g.ipid), 0x40, 0, 64, proto, 0, 0)
		b = append(b, src.ip[:4]...)
		b = append(b, dst.ip[:4]...)
		c := ^fold(sum16(b[ipStart:ipStart+20], 0))
		binary.BigEndian.PutUint16(b[ipStart+10:], c)
	}
	l4 = len(b)
	if f.udp {
		b = binary.BigEndian.AppendUint16(b, sport)
		b = binary.BigEndian.AppendUint16(b, dport)
		b = binary.BigEndian.AppendUint16(b, uint16(l4len))
		b = append(b, 0, 0)
	} else {
		var a uint32
		if p.flags&fACK != 0 {
			a = *ack
		}
		b = binary.BigEndian.AppendUint16(b, sport)
		b = binary.BigEndian.AppendUint16(b, dport)
		b = binary.BigEndian.AppendUint32(b, *seq)
		b = binary.BigEndian.AppendUint32(b, a)
		off := byte(5 << 4)
		if p.flags&fSYN != 0 {
			off = 6 << 4
		}
		b = append(b, off, p.flags, 0xfa, 0xf0, 0, 0, 0, 0)
		if p.flags&fSYN != 0 {
			mss := 1460
			if f.v6 {
				mss = 1440
			}
			b = append(b, 2, 4, byte(mss>>8), byte(mss))
		}
		*seq += uint32(len(p.data))
		if p.flags&(fSYN|fFIN) != 0 {
			*seq++
		}
	}
	b = append(b, p.data...)
	// Real checksums, so a tool that validates them sees clean traffic.
	var s uint32
	if f.v6 {
		s = sum16(src.ip[:], 0)
		s = sum16(dst.ip[:], s)
	} else {
		s = sum16(src.ip[:4], 0)
		s = sum16(dst.ip[:4], s)
	}
	s += uint32(proto) + uint32(l4len)
	s = sum16(b[l4:], s)
	c := ^fold(s)
	if f.udp && c == 0 {
		c = 0xffff
	}
	ck := l4 + 16
	if f.udp {
		ck = l4 + 6
	}
	binary.BigEndian.PutUint16(b[ck:], c)
	g.buf = b
	return b
}

func sum16(b []byte, s uint32) uint32 {
	for len(b) >= 8 {
		s += uint32(binary.BigEndian.Uint16(b)) + uint32(binary.BigEndian.Uint16(b[2:])) +
			uint32(binary.BigEndian.Uint16(b[4:])) + uint32(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
		s = (s & 0xffff) + s>>16
	}
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
