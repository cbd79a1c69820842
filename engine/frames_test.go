package engine

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/intel"
)

// Hand-built frames for unit tests; the captures in testdata/ are made by real software.

var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type endpoint struct {
	ip   string
	port uint16
}

var (
	client = endpoint{"10.0.0.2", 40000}
	poolEP = endpoint{"10.9.9.9", 3333}
)

func tcpFrame(t testing.TB, src, dst endpoint, seq, ack uint32, syn, ackf, fin bool, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(src.ip).To4(), DstIP: net.ParseIP(dst.ip).To4(), Flags: layers.IPv4DontFragment}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.port), DstPort: layers.TCPPort(dst.port), Seq: seq, Ack: ack, SYN: syn, ACK: ackf, FIN: fin, PSH: len(payload) > 0, Window: 65535}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func udpFrame(t testing.TB, src, dst endpoint, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src.ip).To4(), DstIP: net.ParseIP(dst.ip).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.port), DstPort: layers.UDPPort(dst.port)}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// session is a TCP connection under test: it tracks sequence numbers so tests can send data,
// reorder it or replay it.
type session struct {
	t      testing.TB
	c, s   endpoint
	cseq   uint32
	sseq   uint32
	frames [][]byte
}

func newSession(t testing.TB, c, s endpoint) *session {
	x := &session{t: t, c: c, s: s, cseq: 1000, sseq: 5000}
	x.frames = append(x.frames,
		tcpFrame(t, c, s, x.cseq, 0, true, false, false, nil),
		tcpFrame(t, s, c, x.sseq, x.cseq+1, true, true, false, nil),
		tcpFrame(t, c, s, x.cseq+1, x.sseq+1, false, true, false, nil))
	x.cseq++
	x.sseq++
	return x
}

// client sends payload from the client in segments of at most seg bytes.
func (x *session) client(payload string, seg int) {
	for len(payload) > 0 {
		n := min(seg, len(payload))
		x.frames = append(x.frames, tcpFrame(x.t, x.c, x.s, x.cseq, x.sseq, false, true, false, []byte(payload[:n])))
		x.cseq += uint32(n)
		payload = payload[n:]
	}
}

func (x *session) server(payload string) {
	x.frames = append(x.frames, tcpFrame(x.t, x.s, x.c, x.sseq, x.cseq, false, true, false, []byte(payload)))
	x.sseq += uint32(len(payload))
}

type collect struct{ events []alert.Event }

func (c *collect) Alert(e *alert.Event) { c.events = append(c.events, *e) }

func newEngine(sink Sink) *Engine {
	return New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: sink})
}

func feed(e *Engine, frames [][]byte) {
	for i, f := range frames {
		e.Packet(flow.LinkEthernet, f, epoch.Add(time.Duration(i)*time.Millisecond), 1)
	}
}
