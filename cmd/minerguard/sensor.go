package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/minerguard/minerguard/sensor"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func sensorCmd() *cobra.Command {
	var (
		configFile  string
		configCheck bool
		logFormat   string
		logLevel    string
	)
	def := sensor.Default()
	cmd := &cobra.Command{
		Use:   "sensor",
		Short: "Capture the node's network namespaces live and report mining traffic",
		Long: "Watches every network namespace of the node (or those named with --netns), captures\n" +
			"each with an AF_PACKET ring opened inside it, names the workload it belongs to, and\n" +
			"runs the replay pipeline on wall-clock time. Alerts are EVE JSON lines on stdout (or\n" +
			"--alerts.output); metrics, /healthz and /readyz are served on --web.listen-address.\n" +
			"SIGHUP reloads the config's intel lists and threshold file and reopens the alert file;\n" +
			"SIGTERM stops.\n\n" +
			"Every config key is also a flag (flow.max_flows is --flow.max-flows; workloads.select is\n" +
			"--workload), except workloads.addresses and enforcement.workloads, which are lists of\n" +
			"pairs and objects and file-only. Flags win over the file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := sensor.Default()
			var fileProblems sensor.Problems
			if configFile != "" {
				c, err := sensor.Load(configFile)
				if configCheck && errors.As(err, &fileProblems) {
					err = nil // checked again below with the flags, with everything else
				}
				if err != nil {
					return &exitErr{exitError, err}
				}
				cfg = c
			}
			if err := applyFlags(cmd.Flags(), &cfg); err != nil {
				return &exitErr{exitError, err}
			}
			if configCheck {
				// The EVE types and the log flags are checked beside the config's own problems.
				if err := cfg.CheckEVE(); err != nil {
					return &exitErr{exitError, err}
				}
				if _, err := newLogger(io.Discard, logFormat, logLevel); err != nil {
					return &exitErr{exitError, err}
				}
				return checkConfig(cmd.OutOrStdout(), &cfg, fileProblems)
			}
			if err := cfg.Validate(); err != nil {
				return &exitErr{exitError, fmt.Errorf("flags: %w", err)}
			}
			if err := cfg.CheckEVE(); err != nil {
				return &exitErr{exitError, err}
			}
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return &exitErr{exitError, err}
			}
			s, err := sensor.New(cfg, log, cmd.OutOrStdout())
			if err != nil {
				return &exitErr{exitError, err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					if err := s.Reload(configFile); err != nil {
						log.Warn("reload refused; the running configuration stays", "err", err)
					} else {
						log.Info("reloaded")
					}
				}
			}()
			if err := s.Run(ctx); err != nil {
				return &exitErr{exitError, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "The YAML config file; flags given too win over its keys.")
	f.BoolVar(&configCheck, "config.check", false, "Validate the config file and the flags, print every problem, then exit.")
	f.StringVar(&logFormat, "log.format", "text", "The log format on stderr: text (logfmt) or json (one object a line). Flag only.")
	f.StringVar(&logLevel, "log.level", "info", "The least severe log level shown: debug, info, warn or error. Flag only.")
	f.StringArray("netns", def.Netns, "A network namespace to capture: a name under /var/run/netns, or all. Repeatable.")
	f.Bool("host-netns", def.HostNetns, "Also capture the host's own network namespace.")
	f.String("proc-root", def.ProcRoot, "The host's procfs, when the sensor runs in a container.")
	f.String("mode", def.Mode, "The mode: learn (profiles only learn), monitor (flag) or enforce (drop where the data path can).")
	f.String("web.listen-address", def.Web.ListenAddress, "The address /metrics, /healthz and /readyz are served on.")
	f.String("alerts.output", def.Alerts.Output, "Where alerts go: - for stdout, or a file (reopened on SIGHUP).")
	f.String("alerts.format", def.Alerts.Format, "The alert format: json (EVE lines) or text (a table).")
	f.Float64("alerts.rate", def.Alerts.Rate, "Alerts per second a workload may raise after its burst.")
	f.Int("alerts.burst", def.Alerts.Burst, "Alerts a workload may raise at once.")
	f.Int("alerts.queue", def.Alerts.Queue, "Alerts waiting to be written; more are dropped and counted.")
	f.String("alerts.threshold-file", "", "A file of suppress and threshold rules in Suricata's threshold.config syntax, reread on SIGHUP.")
	f.Int("capture.snaplen", def.Capture.Snaplen, "Bytes kept of each packet.")
	f.Int("capture.block-size", def.Capture.BlockSize, "Bytes per ring block, a multiple of 4096.")
	f.Int("capture.blocks", def.Capture.Blocks, "Ring blocks per namespace at rest.")
	f.Int("capture.max-blocks", def.Capture.MaxBlocks, "Ring blocks a namespace's ring may grow to when it drops packets.")
	f.Int("capture.max-ring-bytes", def.Capture.MaxRingBytes, "Bytes all rings together may grow to; growth stops there (rings at rest always open).")
	f.Int("capture.pressure-depth", def.Capture.PressureDepth, "Bytes of each new TCP direction copied into a ring that dropped lately (0: keep flow.stream-depth).")
	f.String("capture.bypass", def.Capture.Bypass, "Where bulk is turned away: kernel (a socket filter per ring copies only what detection needs and counts the rest; userspace where it cannot load) or off (copy every packet).")
	f.Int("capture.bypass-flows", def.Capture.BypassFlows, "Entries of the kernel bypass flow map (an LRU: a forgotten flow is copied up again).")
	f.Int("capture.queue", def.Capture.Queue, "Frames waiting for the pipeline; more are dropped and counted.")
	f.Duration("capture.block-timeout", def.Capture.BlockTimeout, "Hand a partly filled ring block over after this long: the detection latency on quiet links.")
	f.Int("flow.max-flows", def.Flow.MaxFlows, "The flow table's capacity; the least recently seen flows are evicted past it.")
	f.Int("flow.stream-depth", def.Flow.StreamDepth, "Bytes inspected at the start of each direction of a TCP flow.")
	f.Int("flow.defrag-memcap", def.Flow.DefragMemcap, "Bytes of IP fragment reassembly buffers; past it the oldest incomplete datagrams are dropped.")
	f.Duration("flow.defrag-timeout", def.Flow.DefragTimeout, "How long an IP datagram waits for its missing fragments.")
	f.Int("flow.defrag-max-frags", def.Flow.DefragMaxFrags, "Fragments one IP datagram may have.")
	f.StringArray("intel.files", nil, "An extra intel list, text or YAML. Repeatable.")
	f.String("workloads.static", "", "A YAML map of namespaces and containers to workload names.")
	f.StringArray("workload", nil, "Capture only the workloads whose identity matches this pattern (path.Match, e.g. 'k8s/prod/*'); workloads.select in the file. Repeatable.")
	f.StringArray("workloads.cri-endpoints", nil, "Ask this container runtime socket (CRI: containerd, CRI-O) for pods and containers instead of the default ones (/run/containerd/containerd.sock, /run/crio/crio.sock). Repeatable.")
	f.StringArray("capture.interfaces", nil, "Also capture this interface of the host's own network namespace. Repeatable.")
	f.String("state-dir", def.StateDir, "The directory for state that outlives the process (the learned profiles).")
	f.Bool("profiles.enabled", def.Profiles.Enabled, "Learn each workload's egress profile and flag (or drop) what leaves it.")
	f.String("profiles.state", "", "The profile state file (default <state-dir>/profiles.db).")
	f.Duration("profiles.window", def.Profiles.Window, "Learning lasts at least this long.")
	f.Duration("profiles.quiet", def.Profiles.Quiet, "Learning ends only after this long without a new destination.")
	f.Int("profiles.min-flows", def.Profiles.MinFlows, "Learning also ends after this many flows (0: off).")
	f.String("profiles.promote", def.Profiles.Promote, "Where learning ends: monitoring, enforcing, or manual (minerguard profiles approve).")
	f.Int("profiles.min-replicas", def.Profiles.MinReplicas, "Learn a destination only once this many replicas used it.")
	f.StringArray("profiles.deny", nil, "A domain suffix or CIDR never learned and always a violation. Repeatable.")
	f.Duration("profiles.commit-interval", def.Profiles.CommitInterval, "Commit learned destinations this often.")
	f.Int("profiles.max-entries", def.Profiles.MaxEntries, "Destinations a profile keeps at most; more are not learned and are counted.")
	f.Int("profiles.max-ips-per-name", def.Profiles.MaxIPsPerName, "Addresses a learned name keeps at most.")
	f.Bool("profiles.relearn-on-image-change", def.Profiles.RelearnOnImageChange, "Send a workload's profile back to learning when its image changes.")
	f.String("profiles.backend", def.Profiles.Backend, "Where profiles live: bbolt (this node) or kubernetes (WorkloadProfiles shared by the cluster; the state file is the cache).")
	f.String("profiles.kubeconfig", "", "The kubeconfig for the kubernetes backend (default: the pod's service account).")
	f.Duration("profiles.sync-interval", def.Profiles.SyncInterval, "Merge the node's profiles with the cluster's this often (kubernetes backend).")
	f.String("enforcement.pin-path", def.Enforcement.PinPath, "The bpffs directory for the pinned XDP maps and links (enforce mode).")
	f.Duration("enforcement.heartbeat-timeout", def.Enforcement.HeartbeatTimeout, "The data path fails open when the sensor is silent this long.")
	f.String("enforcement.host-netns", "", "The netns of the workloads' host-side veths (default: the sensor's own).")
	f.Duration("enforcement.stale-flow-block", def.Enforcement.StaleFlowBlock, "A flow block no packet hit this long is removed.")
	f.Int("enforcement.max-blocked-flows", def.Enforcement.MaxBlockedFlows, "Entries of the XDP flow block map (0: 65536).")
	f.Int("enforcement.max-blocked-dests", def.Enforcement.MaxBlockedDests, "Entries of the XDP destination block map (0: 65536).")
	f.IntSlice("enforcement.drop-signatures", nil, "A flag-only signature_id that drops in enforce mode too: 9400011 (behaviour), 9400007 (tls-no-sni). Repeatable or comma-separated; default none.")
	f.StringArray("eve.types", def.EVE.Types, "EVE record types written to the alert output beside the alerts, as Suricata's eve-log types: stats (a stats record every eve.stats-interval), flow (a flow record as each flow ends, sampled by eve.flow-sample), dns (the queries and answers of pool lookups), tls (each ClientHello: SNI, JA4). Repeatable.")
	f.Duration("eve.stats-interval", def.EVE.StatsInterval, "How often a stats record is written when eve.types has stats.")
	f.Int("eve.flow-sample", def.EVE.FlowSample, "Write the flow record of one flow in this many (chosen by flow_id), and of every flow that alerted.")
	f.Float64("eve.records-rate", def.EVE.RecordsRate, "At most this many flow, dns and tls records a second of each type (bursts of ten seconds' worth); the rest are counted in minerguard_eve_records_dropped_total.")
	f.String("control-socket", "", "The unix socket `minerguard profiles` uses while the sensor runs (default: minerguard.sock beside the profile state).")
	return cmd
}

// checkConfig runs every check a start runs (sensor.Config.Check) and reports all problems,
// one a line, with the file and line of those the config file holds.
func checkConfig(out io.Writer, cfg *sensor.Config, inFile sensor.Problems) error {
	err := cfg.Check()
	var ps sensor.Problems
	if !errors.As(err, &ps) {
		if err != nil {
			return &exitErr{exitError, err}
		}
		fmt.Fprintln(out, "config ok")
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config check failed, %d problem(s):", len(ps))
	for _, p := range ps {
		for _, f := range inFile {
			if f.Key == p.Key && f.Msg == p.Msg {
				p = f // the same value, from the file: say where
				break
			}
		}
		b.WriteString("\n  " + p.Error())
	}
	return &exitErr{exitError, errors.New(b.String())}
}

// newLogger is the sensor's log on w: logfmt text or JSON lines, from level up.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log.format %q: want text or json", format)
}

// applyFlags copies the flags the user set over cfg (flags win over the file).
func applyFlags(f *pflag.FlagSet, cfg *sensor.Config) error {
	var err error
	set := func(name string, fn func() error) {
		if err == nil && f.Changed(name) {
			err = fn()
		}
	}
	set("netns", func() (e error) { cfg.Netns, e = f.GetStringArray("netns"); return })
	set("host-netns", func() (e error) { cfg.HostNetns, e = f.GetBool("host-netns"); return })
	set("proc-root", func() (e error) { cfg.ProcRoot, e = f.GetString("proc-root"); return })
	set("mode", func() (e error) { cfg.Mode, e = f.GetString("mode"); return })
	set("web.listen-address", func() (e error) { cfg.Web.ListenAddress, e = f.GetString("web.listen-address"); return })
	set("alerts.output", func() (e error) { cfg.Alerts.Output, e = f.GetString("alerts.output"); return })
	set("alerts.format", func() (e error) { cfg.Alerts.Format, e = f.GetString("alerts.format"); return })
	set("alerts.rate", func() (e error) { cfg.Alerts.Rate, e = f.GetFloat64("alerts.rate"); return })
	set("alerts.burst", func() (e error) { cfg.Alerts.Burst, e = f.GetInt("alerts.burst"); return })
	set("alerts.queue", func() (e error) { cfg.Alerts.Queue, e = f.GetInt("alerts.queue"); return })
	set("alerts.threshold-file", func() (e error) { cfg.Alerts.ThresholdFile, e = f.GetString("alerts.threshold-file"); return })
	set("capture.snaplen", func() (e error) { cfg.Capture.Snaplen, e = f.GetInt("capture.snaplen"); return })
	set("capture.block-size", func() (e error) { cfg.Capture.BlockSize, e = f.GetInt("capture.block-size"); return })
	set("capture.blocks", func() (e error) { cfg.Capture.Blocks, e = f.GetInt("capture.blocks"); return })
	set("capture.pressure-depth", func() (e error) { cfg.Capture.PressureDepth, e = f.GetInt("capture.pressure-depth"); return })
	set("capture.max-ring-bytes", func() (e error) { cfg.Capture.MaxRingBytes, e = f.GetInt("capture.max-ring-bytes"); return })
	set("capture.max-blocks", func() (e error) { cfg.Capture.MaxBlocks, e = f.GetInt("capture.max-blocks"); return })
	set("capture.queue", func() (e error) { cfg.Capture.Queue, e = f.GetInt("capture.queue"); return })
	set("capture.block-timeout", func() (e error) { cfg.Capture.BlockTimeout, e = f.GetDuration("capture.block-timeout"); return })
	set("flow.max-flows", func() (e error) { cfg.Flow.MaxFlows, e = f.GetInt("flow.max-flows"); return })
	set("flow.stream-depth", func() (e error) { cfg.Flow.StreamDepth, e = f.GetInt("flow.stream-depth"); return })
	set("flow.defrag-memcap", func() (e error) { cfg.Flow.DefragMemcap, e = f.GetInt("flow.defrag-memcap"); return })
	set("flow.defrag-timeout", func() (e error) { cfg.Flow.DefragTimeout, e = f.GetDuration("flow.defrag-timeout"); return })
	set("flow.defrag-max-frags", func() (e error) { cfg.Flow.DefragMaxFrags, e = f.GetInt("flow.defrag-max-frags"); return })
	set("intel.files", func() (e error) { cfg.Intel.Files, e = f.GetStringArray("intel.files"); return })
	set("workloads.static", func() (e error) { cfg.Workloads.Static, e = f.GetString("workloads.static"); return })
	set("workload", func() (e error) { cfg.Workloads.Select, e = f.GetStringArray("workload"); return })
	set("workloads.cri-endpoints", func() (e error) { cfg.Workloads.CRIEndpoints, e = f.GetStringArray("workloads.cri-endpoints"); return })
	set("capture.bypass", func() (e error) { cfg.Capture.Bypass, e = f.GetString("capture.bypass"); return })
	set("capture.bypass-flows", func() (e error) { cfg.Capture.BypassFlows, e = f.GetInt("capture.bypass-flows"); return })
	set("capture.interfaces", func() (e error) { cfg.Capture.Interfaces, e = f.GetStringArray("capture.interfaces"); return })
	set("state-dir", func() (e error) { cfg.StateDir, e = f.GetString("state-dir"); return })
	set("profiles.enabled", func() (e error) { cfg.Profiles.Enabled, e = f.GetBool("profiles.enabled"); return })
	set("profiles.state", func() (e error) { cfg.Profiles.State, e = f.GetString("profiles.state"); return })
	set("profiles.window", func() (e error) { cfg.Profiles.Window, e = f.GetDuration("profiles.window"); return })
	set("profiles.quiet", func() (e error) { cfg.Profiles.Quiet, e = f.GetDuration("profiles.quiet"); return })
	set("profiles.min-flows", func() (e error) { cfg.Profiles.MinFlows, e = f.GetInt("profiles.min-flows"); return })
	set("profiles.promote", func() (e error) { cfg.Profiles.Promote, e = f.GetString("profiles.promote"); return })
	set("profiles.min-replicas", func() (e error) { cfg.Profiles.MinReplicas, e = f.GetInt("profiles.min-replicas"); return })
	set("profiles.deny", func() (e error) { cfg.Profiles.Deny, e = f.GetStringArray("profiles.deny"); return })
	set("profiles.max-entries", func() (e error) { cfg.Profiles.MaxEntries, e = f.GetInt("profiles.max-entries"); return })
	set("profiles.max-ips-per-name", func() (e error) { cfg.Profiles.MaxIPsPerName, e = f.GetInt("profiles.max-ips-per-name"); return })
	set("profiles.relearn-on-image-change", func() (e error) {
		cfg.Profiles.RelearnOnImageChange, e = f.GetBool("profiles.relearn-on-image-change")
		return
	})
	set("enforcement.max-blocked-flows", func() (e error) {
		cfg.Enforcement.MaxBlockedFlows, e = f.GetInt("enforcement.max-blocked-flows")
		return
	})
	set("enforcement.drop-signatures", func() (e error) {
		cfg.Enforcement.DropSignatures, e = f.GetIntSlice("enforcement.drop-signatures")
		return
	})
	set("enforcement.max-blocked-dests", func() (e error) {
		cfg.Enforcement.MaxBlockedDests, e = f.GetInt("enforcement.max-blocked-dests")
		return
	})
	set("profiles.commit-interval", func() (e error) { cfg.Profiles.CommitInterval, e = f.GetDuration("profiles.commit-interval"); return })
	set("profiles.backend", func() (e error) { cfg.Profiles.Backend, e = f.GetString("profiles.backend"); return })
	set("profiles.kubeconfig", func() (e error) { cfg.Profiles.Kubeconfig, e = f.GetString("profiles.kubeconfig"); return })
	set("profiles.sync-interval", func() (e error) { cfg.Profiles.SyncInterval, e = f.GetDuration("profiles.sync-interval"); return })
	set("enforcement.pin-path", func() (e error) { cfg.Enforcement.PinPath, e = f.GetString("enforcement.pin-path"); return })
	set("enforcement.heartbeat-timeout", func() (e error) {
		cfg.Enforcement.HeartbeatTimeout, e = f.GetDuration("enforcement.heartbeat-timeout")
		return
	})
	set("enforcement.host-netns", func() (e error) { cfg.Enforcement.HostNetns, e = f.GetString("enforcement.host-netns"); return })
	set("enforcement.stale-flow-block", func() (e error) {
		cfg.Enforcement.StaleFlowBlock, e = f.GetDuration("enforcement.stale-flow-block")
		return
	})
	set("eve.types", func() (e error) {
		var l []string
		l, e = f.GetStringArray("eve.types")
		cfg.EVE.Types = l
		return
	})
	set("eve.stats-interval", func() (e error) { cfg.EVE.StatsInterval, e = f.GetDuration("eve.stats-interval"); return })
	set("eve.flow-sample", func() (e error) { cfg.EVE.FlowSample, e = f.GetInt("eve.flow-sample"); return })
	set("eve.records-rate", func() (e error) { cfg.EVE.RecordsRate, e = f.GetFloat64("eve.records-rate"); return })
	set("control-socket", func() (e error) { cfg.ControlSocketPath, e = f.GetString("control-socket"); return })
	return err
}
