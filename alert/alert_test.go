package alert

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
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
	w.Write(sample())
	w.Flush()
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"timestamp": "2026-11-25T12:00:00.123456+0000", "event_type": "alert", "src_ip": "10.0.0.2",
		"src_port": 40000.0, "dest_port": 3333.0, "proto": "TCP", "flow_id": 7.0,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	al := m["alert"].(map[string]any)
	if al["signature_id"] != 9400001.0 || al["action"] != "allowed" {
		t.Errorf("alert = %v", al)
	}
	if m["stratum"].(map[string]any)["agent"] != "XMRig/6.21.0" || m["minerguard"].(map[string]any)["variant"] != "cryptonote" {
		t.Errorf("extras = %v %v", m["stratum"], m["minerguard"])
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Error("not one line")
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
	if len(lines) != 2 || !strings.Contains(lines[1], "stratum,pool-ip") || !strings.Contains(lines[1], "pool.supportxmr.com") ||
		!strings.Contains(lines[1], `agent="XMRig/6.21.0"`) {
		t.Fatalf("table:\n%s", b.String())
	}
}
