package sensor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --config.check runs what a start runs: each problem alone is refused naming its key and
// value, all of them at once are all reported, and a good config on this machine passes.
func TestCheckReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	intelOK := filepath.Join(dir, "pools.txt")
	os.WriteFile(intelOK, []byte("pool.example.org\n"), 0o644)
	intelBad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(intelBad, []byte("pools: {not: [a list\n"), 0o644)
	good := func() Config {
		c := Default()
		c.StateDir = filepath.Join(dir, "state", "deeper") // created by the start
		c.Intel.Files = []string{intelOK}
		c.Web.ListenAddress = "127.0.0.1:0"
		return c
	}
	if c := good(); c.Check() != nil {
		t.Fatalf("a good config: %v", c.Check())
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name, key, want string
		set             func(*Config)
	}{
		{"missing intel file", "intel.files", missing + ".txt", func(c *Config) { c.Intel.Files = append(c.Intel.Files, missing+".txt") }},
		{"bad intel file", "intel.files", intelBad, func(c *Config) { c.Intel.Files = append(c.Intel.Files, intelBad) }},
		{"missing workloads file", "workloads.static", missing + ".yaml", func(c *Config) { c.Workloads.Static = missing + ".yaml" }},
		{"listen address", "web.listen_address", `"999.1.1.1:99999": port 99999: want 0 to 65535; host "999.1.1.1"`, func(c *Config) { c.Web.ListenAddress = "999.1.1.1:99999" }},
		{"listen address without port", "web.listen_address", `"localhost"`, func(c *Config) { c.Web.ListenAddress = "localhost" }},
		{"stream depth", "flow.stream_depth", "9999999999999: want 1 to 16777216", func(c *Config) { c.Flow.StreamDepth = 9999999999999 }},
		{"max flows", "flow.max_flows", "1000000000: want 1 to", func(c *Config) { c.Flow.MaxFlows = 1e9 }},
		{"alert queue", "alerts.queue", "99999999: want 1 to", func(c *Config) { c.Alerts.Queue = 99999999 }},
		{"ring size", "capture.blocks", "1024 blocks of 4194304 bytes", func(c *Config) { c.Capture.Blocks, c.Capture.BlockSize = 1024, 4<<20 }},
		{"snaplen", "capture.snaplen", "10: want 64 to 262144", func(c *Config) { c.Capture.Snaplen = 10 }},
		{"profile entries", "profiles.max_entries", "200000: want 1 to 100000", func(c *Config) { c.Profiles.MaxEntries = 200000 }},
		{"interface", "capture.interfaces", "mgnosuch0", func(c *Config) { c.Capture.Interfaces = []string{"mgnosuch0"} }},
		{"alert output dir", "alerts.output", missing + "/alerts.json", func(c *Config) { c.Alerts.Output = missing + "/alerts.json" }},
		{"state on a file", "state_dir", "not a directory", func(c *Config) { c.StateDir = filepath.Join(intelOK, "sub") }},
		{"proc root", "proc_root", missing, func(c *Config) { c.ProcRoot = missing }},
		{"kubeconfig", "profiles.kubeconfig", missing + ".kubeconfig", func(c *Config) {
			c.Profiles.Backend, c.Profiles.Kubeconfig = "kubernetes", missing+".kubeconfig"
		}},
	}
	all := good()
	for _, tc := range cases {
		c := good()
		tc.set(&c)
		tc.set(&all)
		err := c.Check()
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Key != tc.key || !strings.Contains(ps[0].Msg, tc.want) {
			t.Errorf("%s: %v, want one problem of %s containing %q", tc.name, err, tc.key, tc.want)
		}
	}
	// Both listen address cases set the same key: the last one stays.
	var ps Problems
	if err := all.Check(); !errors.As(err, &ps) || len(ps) != len(cases)-1 {
		t.Fatalf("all at once: %d problems, want %d:\n%v", len(ps), len(cases)-1, err)
	}
}
