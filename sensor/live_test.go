package sensor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/evetest"
	"github.com/minerguard/minerguard/internal/netnstest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

const login = `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44wallet","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0","algo":["rx/0"]}}` + "\n"

// serve is a pool in namespace ns that answers each line with one line.
func serve(t *testing.T, ns, addr string) {
	netnstest.ServeLines(t, ns, addr, `{"id":1,"jsonrpc":"2.0","result":"0x10"}`)
}

// talk connects from namespace ns, sends msg and waits for one line back.
func talk(t *testing.T, ns, addr, msg string) {
	var c net.Conn
	if err := netnstest.Do(t, ns, func() (err error) { c, err = net.DialTimeout("tcp", addr, 5*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
}

// Two workloads in their own namespaces: the miner's Stratum login raises one alert naming
// its workload, the benign JSON-RPC client none, and the detection counter shows it.
func TestSensorTwoNamespaces(t *testing.T) {
	netnstest.RequireRoot(t)
	miner, benign, pool := netnstest.New(t, "miner"), netnstest.New(t, "web"), netnstest.New(t, "pool")
	_, poolA := netnstest.Veth(t, miner, pool, 1)
	_, poolB := netnstest.Veth(t, benign, pool, 2)
	serve(t, pool, poolA+":3333")
	serve(t, pool, poolB+":8545")

	cfg := Default()
	cfg.Netns = []string{miner, benign}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	body := `{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}` + "\n"
	talk(t, benign, poolB+":8545", body)
	talk(t, miner, poolA+":3333", login)

	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(out.String(), "\n") {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // anything else that would come
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("alert line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 1 {
		t.Fatalf("%d alerts, want 1:\n%s", len(lines), out.String())
	}
	// The live line is EVE as Suricata's schema has it, with what only a sensor knows.
	evetest.Lines(t, "sensor", []byte(out.String()))
	a := lines[0]
	mg := a["alert"].(map[string]any)["context"].(map[string]any)
	if a["dest_ip"] != poolA || a["dest_port"] != 3333.0 || mg["detector"] != "stratum" || mg["workload"].(map[string]any)["identity"] != "netns/"+miner {
		t.Fatalf("alert: %v", a)
	}
	fl, _ := a["flow"].(map[string]any)
	if a["host"] != nodeName() || !strings.HasPrefix(fmt.Sprint(a["in_iface"]), "mga") || a["direction"] != "to_server" || a["app_proto"] != "stratum" ||
		fl == nil || fl["pkts_toserver"].(float64) < 2 || fl["bytes_toserver"].(float64) < float64(len(login)) || a["pcap_cnt"].(float64) < 3 {
		t.Errorf("host, in_iface, direction, app_proto, flow, pcap_cnt: %v", a)
	}
	if id, ok := a["flow_id"].(float64); !ok || id < 1<<20 {
		t.Errorf("flow_id %v is not a hash", a["flow_id"])
	}
	// The counter follows within a publish tick.
	var scrape string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		scrape = rec.Body.String()
		if strings.Contains(scrape, `minerguard_detections_total{action="flag",detector="stratum",source="netns",workload="netns/`+miner+`"} 1`) {
			break
		}
	}
	for _, want := range []string{`minerguard_detections_total{action="flag",detector="stratum",source="netns",workload="netns/` + miner + `"} 1`,
		"minerguard_namespaces_monitored 2", `minerguard_ring_packets_total{workload="netns/` + benign + `"}`,
		`minerguard_ring_packets_dropped_total{workload="netns/` + miner + `"} 0`, "minerguard_alert_latency_seconds_count 1"} {
		if !strings.Contains(scrape, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		fmt.Println(scrape)
	}
}

// The miner is real software nobody here wrote: npm stratum-client talking to a pool built on
// npm stratum, in their own namespaces. The sensor names the miner's workload.
func TestSensorRealStratumClient(t *testing.T) {
	netnstest.RequireRoot(t)
	if _, err := exec.LookPath("node"); err != nil {
		netnstest.SkipReal(t, "needs node (the miner is npm stratum-client)")
	}
	if _, err := os.Stat("testdata/node/node_modules/stratum-client"); err != nil {
		netnstest.SkipReal(t, "run: npm ci --prefix sensor/testdata/node (.ci/run does)")
	}
	miner, pool := netnstest.New(t, "rig"), netnstest.New(t, "pool")
	minerIP, poolIP := netnstest.Veth(t, miner, pool, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := nodeCmd(ctx, pool, "stratum-pool.js", poolIP, "3333")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	// Wait for the pool to listen.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := netnstest.Do(t, miner, func() error {
			c, err := net.DialTimeout("tcp", poolIP+":3333", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool not listening: %v", err)
		}
	}

	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	startSensor(t, cfg, out)
	cli := nodeCmd(ctx, miner, "stratum-client-miner.js", poolIP, "3333")
	if b, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("miner: %v: %s", err, b)
	}
	var a map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if l, _, ok := strings.Cut(out.String(), "\n"); ok {
			if err := json.Unmarshal([]byte(l), &a); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if a == nil {
		t.Fatal("no alert")
	}
	evetest.Lines(t, "sensor", []byte(out.String()))
	mg := a["alert"].(map[string]any)["context"].(map[string]any)
	st := mg["stratum"].(map[string]any)
	if a["src_ip"] != minerIP || a["dest_ip"] != poolIP || mg["variant"] != "stratum-v1" || st["method"] != "mining.subscribe" ||
		mg["workload"].(map[string]any)["identity"] != "netns/"+miner {
		t.Fatalf("alert: %v", a)
	}
}

// nodeCmd runs one of the testdata generators' node scripts (../testdata/gen/node) inside a
// namespace, with the packages this test installs (testdata/node) on NODE_PATH.
func nodeCmd(ctx context.Context, ns, script string, args ...string) *exec.Cmd {
	mods, _ := filepath.Abs("testdata/node/node_modules")
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, "node", script}, args...)...)
	cmd.Dir = "../testdata/gen/node"
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	return cmd
}

// startSensor runs a sensor with cfg until the test ends and waits until it is ready.
func startSensor(t testing.TB, cfg Config, out io.Writer) *Sensor {
	t.Helper()
	return startSensorWith(t, cfg, out, nil)
}

// startSensorWith is startSensor with a change made to the sensor before it runs.
func startSensorWith(t testing.TB, cfg Config, out io.Writer, change func(*Sensor)) *Sensor {
	t.Helper()
	if cfg.StateDir == Default().StateDir && cfg.Profiles.State == "" {
		cfg.StateDir = t.TempDir() // never the machine's own profile state
	}
	var lw io.Writer = io.Discard
	if os.Getenv("MG_DEBUG_LOG") != "" {
		lw = os.Stderr
	}
	s, err := New(cfg, slog.New(slog.NewTextHandler(lw, nil)), out)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not stop")
		}
	})
	for deadline := time.Now().Add(5 * time.Second); !s.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("sensor not ready after 5 s")
		}
	}
	return s
}
