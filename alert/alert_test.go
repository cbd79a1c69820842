package alert

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/evetest"
)

// Vectors from Zeek's community-id test suite.
func TestCommunityID(t *testing.T) {
	a, b := netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("5.6.7.8")
	for _, tc := range []struct {
		proto uint8
		want  string
	}{{6, "1:wCb3OG7yAFWelaUydu0D+125CLM="}, {17, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="}} {
		if got := CommunityID(a, 1122, b, 3344, tc.proto); got != tc.want {
			t.Errorf("proto %d: got %s, want %s", tc.proto, got, tc.want)
		}
		// Direction does not matter.
		if got := CommunityID(b, 3344, a, 1122, tc.proto); got != tc.want {
			t.Errorf("proto %d reversed: got %s, want %s", tc.proto, got, tc.want)
		}
	}
}

func sample() *Event {
	return &Event{
		Timestamp: time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC), FlowID: 7,
		Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dest: netip.MustParseAddrPort("10.0.0.9:3333"),
		Proto: 6, AppProto: "stratum", CommunityID: "1:x", Action: "allowed", SignatureID: 9400001,
		Signature: "MINERGUARD Stratum", Category: "Crypto Currency Mining Activity Detected", Severity: 1,
		Stratum: &Stratum{Method: "login", Agent: "XMRig/6.21.0", Side: "client"},
		MG:      Minerguard{Detector: "stratum", Variant: "cryptonote"},
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	w := NewJSONWriter(&b)
	e := sample()
	e.PcapCnt, e.MG.Capture = 12, "x.pcap"
	e.FlowStart, e.Packets, e.Bytes = e.Timestamp.Add(-time.Second), [2]uint64{3, 1}, [2]uint64{300, 60}
	w.Write(e)
	w.Flush()
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"timestamp": "2026-11-25T12:00:00.123456+0000", "event_type": "alert", "src_ip": "10.0.0.2",
		"src_port": 40000.0, "dest_port": 3333.0, "proto": "TCP", "flow_id": 7.0, "pcap_cnt": 12.0,
		"pcap_filename": "x.pcap", "direction": "to_server", "app_proto": "stratum",
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	al := m["alert"].(map[string]any)
	if al["signature_id"] != 9400001.0 || al["action"] != "allowed" {
		t.Errorf("alert = %v", al)
	}
	ctx := al["context"].(map[string]any)
	if ctx["stratum"].(map[string]any)["agent"] != "XMRig/6.21.0" || ctx["variant"] != "cryptonote" || ctx["detector"] != "stratum" {
		t.Errorf("context = %v", ctx)
	}
	if md := al["metadata"].(map[string]any); md["mitre_technique_id"].([]any)[0] != "T1496" {
		t.Errorf("metadata = %v", md)
	}
	fl := m["flow"].(map[string]any)
	if fl["pkts_toserver"] != 3.0 || fl["pkts_toclient"] != 1.0 || fl["bytes_toserver"] != 300.0 || fl["start"] != "2026-11-25T11:59:59.123456+0000" {
		t.Errorf("flow = %v", fl)
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Error("not one line")
	}
	evetest.Lines(t, "sample", b.Bytes())
}

// Every shape the writer produces validates against Suricata's schema: each optional object
// alone and all together.
func TestJSONSchemaEveryShape(t *testing.T) {
	var b bytes.Buffer
	w := NewJSONWriter(&b)
	full := sample()
	full.Host, full.InIface, full.ToClient, full.Action, full.Severity = "node-1", "eth0", true, "blocked", 3
	full.FlowStart = full.Timestamp
	full.DNS = &DNS{Query: "pool.example", Type: "AAAA"}
	full.TLS = &TLS{SNI: "pool.example", JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1", ALPN: []string{"h2", "http/1.1"}}
	full.MG = Minerguard{Detector: "pool-sni", Variant: "v", Pool: "pool.example", PoolSource: "builtin", Tunnel: "socks5",
		Target: "pool.example:443", Evasion: "escapes", Workload: &Workload{Identity: "k8s/shop/web", Kind: "k8s", Pod: "web-1",
			Namespace: "shop", Container: "abc", Image: "web:1", Node: "node-1", Netns: "/proc/1/ns/net"},
		Profile: &Profile{State: "enforcing", Destination: "pool.example:443/tcp", Resolved: true}}
	bare := &Event{Timestamp: full.Timestamp, Src: full.Src, Dest: full.Dest, Proto: 17, SignatureID: 9400010, MG: Minerguard{Detector: "xdp"}}
	dns := sample()
	dns.Stratum, dns.DNS = nil, &DNS{Query: "pool.example"}
	stats := &Event{Timestamp: full.Timestamp, Host: "node-1", Stats: &Stats{Uptime: 30, KernelPackets: 9, Packets: 8, Alerts: 1}}
	for _, e := range []*Event{full, bare, dns, sample(), stats} {
		w.Write(e)
	}
	w.Flush()
	if n := evetest.Lines(t, "shape", b.Bytes()); n != 5 {
		t.Fatalf("%d lines", n)
	}
	lines := strings.Split(b.String(), "\n")
	var m struct {
		AppProto  string `json:"app_proto"`
		Direction string `json:"direction"`
		DNS       struct {
			Version int
			Queries []struct{ RRName, RRType string }
			Query   []struct{ RRName string }
		}
		TLS map[string]any
	}
	json.Unmarshal([]byte(lines[0]), &m)
	if m.Direction != "to_client" || m.DNS.Version != 3 || m.DNS.Queries[0].RRName != "pool.example" || m.DNS.Queries[0].RRType != "AAAA" ||
		m.DNS.Query[0].RRName != "pool.example" || m.TLS["client_alpns"] == nil || m.TLS["ja4"] == nil {
		t.Errorf("full: %+v\n%s", m, lines[0])
	}
	json.Unmarshal([]byte(lines[1]), &m)
	if m.AppProto != "unknown" || strings.Contains(lines[1], `"flow":`) {
		t.Errorf("bare: %s", lines[1])
	}
}

// flow_id is one value for all of a flow's alerts, whichever way round its ends are given,
// and another for another run (salt), another reuse of the 5-tuple (start) or another
// namespace (scope); it is always positive as a signed 64-bit integer.
func TestFlowHash(t *testing.T) {
	a, b := netip.MustParseAddrPort("10.0.0.2:40000"), netip.MustParseAddrPort("10.0.0.9:3333")
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	id := FlowHash(1, 2, a, b, 6, t0)
	if id != FlowHash(1, 2, b, a, 6, t0) {
		t.Error("depends on the order of the ends")
	}
	seen := map[uint64]string{id: "base"}
	for name, other := range map[string]uint64{
		"salt": FlowHash(3, 2, a, b, 6, t0), "scope": FlowHash(1, 5, a, b, 6, t0), "start": FlowHash(1, 2, a, b, 6, t0.Add(time.Microsecond)),
		"proto": FlowHash(1, 2, a, b, 17, t0), "port": FlowHash(1, 2, a, netip.AddrPortFrom(b.Addr(), 3334), 6, t0),
	} {
		if prev, dup := seen[other]; dup {
			t.Errorf("%s gives the same id as %s", name, prev)
		}
		seen[other] = name
	}
	if n := testing.AllocsPerRun(100, func() { FlowHash(1, 2, a, b, 6, t0) }); n != 0 {
		t.Errorf("%v allocations per id", n)
	}
	for i := range uint64(10000) {
		if h := FlowHash(i, 0, a, b, 6, t0); h == 0 || h >= 1<<63 {
			t.Fatalf("salt %d: id %d not a positive int64", i, h)
		}
	}
}

func TestTextGroupsByFlow(t *testing.T) {
	var b bytes.Buffer
	w := NewTextWriter(&b)
	e := sample()
	w.Write(e)
	e2 := *e
	e2.MG.Detector, e2.MG.Pool, e2.Stratum = "pool-ip", "pool.supportxmr.com", nil
	w.Write(&e2)
	w.Flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "stratum,pool-ip") || !strings.Contains(lines[1], "pool.supportxmr.com") ||
		!strings.Contains(lines[1], `agent="XMRig/6.21.0"`) || lines[2] != "2 alerts on 1 flow" || strings.HasPrefix(lines[0], "FILE") {
		t.Fatalf("table:\n%s", b.String())
	}
}

// A record (encrypted DNS) is an EVE anomaly line that Suricata's schema accepts.
func TestAnomalyRecordValidates(t *testing.T) {
	var b bytes.Buffer
	w := NewJSONWriter(&b)
	e := &Event{EventType: "anomaly", Anomaly: &Anomaly{Type: "applayer", Event: "ENCRYPTED_DNS", Layer: "proto_detect", AppProto: "tls"},
		Timestamp: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), FlowID: 7, Proto: 6, AppProto: "tls",
		Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dest: netip.MustParseAddrPort("10.5.5.5:853"),
		TLS: &TLS{SNI: "dns.example"}, MG: Minerguard{Detector: "doh", EncryptedDNS: "dot"}}
	if err := w.Write(e); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if n := evetest.Lines(t, "anomaly record", b.Bytes()); n != 1 {
		t.Fatalf("%d lines", n)
	}
	if !strings.Contains(b.String(), `"event_type":"anomaly"`) || strings.Contains(b.String(), `"alert"`) {
		t.Fatalf("line: %s", b.String())
	}
}
