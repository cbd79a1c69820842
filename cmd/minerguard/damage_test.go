package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/internal/statetest"
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
