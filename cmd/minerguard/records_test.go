package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/internal/evetest"
)

// recLine is what the record tests read of an EVE line.
type recLine struct {
	EventType string `json:"event_type"`
	FlowID    uint64 `json:"flow_id"`
	SrcIP     string `json:"src_ip"`
	DestIP    string `json:"dest_ip"`
	DestPort  int    `json:"dest_port"`
	Flow      struct {
		Pkts    uint64 `json:"pkts_toserver"`
		Alerted bool   `json:"alerted"`
		Reason  string `json:"reason"`
		State   string `json:"state"`
	} `json:"flow"`
	DNS struct {
		Type    string              `json:"type"`
		RRName  string              `json:"rrname"`
		Grouped map[string][]string `json:"grouped"`
	} `json:"dns"`
	TLS struct {
		SNI string `json:"sni"`
		JA4 string `json:"ja4"`
	} `json:"tls"`
	Stats struct {
		Decoder struct {
			Pkts uint64 `json:"pkts"`
		} `json:"decoder"`
		Flow struct {
			Total uint64 `json:"total"`
		} `json:"flow"`
	} `json:"stats"`
}

func recLines(t *testing.T, out string) []recLine {
	t.Helper()
	var l []recLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r recLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		l = append(l, r)
	}
	return l
}

func byType(l []recLine, typ string) []recLine {
	var out []recLine
	for _, r := range l {
		if r.EventType == typ {
			out = append(out, r)
		}
	}
	return out
}

// Every record type on, over every bundled capture: each line validates against Suricata's
// schema, and the records say what the captures hold.
func TestReplayAllRecordTypes(t *testing.T) {
	all := captures(t)
	out, errs, code := run(t, append([]string{"replay", "-q", "-o", "json", "--eve-types", "alert,flow,dns,tls,stats"}, all...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if n := evetest.Lines(t, "all types", []byte(out)); n == 0 {
		t.Fatal("no lines")
	}
	l := recLines(t, out)
	stats := byType(l, "stats")
	if len(stats) != 1 || l[len(l)-1].EventType != "stats" {
		t.Fatalf("want one stats record, last: %d", len(stats))
	}
	flows := byType(l, "flow")
	if uint64(len(flows)) != stats[0].Stats.Flow.Total || len(flows) < 20 {
		t.Errorf("%d flow records, stats say %d flows", len(flows), stats[0].Stats.Flow.Total)
	}
	// Every alerted flow has its flow record, marked alerted.
	rec := map[uint64]recLine{}
	for _, f := range flows {
		if _, dup := rec[f.FlowID]; dup {
			t.Errorf("flow %d recorded twice", f.FlowID)
		}
		rec[f.FlowID] = f
	}
	for _, a := range byType(l, "alert") {
		if f, ok := rec[a.FlowID]; !ok || !f.Flow.Alerted || f.Flow.Reason == "" || f.Flow.State == "" {
			t.Errorf("alert on flow %d: flow record %+v (found %v)", a.FlowID, f.Flow, ok)
		}
	}
	// The alerts of the plain run are the alert lines of this one, in the same order.
	plain, _, _ := run(t, append([]string{"replay", "-q", "-o", "json"}, all...)...)
	var alerts []string
	for _, s := range strings.SplitAfter(out, "\n") {
		if strings.Contains(s, `"event_type":"alert"`) || strings.Contains(s, `"event_type":"anomaly"`) {
			alerts = append(alerts, s)
		}
	}
	if strings.Join(alerts, "") != plain {
		t.Errorf("the alert lines differ from a run without records")
	}
}

// dns records are of pool lookups only: the query and its answer naming the pool's address;
// tls records are of every ClientHello.
func TestReplayDNSAndTLSRecords(t *testing.T) {
	out, errs, code := run(t, "replay", "-q", "-o", "json", "--eve-types", "dns,tls",
		capDir+"mining-dns-supportxmr-xmrig-3333.pcap", capDir+"benign-dns-ordinary-names.pcap",
		capDir+"mining-xmrig-tls-sni-supportxmr-443.pcap", capDir+"benign-https-sni-and-http-api.pcap")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	evetest.Lines(t, "dns,tls", []byte(out))
	l := recLines(t, out)
	if n := len(byType(l, "alert")); n != 4 {
		t.Errorf("%d alert lines with --eve-types dns,tls: alerts are always written", n)
	}
	dns := byType(l, "dns")
	if len(dns) != 2 || dns[0].DNS.Type != "query" || dns[1].DNS.Type != "answer" || dns[0].FlowID != dns[1].FlowID {
		t.Fatalf("dns records: %+v", dns)
	}
	for _, d := range dns {
		if d.DNS.RRName != "pool.supportxmr.com" {
			t.Errorf("dns record of %q: only pool lookups are recorded", d.DNS.RRName)
		}
	}
	// The answer is the address the miner then connected to.
	if a := dns[1].DNS.Grouped["A"]; !slices.Contains(a, "10.77.0.2") || dns[1].SrcIP != "10.77.0.2" {
		t.Errorf("answer: grouped %v from %s", a, dns[1].SrcIP)
	}
	tls := byType(l, "tls")
	var snis []string
	for _, r := range tls {
		if r.TLS.JA4 == "" {
			t.Errorf("tls record without ja4: %+v", r)
		}
		snis = append(snis, r.TLS.SNI)
	}
	if len(tls) < 2 || !slices.Contains(snis, "pool.supportxmr.com") {
		t.Errorf("tls records: %v", snis)
	}
}

// --flow-sample N keeps the flow record of one flow in N by flow_id, and of every flow that
// alerted.
func TestReplayFlowSample(t *testing.T) {
	all := captures(t)
	full, _, _ := run(t, append([]string{"replay", "-q", "-o", "json", "--eve-types", "alert,flow"}, all...)...)
	out, errs, code := run(t, append([]string{"replay", "-q", "-o", "json", "--eve-types", "alert,flow", "--flow-sample", "4"}, all...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	every, some := byType(recLines(t, full), "flow"), byType(recLines(t, out), "flow")
	want := 0
	for _, f := range every {
		if f.Flow.Alerted || f.FlowID%4 == 0 {
			want++
		}
	}
	if len(some) != want || want >= len(every) {
		t.Errorf("sampled: %d flow records of %d, want %d", len(some), len(every), want)
	}
	for _, f := range some {
		if !f.Flow.Alerted && f.FlowID%4 != 0 {
			t.Errorf("flow %d recorded: neither alerted nor sampled", f.FlowID)
		}
	}
}

func TestReplayRecordsLogDirAndErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	_, errs, code := run(t, "replay", "-q", "-l", dir, "--eve-types", "alert,stats", capDir+"mining-xmrig-login-3333.pcap")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	eve, _ := os.ReadFile(filepath.Join(dir, "eve.json"))
	l := recLines(t, string(eve))
	evetest.Lines(t, "eve.json", eve)
	if len(l) < 2 || l[len(l)-1].EventType != "stats" || l[len(l)-1].Stats.Decoder.Pkts == 0 {
		t.Errorf("eve.json does not end with a stats record:\n%s", eve)
	}
	if _, err := os.Stat(filepath.Join(dir, "stats.log")); err != nil {
		t.Error(err)
	}
	if _, errs, code := run(t, "replay", "-q", "--eve-types", "alert,http", capDir+"mining-xmrig-login-3333.pcap"); code != 2 || !strings.Contains(errs, `"http"`) {
		t.Errorf("unknown type: exit %d, %s", code, errs)
	}
	// The text table is of findings: records change nothing in it.
	a, _, _ := run(t, "replay", "-q", "-o", "text", capDir+"mining-xmrig-tls-sni-supportxmr-443.pcap")
	b, _, _ := run(t, "replay", "-q", "-o", "text", "--eve-types", "alert,flow,dns,tls", capDir+"mining-xmrig-tls-sni-supportxmr-443.pcap")
	if a != b || a == "" {
		t.Errorf("text differs with records:\n%s\n%s", a, b)
	}
}
