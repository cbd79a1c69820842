package sensor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/detect"
)

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte("netns: [web, db]\nmode: enforce\nweb:\n  listen_address: 127.0.0.1:9000\nflow:\n  max_flows: 1000\ncapture:\n  block_timeout: 10ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Capture.BlockTimeout != 10*time.Millisecond {
		t.Errorf("block_timeout %v", c.Capture.BlockTimeout)
	}
	if c.Mode != "enforce" || c.Flow.MaxFlows != 1000 || c.Flow.StreamDepth != 64<<10 || len(c.Netns) != 2 || c.Web.ListenAddress != "127.0.0.1:9000" {
		t.Fatalf("%+v", c)
	}
	if c, err := Parse(nil); err != nil || c.Mode != "monitor" {
		t.Fatalf("empty config: %+v %v", c, err)
	}
}

// docs/testing.md C1: refused with the key and the line, never a partial start.
func TestParseBad(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"netns: [web]\nflow:\n  max_flow: 10\n", "line 3: flow.max_flow: unknown key; did you mean flow.max_flows?"},
		{"flow:\n  max_flows: lots\n", "line 2"},
		{"mode: monitor\nflow:\n  max_flows: -5\n", "line 3: flow.max_flows: -5: want 1 to"},
		{"mode: block\n", "line 1: mode: \"block\": want learn, monitor or enforce"},
		{"capture:\n  block_size: 1000\n", "line 2: capture.block_size"},
		{"netns: ['../etc']\n", "netns"},
		{"capture:\n  block_timeout: 5s\n", "line 2: capture.block_timeout"},
		{"alerts: [1, 2]\n", "line 1"},
		{"profiles:\n  backend: etcd\n", "line 2: profiles.backend: \"etcd\": want bbolt"},
		{"profiles:\n  sync_interval: 10ms\n", "line 2: profiles.sync_interval"},
		{"{{{{", "yaml"},
		{"enforcement:\n  drop_signatures: [9400011, 9400001]\n", "enforcement.drop_signatures: 9400001 (stratum): not a flag-only detection"},
		{"enforcement:\n  drop_signatures: [9400005]\n", "9400005 (doh): a record, not an alert"},
		{"enforcement:\n  drop_signatures: [42]\n", "42: no such signature"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.want)
		}
	}
}

// enforcement.drop_signatures takes the flag-only signatures an operator opts in to drop.
func TestDropSignatures(t *testing.T) {
	c, err := Parse([]byte("enforcement:\n  drop_signatures: [9400011, 9400007]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Enforcement.DropAlso(); got != detect.Reasons(0).With(detect.ReasonBehaviour).With(detect.ReasonTLSBare) {
		t.Fatalf("DropAlso %b", got)
	}
	if Default().Enforcement.DropAlso() != 0 {
		t.Fatal("the default must drop on no flag-only signature")
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte("mode: bogus\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.HasPrefix(err.Error(), p+": line 1: mode") {
		t.Errorf("err %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "reading config") {
		t.Errorf("missing: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, make([]byte, MaxConfigSize+10), 0o644)
	if _, err := Load(big); err == nil {
		t.Error("oversized config accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("netns: [all]\nflow: {max_flows: 5}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted an invalid config: %v", verr)
			}
		}
	})
}
