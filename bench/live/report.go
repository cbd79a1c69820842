package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// result is what one run measured, printed as issue 17's table.
type result struct {
	Cfg                config
	Date               string
	Machine            string
	LoadStart, LoadEnd string
	Commit             string
	Minerguard         *sensorFigures
	Suricata           *sensorFigures
	SuricataBypass     *sensorFigures
	Baselines          []float64 // bits per second of the runs without a sensor, in order
	Scale              *scaleFigures
}

func newResult(cfg config) *result {
	return &result{Cfg: cfg, Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Machine: machine(), LoadStart: loadavg()}
}

func machine() string {
	model := "?"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
		f.Close()
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d CPUs (nproc), %s, kernel %s", runtime.NumCPU(), model, strings.TrimSpace(string(kernel)))
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cell formats one figure of a tool's column, or why there is none.
func cell(s *sensorFigures, f func(*sensorFigures) string) string {
	switch {
	case s == nil:
		return "not run"
	case !s.Ran:
		return s.Note
	}
	return f(s)
}

func pct(a, b float64) string {
	if b == 0 {
		return "– (no packets offered)"
	}
	return fmt.Sprintf("%.2f %% (%.0f of %.0f)", 100*a/b, a, b)
}

func (r *result) print(w io.Writer) {
	c := r.Cfg
	mode := ""
	if c.Quick {
		mode = " — BENCH_QUICK"
	}
	fmt.Fprintf(w, "\nbench-live, %s, %s%s\n", r.Date, r.Machine, mode)
	fmt.Fprintf(w, "load average at start %s, at end %s; minerguard at %s\n", r.LoadStart, r.LoadEnd, r.Commit)
	fmt.Fprintf(w, "flood: %d iperf3 streams × %d s + %d Stratum sessions from one process (npm stratum Client)\n\n", c.Streams, c.Seconds, c.Sessions)
	fmt.Fprintln(w, "| scenario | minerguard (this run) | Suricata 7 AF_PACKET, 1 worker | Suricata + stream-depth bypass | must reach |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	row := func(name, target string, f func(*sensorFigures) string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, cell(r.Minerguard, f), cell(r.Suricata, f), cell(r.SuricataBypass, f), target)
	}
	if r.Minerguard != nil {
		row("Stratum sessions alerted during the flood", fmt.Sprintf("%d/%d", c.Sessions, c.Sessions), func(s *sensorFigures) string {
			x := fmt.Sprintf("%d/%d", s.Alerted, s.Sessions)
			if s.Established < s.Sessions {
				x += fmt.Sprintf(" (%d answered by the pool)", s.Established)
			}
			return x
		})
		row("sensor CPU during the flood", "≤ 0.05 cores", func(s *sensorFigures) string { return fmt.Sprintf("%.2f cores", s.Cores) })
		row("workload throughput with / without the sensor", "≥ 0.90", func(s *sensorFigures) string {
			return fmt.Sprintf("%.2f (%.2f / %.2f Gbit/s)", s.Ratio, s.With/1e9, (s.Without[0]+s.Without[1])/2e9)
		})
		row("ring drops / packets offered (`tp_packets` includes drops)", "≤ 0.5 %", func(s *sensorFigures) string { return pct(s.Drops, s.Offered) })
		row("sensor peak RSS during the flood", "≤ 50 MiB", func(s *sensorFigures) string { return fmt.Sprintf("%.0f MiB", s.PeakMiB) })
	}
	if s := r.Scale; s != nil {
		fmt.Fprintf(w, "| %d network namespaces: RSS | %.0f MiB (%s each) | | | ≤ 160 MiB (110) |\n", s.Namespaces, s.RSSMiB, ringsOf(s.Rings))
		fmt.Fprintf(w, "| %d namespaces: ready, all monitored | %.2f s (%d monitored) | | | ≤ 5 s (110) |\n", s.Namespaces, s.ReadyAfter.Seconds(), s.Monitored)
	}
	fmt.Fprintln(w)
	if len(r.Baselines) > 0 {
		var gb []string
		for _, b := range r.Baselines {
			gb = append(gb, fmt.Sprintf("%.2f", b/1e9))
		}
		lo, hi := r.Baselines[0], r.Baselines[0]
		for _, b := range r.Baselines {
			lo, hi = min(lo, b), max(hi, b)
		}
		fmt.Fprintf(w, "runs without a sensor, in order (Gbit/s): %s; max/min %.2f (the noise floor of the throughput ratios)\n", strings.Join(gb, ", "), hi/lo)
	}
	for _, s := range []*sensorFigures{r.Minerguard, r.Suricata, r.SuricataBypass} {
		if s == nil || !s.Ran {
			continue
		}
		fmt.Fprintf(w, "%s: ring %s (kernel), ready %.2f s after start, %d alert events", s.Tool, ringsOf(s.Rings), s.ReadyAfter.Seconds(), s.Alerts)
		if s.RateLimited > 0 || s.AlertDropped > 0 {
			fmt.Fprintf(w, ", alerts rate-limited %.0f, dropped %.0f", s.RateLimited, s.AlertDropped)
		}
		if s.Note != "" {
			fmt.Fprintf(w, "; %s", s.Note)
		}
		fmt.Fprintln(w)
		if len(s.Extra) > 0 {
			fmt.Fprintf(w, "  other counters over the flood: %s\n", strings.Join(s.Extra, ", "))
		}
	}
	if s := r.Scale; s != nil {
		fmt.Fprintf(w, "scale: peak RSS %.0f MiB; lab set up in %.1f s", s.PeakMiB, s.SetupSecond)
		if s.OneRSSMiB > 0 {
			fmt.Fprintf(w, "; RSS with 1 namespace %.0f MiB, so %.2f MiB per further namespace at rest (target ≤ 1 MiB)",
				s.OneRSSMiB, (s.RSSMiB-s.OneRSSMiB)/float64(s.Namespaces-1))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "outputs and logs: %s\n", c.Out)
}

// ringsOf describes the rings of one namespace: "4 × 1 MiB blocks" when all are alike.
func ringsOf(rs []ring) string {
	if len(rs) == 0 {
		return "no ring found"
	}
	seen := map[string]int{}
	var order []string
	for _, r := range rs {
		k := r.String()
		if seen[k] == 0 {
			order = append(order, k)
		}
		seen[k]++
	}
	var parts []string
	for _, k := range order {
		if seen[k] > 1 {
			parts = append(parts, fmt.Sprintf("%d rings of %s", seen[k], k))
		} else {
			parts = append(parts, k)
		}
	}
	return strings.Join(parts, " + ")
}
