package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime/stime in /proc/PID/stat: USER_HZ, 100 on every Linux ABI
// this runs on (sysconf(_SC_CLK_TCK) reports it; Go has no cgo-free call for it).
const userHZ = 100

// cpuTicks returns utime+stime of pid (all its threads) in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm may hold spaces and parentheses: the fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// After comm: state(3) ... utime is field 14, stime 15 of the whole line.
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, nil
}

// statusKiB returns a "Vm...:" field of /proc/PID/status in KiB.
func statusKiB(pid int, field string) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// resetPeakRSS makes VmHWM start again from the current RSS (clear_refs 5), so the peak read
// at the end of the flood is the flood's, not start-up's (Suricata compiles its rules then).
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// window measures one process over the flood: CPU in cores and peak RSS.
type window struct {
	pid   int
	t0    time.Time
	ticks uint64
}

func startWindow(pid int) (window, error) {
	if err := resetPeakRSS(pid); err != nil {
		return window{}, fmt.Errorf("resetting peak RSS: %w", err)
	}
	t, err := cpuTicks(pid)
	return window{pid: pid, t0: time.Now(), ticks: t}, err
}

// end returns the cores used since start and the peak RSS in MiB.
func (w window) end() (cores, peakMiB float64, err error) {
	t, err := cpuTicks(w.pid)
	if err != nil {
		return 0, 0, err
	}
	el := time.Since(w.t0).Seconds()
	hwm, err := statusKiB(w.pid, "VmHWM")
	if err != nil {
		return 0, 0, err
	}
	return float64(t-w.ticks) / userHZ / el, float64(hwm) / 1024, nil
}

// metrics is one Prometheus scrape: each metric name's samples summed over their labels,
// and each labelled sample also under name{labels} as exposed.
type metrics map[string]float64

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)`)

func parseMetrics(r io.Reader) metrics {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		s := metricLine.FindStringSubmatch(l)
		if s == nil {
			continue
		}
		if v, err := strconv.ParseFloat(s[3], 64); err == nil {
			m[s[1]] += v
			if s[2] != "" {
				m[s[1]+s[2]] += v
			}
		}
	}
	return m
}

var httpc = &http.Client{Timeout: 3 * time.Second}

// scrape fetches base+"/metrics"; the raw text is kept in save when it is not "".
func scrape(base, save string) (metrics, error) {
	resp, err := httpc.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if save != "" {
		os.WriteFile(save, b, 0o644)
	}
	return parseMetrics(strings.NewReader(string(b))), nil
}

func ready(base string) bool {
	resp, err := httpc.Get(base + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// ring is one AF_PACKET RX ring as the kernel reports it (ss -0 -e: packet_diag).
type ring struct {
	BlockSize, Blocks, FrameSize, Frames int
}

func (r ring) String() string {
	if r.Blocks == 0 {
		return "no ring"
	}
	return fmt.Sprintf("%d × %s blocks", r.Blocks, size(r.BlockSize))
}

func size(b int) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}

var ringRx = regexp.MustCompile(`ring_rx\(blk_size:(\d+),blk_nr:(\d+),frm_size:(\d+),frm_nr:(\d+)`)
var ssPid = regexp.MustCompile(`pid=(\d+),`)

// rings lists the RX rings of packet sockets owned by pid in namespace ns, from the kernel
// (so what the sensor actually opened, whatever its flags say).
func rings(ns string, pid int) ([]ring, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-0", "-e", "-p").Output()
	if err != nil {
		return nil, fmt.Errorf("ss -0 -e -p in %s: %w", ns, err)
	}
	var rs []ring
	owned := false
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, " ") {
			owned = false
			for _, m := range ssPid.FindAllStringSubmatch(l, -1) {
				if p, _ := strconv.Atoi(m[1]); p == pid {
					owned = true
				}
			}
			continue
		}
		if m := ringRx.FindStringSubmatch(l); m != nil && owned {
			var r ring
			r.BlockSize, _ = strconv.Atoi(m[1])
			r.Blocks, _ = strconv.Atoi(m[2])
			r.FrameSize, _ = strconv.Atoi(m[3])
			r.Frames, _ = strconv.Atoi(m[4])
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// iperfResult reads iperf3 -J output: bits per second received at the server.
func iperfResult(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("%s: no throughput", path)
	}
	return r.End.SumReceived.BitsPerSecond, nil
}

// session is one Stratum session of sessions.js.
type session struct {
	Session   int    `json:"session"`
	Port      int    `json:"port"`
	Connected bool   `json:"connected"`
	Replies   int    `json:"replies"`
	Submits   int    `json:"submits"`
	Error     string `json:"error"`
}

func readSessions(path string) ([]session, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ss []session
	// The last line is the summary; earlier lines are progress.
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ss); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ss, nil
}

// alertedPorts reads EVE JSON alert lines (minerguard's output or Suricata's eve.json) and
// returns the client ports of flows to or from poolPort that raised an alert, so that the
// count is of sessions, not alerts.
func alertedPorts(path string, poolPort int) (map[int]bool, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	ports := map[int]bool{}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var a struct {
			EventType string `json:"event_type"`
			SrcPort   int    `json:"src_port"`
			DestPort  int    `json:"dest_port"`
		}
		if json.Unmarshal(sc.Bytes(), &a) != nil || a.EventType != "alert" {
			continue
		}
		n++
		switch {
		case a.DestPort == poolPort:
			ports[a.SrcPort] = true
		case a.SrcPort == poolPort: // Suricata alerts on the pool's answers with the pool as source
			ports[a.DestPort] = true
		}
	}
	return ports, n, sc.Err()
}
