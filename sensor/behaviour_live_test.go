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
// on no list, through stunnel in front of a small pool, three times at once under one sensor:
// directly (a hosts file in its namespace: no DNS), through a real SOCKS5 proxy (microsocks)
// asked for the name, which it resolves in the pool's namespace, and the same through a real
// HTTP CONNECT proxy (tinyproxy; XMRig has no HTTP-proxy option, so proxychains4 runs it and
// asks the proxy for the name). Nothing names
// the pool; the behaviour detector alerts from the TLS records' shape (tunnelled ones too),
// scored by the sensor's timer at the checkpoint (a quiet session is not left waiting for its
// next packet), with the score and the features in the alert.
func TestSensorBehaviourXMRigTLS(t *testing.T) {
	netnstest.RequireRoot(t)
	if testing.Short() {
		t.Skip("runs three miners for up to 90 s")
	}
	// The real miner lives in the project's shared folder beside the checkout (CI lays a copy
	// there too); MINERGUARD_SHARED names another place.
	shared := os.Getenv("MINERGUARD_SHARED")
	if shared == "" {
		shared, _ = filepath.Abs("../../shared")
	}
	xmrig := filepath.Join(shared, "miners", "xmrig")
	for _, p := range []string{xmrig, "/usr/bin/stunnel4", "/usr/bin/openssl", "/usr/bin/microsocks"} {
		if _, err := os.Stat(p); err != nil {
			netnstest.SkipReal(t, "needs %s: %v", p, err)
		}
	}
	for _, p := range []string{"python3", "tinyproxy", "proxychains4"} {
		if _, err := exec.LookPath(p); err != nil {
			netnstest.SkipReal(t, "needs %s (the pool, the CONNECT proxy, XMRig's way to it)", p)
		}
	}
	poolPy, _ := filepath.Abs("../testdata/gen/behaviour/pool.py")
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
	listening := func(ns, port string) {
		netnstest.Eventually(t, 10*time.Second, "port "+port+" listening", func() bool {
			out, _ := exec.Command("ip", "netns", "exec", ns, "ss", "-Hltn", "sport = :"+port).Output()
			return len(out) > 0
		})
	}
	hosts := func(ns, line string) {
		dir := "/etc/netns/" + ns
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(dir+"/hosts", []byte("127.0.0.1 localhost\n"+line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type run struct {
		miner, poolIP, host, config, tunnel string
		port                                float64
		wrap                                []string // runs XMRig (proxychains4 for CONNECT)
	}
	// setup makes a miner namespace and a pool namespace with stunnel in front of the pool on
	// 443 (and microsocks on 1080 for tunnel socks5, tinyproxy on 8888 for http-connect), and
	// XMRig's config for them.
	setup := func(n int, tunnel string) run {
		miner, pool := netnstest.New(t, fmt.Sprintf("bminer%d", n)), netnstest.New(t, fmt.Sprintf("bpool%d", n))
		minerIP, poolIP := netnstest.Veth(t, miner, pool, n)
		r := run{miner: miner, poolIP: poolIP, host: fmt.Sprintf("edge-%d.telemetry-cdn.example.org", n), port: 443, tunnel: tunnel}
		if tunnel != "" {
			// XMRig hands the name to the proxy: only the proxy's namespace can resolve it.
			hosts(pool, poolIP+" "+r.host+"\n")
			r.port = 1080
			if tunnel == "http-connect" {
				r.port = 8888
			}
		} else {
			hosts(miner, poolIP+" "+r.host+"\n")
		}
		dir := t.TempDir()
		netnstest.Run(t, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
			"-subj", "/CN="+r.host, "-keyout", dir+"/key.pem", "-out", dir+"/cert.pem")
		os.WriteFile(dir+"/stunnel.conf", []byte(fmt.Sprintf("foreground = yes\npid =\n[p]\naccept = %s:443\nconnect = 127.0.0.1:3333\ncert = %s/cert.pem\nkey = %s/key.pem\n", poolIP, dir, dir)), 0o644)
		socks := ""
		if tunnel == "socks5" {
			socks = `, "socks5": "` + poolIP + `:1080"`
		}
		os.WriteFile(dir+"/xmrig.json", []byte(`{"autosave": false, "donate-level": 0, "randomx": {"mode": "light"},
 "cpu": {"enabled": true, "huge-pages": false, "max-threads-hint": 10, "priority": 0},
 "pools": [{"url": "`+r.host+`:443", "user": "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A", "pass": "x", "tls": true, "sni": true, "keepalive": true`+socks+`}]}`), 0o644)
		start(pool, "python3", poolPy, "127.0.0.1", "3333", "--diff", "100", "--job-every", "10")
		start(pool, "stunnel4", dir+"/stunnel.conf")
		listening(pool, "443")
		switch tunnel {
		case "socks5":
			start(pool, "microsocks", "-i", poolIP, "-p", "1080")
			listening(pool, "1080")
		case "http-connect":
			os.WriteFile(dir+"/tinyproxy.conf", []byte(fmt.Sprintf("Port 8888\nListen %s\nAllow %s\nConnectPort 443\nTimeout 600\nLogLevel Info\nPidFile \"%s/tinyproxy.pid\"\n", poolIP, minerIP, dir)), 0o644)
			start(pool, "tinyproxy", "-d", "-c", dir+"/tinyproxy.conf")
			listening(pool, "8888")
			// proxy_dns: XMRig's getaddrinfo gets a placeholder address (no DNS on the wire) and
			// its connect becomes "CONNECT <name>:443" to the proxy.
			os.WriteFile(dir+"/proxychains.conf", []byte(fmt.Sprintf("strict_chain\nproxy_dns\nremote_dns_subnet 224\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\nhttp %s 8888\n", poolIP)), 0o644)
			r.wrap = []string{"proxychains4", "-q", "-f", dir + "/proxychains.conf"}
		}
		r.config = dir + "/xmrig.json"
		return r
	}
	runs := []run{setup(151, ""), setup(152, "socks5"), setup(153, "http-connect")}

	cfg := Default()
	for _, r := range runs {
		cfg.Netns = append(cfg.Netns, r.miner)
	}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	startSensor(t, cfg, out)
	time.Sleep(time.Second) // the sensor's rings are open before the miners start
	began := time.Now()
	for _, r := range runs {
		start(r.miner, append(r.wrap, xmrig, "-c", r.config, "-t", "1", "--no-color")...)
	}

	alerts := map[string]map[string]any{} // by dest_ip
	netnstest.Eventually(t, 90*time.Second, "a behaviour alert for each miner", func() bool {
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil {
				continue
			}
			if mg := mgFacts(m); mg != nil && mg["detector"] == "behaviour" {
				if ip, _ := m["dest_ip"].(string); alerts[ip] == nil {
					alerts[ip] = m
					t.Logf("behaviour alert %.1f s after the miners started: %v", time.Since(began).Seconds(), m)
				}
			}
		}
		return len(alerts) == len(runs)
	})
	for i, r := range runs {
		alert := alerts[r.poolIP]
		mg := mgFacts(alert)
		b, _ := mg["behaviour"].(map[string]any)
		if alert["dest_port"] != r.port || b == nil || b["score"].(float64) < b["threshold"].(float64) {
			t.Fatalf("run %d: alert: %v", i, alert)
		}
		if f, _ := b["features"].(map[string]any); f["push_mean_len"] == nil {
			t.Fatalf("run %d: features missing: %v", i, b)
		}
		if r.tunnel != "" && (mg["tunnel"] != r.tunnel || mg["tunnel_target"] != r.host+":443") {
			t.Fatalf("through the %s proxy: tunnel %v target %v", r.tunnel, mg["tunnel"], mg["tunnel_target"])
		}
	}
	// Only this test's pools count: the sensor also sees namespaces that other tests running
	// on the machine create meanwhile.
	ours := map[string]bool{}
	for _, r := range runs {
		ours[r.poolIP] = true
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || !ours[fmt.Sprint(m["dest_ip"])] {
			continue
		}
		if strings.Contains(l, `"stratum"`) || strings.Contains(l, `"pool-sni"`) {
			t.Errorf("something else named the pool (the test means to hide it): %s", l)
		}
	}
}

// mgFacts is an alert line's minerguard facts (alert.context, or the top-level object).
func mgFacts(m map[string]any) map[string]any {
	if a, ok := m["alert"].(map[string]any); ok {
		if c, ok := a["context"].(map[string]any); ok {
			return c
		}
	}
	mg, _ := m["minerguard"].(map[string]any)
	return mg
}
