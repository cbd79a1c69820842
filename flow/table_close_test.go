package flow

import (
	"net/netip"
	"testing"
	"time"
)

func TestCloseShortensUDPTimeout(t *testing.T) {
	tb := NewTable[struct{}](Config{UDPTimeout: time.Minute, TCPClosedTimeout: 10 * time.Second}, nil)
	t0 := time.Unix(1000, 0)
	p := &Packet{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.53"), Proto: ProtoUDP, SrcPort: 5000, DstPort: 53}
	f, _, _ := tb.Packet(p, 1, t0.UnixNano())
	q := &Packet{Src: p.Dst, Dst: p.Src, Proto: ProtoUDP, SrcPort: 53, DstPort: 5000}
	tb.Packet(&Packet{Src: netip.MustParseAddr("10.0.0.2"), Dst: p.Dst, Proto: ProtoUDP, SrcPort: 5001, DstPort: 53}, 1, t0.UnixNano())
	tb.Packet(q, 1, t0.UnixNano())
	tb.Close(f)
	tb.Expire(t0.Add(11 * time.Second).UnixNano())
	if tb.Len() != 1 {
		t.Fatalf("after 11 s: %d flows, want only the unanswered one", tb.Len())
	}
	tb.Expire(t0.Add(61 * time.Second).UnixNano())
	if tb.Len() != 0 {
		t.Fatalf("after 61 s: %d flows", tb.Len())
	}
}
