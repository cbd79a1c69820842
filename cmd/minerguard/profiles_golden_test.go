package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/evetest"
	"github.com/minerguard/minerguard/profile"
)

const profData = "../../testdata/profiles"

// expectedViolations reads an EXPECTED tsv of testdata/profiles as "workload proto src:sport > dst:dport" rows.
func expectedViolations(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(profData, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if i == 0 || strings.HasPrefix(line, "#") || len(f) < 6 {
			continue
		}
		out = append(out, f[0]+" "+strings.ToLower(f[1])+" "+f[2]+":"+f[3]+" > "+f[4]+":"+f[5])
	}
	sort.Strings(out)
	return out
}

type profAlert struct {
	eveLine
	Alert struct { // shadows eveLine.Alert
		MGX struct {
			Detector string `json:"detector"`
			Workload *struct {
				Identity string `json:"identity"`
			} `json:"workload"`
			Profile *struct {
				Destination string `json:"destination"`
			} `json:"profile"`
		} `json:"context"`
	} `json:"alert"`
}

// violations replays file against the state and returns its out-of-profile flows and all alerts.
func violations(t *testing.T, state, file string) ([]string, int) {
	t.Helper()
	out, errs, code := run(t, "replay", "-q", "-o", "json", "--profiles", state,
		"--workload-file", filepath.Join(profData, "workloads.txt"), filepath.Join(profData, file))
	if code != 0 {
		t.Fatalf("replay %s: exit %d: %s", file, code, errs)
	}
	evetest.Lines(t, file, []byte(out)) // workload and profile context are EVE too
	var got []string
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		n++
		var a profAlert
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("bad EVE line %q: %v", line, err)
		}
		if a.Alert.MGX.Detector != "egress-not-in-profile" {
			continue
		}
		if a.Alert.MGX.Workload == nil || a.Alert.MGX.Profile == nil || a.Alert.MGX.Profile.Destination == "" {
			t.Errorf("violation without workload or destination: %s", line)
			continue
		}
		got = append(got, a.Alert.MGX.Workload.Identity+" "+strings.ToLower(a.Proto)+" "+a.SrcIP+":"+itoa(a.SrcPort)+" > "+a.DestIP+":"+itoa(a.DestPort))
	}
	sort.Strings(got)
	return got, n
}

// Learn a few workloads from one capture, then check later captures: the miner that one
// workload starts later (a new name and port; TLS to a bare address) is exactly what is
// reported; the ordinary later traffic of every workload, including a CDN name whose address
// rotated and a replica that did not talk during learning, is not. The L1 variant learns from
// a capture where the miner already runs: none of its destinations may be learned.
func TestProfilesReplay(t *testing.T) {
	for _, baseline := range []string{"baseline.pcap", "baseline-l1-miner.pcap"} {
		t.Run(baseline, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "profiles.db")
			_, errs, code := run(t, "replay", "-o", "json", "--learn", "--profiles", state,
				"--workload-file", filepath.Join(profData, "workloads.txt"), filepath.Join(profData, baseline))
			if code != 0 {
				t.Fatalf("learn: exit %d: %s", code, errs)
			}
			for _, w := range []string{"web", "api", "worker"} {
				if !strings.Contains(errs, "learned "+w+":") {
					t.Errorf("no profile learned for %s: %s", w, errs)
				}
			}
			got, _ := violations(t, state, "later.pcap")
			want := expectedViolations(t, "EXPECTED.tsv")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("later.pcap violations\n got %q\nwant %q", got, want)
			}
			got, n := violations(t, state, "later-benign.pcap")
			if len(got) != 0 || n != 0 {
				t.Errorf("later-benign.pcap: %d alerts, violations %q", n, got)
			}
			b, err := profile.Open(state, profile.Config{}, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			p, ok := b.Get("worker")
			if !ok || p.State != profile.Monitoring {
				t.Fatalf("worker profile %+v", p)
			}
			for _, e := range p.Entries {
				if s := e.String(); strings.Contains(s, "metrics-cache") || strings.Contains(s, "10.88.9.66") || strings.Contains(s, "10.88.9.77") {
					t.Errorf("miner destination learned: %s", s)
				}
			}
		})
	}
}

// A checking replay never writes the state: running it twice gives the same answer, and the
// file is unchanged.
func TestProfilesReplayReadOnly(t *testing.T) {
	state := filepath.Join(t.TempDir(), "profiles.db")
	if _, errs, code := run(t, "replay", "-q", "--learn", "--profiles", state, "--workload-file", filepath.Join(profData, "workloads.txt"), filepath.Join(profData, "baseline.pcap")); code != 0 {
		t.Fatalf("learn: %s", errs)
	}
	before, _ := os.ReadFile(state)
	a, _ := violations(t, state, "later.pcap")
	b, _ := violations(t, state, "later.pcap")
	after, _ := os.ReadFile(state)
	if strings.Join(a, ",") != strings.Join(b, ",") || string(before) != string(after) {
		t.Errorf("checking changed the state: %q then %q", a, b)
	}
	if _, errs, code := run(t, "replay", "--profiles", filepath.Join(t.TempDir(), "missing.db"), filepath.Join(profData, "later.pcap")); code != exitError || !strings.Contains(errs, "--learn") {
		t.Errorf("missing state: exit %d: %s", code, errs)
	}
	if _, errs, code := run(t, "replay", "--workload", "10.0.0.0/33=x", filepath.Join(profData, "later.pcap")); code != exitError || !strings.Contains(errs, "10.0.0.0/33") {
		t.Errorf("bad --workload: exit %d: %s", code, errs)
	}
}

// replay --config takes the workloads (workloads.addresses) and the deny list from the
// sensor's config file: the same capture gives the same violations as --workload-file, and a
// learned name the deny list covers is a violation again.
func TestProfilesReplayConfig(t *testing.T) {
	state := filepath.Join(t.TempDir(), "profiles.db")
	conf := filepath.Join(t.TempDir(), "minerguard.yaml")
	write := func(extra string) {
		y := "netns: [all]\nworkloads:\n  addresses: [\"10.88.1.0/24=web\", \"10.88.2.0/24=api\", \"10.88.3.0/24=worker\"]\n" + extra
		if err := os.WriteFile(conf, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	if _, errs, code := run(t, "replay", "-q", "--learn", "--config", conf, "--profiles", state, filepath.Join(profData, "baseline.pcap")); code != 0 {
		t.Fatalf("learn: %s", errs)
	}
	check := func() []string {
		out, errs, code := run(t, "replay", "-q", "-o", "json", "--config", conf, "--profiles", state, filepath.Join(profData, "later-benign.pcap"))
		if code != 0 {
			t.Fatalf("check: exit %d: %s", code, errs)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var a profAlert
			if line != "" && json.Unmarshal([]byte(line), &a) == nil && a.Alert.MGX.Detector == "egress-not-in-profile" {
				got = append(got, a.Alert.MGX.Workload.Identity+" "+a.Alert.MGX.Profile.Destination)
			}
		}
		sort.Strings(got)
		return got
	}
	if got := check(); len(got) != 0 {
		t.Fatalf("later-benign.pcap through --config: %q", got)
	}
	// Deny one name api learned: its flows in the same capture are violations now.
	b, err := profile.OpenReadOnly(state, profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Get("api")
	b.Close()
	denied := ""
	for _, e := range p.Entries {
		if e.Name != "" {
			denied = e.Name
			break
		}
	}
	if denied == "" {
		t.Fatalf("api learned no name: %+v", p.Entries)
	}
	write("profiles:\n  deny: [" + denied + "]\n")
	got := check()
	if len(got) == 0 {
		t.Fatalf("denying %s in the config changed nothing", denied)
	}
	for _, g := range got {
		if !strings.HasPrefix(g, "api "+denied+":") {
			t.Errorf("violation %q: only api's flows to %s should be", g, denied)
		}
	}
	os.WriteFile(conf, []byte("netns: [all]\nworkloads:\n  addresses: [\"10.88.1.0/33=web\"]\n"), 0o600)
	if _, errs, code := run(t, "replay", "-q", "--config", conf, filepath.Join(profData, "later.pcap")); code != exitError || !strings.Contains(errs, "workloads.addresses") {
		t.Errorf("bad workloads.addresses: exit %d: %s", code, errs)
	}
}
