package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/internal/evetest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current output")

// run executes the CLI in-process and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return out.String(), errb.String(), code
}

type eveLine struct {
	SrcIP    string `json:"src_ip"`
	SrcPort  int    `json:"src_port"`
	DestIP   string `json:"dest_ip"`
	DestPort int    `json:"dest_port"`
	Proto    string `json:"proto"`
	Alert    struct {
		SignatureID int `json:"signature_id"`
		MG          struct {
			Detector string `json:"detector"`
			Variant  string `json:"variant"`
		} `json:"context"`
	} `json:"alert"`
}

func parseEVE(t *testing.T, s string) []eveLine {
	t.Helper()
	var out []eveLine
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var l eveLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad EVE line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func captures(t *testing.T) []string {
	m, err := filepath.Glob("../../testdata/captures/*.pcap*")
	if err != nil || len(m) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	return m
}

// TestGolden replays every bundled capture and compares the alert JSON with its golden file.
func TestGolden(t *testing.T) {
	for _, c := range captures(t) {
		name := filepath.Base(c)
		t.Run(name, func(t *testing.T) {
			out, errs, code := run(t, "replay", "-q", "-o", "json", c)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			// Alerts name the capture as given on the command line; make that path repo-relative.
			out = strings.ReplaceAll(out, `"pcap_filename":"../../`, `"pcap_filename":"`)
			// Every line is EVE as Suricata's schema has it, so a SIEM built for Suricata takes it.
			if n := evetest.Lines(t, name, []byte(out)); strings.HasPrefix(name, "mining-") && n == 0 {
				t.Errorf("no alert line to validate")
			}
			golden := filepath.Join("../../testdata/golden", name+".json")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run `make golden` to create it)", err)
			}
			if out != string(want) {
				t.Errorf("alerts differ from %s (make golden rewrites it):\n got:\n%s\nwant:\n%s", golden, out, want)
			}
			alerts := parseEVE(t, out)
			if strings.HasPrefix(name, "benign-") && len(alerts) > 0 {
				t.Errorf("benign capture raised %d alerts: %s", len(alerts), out)
			}
			if strings.HasPrefix(name, "mining-") && len(alerts) == 0 {
				t.Errorf("mining capture raised no alert")
			}
		})
	}
}

// TestExpected checks every row of testdata/captures/EXPECTED.tsv: each mining flow or pool
// lookup has an alert with its own 5-tuple and detector (or stratum variant), and benign
// captures have none.
func TestExpected(t *testing.T) {
	b, err := os.ReadFile("../../testdata/captures/EXPECTED.tsv")
	if err != nil {
		t.Skipf("no EXPECTED.tsv: %v", err)
	}
	byFile := map[string][]eveLine{}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if i == 0 && f[0] == "file" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(f) != 7 {
			t.Fatalf("EXPECTED.tsv line %d: %d fields", i+1, len(f))
		}
		alerts, ok := byFile[f[0]]
		if !ok {
			out, errs, code := run(t, "replay", "-q", "-o", "json", filepath.Join("../../testdata/captures", f[0]))
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", f[0], code, errs)
			}
			alerts = parseEVE(t, out)
			byFile[f[0]] = alerts
		}
		if f[6] == "benign" {
			if len(alerts) != 0 {
				t.Errorf("%s: benign, but %d alerts: %+v", f[0], len(alerts), alerts)
			}
			continue
		}
		found := false
		for _, a := range alerts {
			if strings.EqualFold(a.Proto, f[1]) && a.SrcIP == f[2] && itoa(a.SrcPort) == f[3] && a.DestIP == f[4] &&
				itoa(a.DestPort) == f[5] && (a.Alert.MG.Detector == f[6] || a.Alert.MG.Variant == f[6]) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no %s alert for %s %s:%s -> %s:%s; got %+v", f[0], f[6], f[1], f[2], f[3], f[4], f[5], alerts)
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// --redact-login hides the wallet wherever the alert would carry it, and the line stays EVE.
func TestRedactLogin(t *testing.T) {
	c := "../../testdata/captures/mining-xmrig-login-3333.pcap"
	plain, _, code := run(t, "replay", "-q", "-o", "json", c)
	if code != 0 || !strings.Contains(plain, `"login":"`) {
		t.Fatalf("exit %d, no login in the plain output:\n%s", code, plain)
	}
	var a struct {
		Alert struct {
			Context struct {
				Stratum struct{ Login string } `json:"stratum"`
			} `json:"context"`
		} `json:"alert"`
	}
	for _, l := range strings.Split(plain, "\n") {
		if json.Unmarshal([]byte(l), &a); a.Alert.Context.Stratum.Login != "" {
			break
		}
	}
	wallet := a.Alert.Context.Stratum.Login
	if len(wallet) < 8 {
		t.Fatalf("login %q", wallet)
	}
	out, errs, code := run(t, "replay", "-q", "-o", "json", "--redact-login", c)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out, wallet) || !strings.Contains(out, `"login":"REDACTED"`) {
		t.Errorf("redacted output:\n%s", out)
	}
	evetest.Lines(t, "redacted", []byte(out))
}
