package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
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
			"SIGHUP reloads the config's intel lists and reopens the alert file; SIGTERM stops.\n" +
			"Every config key is also a flag; flags win over the file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := sensor.Default()
			if configFile != "" {
				c, err := sensor.Load(configFile)
				if err != nil {
					return &exitErr{exitError, err}
				}
				cfg = c
			}
			if err := applyFlags(cmd.Flags(), &cfg); err != nil {
				return &exitErr{exitError, err}
			}
			if err := cfg.Validate(); err != nil {
				return &exitErr{exitError, fmt.Errorf("flags: %w", err)}
			}
			if _, err := newLogger(io.Discard, logFormat, logLevel); err != nil {
				return &exitErr{exitError, err}
			}
			if configCheck {
				fmt.Fprintln(cmd.OutOrStdout(), "config ok")
				return nil
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
	f.StringVar(&configFile, "config", "", "YAML config file")
	f.BoolVar(&configCheck, "config.check", false, "validate the config and flags, then exit")
	f.StringVar(&logFormat, "log.format", "text", "log format on stderr: text (logfmt) or json (one object a line)")
	f.StringVar(&logLevel, "log.level", "info", "least severe log level shown: debug, info, warn or error")
	f.StringArray("netns", def.Netns, "network namespace to capture (a name under /var/run/netns, or all); repeatable")
	f.Bool("host-netns", def.HostNetns, "also capture the host's own network namespace")
	f.String("proc-root", def.ProcRoot, "procfs of the host (when the sensor runs in a container)")
	f.String("mode", def.Mode, "learn (profiles only learn), monitor (flag) or enforce (drop where the data path can)")
	f.String("web.listen-address", def.Web.ListenAddress, "address for /metrics, /healthz and /readyz")
	f.String("alerts.output", def.Alerts.Output, "alert output: - for stdout, or a file (reopened on SIGHUP)")
	f.String("alerts.format", def.Alerts.Format, "json or text")
	f.Float64("alerts.rate", def.Alerts.Rate, "alerts per second per workload after the burst")
	f.Int("alerts.burst", def.Alerts.Burst, "alerts a workload may raise at once")
	f.Int("alerts.queue", def.Alerts.Queue, "alerts waiting to be written; more are dropped and counted")
	f.String("alerts.threshold-file", "", "suppress and threshold rules in Suricata's threshold.config syntax (reread on SIGHUP)")
	f.Int("capture.snaplen", def.Capture.Snaplen, "bytes kept per packet")
	f.Int("capture.block-size", def.Capture.BlockSize, "bytes per ring block (a multiple of 4096)")
	f.Int("capture.blocks", def.Capture.Blocks, "ring blocks per namespace")
	f.Int("capture.queue", def.Capture.Queue, "frames waiting for the pipeline; more are dropped and counted")
	f.Duration("capture.block-timeout", def.Capture.BlockTimeout, "hand a partly filled ring block over after this long (detection latency on quiet links)")
	f.Int("flow.max-flows", def.Flow.MaxFlows, "flow table capacity")
	f.Int("flow.stream-depth", def.Flow.StreamDepth, "bytes inspected at the start of each direction of a TCP flow")
	f.Int("flow.defrag-memcap", def.Flow.DefragMemcap, "bytes of IP fragment reassembly buffers; past it the oldest incomplete datagrams are dropped")
	f.Duration("flow.defrag-timeout", def.Flow.DefragTimeout, "how long an IP datagram waits for its missing fragments")
	f.Int("flow.defrag-max-frags", def.Flow.DefragMaxFrags, "fragments one IP datagram may have")
	f.StringArray("intel.files", nil, "extra intel list (text or YAML); repeatable")
	f.String("workloads.static", "", "YAML map of namespaces/containers to workload names")
	f.StringArray("workload", nil, "capture only workloads whose identity matches this pattern (path.Match, e.g. 'k8s/prod/*'); repeatable")
	f.StringArray("capture.interfaces", nil, "also capture this interface of the host's own network namespace; repeatable")
	f.String("state-dir", def.StateDir, "directory for state that outlives the process (learned profiles)")
	f.Bool("profiles.enabled", def.Profiles.Enabled, "learn each workload's egress profile and flag (or drop) what leaves it")
	f.String("profiles.state", "", "profile state file (default <state-dir>/profiles.db)")
	f.Duration("profiles.window", def.Profiles.Window, "learning lasts at least this long")
	f.Duration("profiles.quiet", def.Profiles.Quiet, "and ends only after this long without a new destination")
	f.Int("profiles.min-flows", def.Profiles.MinFlows, "or ends after this many flows (0: off)")
	f.String("profiles.promote", def.Profiles.Promote, "where learning ends: monitoring, enforcing, or manual (minerguard profiles approve)")
	f.Int("profiles.min-replicas", def.Profiles.MinReplicas, "learn a destination only once this many replicas used it")
	f.StringArray("profiles.deny", nil, "domain suffix or CIDR never learned and always a violation; repeatable")
	f.Duration("profiles.commit-interval", def.Profiles.CommitInterval, "commit learned destinations this often")
	f.String("enforcement.pin-path", def.Enforcement.PinPath, "bpffs directory for the pinned XDP maps and links (enforce mode)")
	f.Duration("enforcement.heartbeat-timeout", def.Enforcement.HeartbeatTimeout, "the data path fails open when the sensor is silent this long")
	f.String("enforcement.host-netns", "", "netns of the workloads' host-side veths (default: the sensor's own)")
	f.Duration("enforcement.stale-flow-block", def.Enforcement.StaleFlowBlock, "a flow block no packet hit this long is removed")
	f.String("control-socket", "", "unix socket for `minerguard profiles` while the sensor runs (default: minerguard.sock beside the profile state)")
	return cmd
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
	set("profiles.commit-interval", func() (e error) { cfg.Profiles.CommitInterval, e = f.GetDuration("profiles.commit-interval"); return })
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
	set("control-socket", func() (e error) { cfg.ControlSocketPath, e = f.GetString("control-socket"); return })
	return err
}
