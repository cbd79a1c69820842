// Command live is `make bench-live`: the live sensor measured on this machine under node load,
// as issue 17's table states it. Two scenarios:
//
//   - flood: a workload netns routed through a node netns to a server netns. The same load
//     (iperf3 streams plus Stratum sessions from one process) runs without a sensor, with
//     `minerguard sensor --netns <workload>`, without again (and, where Suricata is installed,
//     with Suricata 7 on AF_PACKET in the workload netns, without and with stream-depth
//     bypass, each followed by a run without), so the harness's own cost cancels out.
//   - scale: N namespaces (110 by default) with a veth each to a bridge in a node netns, the
//     sensor started on all of them: its RSS and the time until /readyz and
//     minerguard_namespaces_monitored say all are captured.
//
// Every figure is read from the system, not assumed: alerts from the sensor's output and
// Suricata's eve.json, CPU and peak RSS from /proc, throughput from iperf3's JSON, ring drops
// from the sensor's metrics (the kernel's PACKET_STATISTICS) and Suricata's capture stats,
// ring geometry from the kernel (ss -0 -e). Root only; it exits 0 with a reason otherwise.
// Knobs are environment variables, see bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is one run's shape.
type config struct {
	Root       string // repository root
	Out        string // outputs and logs of this run
	Minerguard string // sensor binary; built from Root when ""
	Seconds    int    // load duration per run
	Streams    int    // iperf3 parallel streams
	Bitrate    string // iperf3 -b per stream ("": unlimited, a flood)
	Sessions   int    // Stratum sessions from one process
	Namespaces int    // scale scenario
	Suricata   bool   // measure Suricata too (where installed)
	// SuricataOffloadOff keeps Suricata's default of turning GSO/TSO off on the interface it
	// captures (off by default here: it changes the workload, not just the sensor).
	SuricataOffloadOff bool
	Flood              bool
	Scale              bool
	Shared             string // shared/ (Suricata's ET rules)
	Quick              bool
}

func configFromEnv(root string) config {
	c := config{Root: root, Out: filepath.Join(root, "bench/out/live"), Seconds: 12, Streams: 2, Sessions: 20,
		Namespaces: 110, Suricata: true, Flood: true, Scale: true, Shared: filepath.Join(root, "../shared")}
	if os.Getenv("BENCH_QUICK") == "1" {
		c.Quick, c.Seconds, c.Namespaces = true, 4, 20
	}
	num := func(k string, p *int) {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
			*p = v
		}
	}
	num("BENCH_SECONDS", &c.Seconds)
	num("BENCH_STREAMS", &c.Streams)
	num("BENCH_SESSIONS", &c.Sessions)
	num("BENCH_NAMESPACES", &c.Namespaces)
	if os.Getenv("BENCH_SURICATA") == "0" {
		c.Suricata = false
	}
	if s := os.Getenv("BENCH_SCENARIOS"); s != "" {
		c.Flood, c.Scale = strings.Contains(s, "flood"), strings.Contains(s, "scale")
	}
	c.Bitrate = os.Getenv("BENCH_BITRATE")
	c.SuricataOffloadOff = os.Getenv("BENCH_SURICATA_OFFLOADING") == "default"
	if v := os.Getenv("BENCH_MINERGUARD"); v != "" {
		c.Minerguard = v
	}
	if v := os.Getenv("MINERGUARD_SHARED"); v != "" {
		c.Shared = v
	}
	if v := os.Getenv("BENCH_OUT"); v != "" {
		c.Out = v
	}
	return c
}

func main() {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-live: skipped: needs root (creates network namespaces, opens AF_PACKET rings, reads other processes' /proc)")
		return
	}
	root, err := repoRoot()
	if err != nil {
		fatal(err)
	}
	cfg := configFromEnv(root)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	if res != nil {
		res.print(os.Stdout)
		// The figures as JSON too, for comparing runs.
		if b, jerr := json.MarshalIndent(res, "", "  "); jerr == nil {
			os.WriteFile(filepath.Join(cfg.Out, "result.json"), append(b, '\n'), 0o644)
		}
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-live:", err)
	os.Exit(1)
}

func say(format string, a ...any) { fmt.Fprintf(os.Stderr, "==> "+format+"\n", a...) }

// repoRoot is the nearest directory up from here holding this module's go.mod.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/minerguard/minerguard") {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("not inside the minerguard repository")
		}
		d = p
	}
}

// run performs the scenarios of cfg and returns what it measured; the lab is removed before
// it returns, also when ctx is cancelled (SIGINT/SIGTERM).
func run(ctx context.Context, cfg config) (*result, error) {
	for _, tool := range []string{"ip", "ss", "iperf3", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("needs %s (apt-get install iproute2 iperf3 nodejs)", tool)
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	res := newResult(cfg)
	if cfg.Minerguard == "" {
		cfg.Minerguard = filepath.Join(cfg.Out, "minerguard")
		say("building %s from %s", cfg.Minerguard, cfg.Root)
		b := exec.CommandContext(ctx, "go", "build", "-o", cfg.Minerguard, "./cmd/minerguard")
		b.Dir = cfg.Root
		if out, err := b.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building minerguard: %v: %s", err, out)
		}
	}
	res.Commit = gitHead(cfg.Root)
	if cfg.Flood {
		if _, err := os.Stat(filepath.Join(cfg.Root, "sensor/testdata/node/node_modules/stratum")); err != nil {
			say("installing the npm Stratum packages (npm ci --prefix sensor/testdata/node)")
			c := exec.CommandContext(ctx, "npm", "ci", "--prefix", filepath.Join(cfg.Root, "sensor/testdata/node"), "--no-audit", "--no-fund", "--loglevel=error")
			if out, err := c.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("npm ci: %v: %s", err, out)
			}
		}
	}
	removeStale()
	l := newLab()
	defer l.cleanup()
	// A signal cancels ctx; the scenario in progress returns and the deferred cleanup runs.
	if cfg.Flood {
		if err := floodScenario(ctx, cfg, l, res); err != nil {
			return res, fmt.Errorf("flood: %w", err)
		}
	}
	if cfg.Scale {
		if err := scaleScenario(ctx, cfg, l, res); err != nil {
			return res, fmt.Errorf("scale: %w", err)
		}
	}
	res.LoadEnd = loadavg()
	return res, nil
}

func gitHead(root string) string {
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%h %s").Output()
	if err != nil {
		return "?"
	}
	s := strings.TrimSpace(string(out))
	if len(s) > 72 {
		s = s[:72] + "…"
	}
	return s
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
