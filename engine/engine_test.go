package engine

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
)

const xmrigLogin = `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0","algo":["rx/0","cn/r"]}}` + "\n"

func TestStratumAlertOnce(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, poolEP)
	x.client(xmrigLogin, 7) // tiny MTU: many segments
	x.server(`{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"1","job":{"blob":"0707","job_id":"a","target":"b88d0600"},"status":"OK"}}` + "\n")
	x.client(`{"id":2,"jsonrpc":"2.0","method":"submit","params":{"id":"1","job_id":"a","nonce":"01000000","result":"00"}}`+"\n", 1500)
	feed(e, x.frames)
	if len(c.events) != 1 {
		t.Fatalf("%d alerts, want 1: %+v", len(c.events), c.events)
	}
	ev := c.events[0]
	if ev.SignatureID != detect.ReasonStratum.SignatureID() || ev.Src.String() != "10.0.0.2:40000" || ev.Dest.String() != "10.9.9.9:3333" ||
		ev.Stratum == nil || ev.Stratum.Method != "login" || !strings.HasPrefix(ev.Stratum.Agent, "XMRig/6.21.0") || ev.MG.Variant != "cryptonote" {
		t.Fatalf("alert: %+v %+v", ev, ev.Stratum)
	}
	if st := e.Stats(); st.Bypassed != 1 {
		t.Errorf("flow not bypassed after classification: %+v", st)
	}
}

// Retransmitted and reordered segments still give exactly one alert, from the reassembled bytes.
func TestStratumReorderedRetransmitted(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, poolEP)
	x.client(`{"id": 1, "method": "mining.subscribe", "params": ["cpuminer-multi/1.3.7"]}`+"\n", 5)
	hs, data := x.frames[:3], x.frames[3:]
	var frames [][]byte
	frames = append(frames, hs...)
	for i := len(data) - 1; i >= 0; i-- { // reverse order
		frames = append(frames, data[i], data[i]) // and every segment twice
	}
	feed(e, frames)
	if len(c.events) != 1 || c.events[0].Stratum.Agent != "cpuminer-multi/1.3.7" {
		t.Fatalf("alerts: %+v", c.events)
	}
}

func dnsQuery(t testing.TB, name string, id uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dnsAnswer(t testing.TB, name, ip string, id uint16) []byte {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q.Id = id
	m := new(dns.Msg)
	m.SetReply(q)
	rr, err := dns.NewRR(fmt.Sprintf("%s 300 IN A %s", dns.Fqdn(name), ip))
	if err != nil {
		t.Fatal(err)
	}
	m.Answer = append(m.Answer, rr)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A DNS lookup of a pool gives pool-dns on the DNS flow, and the later connection to the
// answered address gives pool-ip naming the pool, plus stratum: each with its own 5-tuple.
func TestDNSThenPool(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	resolver := endpoint{"10.0.0.53", 53}
	cl := endpoint{"10.0.0.2", 51000}
	frames := [][]byte{
		udpFrame(t, cl, resolver, dnsQuery(t, "pool.supportxmr.com", 7)),
		udpFrame(t, resolver, cl, dnsAnswer(t, "pool.supportxmr.com", "10.9.9.9", 7)),
	}
	x := newSession(t, client, endpoint{"10.9.9.9", 443})
	x.client(xmrigLogin, 1500)
	feed(e, append(frames, x.frames...))
	got := map[string]string{}
	for _, ev := range c.events {
		got[ev.MG.Detector] = ev.Src.String() + ">" + ev.Dest.String() + " " + ev.MG.Pool
	}
	want := map[string]string{
		"pool-dns": "10.0.0.2:51000>10.0.0.53:53 pool.supportxmr.com",
		"pool-ip":  "10.0.0.2:40000>10.9.9.9:443 pool.supportxmr.com",
		"stratum":  "10.0.0.2:40000>10.9.9.9:443 ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alerts:\n got %v\nwant %v", got, want)
	}
	for _, ev := range c.events {
		if ev.MG.Detector == "pool-dns" && (ev.DNS == nil || ev.DNS.Query != "pool.supportxmr.com" || ev.DNS.Type != "A") {
			t.Errorf("pool-dns alert without its query: %+v", ev.DNS)
		}
	}
}

// Benign JSON-RPC to an Ethereum node is not mining and leaves no alert.
func TestBenignJSONRPC(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, endpoint{"10.9.9.8", 8545})
	body := `{"jsonrpc":"2.0","method":"eth_getBlockByNumber","params":["latest",false],"id":1}`
	x.client(fmt.Sprintf("POST / HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body), 1500)
	x.server("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1\"}\n")
	feed(e, x.frames)
	if len(c.events) != 0 {
		t.Fatalf("alerts on benign traffic: %+v", c.events)
	}
}

// docs/testing.md M1: malformed packets are counted exactly and never crash the engine.
func TestMalformedCounted(t *testing.T) {
	e := newEngine(&collect{})
	good := tcpFrame(t, client, poolEP, 1, 0, true, false, false, nil)
	var bad [][]byte
	ihl := append([]byte(nil), good...)
	ihl[14] = 0x44 // IHL 4 < 5
	bad = append(bad, ihl)
	doff := append([]byte(nil), good...)
	doff[14+20+12] = 0xf0 // data offset 60 bytes, past the end
	bad = append(bad, doff)
	bad = append(bad, []byte{}, good[:20], good[:14+10])
	for _, b := range bad {
		e.Packet(flow.LinkEthernet, b, epoch, 1)
	}
	e.Packet(flow.LinkEthernet, good, epoch, 1)
	e.Packet(flow.LinkEthernet, make([]byte, 65536), epoch, 1) // 64 KiB of zeros: ethertype 0, unsupported
	st := e.Stats()
	if got := st.DecodeErrorsTotal(); got != uint64(len(bad)) {
		t.Fatalf("decode errors %d, want %d (%v)", got, len(bad), st.Decode[:12])
	}
	if st.Packets != uint64(len(bad)+2) || st.Flow.Created != 1 {
		t.Fatalf("packets %d flows %d", st.Packets, st.Flow.Created)
	}
}

// A pool reached by an IP literal from the built-in list is flagged without any payload.
func TestListedPoolAddress(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	addr := firstBuiltinAddr(t)
	x := newSession(t, client, endpoint{addr.Addr().String(), addr.Port()})
	feed(e, x.frames)
	if len(c.events) != 1 || c.events[0].MG.Detector != "pool-ip" || c.events[0].MG.PoolSource != "maltrail" {
		t.Fatalf("alerts: %+v", c.events)
	}
}

func firstBuiltinAddr(t *testing.T) netip.AddrPort {
	// 107.191.47.239:3333 is listed by maltrail (see intel/builtin/addrs.txt).
	return netip.MustParseAddrPort("107.191.47.239:3333")
}

// Stratum on TCP port 53 is still Stratum: the DNS parser does not shadow the others.
func TestStratumOnPort53(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, endpoint{"10.9.9.9", 53})
	x.client(xmrigLogin, 1500)
	feed(e, x.frames)
	if len(c.events) != 1 || c.events[0].MG.Detector != "stratum" {
		t.Fatalf("alerts: %+v", c.events)
	}
}

// DNS over TCP (length-prefixed, two messages in one stream) is parsed like UDP.
func TestDNSOverTCP(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	q1, q2 := dnsQuery(t, "example.org", 1), dnsQuery(t, "xmr.2miners.com", 2)
	frame := func(b []byte) string { return string([]byte{byte(len(b) >> 8), byte(len(b))}) + string(b) }
	x := newSession(t, client, endpoint{"10.0.0.53", 53})
	x.client(frame(q1)+frame(q2), 7)
	feed(e, x.frames)
	if len(c.events) != 1 || c.events[0].MG.Detector != "pool-dns" || c.events[0].DNS.Query != "xmr.2miners.com" {
		t.Fatalf("alerts: %+v", c.events)
	}
}

// Stratum V2 over Noise: 64 bytes from the client, 170 back, and nothing readable.
func TestSV2FirstFlight(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, endpoint{"10.9.9.9", 34254})
	x.client(strings.Repeat("\x8a", 64), 1500)
	x.server(strings.Repeat("\x5c", 170))
	x.client(strings.Repeat("\x11", 300), 1500)
	feed(e, x.frames)
	if len(c.events) != 1 || c.events[0].MG.Detector != "stratum-v2" || c.events[0].MG.Variant != "stratum-v2" {
		t.Fatalf("alerts: %+v", c.events)
	}
	// Any other first flight is not SV2.
	c2 := &collect{}
	e2 := newEngine(c2)
	y := newSession(t, client, endpoint{"10.9.9.9", 34254})
	y.client(strings.Repeat("\x8a", 65), 1500)
	y.server(strings.Repeat("\x5c", 170))
	feed(e2, y.frames)
	if len(c2.events) != 0 {
		t.Fatalf("65/170 flagged: %+v", c2.events)
	}
}

// A SOCKS5 tunnel to a pool name carries the name: the flow is flagged pool-ip by name and
// the Stratum inside is found, with the tunnel in the alert.
func TestSOCKS5ToPoolName(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, endpoint{"10.0.0.8", 1080})
	x.client("\x05\x01\x00", 1500)
	x.server("\x05\x00")
	host := "pool.supportxmr.com"
	x.client("\x05\x01\x00\x03"+string([]byte{byte(len(host))})+host+"\x0d\x05", 1500)
	x.server("\x05\x00\x00\x01\x0a\x00\x00\x08\x04\x38")
	x.client(xmrigLogin, 1500)
	feed(e, x.frames)
	got := map[string]bool{}
	for _, ev := range c.events {
		got[ev.MG.Detector] = true
		if ev.MG.Tunnel != "socks5" || ev.MG.Target != "pool.supportxmr.com:3333" {
			t.Errorf("tunnel not in alert: %+v", ev.MG)
		}
	}
	if !got["stratum"] || !got["pool-ip"] || len(c.events) != 2 {
		t.Fatalf("alerts: %+v", c.events)
	}
}

// A WebSocket tunnel whose messages exceed the unwrap buffer is counted, not silently cut.
// (The buffer equals the default stream depth, so only a deeper stream can fill it.)
func TestWebSocketBufferFullCounted(t *testing.T) {
	e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: &collect{}, Flow: flow.Config{StreamDepth: 256 << 10}})
	x := newSession(t, client, endpoint{"10.9.9.9", 8080})
	x.client("GET / HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 1500)
	x.server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	// Unmasked text frames of 60,000 bytes each (16-bit length): two fill the 64 KiB buffer.
	frame := "\x81\x7e\xea\x60" + strings.Repeat("a", 60000)
	x.client(frame+frame+frame, 1400)
	feed(e, x.frames)
	if got := e.Stats().WSBufferFull; got != 1 {
		t.Fatalf("WSBufferFull = %d, want 1", got)
	}
}

// An evicted flow's detail is reused for a later flow with nothing of the old flow in it: a
// DNS lookup of an ordinary name, given the detail of a Stratum session, is no mining flow.
func TestDetailRecycledClean(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, poolEP)
	x.client(xmrigLogin, 1500)
	feed(e, x.frames)
	if len(c.events) != 1 || c.events[0].MG.Detector != "stratum" {
		t.Fatalf("alerts %+v, want one stratum", c.events)
	}
	later := epoch.Add(time.Hour)
	e.Tick(later) // the session is idle past every timeout: evicted
	if len(e.dets) != 1 {
		t.Fatalf("%d recycled details after the eviction, want 1", len(e.dets))
	}
	resolver, cl := endpoint{"10.0.0.53", 53}, endpoint{"10.0.0.3", 52000}
	e.Packet(flow.LinkEthernet, udpFrame(t, cl, resolver, dnsQuery(t, "www.example.org", 9)), later, 1)
	if len(e.dets) != 0 {
		t.Fatalf("the lookup did not take the recycled detail (%d left)", len(e.dets))
	}
	if len(c.events) != 1 {
		t.Fatalf("the lookup alerted with the old flow's facts: %+v", c.events[1:])
	}
	e.Flush()
	if st := e.Stats(); st.Alerts[detect.ReasonStratum] != 1 || st.FlowsEnded != 2 {
		t.Errorf("stats %+v", st)
	}
}
