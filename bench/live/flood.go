package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// The flood lab: work (10.198.1.2) — node (10.198.1.1 | 10.198.2.1, forwarding) — srv
// (10.198.2.2), as a pod's traffic crosses its node. The addresses exist only in these
// namespaces.
const (
	workIP, srvIP = "10.198.1.2", "10.198.2.2"
	iperfPort     = 5201
	poolPort      = 3333
	workIf        = "eth0" // the workload's end of its veth, where the sensor's ring sits
)

type floodLab struct {
	cfg              config
	l                *lab
	work, node, srv  string
	mods, nodeScript string // NODE_PATH and testdata/gen/node
	mgRings          []ring // the sensor's rings in the workload netns, from the kernel
}

func setupFlood(ctx context.Context, cfg config, l *lab) (*floodLab, error) {
	f := &floodLab{cfg: cfg, l: l, mods: filepath.Join(cfg.Root, "sensor/testdata/node/node_modules"),
		nodeScript: filepath.Join(cfg.Root, "testdata/gen/node")}
	var err error
	for _, p := range []struct {
		dst  *string
		name string
	}{{&f.work, "work"}, {&f.node, "node"}, {&f.srv, "srv"}} {
		if *p.dst, err = l.addNetns(p.name); err != nil {
			return nil, err
		}
	}
	if err := batch(f.node, []string{
		"link add w0 type veth peer name " + workIf + " netns " + f.work,
		"link add s0 type veth peer name eth0 netns " + f.srv,
		"addr add 10.198.1.1/24 dev w0", "addr add 10.198.2.1/24 dev s0",
		"link set w0 up", "link set s0 up",
	}); err != nil {
		return nil, err
	}
	for _, s := range []struct{ ns, ip, gw, dev string }{{f.work, workIP, "10.198.1.1", workIf}, {f.srv, srvIP, "10.198.2.1", "eth0"}} {
		if err := batch(s.ns, []string{"addr add " + s.ip + "/24 dev " + s.dev, "link set " + s.dev + " up", "route add default via " + s.gw}); err != nil {
			return nil, err
		}
	}
	if err := sh("ip", "netns", "exec", f.node, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return nil, err
	}
	if _, err := l.start("iperf3 server", f.srv, filepath.Join(cfg.Out, "iperf3-server.log"), filepath.Join(cfg.Out, "iperf3-server.err"), nil,
		"iperf3", "-s", "-B", srvIP, "-p", strconv.Itoa(iperfPort)); err != nil {
		return nil, err
	}
	pool, err := l.start("stratum pool", f.srv, filepath.Join(cfg.Out, "pool.log"), filepath.Join(cfg.Out, "pool.err"), []string{"NODE_PATH=" + f.mods},
		"node", filepath.Join(f.nodeScript, "stratum-pool.js"), srvIP, strconv.Itoa(poolPort))
	if err != nil {
		return nil, err
	}
	// Both servers listening, seen from the workload through the node.
	for deadline := time.Now().Add(20 * time.Second); ; {
		out, _ := exec.Command("ip", "netns", "exec", f.srv, "ss", "-Hltn").Output()
		if strings.Contains(string(out), fmt.Sprintf("%s:%d", srvIP, iperfPort)) && strings.Contains(string(out), fmt.Sprintf("%s:%d", srvIP, poolPort)) {
			break
		}
		if pool.exited() || time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(cfg.Out, "pool.err"))
			return nil, fmt.Errorf("servers not listening in %s after 20 s (pool: %s)", f.srv, strings.TrimSpace(string(b)))
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err := sh("ip", "netns", "exec", f.work, "timeout", "5", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", srvIP, poolPort)); err != nil {
		return nil, fmt.Errorf("no route from the workload to the server: %w", err)
	}
	return f, nil
}

// loadRun is one run of the load: throughput and the sessions' outcome, and when a sensor
// ran, its CPU and peak RSS over the flood.
type loadRun struct {
	Label    string
	Bps      float64
	Sessions []session
	Cores    float64
	PeakMiB  float64
}

// load runs the iperf3 client and the Stratum sessions in the workload namespace at the same
// time. When pid > 0, that process's CPU and peak RSS are measured over the iperf3 run.
func (f *floodLab) load(ctx context.Context, label string, pid int) (loadRun, error) {
	r := loadRun{Label: label}
	T := f.cfg.Seconds
	ipOut := filepath.Join(f.cfg.Out, label+"-iperf3.json")
	sessOut := filepath.Join(f.cfg.Out, label+"-sessions.json")
	var w window
	if pid > 0 {
		var err error
		if w, err = startWindow(pid); err != nil {
			return r, err
		}
	}
	argv := []string{"iperf3", "-c", srvIP, "-p", strconv.Itoa(iperfPort), "-P", strconv.Itoa(f.cfg.Streams), "-t", strconv.Itoa(T), "-J"}
	if f.cfg.Bitrate != "" {
		argv = append(argv, "-b", f.cfg.Bitrate)
	}
	ip, err := f.l.start("iperf3 "+label, f.work, ipOut, ipOut+".err", nil, argv...)
	if err != nil {
		return r, err
	}
	// The sessions start once the streams run and end with them: started over the first
	// 60 % of the run, so late sessions open while the flood is at full rate.
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return r, err
	}
	endMs := T*1000 - 500
	ss, err := f.l.start("sessions "+label, f.work, sessOut, sessOut+".err", []string{"NODE_PATH=" + f.mods},
		"node", filepath.Join(f.cfg.Root, "bench/live/sessions.js"), srvIP, strconv.Itoa(poolPort),
		strconv.Itoa(f.cfg.Sessions), strconv.Itoa(T*600), strconv.Itoa(endMs))
	if err != nil {
		return r, err
	}
	bound := time.Duration(T+20) * time.Second
	ipErr := ip.wait(ctx, bound)
	if pid > 0 {
		if r.Cores, r.PeakMiB, err = w.end(); err != nil {
			return r, fmt.Errorf("%s: measuring pid %d: %w", label, pid, err)
		}
	}
	ssErr := ss.wait(ctx, bound)
	if ipErr != nil {
		_, why := iperfResult(ipOut) // iperf3 -J puts its error in the JSON
		return r, fmt.Errorf("%s: iperf3: %v (%v)", label, ipErr, why)
	}
	if ssErr != nil {
		b, _ := os.ReadFile(sessOut + ".err")
		return r, fmt.Errorf("%s: sessions: %v %s", label, ssErr, firstLine(b))
	}
	if r.Bps, err = iperfResult(ipOut); err != nil {
		return r, err
	}
	if r.Sessions, err = readSessions(sessOut); err != nil {
		return r, err
	}
	say("%-16s %6.2f Gbit/s, %d/%d sessions answered by the pool", label, r.Bps/1e9, established(r.Sessions), len(r.Sessions))
	return r, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// established counts sessions the pool answered at least once.
func established(ss []session) int {
	n := 0
	for _, s := range ss {
		if s.Connected && s.Replies > 0 {
			n++
		}
	}
	return n
}

// sensorFigures are one tool's column of the flood rows.
type sensorFigures struct {
	Tool         string
	Ran          bool
	Note         string // why it did not run, or a caveat
	Alerted      int    // established sessions with an alert on their flow
	Established  int
	Sessions     int
	Alerts       int // alert events in total
	Cores        float64
	Ratio        float64 // throughput with / mean of the runs without around it
	Offered      float64 // tp_packets over the flood (drops included)
	Drops        float64
	PeakMiB      float64
	Rings        []ring
	Extra        []string // other counters worth reading (pipeline drops, bypass, ...)
	With         float64  // bits per second
	Without      [2]float64
	ReadyAfter   time.Duration
	RateLimited  float64
	AlertDropped float64
}

func (s *sensorFigures) sessionsFrom(run loadRun, alerted map[int]bool) {
	s.Sessions = len(run.Sessions)
	for _, x := range run.Sessions {
		if x.Connected && x.Replies > 0 {
			s.Established++
			if alerted[x.Port] {
				s.Alerted++
			}
		}
	}
}

func floodScenario(ctx context.Context, cfg config, l *lab, res *result) error {
	say("flood: %d iperf3 streams for %d s plus %d Stratum sessions from one process, per run", cfg.Streams, cfg.Seconds, cfg.Sessions)
	f, err := setupFlood(ctx, cfg, l)
	if err != nil {
		return err
	}
	base0, err := f.load(ctx, "base0", 0)
	if err != nil {
		return err
	}
	mg, err := f.withMinerguard(ctx)
	if err != nil {
		return err
	}
	base1, err := f.load(ctx, "base1", 0)
	if err != nil {
		return err
	}
	mg.ratio(base0.Bps, base1.Bps)
	res.Baselines = append(res.Baselines, base0.Bps, base1.Bps)
	res.Minerguard = mg
	if !cfg.Suricata {
		res.Suricata = &sensorFigures{Tool: "suricata", Note: "not measured (BENCH_SURICATA=0)"}
		res.SuricataBypass = res.Suricata
		return nil
	}
	if _, err := exec.LookPath("suricata"); err != nil {
		res.Suricata = &sensorFigures{Tool: "suricata", Note: "not installed"}
		res.SuricataBypass = res.Suricata
		return nil
	}
	prev := base1.Bps
	for _, bypass := range []bool{false, true} {
		s, err := f.withSuricata(ctx, bypass)
		if err != nil {
			return err
		}
		label := "base2"
		if bypass {
			label = "base3"
		}
		b, err := f.load(ctx, label, 0)
		if err != nil {
			return err
		}
		s.ratio(prev, b.Bps)
		res.Baselines = append(res.Baselines, b.Bps)
		prev = b.Bps
		if bypass {
			res.SuricataBypass = s
		} else {
			res.Suricata = s
		}
	}
	return nil
}

func (s *sensorFigures) ratio(before, after float64) {
	s.Without = [2]float64{before, after}
	if m := (before + after) / 2; m > 0 {
		s.Ratio = s.With / m
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startSensor starts `minerguard sensor` on namespaces and waits until /readyz answers and
// minerguard_namespaces_monitored reaches len(namespaces). It returns the process, the
// metrics base URL and the time from start to that point.
func startSensor(ctx context.Context, cfg config, l *lab, label string, namespaces []string) (*proc, string, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", 0, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	state := filepath.Join(cfg.Out, label+"-state")
	os.RemoveAll(state)
	argv := []string{cfg.Minerguard, "sensor", "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--alerts.output", filepath.Join(cfg.Out, label+"-alerts.json"), "--state-dir", state}
	for _, n := range namespaces {
		argv = append(argv, "--netns", n)
	}
	t0 := time.Now()
	p, err := l.start("minerguard "+label, "", filepath.Join(cfg.Out, label+"-sensor.out"), filepath.Join(cfg.Out, label+"-sensor.log"), nil, argv...)
	if err != nil {
		return nil, "", 0, err
	}
	for deadline := t0.Add(60 * time.Second); ; {
		if ready(base) {
			if m, err := scrape(base, ""); err == nil && int(m["minerguard_namespaces_monitored"]) >= len(namespaces) {
				return p, base, time.Since(t0), nil
			}
		}
		if p.exited() {
			b, _ := os.ReadFile(filepath.Join(cfg.Out, label+"-sensor.log"))
			return nil, "", 0, fmt.Errorf("minerguard sensor exited: %v: %s", p.err, lastLines(b, 5))
		}
		if time.Now().After(deadline) {
			p.stop(5 * time.Second)
			return nil, "", 0, fmt.Errorf("minerguard sensor not ready with %d namespaces after 60 s", len(namespaces))
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return nil, "", 0, err
		}
	}
}

func lastLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

// counters whose change over the flood the report lists besides the table's (drop reasons,
// bypass, pipeline queue): whatever of them the sensor under test exports.
var extraCounter = regexp.MustCompile(`^minerguard_.*(drop|bypass|freeze|evict|fallback).*_total$`)

func (f *floodLab) withMinerguard(ctx context.Context) (*sensorFigures, error) {
	s := &sensorFigures{Tool: "minerguard", Ran: true}
	p, base, readyAfter, err := startSensor(ctx, f.cfg, f.l, "mg", []string{f.work})
	if err != nil {
		return nil, err
	}
	defer p.stop(10 * time.Second)
	s.ReadyAfter = readyAfter
	if s.Rings, err = rings(f.work, p.pid()); err != nil {
		return nil, err
	}
	f.mgRings = s.Rings
	m0, err := scrape(base, filepath.Join(f.cfg.Out, "mg-metrics-before.txt"))
	if err != nil {
		return nil, err
	}
	run, err := f.load(ctx, "minerguard", p.pid())
	if err != nil {
		if p.exited() {
			err = fmt.Errorf("%w; the sensor exited: %s", err, lastLines([]byte(readString(filepath.Join(f.cfg.Out, "mg-sensor.log"))), 5))
		}
		return nil, err
	}
	m1, err := scrape(base, filepath.Join(f.cfg.Out, "mg-metrics-after.txt"))
	if err != nil {
		return nil, err
	}
	// Frames still in the ring or the pipeline queue, and alerts in the writer's queue,
	// reach the output within the block timeout and a writer tick.
	if err := sleep(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	m2, _ := scrape(base, filepath.Join(f.cfg.Out, "mg-metrics-end.txt"))
	p.stop(10 * time.Second)
	s.With, s.Cores, s.PeakMiB = run.Bps, run.Cores, run.PeakMiB
	if _, ok := m1["minerguard_ring_packets_total"]; !ok {
		s.Note = "the sensor exports no minerguard_ring_packets_total: ring figures not read"
	}
	s.Offered = m1["minerguard_ring_packets_total"] - m0["minerguard_ring_packets_total"]
	s.Drops = m1["minerguard_ring_packets_dropped_total"] - m0["minerguard_ring_packets_dropped_total"]
	if m2 != nil {
		s.RateLimited = m2[`minerguard_alerts_dropped_total{reason="rate_limited"}`]
		s.AlertDropped = m2[`minerguard_alerts_dropped_total{reason="queue_full"}`]
	}
	for name, v := range m1 {
		if extraCounter.MatchString(name) && name != "minerguard_ring_packets_dropped_total" {
			if d := v - m0[name]; d != 0 {
				s.Extra = append(s.Extra, fmt.Sprintf("%s +%.0f", name, d))
			}
		}
	}
	ports, n, err := alertedPorts(filepath.Join(f.cfg.Out, "mg-alerts.json"), poolPort)
	if err != nil {
		return nil, err
	}
	s.Alerts = n
	s.sessionsFrom(run, ports)
	say("minerguard: %d/%d sessions alerted, %.2f cores, peak RSS %.0f MiB, drops %.0f of %.0f", s.Alerted, s.Established, s.Cores, s.PeakMiB, s.Drops, s.Offered)
	return s, nil
}

// suricataYAML is the shared bench config (ET rules, HOME_NET any) made live: AF_PACKET, one
// worker, a TPACKET_V3 ring the size of the sensor's, eve alerts and capture stats.
var suricataYAML = template.Must(template.New("suricata").Parse(`%YAML 1.1
---
vars:
  address-groups: {HOME_NET: "any", EXTERNAL_NET: "any", HTTP_SERVERS: "$HOME_NET", SMTP_SERVERS: "$HOME_NET", SQL_SERVERS: "$HOME_NET", DNS_SERVERS: "$HOME_NET", TELNET_SERVERS: "$HOME_NET", AIM_SERVERS: "$EXTERNAL_NET", DC_SERVERS: "$HOME_NET", DNP3_SERVER: "$HOME_NET", DNP3_CLIENT: "$HOME_NET", MODBUS_CLIENT: "$HOME_NET", MODBUS_SERVER: "$HOME_NET", ENIP_CLIENT: "$HOME_NET", ENIP_SERVER: "$HOME_NET"}
  port-groups: {HTTP_PORTS: "80", SHELLCODE_PORTS: "!80", ORACLE_PORTS: 1521, SSH_PORTS: 22, DNP3_PORTS: 20000, MODBUS_PORTS: 502, FILE_DATA_PORTS: "[$HTTP_PORTS,110,143]", FTP_PORTS: 21, GENEVE_PORTS: 6081, VXLAN_PORTS: 4789, TEREDO_PORTS: 3544}
af-packet:
  - interface: {{.Iface}}
    threads: 1
    cluster-id: 97
    cluster-type: cluster_flow
    defrag: yes
    use-mmap: yes
    tpacket-v3: yes
    block-size: {{.BlockSize}}
    ring-size: {{.RingSize}}
    checksum-checks: no
# Suricata turns GSO off on the capture interface by default, which alone cuts this
# workload's throughput several times (1448-byte segments instead of 64 KiB ones): the
# workload's own interface stays as the node has it, as it does for minerguard.
capture:
  disable-offloading: {{.DisableOffloading}}
stats:
  enabled: yes
  interval: 1
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert:
            tagged-packets: no
        - stats:
            totals: yes
            threads: no
logging:
  default-log-level: notice
  outputs:
    - console: {enabled: yes}
    - file: {enabled: no}
    - syslog: {enabled: no}
app-layer:
  protocols:
    http: {enabled: yes}
    tls: {enabled: yes, detection-ports: {dp: 443}}
    dns: {tcp: {enabled: yes, detection-ports: {dp: 53}}, udp: {enabled: yes, detection-ports: {dp: 53}}}
flow: {memcap: 256mb, hash-size: 65536, prealloc: 10000}
stream:
  memcap: 256mb
  checksum-validation: no
  bypass: {{.Bypass}}
  reassembly: {memcap: 1gb, depth: {{.Depth}}}
detect: {profile: medium}
threading: {set-cpu-affinity: no}
unix-command: {enabled: no}
classification-file: /etc/suricata/classification.config
reference-config-file: /etc/suricata/reference.config
`))

// suricataRingSize is the af-packet ring-size (frames) that gives blocks blocks of
// blockSize: Suricata asks for ring-size / frames-per-block + 1 blocks, frames being
// ~1.6 KiB for a 1500-byte MTU; half a block's frames of margin keep the estimate safe.
// The ring it really got is read back from the kernel and reported.
func suricataRingSize(blockSize, blocks int) int {
	perBlock := blockSize / 1616
	if perBlock < 1 {
		perBlock = 1
	}
	return (blocks-1)*perBlock + perBlock/2
}

// suriStats is Suricata 7's exit summary ("device: eth0: packets: N, drops: D (x%)").
var suriStats = regexp.MustCompile(`packets: (\d+), drops: (\d+)`)

func (f *floodLab) withSuricata(ctx context.Context, bypass bool) (*sensorFigures, error) {
	label := "suricata"
	if bypass {
		label = "suricata-bypass"
	}
	s := &sensorFigures{Tool: label, Ran: true}
	rules := filepath.Join(f.cfg.Shared, "bench/et-open-coinminer.rules")
	if _, err := os.Stat(rules); err != nil {
		s.Ran, s.Note = false, "no ET rules at "+rules+" (set MINERGUARD_SHARED)"
		return s, nil
	}
	// Same ring as the sensor got (the kernel's figures from its run), else the 4 × 1 MiB.
	bs, nb := 1<<20, 4
	if len(f.mgRings) > 0 && f.mgRings[0].Blocks > 0 {
		bs, nb = f.mgRings[0].BlockSize, f.mgRings[0].Blocks
	}
	dir := filepath.Join(f.cfg.Out, label)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	yml := filepath.Join(dir, "suricata.yaml")
	yf, err := os.Create(yml)
	if err != nil {
		return nil, err
	}
	err = suricataYAML.Execute(yf, map[string]any{"Iface": workIf, "BlockSize": bs, "RingSize": suricataRingSize(bs, nb),
		"Bypass": map[bool]string{false: "no", true: "yes"}[bypass], "Depth": "1mb",
		"DisableOffloading": map[bool]string{false: "false", true: "true"}[f.cfg.SuricataOffloadOff]})
	yf.Close()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "suricata.out")
	p, err := f.l.start(label, f.work, logPath, logPath, nil,
		"suricata", "-c", yml, "--af-packet="+workIf, "--runmode", "workers", "-S", rules, "-k", "none", "-l", dir)
	if err != nil {
		return nil, err
	}
	defer p.stop(20 * time.Second)
	t0 := time.Now()
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "Engine started") {
			break
		}
		if p.exited() || time.Since(t0) > 120*time.Second {
			p.stop(5 * time.Second)
			return nil, fmt.Errorf("%s did not start: %s", label, lastLines(b, 5))
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	s.ReadyAfter = time.Since(t0)
	if f.cfg.SuricataOffloadOff {
		s.Note = "its default capture.disable-offloading (GSO/TSO off on the workload's interface)"
	} else {
		s.Note = "capture.disable-offloading: false (the workload's offloads as for minerguard)"
	}
	if s.Rings, err = rings(f.work, p.pid()); err != nil {
		return nil, err
	}
	run, err := f.load(ctx, label, p.pid())
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	p.stop(30 * time.Second) // SIGTERM: Suricata prints its capture stats and flushes eve.json
	s.With, s.Cores, s.PeakMiB = run.Bps, run.Cores, run.PeakMiB
	// tp_packets and tp_drops as Suricata read them from the kernel: the last stats event
	// (1 s interval; the flood ended 2 s before the stop), else its exit summary.
	if pk, dr, ok := suricataKernelStats(filepath.Join(dir, "eve.json")); ok {
		s.Offered, s.Drops = pk, dr
	} else if m := suriStats.FindStringSubmatch(readString(logPath)); m != nil {
		s.Offered, _ = strconv.ParseFloat(m[1], 64)
		s.Drops, _ = strconv.ParseFloat(m[2], 64)
	} else {
		s.Note += "; no capture stats in eve.json or " + logPath
	}
	ports, n, err := alertedPorts(filepath.Join(dir, "eve.json"), poolPort)
	if err != nil {
		return nil, err
	}
	s.Alerts = n
	s.sessionsFrom(run, ports)
	say("%s: %d/%d sessions alerted, %.2f cores, peak RSS %.0f MiB, drops %.0f of %.0f, ring %v", label, s.Alerted, s.Established, s.Cores, s.PeakMiB, s.Drops, s.Offered, s.Rings)
	return s, nil
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// suricataKernelStats returns capture.kernel_packets and kernel_drops of the last stats event
// in eve.json (counted since Suricata started; it was idle until the flood).
func suricataKernelStats(eve string) (packets, drops float64, ok bool) {
	for _, l := range strings.Split(readString(eve), "\n") {
		if !strings.Contains(l, `"event_type":"stats"`) {
			continue
		}
		var e struct {
			Stats struct {
				Capture struct {
					KernelPackets *float64 `json:"kernel_packets"`
					KernelDrops   *float64 `json:"kernel_drops"`
				} `json:"capture"`
			} `json:"stats"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Stats.Capture.KernelPackets != nil {
			packets, ok = *e.Stats.Capture.KernelPackets, true
			drops = 0
			if e.Stats.Capture.KernelDrops != nil {
				drops = *e.Stats.Capture.KernelDrops
			}
		}
	}
	return packets, drops, ok
}
