package flow

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// benchFrame is an Ethernet/802.1Q/IPv4/TCP frame with a 64-byte payload,
// a typical Stratum-sized segment.
func benchFrame(b *testing.B) []byte {
	f := mustHex(b, "02000000000202000000000181000064080045000068123440004006000"+
		"00a0000010a0000029c400d05000003e8000007d05018ffff00000000")
	return append(f, []byte(`{"id":1,"method":"mining.subscribe","params":["xmrig/6.21"]}`+"\n\n\n\n")...)
}

func BenchmarkDecode(b *testing.B) {
	frame := benchFrame(b)
	var p Packet
	if st := Decode(LinkEthernet, frame, &p); st != OK || len(p.Payload) != 64 {
		b.Fatalf("bench frame: %v payload %d", st, len(p.Payload))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		Decode(LinkEthernet, frame, &p)
	}
}

// BenchmarkGopacketNewPacket decodes the same frame with gopacket's default
// (allocating) decoder, the usual way to use it, for comparison.
func BenchmarkGopacketNewPacket(b *testing.B) {
	frame := benchFrame(b)
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
	if pkt.Layer(layers.LayerTypeTCP) == nil {
		b.Fatal("gopacket did not find TCP")
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
		_ = pkt.TransportLayer()
	}
}

// BenchmarkGopacketDecodingLayerParser is gopacket's fastest, preallocated path.
func BenchmarkGopacketDecodingLayerParser(b *testing.B) {
	frame := benchFrame(b)
	var (
		eth     layers.Ethernet
		dot1q   layers.Dot1Q
		ip4     layers.IPv4
		tcp     layers.TCP
		payload gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &tcp, &payload)
	decoded := make([]gopacket.LayerType, 0, 8)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		_ = parser.DecodeLayers(frame, &decoded)
	}
}
