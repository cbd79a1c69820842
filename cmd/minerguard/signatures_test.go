package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every signature an alert can carry is listed once, with a meaning.
func TestSignaturesList(t *testing.T) {
	out, errs, code := run(t, "signatures", "-o", "json")
	var rows []signature
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	seen := map[int]bool{}
	for _, r := range rows {
		if seen[r.ID] || r.Meaning == "" || r.Detector == "" || r.Detector == "unknown" || !strings.HasPrefix(r.Name, "MINERGUARD ") {
			t.Errorf("row %+v (duplicate %v)", r, seen[r.ID])
		}
		seen[r.ID] = true
	}
	for id := 9400001; id <= 9400011; id++ {
		if !seen[id] {
			t.Errorf("signature %d not listed", id)
		}
	}
	if text, _, _ := run(t, "signatures"); !strings.Contains(text, "9400009  unresolved-ip") {
		t.Errorf("text:\n%s", text)
	}
}

// A threshold file tunes replay's alerts: suppressed signatures are not written and do not
// make --fail-on alert fail; a bad rule is refused with its line.
func TestReplayThresholdFile(t *testing.T) {
	c := capDir + "mining-dns-supportxmr-xmrig-3333.pcap"
	dir := t.TempDir()
	write := func(name, rules string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	all, _, _ := run(t, "replay", "-q", "-o", "json", c)
	if !strings.Contains(all, `"signature_id":9400004`) {
		t.Fatalf("no pool-ip alert to suppress:\n%s", all)
	}
	f := write("one.config", "# keep the pool-dns and stratum alerts\nsuppress gen_id 1, sig_id 9400004, track by_dst, ip 10.77.0.0/24\n")
	out, errs, code := run(t, "replay", "-o", "json", "--threshold-file", f, c)
	if code != 0 || strings.Contains(out, `"signature_id":9400004`) || !strings.Contains(out, `"signature_id":9400001`) ||
		!strings.Contains(errs, "1 alerts suppressed") {
		t.Errorf("exit %d, stderr %s:\n%s", code, errs, out)
	}
	f = write("all.config", "suppress gen_id 0, sig_id 0\n")
	if out, _, code := run(t, "replay", "-q", "-o", "json", "--fail-on", "alert", "--threshold-file", f, c); code != 0 || out != "" {
		t.Errorf("everything suppressed: exit %d, %q", code, out)
	}
	f = write("bad.config", "suppress gen_id 1, sig_id 9400004\nthreshold gen_id 1, sig_id 9400001, type limit\n")
	if _, errs, code := run(t, "replay", "-q", "--threshold-file", f, c); code != 2 || !strings.Contains(errs, "bad.config:2: threshold needs") {
		t.Errorf("bad file: exit %d, %s", code, errs)
	}
}
