package sensor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
)

// Issue 15 on the real kernel: real XMRig with "tls": true, "sni": true to port 443 of a name
// on no list (a hosts file in its namespace: no DNS), through stunnel in front of a small
// pool. Nothing names the pool; the behaviour detector alerts from the TLS records' shape,
// scored by the sensor's timer at the checkpoint (a quiet session is not left waiting for its
// next packet), with the score and the features in the alert.
func TestSensorBehaviourXMRigTLS(t *testing.T) {
	netnstest.RequireRoot(t)
	if testing.Short() {
		t.Skip("runs a miner for up to 90 s")
	}
	// The real miner lives in the project's shared folder beside the checkout (CI lays a copy
	// there too); MINERGUARD_SHARED names another place.
	shared := os.Getenv("MINERGUARD_SHARED")
	if shared == "" {
		shared, _ = filepath.Abs("../../shared")
	}
	xmrig := filepath.Join(shared, "miners", "xmrig")
	for _, p := range []string{xmrig, "/usr/bin/stunnel4", "/usr/bin/openssl"} {
		if _, err := os.Stat(p); err != nil {
			netnstest.SkipReal(t, "needs %s: %v", p, err)
		}
	}
	if _, err := exec.LookPath("python3"); err != nil {
		netnstest.SkipReal(t, "needs python3 for the pool")
	}
	poolPy, _ := filepath.Abs("../testdata/gen/behaviour/pool.py")
	miner, pool := netnstest.New(t, "bminer"), netnstest.New(t, "bpool")
	_, poolIP := netnstest.Veth(t, miner, pool, 151)
	const host = "edge-151.telemetry-cdn.example.org"
	hostsDir := "/etc/netns/" + miner
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(hostsDir) })
	if err := os.WriteFile(hostsDir+"/hosts", []byte("127.0.0.1 localhost\n"+poolIP+" "+host+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	netnstest.Run(t, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
		"-subj", "/CN="+host, "-keyout", dir+"/key.pem", "-out", dir+"/cert.pem")
	os.WriteFile(dir+"/stunnel.conf", []byte(fmt.Sprintf("foreground = yes\npid =\n[p]\naccept = %s:443\nconnect = 127.0.0.1:3333\ncert = %s/cert.pem\nkey = %s/key.pem\n", poolIP, dir, dir)), 0o644)
	os.WriteFile(dir+"/xmrig.json", []byte(`{"autosave": false, "donate-level": 0, "randomx": {"mode": "light"},
 "cpu": {"enabled": true, "huge-pages": false, "max-threads-hint": 10, "priority": 0},
 "pools": [{"url": "`+host+`:443", "user": "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A", "pass": "x", "tls": true, "sni": true, "keepalive": true}]}`), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	start := func(ns string, args ...string) {
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, "timeout", "95"}, args...)...)
		// ip execs timeout, which forks the program: killing only the started process left
		// XMRig mining after the test. Its own process group goes as a whole.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); cmd.Wait() })
	}
	start(pool, "python3", poolPy, "127.0.0.1", "3333", "--diff", "100", "--job-every", "10")
	start(pool, "stunnel4", dir+"/stunnel.conf")
	netnstest.Eventually(t, 10*time.Second, "stunnel listening", func() bool {
		out, _ := exec.Command("ip", "netns", "exec", pool, "ss", "-Hltn", "sport = :443").Output()
		return len(out) > 0
	})

	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	startSensor(t, cfg, out)
	time.Sleep(time.Second) // the sensor's ring is open before the miner starts
	began := time.Now()
	start(miner, xmrig, "-c", dir+"/xmrig.json", "-t", "1", "--no-color")

	var alert map[string]any
	netnstest.Eventually(t, 90*time.Second, "a behaviour alert", func() bool {
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil {
				continue
			}
			mg, _ := m["minerguard"].(map[string]any)
			if ctxm, ok := m["alert"].(map[string]any)["context"].(map[string]any); ok {
				mg = ctxm
			}
			if mg != nil && mg["detector"] == "behaviour" {
				alert = m
				return true
			}
		}
		return false
	})
	t.Logf("behaviour alert %.1f s after XMRig started: %v", time.Since(began).Seconds(), alert)
	mg, _ := alert["minerguard"].(map[string]any)
	if c, ok := alert["alert"].(map[string]any)["context"].(map[string]any); ok {
		mg = c
	}
	b, _ := mg["behaviour"].(map[string]any)
	if alert["dest_ip"] != poolIP || alert["dest_port"] != 443.0 || b == nil || b["score"].(float64) < b["threshold"].(float64) {
		t.Fatalf("alert: %v", alert)
	}
	if f, _ := b["features"].(map[string]any); f["push_mean_len"] == nil {
		t.Fatalf("features missing: %v", b)
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(l, `"stratum"`) || strings.Contains(l, `"pool-sni"`) {
			t.Errorf("something else named the pool (the test means to hide it): %s", l)
		}
	}
}
