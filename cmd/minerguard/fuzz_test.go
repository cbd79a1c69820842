package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/intel"
	"github.com/minerguard/minerguard/profile"
)

// FuzzReplay feeds arbitrary pcap/pcapng bytes through replay's own pipeline: the capture
// reader (replayFile), the engine with every detector and a learning profile book, and the
// JSON alert encoder. A bad file is an error, never a panic; every alert is one JSON line.
// The per-decoder targets fuzz each parser alone; this one fuzzes their composition.
func FuzzReplay(f *testing.F) {
	// The small bundled captures (a few KiB each) as seeds: real link types, pcapng, gzip.
	for _, name := range []string{
		"benign-dns-ordinary-names.pcap", "mining-evasion-midstream-5555.pcap", "mining-xmrig-login-3333.pcap.gz",
		"mining-stratum-lib-443.pcap", "mining-http-connect-stratum-8888.pcap", "mining-webminer-ws-8892.pcap",
		"mining-stratum-client-3333.pcapng", "mining-dns-2miners-stratum-client-4444.pcap",
	} {
		b, err := os.ReadFile(filepath.Join("../../testdata/captures", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	set := intel.Builtin() // read-only once built: shared by every run
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		p := filepath.Join(t.TempDir(), "in.pcap")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		sink := &sinkWriter{w: alert.NewJSONWriter(&out)}
		book := profile.NewMemory(profile.Config{})
		wm, err := parseWorkloads([]string{"10.0.0.0/8=lan", "192.168.0.0/16=home"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		eng := engine.New(engine.Options{Detector: detect.New(set, detect.ModeMonitor), Sink: sink,
			Profiles: book, Workload: wm.of, NameScope: wm.nameScope})
		_ = replayFile(eng, nil, p, 0, false, io.Discard) // a damaged file is an error, fine
		eng.Flush()
		if err := sink.w.Flush(); err != nil || sink.err != nil {
			t.Fatalf("writing alerts: %v %v", err, sink.err)
		}
		lines := 0
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if l == "" {
				continue
			}
			lines++
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("alert line is not JSON: %v: %q", err, l)
			}
			if _, err := netip.ParseAddr(m["src_ip"].(string)); err != nil {
				t.Fatalf("alert src_ip: %v", err)
			}
		}
		if lines != sink.n {
			t.Fatalf("%d alerts, %d lines", sink.n, lines)
		}
	})
}
