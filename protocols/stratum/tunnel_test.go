package stratum_test

import (
	"testing"

	"github.com/minerguard/minerguard/protocols/proxy"
	"github.com/minerguard/minerguard/protocols/stratum"
)

// A browser miner behind a WebSocket upgrade: unwrap with the proxy
// package, then the scanner sees newline-separated messages.
func TestWebMinerThroughWebSocket(t *testing.T) {
	client := []byte("GET /ws HTTP/1.1\r\nHost: relay.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	server := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
	msg := []byte(`{"type":"auth","params":{"site_key":"SITEKEY","type":"anonymous","user":null,"goal":0}}`)
	mask := [4]byte{9, 8, 7, 6}
	frame := []byte{0x81, 0x80 | 126, byte(len(msg) >> 8), byte(len(msg))}
	frame = append(frame, mask[:]...)
	for i, c := range msg {
		frame = append(frame, c^mask[i%4])
	}
	client = append(client, frame...)

	tun, st := proxy.Detect(client, server)
	if st != proxy.Done || tun.Kind != proxy.WebSocket {
		t.Fatalf("detect: %v %+v", st, tun)
	}
	var d proxy.WSDecoder
	out, _, err := d.Decode(make([]byte, 0, 4096), client[tun.ClientSkip:])
	if err != nil {
		t.Fatal(err)
	}
	var s stratum.Scanner
	r, sst := s.Scan(out, false)
	if sst != stratum.Match || r.Variant != stratum.VariantWebMiner || r.Login != "SITEKEY" || r.Side != stratum.SideClient {
		t.Fatalf("scan: %v %+v", sst, r)
	}
}
