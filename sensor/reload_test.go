package sensor

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// SIGHUP: a good config swaps the intel in; a bad one is refused, counted, and the running
// intel stays. The alert file is reopened for log rotation.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	alerts := filepath.Join(dir, "alerts.json")
	cfg := Default()
	cfg.Alerts.Output = alerts
	cfg.StateDir = dir
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown()
	addr := netip.MustParseAddr("203.0.113.77")
	if _, ok := s.det.Intel().Addr(addr, 3333); ok {
		t.Fatal("test address already listed")
	}
	list := filepath.Join(dir, "pools.txt")
	os.WriteFile(list, []byte("203.0.113.77\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("intel:\n  files: ["+list+"]\nalerts:\n  output: "+alerts+"\n"), 0o644)
	os.Rename(alerts, alerts+".1")
	if err := s.Reload(good); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.det.Intel().Addr(addr, 3333); !ok {
		t.Error("reloaded intel not in force")
	}
	if _, err := os.Stat(alerts); err != nil {
		t.Errorf("alert file not reopened: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("flow:\n  max_flows: -1\n"), 0o644)
	if err := s.Reload(bad); err == nil || s.live().ReloadFailures != 1 {
		t.Errorf("bad reload: err %v, failures %d", err, s.live().ReloadFailures)
	}
	if _, ok := s.det.Intel().Addr(addr, 3333); !ok {
		t.Error("a refused reload replaced the intel")
	}
}
