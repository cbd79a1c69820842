package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/floodgen"
)

// Issue 14 in miniature through the CLI: a flood of distinct flows that never decide (SYN +
// 27 bytes of HTTP, more in 250 ms than there are inspection slots) with 6 real XMRig
// sessions through it. Every session is alerted, and the metrics show the flood was looked
// at (every flow's first payload) and deferred, never skipped.
func TestReplayFlood(t *testing.T) {
	flows := 100_000
	if testing.Short() {
		flows = 20_000
	}
	dir := t.TempDir()
	pcap := filepath.Join(dir, "flood.pcap")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	s, err := floodgen.Write(f, floodgen.Options{Flows: flows, Span: time.Second, Sessions: 6, Miner: capDir + "mining-xmrig-login-3333.pcap"})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	prom := filepath.Join(dir, "m.prom")
	out, errs, code := run(t, "replay", "-q", "-o", "json", "--metrics-file", prom, pcap)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	alerted := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			SrcIP string `json:"src_ip"`
			Alert struct {
				MG struct {
					Detector string `json:"detector"`
				} `json:"context"`
			} `json:"alert"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("bad EVE line %q: %v", line, err)
		}
		if ev.Alert.MG.Detector == "stratum" {
			alerted[ev.SrcIP] = true
		}
	}
	for _, c := range s.SessionClients {
		if !alerted[c.Addr().String()] {
			t.Errorf("session from %s not alerted", c)
		}
	}
	if len(alerted) != len(s.SessionClients) {
		t.Errorf("stratum alerts from %d clients, want %d", len(alerted), len(s.SessionClients))
	}
	b, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	metric := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no %s in\n%s", name, b)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	if v := metric(`minerguard_inspect_slotless_total{source="replay"}`); v < float64(flows) {
		t.Errorf("slotless looks %v, want ≥ %d: every flow's first payload is looked at", v, flows)
	}
	if flows >= 100_000 {
		if v := metric(`minerguard_inspect_deferred_total{source="replay"}`); v == 0 {
			t.Error("no flow deferred: the flood did not exhaust the slots")
		}
		if v := metric(`minerguard_inspect_reclaimed_total{reason="age",source="replay"}`); v == 0 {
			t.Error("no slot reclaimed by age")
		}
	}
}
