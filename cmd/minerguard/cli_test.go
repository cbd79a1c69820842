package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/internal/evetest"
)

const capDir = "../../testdata/captures/"

func TestReplayExitCodes(t *testing.T) {
	_, _, code := run(t, "replay", "-q", "-o", "json", capDir+"benign-dns-ordinary-names.pcap")
	if code != 0 {
		t.Errorf("benign: exit %d", code)
	}
	out, _, code := run(t, "replay", "-q", "-o", "json", "--fail-on", "alert", capDir+"mining-xmrig-login-3333.pcap")
	if code != 1 || len(parseEVE(t, out)) == 0 {
		t.Errorf("--fail-on alert with a miner: exit %d, %d alerts", code, len(parseEVE(t, out)))
	}
	_, _, code = run(t, "replay", "-q", "--fail-on", "alert", "-o", "json", capDir+"benign-dns-ordinary-names.pcap")
	if code != 0 {
		t.Errorf("--fail-on alert, benign: exit %d", code)
	}
	for _, args := range [][]string{
		{"replay", "-o", "xml", capDir + "benign-dns-ordinary-names.pcap"},
		{"replay", "--fail-on", "warning", capDir + "benign-dns-ordinary-names.pcap"},
		{"replay", "--max-flows", "0", capDir + "benign-dns-ordinary-names.pcap"},
		{"replay"},
		{"replay", filepath.Join(t.TempDir(), "none-*.pcap")},
	} {
		if _, errs, code := run(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// docs/testing.md M2 through the CLI: a damaged or foreign file gets a one-line reason and exit
// 2, the other files are still replayed, and the packets before the damage are still analysed.
func TestReplayBadFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(capDir + "mining-xmrig-login-3333.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, good[:len(good)-5], 0o644)
	notcap := filepath.Join(dir, "notes.txt")
	os.WriteFile(notcap, []byte("hello, not a capture\n"), 0o644)
	out, errs, code := run(t, "replay", "-q", "-o", "json", notcap, dir, cut)
	if code != 2 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"notes.txt: not a pcap or pcapng file", "cut.pcap: truncated after"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	// The directory is searched for captures (cut.pcap, not notes.txt), as suricata -r DIR.
	if n := strings.Count(errs, "cut.pcap: truncated after"); n != 2 {
		t.Errorf("cut.pcap reported %d times, want 2 (by name and in its directory):\n%s", n, errs)
	}
	if n := len(parseEVE(t, out)); n == 0 {
		t.Errorf("nothing reported from before the damage")
	}
}

func TestReplayStdinAndText(t *testing.T) {
	f, err := os.Open(capDir + "mining-dns-supportxmr-xmrig-3333.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	out, errs, code := run(t, "replay", "-o", "text", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// One row per flow, a file column, and the alert count the summary has (3 alerts, 2 flows).
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "FILE") || !strings.HasPrefix(lines[1], "stdin  ") ||
		lines[3] != "3 alerts on 2 flows" || !strings.Contains(errs, " 3 alerts (") || !strings.Contains(out, "pool-dns") ||
		!strings.Contains(out, "stratum") || !strings.Contains(out, "pool.supportxmr.com") {
		t.Errorf("text output:\n%s", out)
	}
	if !strings.Contains(errs, "alerts (") {
		t.Errorf("no summary on stderr: %q", errs)
	}
}

func TestReplayMetricsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.prom")
	if _, errs, code := run(t, "replay", "-q", "-o", "json", "--metrics-file", p, capDir+"mining-xmrig-login-3333.pcap"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `minerguard_detections_total{action="flag",detector="stratum",source="replay"} 1`) {
		t.Errorf("metrics:\n%s", b)
	}
}

func TestIntelCheck(t *testing.T) {
	out, _, code := run(t, "intel", "check", "eu.pool.supportxmr.com", "example.com", "1.1.1.1:443")
	if code != 1 || !strings.Contains(out, "eu.pool.supportxmr.com\tlisted\tpool") ||
		!strings.Contains(out, "example.com\tnot listed") || !strings.Contains(out, "1.1.1.1:443\tlisted\tdoh") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if _, _, code := run(t, "intel", "check", "example.com"); code != 0 {
		t.Errorf("nothing listed: exit %d", code)
	}
}

// As suricata -r DIR -l LOG: a directory is searched recursively for captures, the alerts go
// to LOG/eve.json (valid EVE, appended) and the counters to LOG/stats.log.
func TestReplayDirAndLogDir(t *testing.T) {
	in := t.TempDir()
	for _, f := range []string{"mining-xmrig-login-3333.pcap", "mining-dns-supportxmr-xmrig-3333.pcap"} {
		b, err := os.ReadFile(capDir + f)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(in, "a", "b"), 0o755)
		os.WriteFile(filepath.Join(in, "a", "b", f), b, 0o644)
	}
	os.WriteFile(filepath.Join(in, "a", "notes.txt"), []byte("not a capture"), 0o644)
	logDir := filepath.Join(t.TempDir(), "log")
	out, errs, code := run(t, "replay", "-q", "-l", logDir, in)
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q: %s", code, out, errs)
	}
	eve, err := os.ReadFile(filepath.Join(logDir, "eve.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := run(t, "replay", "-q", "-o", "json", filepath.Join(in, "a", "b", "mining-dns-supportxmr-xmrig-3333.pcap"),
		filepath.Join(in, "a", "b", "mining-xmrig-login-3333.pcap"))
	if string(eve) != want || evetest.Lines(t, "eve.json", eve) == 0 {
		t.Errorf("eve.json:\n%s\nwant (the two files in lexical order):\n%s", eve, want)
	}
	stats, _ := os.ReadFile(filepath.Join(logDir, "stats.log"))
	n := strings.Count(want, "\n")
	if !strings.Contains(string(stats), "detect.alert                                  | Total                     | "+itoa(n)+"\n") {
		t.Errorf("stats.log lacks detect.alert %d:\n%s", n, stats)
	}
	// A second run appends, as Suricata does.
	run(t, "replay", "-q", "-l", logDir, in)
	if eve2, _ := os.ReadFile(filepath.Join(logDir, "eve.json")); len(eve2) != 2*len(eve) {
		t.Errorf("second run: %d bytes, want %d", len(eve2), 2*len(eve))
	}
	if _, errs, code := run(t, "replay", "-q", filepath.Join(in, "a", "b", "..", "..", "a", "b", "x")); code != 2 || errs == "" {
		t.Errorf("missing file: exit %d", code)
	}
	empty := t.TempDir()
	if _, errs, code := run(t, "replay", "-q", empty); code != 2 || !strings.Contains(errs, "no capture files") {
		t.Errorf("empty dir: exit %d, %s", code, errs)
	}
}
