package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/metrics"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/sensor"
	"github.com/spf13/cobra"
)

type replayOpts struct {
	output      string
	failOn      string
	intel       []string
	maxFlows    int
	depth       int
	defragCap   int
	redact      bool
	metricsFile string
	threshold   string
	logDir      string
	quiet       bool
	cpuProfile  string
	eveTypes    []string
	flowSample  uint32

	config        string
	profiles      string
	learn         bool
	workloads     []string
	workloadFiles []string
}

func replayCmd() *cobra.Command {
	o := replayOpts{}
	cmd := &cobra.Command{
		Use:   "replay FILE|DIR... [FILTER EXPRESSION]",
		Short: "Run the detection pipeline on capture files",
		Long: "Reads pcap or pcapng files (gzip-compressed or not; '-' for stdin; globs allowed; a\n" +
			"directory is searched recursively for .pcap, .pcapng and .cap files, gzipped or not) and\n" +
			"reports every mining flow: Stratum in all its dialects on any port, DNS lookups of pools,\n" +
			"TLS to pools, connections to pool addresses, encrypted DNS. Flows are timed by packet\n" +
			"time, so the result does not depend on how fast the file is read.\n\n" +
			"A trailing capture filter expression (pcap-filter(7) syntax, as tcpdump -r FILE EXPR or\n" +
			"suricata -r FILE EXPR; after -- when it could be taken for a file) keeps only the packets\n" +
			"it matches: 'not port 53', 'host 10.0.0.5 and tcp'. tcpdump compiles it (libpcap's\n" +
			"semantics, for each link type met), so it must be installed to use one.\n\n" +
			"Exit status: 0 ran, 1 something was found and --fail-on alert was given, 2 error\n" +
			"(a damaged file is reported, and everything before the damage is still analysed).\n\n" +
			"Learned egress profiles: --learn --profiles STATE teaches each workload's profile what it\n" +
			"talks to in the capture (flows a detector flags are never learned) and marks the profiles\n" +
			"monitored at the end; a later --profiles STATE run reports every flow that left its\n" +
			"workload's profile (egress-not-in-profile, unresolved-ip). A packet's workload comes from\n" +
			"--workload CIDR=NAME by its source address, else each capture interface is one workload.\n\n" +
			"--config FILE takes from the sensor's config file its intel.files, workloads.addresses\n" +
			"(CIDR=NAME pairs) and the profiles.deny list and caps, so a capture is judged as the sensor\n" +
			"would judge it; flags add to it.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runReplay(cmd, args, o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "alert format: text or json (default text on a terminal, json otherwise)")
	f.StringVar(&o.failOn, "fail-on", "", "exit 1 when this happened: alert")
	f.StringArrayVar(&o.intel, "intel", nil, "extra intel list (text or YAML); repeatable")
	f.IntVar(&o.maxFlows, "max-flows", 262144, "flow table capacity; the least recently seen flows are evicted past it")
	f.IntVar(&o.depth, "stream-depth", 64<<10, "bytes inspected at the start of each direction of a TCP flow")
	f.IntVar(&o.defragCap, "defrag-memcap", 16<<20, "bytes of IP fragment reassembly buffers; past it the oldest incomplete datagrams are dropped")
	f.BoolVar(&o.redact, "redact-login", false, "replace wallet/worker logins in alerts with REDACTED")
	f.StringVar(&o.metricsFile, "metrics-file", "", "write the Prometheus metrics of the run to this file at the end")
	f.StringVarP(&o.logDir, "log-dir", "l", "", "write alerts to DIR/eve.json (appended, as Suricata does) and the counters to DIR/stats.log, as suricata -r -l DIR")
	f.StringSliceVar(&o.eveTypes, "eve-types", []string{"alert"}, "EVE record types to write beside the alerts (always written), as Suricata's eve-log types: flow (one per flow as it ends), dns (the queries and answers of pool lookups), tls (each ClientHello: SNI, JA4, ALPN), stats (one record at the end); comma-separated or repeated")
	f.Uint32Var(&o.flowSample, "flow-sample", 1, "write the flow record of one flow in N (chosen by flow_id), and of every flow that alerted")
	f.StringVar(&o.threshold, "threshold-file", "", "suppress and threshold rules in Suricata's threshold.config syntax (minerguard signatures lists the ids)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress or summary on stderr")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run to this file (for development)")
	f.MarkHidden("cpuprofile")
	f.StringVar(&o.config, "config", "", "sensor config file: its intel files, workloads.addresses and profile deny list and caps apply")
	f.StringVar(&o.profiles, "profiles", "", "learned profile state (bbolt file): check flows against it, or build it with --learn")
	f.BoolVar(&o.learn, "learn", false, "learn the workloads' egress profiles from the capture into --profiles")
	f.StringArrayVar(&o.workloads, "workload", nil, "CIDR=NAME: packets from this source prefix belong to workload NAME; repeatable")
	f.StringArrayVar(&o.workloadFiles, "workload-file", nil, "file of CIDR=NAME lines (# comments); repeatable")
	return cmd
}

// sinkWriter adapts an alert writer to engine.Sink and remembers the first write error.
type sinkWriter struct {
	w   alertWriter
	n   int
	err error
}

// Record writes a record (flow, dns, tls) without counting it as an alert.
func (s *sinkWriter) Record(e *alert.Event) {
	if err := s.w.Write(e); err != nil && s.err == nil {
		s.err = err
	}
}

func (s *sinkWriter) Alert(e *alert.Event) {
	if e.EventType != "anomaly" { // records (encrypted DNS) are written, not counted as alerts
		s.n++
	}
	if err := s.w.Write(e); err != nil && s.err == nil {
		s.err = err
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runReplay(cmd *cobra.Command, args []string, o replayOpts) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	explicit := o.output != ""
	if o.output == "" {
		o.output = "json"
		if f, ok := stdout.(*os.File); ok && isTerminal(f) {
			o.output = "text"
		}
	}
	var ws multiWriter
	switch o.output {
	case "json":
		ws = append(ws, alert.NewJSONWriter(stdout))
	case "text":
		ws = append(ws, alert.NewTextWriter(stdout))
	default:
		return &exitErr{exitError, fmt.Errorf("-o %q: want text or json", o.output)}
	}
	var statsLog *os.File
	if o.logDir != "" {
		// As suricata -r -l: the alerts go to the directory; stdout only with -o.
		if !explicit {
			ws = nil
		}
		if err := os.MkdirAll(o.logDir, 0o755); err != nil {
			return &exitErr{exitError, fmt.Errorf("-l: %w", err)}
		}
		ef, err := os.OpenFile(filepath.Join(o.logDir, "eve.json"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return &exitErr{exitError, fmt.Errorf("-l: %w", err)}
		}
		defer ef.Close()
		if statsLog, err = os.Create(filepath.Join(o.logDir, "stats.log")); err != nil {
			return &exitErr{exitError, fmt.Errorf("-l: %w", err)}
		}
		defer statsLog.Close()
		ws = append(ws, alert.NewJSONWriter(ef))
	}
	sink := &sinkWriter{w: ws}
	if err := alert.CheckTypes(o.eveTypes); err != nil {
		return &exitErr{exitError, fmt.Errorf("--eve-types: %w", err)}
	}
	if o.failOn != "" && o.failOn != "alert" {
		return &exitErr{exitError, fmt.Errorf("--fail-on %q: want alert", o.failOn)}
	}
	if o.maxFlows < 1 || o.depth < 1 || o.defragCap < 1 {
		return &exitErr{exitError, fmt.Errorf("--max-flows, --stream-depth and --defrag-memcap must be at least 1")}
	}
	inputs, expr := args, ""
	if len(args) > 0 {
		inputs, expr = splitFilter(args, cmd.Flags().ArgsLenAtDash())
	}
	if len(inputs) == 0 {
		return &exitErr{exitError, fmt.Errorf("no capture file before the filter expression %q", expr)}
	}
	var filt *bpfFilter
	if expr != "" {
		var err error
		if filt, err = newBPFFilter(expr); err != nil {
			return &exitErr{exitError, err}
		}
	}
	files, err := capture.Expand(inputs)
	if err == nil {
		files, err = expandDirs(files)
	}
	if err != nil {
		return &exitErr{exitError, err}
	}
	var pcfg profile.Config
	if o.config != "" {
		c, err := sensor.Load(o.config)
		if err != nil {
			return &exitErr{exitError, fmt.Errorf("--config %s: %w", o.config, err)}
		}
		o.intel = append(c.Intel.Files, o.intel...)
		o.workloads = append(c.Workloads.Addresses, o.workloads...)
		pcfg = profile.Config{Deny: c.Profiles.Deny, MaxEntries: c.Profiles.MaxEntries, MaxIPsPerName: c.Profiles.MaxIPsPerName}
	}
	set, err := loadIntel(o.intel)
	if err != nil {
		return &exitErr{exitError, err}
	}
	var tu *alert.Tuning
	if o.threshold != "" {
		if tu, err = alert.LoadTuning(o.threshold); err != nil {
			return &exitErr{exitError, fmt.Errorf("--threshold-file: %w", err)}
		}
	}
	tuned := alert.NewTuningSink(tu, sink)
	cfg := flow.Config{MaxFlows: o.maxFlows, StreamDepth: o.depth, Defrag: flow.DefragConfig{Memcap: int64(o.defragCap)}}
	opts := engine.Options{
		Flow:        cfg,
		Detector:    detect.New(set, detect.ModeMonitor),
		Sink:        tuned,
		RedactLogin: o.redact,
		Records:     sink,
		RecordTypes: engine.RecordTypesOf(o.eveTypes),
		FlowSample:  o.flowSample,
	}
	book, err := openProfiles(o.profiles, o.learn, pcfg)
	if err != nil {
		return &exitErr{exitError, err}
	}
	if book != nil {
		defer book.Close()
		opts.Profiles = book
	}
	if book != nil || len(o.workloads) > 0 || len(o.workloadFiles) > 0 {
		wm, err := parseWorkloads(o.workloads, o.workloadFiles)
		if err != nil {
			return &exitErr{exitError, err}
		}
		opts.Workload = wm.of
		if len(wm.prefixes) > 0 {
			opts.NameScope = wm.nameScope
		}
	}
	eng := engine.New(opts)
	if o.cpuProfile != "" {
		pf, err := os.Create(o.cpuProfile)
		if err != nil {
			return &exitErr{exitError, err}
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return &exitErr{exitError, err}
		}
		defer pprof.StopCPUProfile()
	}
	// The live heap is bounded by the engine's caps, not by the input; collecting less often
	// is a measurable share of replay time (allocations come from DNS names, TLS
	// fingerprints and alerts). But garbage is not: stream buffers outgrown or dropped under
	// the reassembly budget piled up to 5× the live heap (540 MiB of RSS for a 256 MiB
	// budget), so the heap also gets a soft limit, the reassembly budget plus a fixed
	// allowance: the GC stays rare until the heap nears it, then collects eagerly (a heap
	// whose live part is larger, a full table of large streams, costs GC time, not memory
	// past its live size). GOGC and GOMEMLIMIT in the environment still win.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(eng.FlowConfig().MaxReassemblyTotal + replayHeapAllowance)
	}
	progress := !o.quiet && isTTY(stderr)
	var failed []error
	start := time.Now()
	for i, name := range files {
		if err := replayFile(eng, filt, name, uint64(i), progress, stderr); err != nil {
			failed = append(failed, err)
			fmt.Fprintln(stderr, "minerguard:", err)
		}
	}
	eng.Flush()
	if slices.Contains(o.eveTypes, "stats") {
		sup, thr := tuned.Stopped()
		sink.Record(replayStats(eng.Stats(), start, sup+thr))
	}
	if err := sink.w.Flush(); err != nil && sink.err == nil {
		sink.err = err
	}
	if book != nil && o.learn {
		learned, err := finishLearning(book, eng.Now())
		if err != nil {
			return &exitErr{exitError, fmt.Errorf("saving profiles to %s: %w", o.profiles, err)}
		}
		if !o.quiet {
			for _, s := range learned {
				fmt.Fprintf(stderr, "minerguard: learned %s: %d destinations, now monitoring\n", s.Workload, s.Entries)
			}
		}
	}
	st := eng.Stats()
	if !o.quiet {
		summary(stderr, st, len(files), time.Since(start))
		if filt != nil {
			fmt.Fprintf(stderr, "minerguard: filter %q: %d packets filtered out\n", filt.expr, filt.Dropped)
		}
		if sup, thr := tuned.Stopped(); sup+thr > 0 {
			fmt.Fprintf(stderr, "minerguard: %d alerts suppressed, %d over a threshold (--threshold-file); %d written\n", sup, thr, sink.n)
		}
	}
	if statsLog != nil {
		sup, thr := tuned.Stopped()
		if err := writeStatsLog(statsLog, st, start, sup, thr); err != nil {
			failed = append(failed, err)
			fmt.Fprintln(stderr, "minerguard: writing stats.log:", err)
		}
	}
	if o.metricsFile != "" {
		if err := writeMetrics(o.metricsFile, st); err != nil {
			failed = append(failed, err)
			fmt.Fprintln(stderr, "minerguard:", err)
		}
	}
	if sink.err != nil {
		return &exitErr{exitError, fmt.Errorf("writing alerts: %w", sink.err)}
	}
	if len(failed) > 0 {
		return &exitErr{exitError, nil}
	}
	if o.failOn == "alert" && sink.n > 0 {
		return &exitErr{exitFound, nil}
	}
	return nil
}

// replayHeapAllowance is the heap allowed beyond the reassembly budget before the GC collects
// eagerly: the flow table (92 MiB at its default cap of 262,144 flows), inspection slots,
// DNS answers, alerts and the runtime. Measured peaks are in the README.
const replayHeapAllowance = 64 << 20

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

func replayFile(eng *engine.Engine, filt *bpfFilter, name string, index uint64, progress bool, stderr io.Writer) error {
	c, err := capture.Open(name)
	if err != nil {
		return err
	}
	defer c.Close()
	eng.SetLabel(c.Path())
	// Scope is the capture interface of this file: DNS answers seen there name flows there,
	// and separate captures never share flows or answers.
	scope := index << 32
	last := time.Now()
	show := func() {
		if !progress || time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		done, size := c.Progress()
		if size > 0 {
			fmt.Fprintf(stderr, "\r%s: %3.0f%% (%d MB of %d MB, %d packets)", c.Path(), 100*float64(done)/float64(size), done>>20, size>>20, c.Packets())
		} else {
			fmt.Fprintf(stderr, "\r%s: %d MB, %d packets", c.Path(), done>>20, c.Packets())
		}
	}
	defer func() {
		if progress {
			fmt.Fprint(stderr, "\r\033[K")
		}
	}()
	// Frames come in batches straight out of the read buffer, so the engine can look ahead
	// (PacketBatch: the flow lookups' cache misses of a batch overlap).
	var (
		frs  [16]capture.Frame
		efrs [16]engine.Frame
	)
	for shown := 0; ; {
		n, err := c.NextBatch(frs[:])
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		k := 0
		for i := range frs[:n] {
			fr := &frs[i]
			if filt != nil {
				keep, err := filt.Keep(flow.LinkType(fr.LinkType), fr.Data)
				if err != nil {
					eng.PacketBatch(efrs[:k]) // the frames before it, as one by one
					return fmt.Errorf("%s: %w", c.Path(), err)
				}
				if !keep {
					continue
				}
			}
			efrs[k] = engine.Frame{Link: flow.LinkType(fr.LinkType), Data: fr.Data, TS: fr.Timestamp, Scope: scope | uint64(fr.Interface)}
			k++
		}
		eng.PacketBatch(efrs[:k])
		if shown += n; shown >= 0x4000 {
			shown = 0
			show()
		}
	}
}

func summary(w io.Writer, st engine.Stats, files int, took time.Duration) {
	var by []string
	for r := detect.ReasonStratum; r.String() != "unknown"; r++ {
		if n := st.Alerts[r]; n > 0 {
			by = append(by, fmt.Sprintf("%s %d", r, n))
		}
	}
	detail := ""
	if len(by) > 0 {
		detail = " (" + strings.Join(by, ", ") + ")"
	}
	secs := took.Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	fmt.Fprintf(w, "minerguard: %d file(s), %d packets, %d flows, %d alerts%s, %d decode errors, %.0f packets/s\n",
		files, st.Packets, st.Flow.Created, st.AlertsTotal(), detail, st.DecodeErrorsTotal(), float64(st.Packets)/secs)
}

func writeMetrics(path string, st engine.Stats) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	reg := metrics.NewRegistry(func() (engine.Stats, string) { return st, "replay" })
	if err := metrics.WriteText(f, reg); err != nil {
		f.Close()
		return fmt.Errorf("writing metrics: %w", err)
	}
	return f.Close()
}
