package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
)

// captureExts are the file names a directory given to replay is searched for.
var captureExts = []string{".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz"}

// expandDirs replaces each directory in files by the capture files under it, recursively
// and in lexical order, as suricata -r DIR does; a directory without any is an error.
func expandDirs(files []string) ([]string, error) {
	var out []string
	for _, f := range files {
		st, err := os.Stat(f)
		if f == "-" || err != nil || !st.IsDir() {
			out = append(out, f)
			continue
		}
		n := len(out)
		err = filepath.WalkDir(f, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && hasCaptureExt(d.Name()) {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s: no capture files (%s) under it", f, strings.Join(captureExts, ", "))
		}
	}
	return out, nil
}

func hasCaptureExt(name string) bool {
	for _, e := range captureExts {
		if strings.HasSuffix(name, e) {
			return true
		}
	}
	return false
}

// alertWriter is an alert writer of replay's (JSON or text).
type alertWriter interface {
	Write(*alert.Event) error
	Flush() error
}

// multiWriter writes every alert to each writer: -l DIR's eve.json and stdout.
type multiWriter []alertWriter

func (m multiWriter) Write(e *alert.Event) error {
	var first error
	for _, w := range m {
		if err := w.Write(e); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (m multiWriter) Flush() error {
	var first error
	for _, w := range m {
		if err := w.Flush(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// writeStatsLog writes the run's counters in the layout of Suricata's stats.log, so the
// scripts that read one read the other.
func writeStatsLog(w io.Writer, st engine.Stats, start time.Time, suppressed, thresholded uint64) error {
	up := time.Since(start)
	sep := strings.Repeat("-", 84)
	fmt.Fprintln(w, sep)
	fmt.Fprintf(w, "Date: %s -- %s (uptime: %dd, %02dh %02dm %02ds)\n", time.Now().Format("1/2/2006"), time.Now().Format("15:04:05"),
		int(up.Hours())/24, int(up.Hours())%24, int(up.Minutes())%60, int(up.Seconds())%60)
	fmt.Fprintln(w, sep)
	fmt.Fprintf(w, "%-45s | %-25s | %s\n", "Counter", "TM Name", "Value")
	fmt.Fprintln(w, sep)
	row := func(name string, v uint64) { fmt.Fprintf(w, "%-45s | %-25s | %d\n", name, "Total", v) }
	row("decoder.pkts", st.Packets)
	row("decoder.bytes", st.Bytes)
	row("decoder.invalid", st.DecodeErrorsTotal())
	row("decoder.ipv4.frag_later", st.Fragments)
	row("flow.total", st.Flow.Created)
	row("flow.end.evicted_cap", st.Flow.Evicted.Cap)
	row("app_layer.flow.dns", st.DNSMessages)
	row("app_layer.flow.tls", st.TLSHellos)
	row("detect.alert", st.AlertsTotal())
	for r := detect.ReasonStratum; r.String() != "unknown"; r++ {
		row("detect.alert."+strings.ReplaceAll(r.String(), "-", "_"), st.Alerts[r])
	}
	row("detect.alerts_suppressed", suppressed)
	row("detect.alerts_thresholded", thresholded)
	_, err := fmt.Fprintln(w, sep)
	return err
}

// replayStats is the stats record replay writes at the end with --eve-types stats, as
// suricata -r writes its last stats event: the run's counters under Suricata's names.
func replayStats(st engine.Stats, start time.Time, stopped uint64) *alert.Event {
	now := time.Now()
	return &alert.Event{Timestamp: now, Stats: &alert.Stats{
		Uptime:  int64(now.Sub(start).Seconds()),
		Packets: st.Packets, Bytes: st.Bytes, Invalid: st.DecodeErrorsTotal(),
		FlowsTotal: st.Flow.Created, FlowsActive: uint64(st.Flow.Active),
		Alerts: st.AlertsTotal(), Suppressed: stopped, DNSMessages: st.DNSMessages, TLSClientHellos: st.TLSHellos,
	}}
}
