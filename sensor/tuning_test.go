package sensor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
)

// alerts.threshold_file live: a suppressed workload's Stratum alert is not written, not a
// detection, and counted as suppressed; after SIGHUP with the rule gone the next one is.
func TestSensorThresholdFile(t *testing.T) {
	netnstest.RequireRoot(t)
	miner, pool := netnstest.New(t, "tmine"), netnstest.New(t, "tpool")
	_, poolIP := netnstest.Veth(t, miner, pool, 21)
	serve(t, pool, poolIP+":3333")
	dir := t.TempDir()
	rules := filepath.Join(dir, "threshold.config")
	os.WriteFile(rules, []byte("suppress gen_id 1, sig_id 9400001, track by_workload, workload netns/"+miner+"\n"), 0o644)
	conf := filepath.Join(dir, "sensor.yaml")
	os.WriteFile(conf, []byte("alerts:\n  threshold_file: "+rules+"\n"), 0o644)
	cfg, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	talk(t, miner, poolIP+":3333", login)
	netnstest.Eventually(t, 5*time.Second, "the alert counted as suppressed", func() bool { return s.live().AlertsSuppressed == 1 })
	if out.String() != "" || len(s.live().Detections) != 0 {
		t.Fatalf("suppressed alert written or counted: %q %v", out.String(), s.live().Detections)
	}
	os.WriteFile(rules, []byte("# nothing suppressed\n"), 0o644)
	if err := s.Reload(conf); err != nil {
		t.Fatal(err)
	}
	talk(t, miner, poolIP+":3333", login)
	netnstest.Eventually(t, 5*time.Second, "the alert after the reload", func() bool { return strings.Contains(out.String(), `"signature_id":9400001`) })
	os.WriteFile(rules, []byte("suppress gen_id 1\n"), 0o644)
	if err := s.Reload(conf); err == nil || !strings.Contains(err.Error(), "threshold.config:1") {
		t.Errorf("bad threshold file reloaded: %v", err)
	}
}
