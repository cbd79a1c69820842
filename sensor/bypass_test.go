package sensor

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// requireBypass skips unless the kernel filter loads here (the fallback tests cover the rest).
func requireBypass(t *testing.T) {
	t.Helper()
	netnstest.RequireRoot(t)
	b, err := capture.OpenBypass(capture.BypassOptions{MaxFlows: 16})
	if errors.Is(err, capture.ErrBypassUnsupported) {
		netnstest.SkipReal(t, "kernel bypass not available: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// waitBypass waits until every ring has the kernel bypass: for namespaces found at start it
// is attached in the background once the sensor is ready.
func waitBypass(t *testing.T, s *Sensor, rings int) {
	t.Helper()
	netnstest.Eventually(t, 10*time.Second, "the bypass on every ring", func() bool {
		return metricValue(scrape(t, s), "minerguard_capture_bypass_rings") == float64(rings)
	})
}

// metricValue reads one sample from a scrape; -1 when absent.
func metricValue(body, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// bulkSink accepts connections in ns on addr and discards what they send.
func bulkSink(t *testing.T, ns, addr string) {
	var ln net.Listener
	if err := netnstest.Do(t, ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
}

// blast sends at most limit bytes from ns to addr for at most d, and returns what it sent.
func blast(t *testing.T, ns, addr string, limit int64, d time.Duration) int64 {
	var c net.Conn
	if err := netnstest.Do(t, ns, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 5*time.Second); return }); err != nil {
		t.Error(err)
		return 0
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	var sent int64
	end := time.Now().Add(d)
	c.SetWriteDeadline(end)
	for sent < limit && time.Now().Before(end) {
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil {
			break
		}
	}
	return sent
}

// stratumAlerts counts the distinct client ports alerted by the stratum detector to dst.
func stratumAlerts(t *testing.T, out string, dst string) map[float64]bool {
	ports := map[float64]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var a map[string]any
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("alert line %q: %v", l, err)
		}
		detector := ""
		if al, _ := a["alert"].(map[string]any); al != nil {
			if ctx, _ := al["context"].(map[string]any); ctx != nil {
				detector, _ = ctx["detector"].(string)
			}
		}
		if detector == "stratum" && a["dest_ip"] == dst {
			ports[a["src_port"].(float64)] = true
		}
	}
	return ports
}

// TestSensorMinerDuringBulkFlood (item 7): while two workloads push bulk TCP as fast as the
// veths allow (one of them the miner's own namespace), every one of 20 Stratum sessions is
// alerted; the kernel keeps the bulk out of the rings and the bypassed bytes are counted per
// workload, close to what was sent.
func TestSensorMinerDuringBulkFlood(t *testing.T) {
	requireBypass(t)
	miner, bulk, pool := netnstest.New(t, "miner"), netnstest.New(t, "bulk"), netnstest.New(t, "pool")
	_, poolA := netnstest.Veth(t, miner, pool, 61)
	_, poolB := netnstest.Veth(t, bulk, pool, 62)
	serve(t, pool, poolA+":3333")
	bulkSink(t, pool, poolA+":5001")
	bulkSink(t, pool, poolB+":5001")

	cfg := Default()
	cfg.Netns = []string{miner, bulk}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	waitBypass(t, s, 2)

	const sessions = 20
	const limit, dur = int64(2 << 30), 4 * time.Second // bounded in bytes and in time
	var wg sync.WaitGroup
	var sentBulk, sentMiner int64
	wg.Go(func() { sentBulk = blast(t, bulk, poolB+":5001", limit, dur) })
	wg.Go(func() { sentMiner = blast(t, miner, poolA+":5001", limit, dur) })
	time.Sleep(300 * time.Millisecond) // the flood is running
	for range sessions {
		talk(t, miner, poolA+":3333", login)
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()

	var got map[float64]bool
	// Generous: under -race on a loaded machine the engine drains its queue slowly.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = stratumAlerts(t, out.String(), poolA); len(got) >= sessions {
			break
		}
	}
	if len(got) != sessions {
		b := scrape(t, s)
		t.Errorf("%d of %d Stratum sessions alerted during the flood (ring drops %v, queue drops %v, alerts rate-limited %v)", len(got), sessions,
			metricValue(b, `minerguard_capture_drops_total{reason="ring_full"}`), metricValue(b, `minerguard_capture_drops_total{reason="queue_full"}`),
			metricValue(b, `minerguard_alerts_dropped_total{reason="rate_limited"}`))
	}
	var body string
	wantBulk := float64(sentBulk - 2*int64(cfg.Flow.StreamDepth) - 256<<10) // the depth, and one cut super-packet
	netnstest.Eventually(t, 5*time.Second, "bypassed bytes counted", func() bool {
		body = scrape(t, s)
		return metricValue(body, `minerguard_bypassed_bytes_total{workload="netns/`+bulk+`"}`) >= wantBulk
	})
	t.Logf("sent: bulk %d MiB, miner's own bulk %d MiB", sentBulk>>20, sentMiner>>20)
	for _, series := range []string{
		`minerguard_capture_bypass{mode="kernel"}`,
		`minerguard_bypassed_bytes_total{workload="netns/` + bulk + `"}`,
		`minerguard_bypassed_bytes_total{workload="netns/` + miner + `"}`,
		`minerguard_bypassed_packets_total{workload="netns/` + bulk + `"}`,
		`minerguard_capture_drops_total{reason="ring_full"}`,
		`minerguard_capture_drops_total{reason="queue_full"}`,
		`minerguard_capture_filter_packets_total{copied="none"}`,
		`minerguard_capture_filter_packets_total{copied="headers"}`,
		`minerguard_capture_filter_packets_total{copied="whole"}`,
		`minerguard_capture_bypass_map_full_total`,
		`minerguard_ring_packets_total`,
	} {
		t.Logf("%s %v", series, metricValue(body, series))
	}
	if v := metricValue(body, `minerguard_capture_bypass{mode="kernel"}`); v != 1 {
		t.Errorf("capture_bypass{mode=kernel} = %v, want 1", v)
	}
	if v := metricValue(body, `minerguard_bypassed_bytes_total{workload="netns/`+bulk+`"}`); v < wantBulk {
		t.Errorf("bulk workload: %v bytes bypassed of %d sent, want ≥ %v", v, sentBulk, wantBulk)
	}
	if v := metricValue(body, `minerguard_bypassed_bytes_total{workload="netns/`+miner+`"}`); v < float64(sentMiner)/2 {
		t.Errorf("miner workload: %v bytes bypassed of %d sent in its own bulk flow", v, sentMiner)
	}
	if v := metricValue(body, `minerguard_capture_bypass_map_full_total`); v != 0 {
		t.Errorf("map full %v", v)
	}
}

// TestSensorClassifiedFlowBypassed: once the engine has its verdict on a Stratum session
// (well inside the stream depth) the kernel stops copying it: what the miner sends next is
// counted as bypassed for its workload, not handed up.
func TestSensorClassifiedFlowBypassed(t *testing.T) {
	requireBypass(t)
	miner, pool := netnstest.New(t, "miner"), netnstest.New(t, "pool")
	_, poolIP := netnstest.Veth(t, miner, pool, 63)
	srv := netnstest.ServeLines(t, pool, poolIP+":3333", `{"id":1,"jsonrpc":"2.0","result":"0x10"}`)
	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	waitBypass(t, s, 1)

	var c net.Conn
	if err := netnstest.Do(t, miner, func() (err error) { c, err = net.DialTimeout("tcp4", poolIP+":3333", 5*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(login)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 5*time.Second, "the session alerted", func() bool { return len(stratumAlerts(t, out.String(), poolIP)) == 1 })
	key := `minerguard_bypassed_bytes_total{workload="netns/` + miner + `"}`
	before := max(metricValue(scrape(t, s), key), 0)
	// 16 submits of 1 KiB each: 16 KiB, a quarter of the stream depth.
	const n, size = 16, 1024
	line := `{"id":4,"method":"submit","params":{"id":"1","job_id":"2","nonce":"` + strings.Repeat("0", size-70) + `"}}` + "\n"
	for range n {
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	var after float64
	netnstest.Eventually(t, 5*time.Second, "the classified flow's later bytes bypassed", func() bool {
		after = metricValue(scrape(t, s), key)
		return after-before >= float64(n*len(line))
	})
	if after-before < float64(n*len(line)) {
		t.Errorf("bypassed %v bytes after the verdict, want ≥ %d (the pool got %d bytes)", after-before, n*len(line), srv.Received.Load())
	}
}

// TestSensorBypassOffFallsBack (item 5): with the kernel filter unavailable (here turned off,
// as capture.bypass: off; TestBypassUnsupportedWithoutCapabilities drops the capabilities)
// the sensor copies every packet as before, says so in capture_bypass{mode="userspace"}, and
// still alerts.
func TestSensorBypassOffFallsBack(t *testing.T) {
	netnstest.RequireRoot(t)
	miner, pool := netnstest.New(t, "miner"), netnstest.New(t, "pool")
	_, poolIP := netnstest.Veth(t, miner, pool, 64)
	serve(t, pool, poolIP+":3333")
	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.Capture.Bypass = "off"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	talk(t, miner, poolIP+":3333", login)
	netnstest.Eventually(t, 5*time.Second, "the session alerted", func() bool { return len(stratumAlerts(t, out.String(), poolIP)) == 1 })
	body := scrape(t, s)
	if v := metricValue(body, `minerguard_capture_bypass{mode="userspace"}`); v != 1 {
		t.Errorf("capture_bypass{mode=userspace} = %v, want 1", v)
	}
	if v := metricValue(body, `minerguard_capture_bypass{mode="kernel"}`); v != 0 {
		t.Errorf("capture_bypass{mode=kernel} = %v, want 0", v)
	}
	if v := metricValue(body, "minerguard_capture_bypass_rings"); v != 0 {
		t.Errorf("capture_bypass_rings = %v, want 0", v)
	}
	if strings.Contains(body, "minerguard_bypassed_bytes_total{") {
		t.Error("bypassed bytes exported although nothing is bypassed")
	}
	if s.bp != nil {
		t.Error("bypass opened although capture.bypass is off")
	}
}

// TestSensorRingGrowsUnderPressure (item 3): a small ring that drops under a flood (here
// without the kernel bypass, the worst case) is re-created larger, up to capture.max_blocks,
// and back at its resting size once calm; ring_bytes and ring_resizes_total say so.
func TestSensorRingGrowsUnderPressure(t *testing.T) {
	netnstest.RequireRoot(t)
	work, pool := netnstest.New(t, "work"), netnstest.New(t, "pool")
	_, poolIP := netnstest.Veth(t, work, pool, 65)
	bulkSink(t, pool, poolIP+":5001")
	cfg := Default()
	cfg.Netns = []string{work}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.Capture.Bypass = "off"
	cfg.Capture.BlockSize, cfg.Capture.Blocks, cfg.Capture.MaxBlocks = 64<<10, 2, 8
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	s.ringShrinkAfter.Store(int64(1500 * time.Millisecond))
	if v := metricValue(scrape(t, s), "minerguard_ring_bytes"); v != 128<<10 {
		t.Fatalf("ring_bytes at rest %v, want %d", v, 128<<10)
	}
	var body string
	for i := 0; i < 8; i++ { // bounded: up to 8 rounds of at most 1 s / 1 GiB
		blast(t, work, poolIP+":5001", 1<<30, time.Second)
		body = scrape(t, s)
		if metricValue(body, "minerguard_ring_bytes") == 8*64<<10 {
			break
		}
	}
	if v := metricValue(body, "minerguard_ring_bytes"); v != 8*64<<10 {
		t.Fatalf("ring_bytes under pressure %v, want the max %d (drops %v)", v, 8*64<<10, metricValue(body, "minerguard_ring_packets_dropped_total"))
	}
	if v := metricValue(body, `minerguard_ring_resizes_total{direction="grow"}`); v < 2 {
		t.Errorf("grows %v, want ≥ 2 (2 → 4 → 8 blocks)", v)
	}
	netnstest.Eventually(t, 10*time.Second, "the ring back at rest", func() bool {
		body = scrape(t, s)
		return metricValue(body, "minerguard_ring_bytes") == 128<<10
	})
	if v := metricValue(body, `minerguard_ring_resizes_total{direction="shrink"}`); v != 1 {
		t.Errorf("shrinks %v, want 1", v)
	}
	// The resized ring captures: a Stratum session after the resizes is alerted.
	serve(t, pool, poolIP+":3333")
	talk(t, work, poolIP+":3333", login)
	netnstest.Eventually(t, 5*time.Second, "a session after the resizes alerted", func() bool { return len(stratumAlerts(t, out.String(), poolIP)) == 1 })
}

// TestSensorRingBudget: growth stops at capture.max_ring_bytes for all rings together, and
// each refusal is counted.
func TestSensorRingBudget(t *testing.T) {
	netnstest.RequireRoot(t)
	work, pool := netnstest.New(t, "work"), netnstest.New(t, "pool")
	_, poolIP := netnstest.Veth(t, work, pool, 66)
	bulkSink(t, pool, poolIP+":5001")
	cfg := Default()
	cfg.Netns = []string{work}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.Capture.Bypass = "off"
	cfg.Capture.BlockSize, cfg.Capture.Blocks, cfg.Capture.MaxBlocks = 64<<10, 2, 64
	cfg.Capture.MaxRingBytes = 4 * 64 << 10 // one doubling
	s := startSensor(t, cfg, &syncBuf{})
	var body string
	for i := 0; i < 8; i++ {
		blast(t, work, poolIP+":5001", 1<<30, time.Second)
		body = scrape(t, s)
		if metricValue(body, `minerguard_ring_resizes_total{direction="refused"}`) >= 1 {
			break
		}
	}
	if v := metricValue(body, `minerguard_ring_resizes_total{direction="refused"}`); v < 1 {
		t.Errorf("refused grows %v, want ≥ 1", v)
	}
	if v := metricValue(body, "minerguard_ring_bytes"); v != 4*64<<10 {
		t.Errorf("ring_bytes %v, want the budget %d", v, 4*64<<10)
	}
}

// TestSensorPressureDepth (item 4): when a ring drops under many new bulk flows, the kernel
// filter copies only capture.pressure_depth bytes of each new direction, so a Stratum
// session started meanwhile still reaches the engine and is alerted.
func TestSensorPressureDepth(t *testing.T) {
	requireBypass(t)
	work, pool := netnstest.New(t, "work"), netnstest.New(t, "pool")
	_, poolIP := netnstest.Veth(t, work, pool, 67)
	bulkSink(t, pool, poolIP+":5001")
	serve(t, pool, poolIP+":3333")
	cfg := Default()
	cfg.Netns = []string{work}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	// Cannot grow: pressure is all there is. Two blocks, not one: with one, every packet that
	// arrives while the reader holds the block is lost whatever the depth (seen under load).
	cfg.Capture.BlockSize, cfg.Capture.Blocks, cfg.Capture.MaxBlocks = 64<<10, 2, 2
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	waitBypass(t, s, 1)
	var body string
	for round := 0; round < 10; round++ { // bounded: 10 rounds of 32 flows × 1 MiB
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() { blast(t, work, poolIP+":5001", 1<<20, time.Second) })
		}
		wg.Wait()
		time.Sleep(1100 * time.Millisecond) // a ring check
		body = scrape(t, s)
		if metricValue(body, "minerguard_capture_pressure_rings") == 1 {
			break
		}
	}
	if v := metricValue(body, "minerguard_capture_pressure_rings"); v != 1 {
		t.Fatalf("pressure rings %v after drops %v, want 1", v, metricValue(body, "minerguard_ring_packets_dropped_total"))
	}
	if v := metricValue(body, "minerguard_capture_pressure_total"); v < 1 {
		t.Errorf("pressure engaged %v", v)
	}
	talk(t, work, poolIP+":3333", login)
	netnstest.Eventually(t, 5*time.Second, "a session under pressure alerted", func() bool { return len(stratumAlerts(t, out.String(), poolIP)) == 1 })
}
