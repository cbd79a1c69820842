package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/profile/statetest"
)

// Every profiles subcommand, and a replay that checks or learns against the state, answers a
// damaged state with one line naming it and saying what to do, exit 2, and leaves the file
// where it is, unchanged.
func TestCLIOnDamagedState(t *testing.T) {
	for _, k := range statetest.Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "profiles.db")
			statetest.Make(t, state)
			k.Damage(t, state)
			before, _ := os.ReadFile(state)
			for _, args := range [][]string{
				{"profiles", "--profiles", state, "list"},
				{"profiles", "--profiles", state, "show", statetest.Workload},
				{"profiles", "--profiles", state, "export", statetest.Workload},
				{"profiles", "--profiles", state, "approve", statetest.Workload, "--to", "enforcing"},
				{"profiles", "--profiles", state, "reset", statetest.Workload},
				{"replay", "--profiles", state, "../../testdata/profiles/later.pcap"},
				{"replay", "--learn", "--profiles", state, "../../testdata/profiles/baseline.pcap"},
			} {
				out, errs, code := run(t, args...)
				cmd := strings.Join(args[:min(len(args), 4)], " ")
				if code != exitError || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "is damaged") ||
					!strings.Contains(errs, "mv "+state) || strings.Contains(errs, "panic") || out != "" {
					t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 and one line", cmd, code, out, errs)
				}
				if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
					t.Fatalf("%s changed the damaged file", cmd)
				}
			}
			if m, _ := filepath.Glob(state + ".damaged-*"); len(m) != 0 {
				t.Errorf("the CLI moved the file: %v", m)
			}
		})
	}
}

// The four: `sensor --config.check` names each (key, value, what to do) in one run,
// exits 2, and never says "config ok"; a good config says it and exits 0.
func TestSensorConfigCheckNamesEachProblem(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "minerguard.yaml")
	os.WriteFile(cfg, []byte(`intel:
  files: [`+dir+`/missing-pools.txt]
workloads:
  static: `+dir+`/missing-workloads.yaml
web:
  listen_address: 999.1.1.1:99999
flow:
  stream_depth: 9999999999999
state_dir: `+dir+`/state
`), 0o644)
	out, errs, code := run(t, "sensor", "--config", cfg, "--config.check")
	if code != exitError || strings.Contains(out, "config ok") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		"4 problem(s)",
		"intel.files: " + dir + "/missing-pools.txt",
		"workloads.static: " + dir + "/missing-workloads.yaml",
		`line 6: web.listen_address: "999.1.1.1:99999": port 99999: want 0 to 65535; host "999.1.1.1": not an IP address`,
		"line 8: flow.stream_depth: 9999999999999: want 1 to 16777216",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	// A flag that fixes a file's value is checked with it.
	out, errs, code = run(t, "sensor", "--config", cfg, "--config.check", "--flow.stream-depth", "65536")
	if code != exitError || strings.Contains(errs, "stream_depth") || !strings.Contains(errs, "3 problem(s)") {
		t.Errorf("with the flag: exit %d, %s", code, errs)
	}
	out, errs, code = run(t, "sensor", "--config.check", "--state-dir", dir, "--web.listen-address", "127.0.0.1:0")
	if code != 0 || out != "config ok\n" {
		t.Errorf("a good config: exit %d, %q %q", code, out, errs)
	}
}
