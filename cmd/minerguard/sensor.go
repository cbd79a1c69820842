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
	"time"

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
	for _, fl := range sensorFlags {
		fl.register(f, &def)
	}
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
	for _, fl := range sensorFlags {
		if !f.Changed(fl.name) {
			continue
		}
		if err := fl.apply(f, cfg); err != nil {
			return err
		}
	}
	return nil
}

// sensorFlag is the flag of one config key: its name, the field it sets and its help. One table
// (sensorFlags) serves both registering the flags and applying them, so a flag's name and the
// field it sets are written once, side by side.
type sensorFlag struct {
	name  string
	field func(*sensor.Config) any // a pointer to the key's field in the config given
	help  string
}

// register adds the flag to f with the field's value in def as its default.
func (fl sensorFlag) register(f *pflag.FlagSet, def *sensor.Config) {
	switch p := fl.field(def).(type) {
	case *string:
		f.String(fl.name, *p, fl.help)
	case *bool:
		f.Bool(fl.name, *p, fl.help)
	case *int:
		f.Int(fl.name, *p, fl.help)
	case *float64:
		f.Float64(fl.name, *p, fl.help)
	case *time.Duration:
		f.Duration(fl.name, *p, fl.help)
	case *[]string:
		f.StringArray(fl.name, *p, fl.help)
	case *sensor.EVETypes:
		f.StringArray(fl.name, *p, fl.help)
	case *[]int:
		f.IntSlice(fl.name, *p, fl.help)
	default:
		panic(fmt.Sprintf("flag --%s: no flag type for a config field of type %T", fl.name, p))
	}
}

// apply sets the field in cfg to the flag's value.
func (fl sensorFlag) apply(f *pflag.FlagSet, cfg *sensor.Config) (err error) {
	switch p := fl.field(cfg).(type) {
	case *string:
		*p, err = f.GetString(fl.name)
	case *bool:
		*p, err = f.GetBool(fl.name)
	case *int:
		*p, err = f.GetInt(fl.name)
	case *float64:
		*p, err = f.GetFloat64(fl.name)
	case *time.Duration:
		*p, err = f.GetDuration(fl.name)
	case *[]string:
		*p, err = f.GetStringArray(fl.name)
	case *sensor.EVETypes:
		*p, err = f.GetStringArray(fl.name)
	case *[]int:
		*p, err = f.GetIntSlice(fl.name)
	}
	return err
}

// sensorFlags are the flags of every config key but the file-only ones (see the command's
// help); the flag of a key is its path with - for _ (workloads.select: --workload).
var sensorFlags = []sensorFlag{
	{"netns", func(c *sensor.Config) any { return &c.Netns }, "A network namespace to capture: a name under /var/run/netns, or all. Repeatable."},
	{"host-netns", func(c *sensor.Config) any { return &c.HostNetns }, "Also capture the host's own network namespace."},
	{"proc-root", func(c *sensor.Config) any { return &c.ProcRoot }, "The host's procfs, when the sensor runs in a container."},
	{"mode", func(c *sensor.Config) any { return &c.Mode }, "The mode: learn (profiles only learn), monitor (flag) or enforce (drop where the data path can)."},
	{"web.listen-address", func(c *sensor.Config) any { return &c.Web.ListenAddress }, "The address /metrics, /healthz and /readyz are served on."},
	{"alerts.output", func(c *sensor.Config) any { return &c.Alerts.Output }, "Where alerts go: - for stdout, or a file (reopened on SIGHUP)."},
	{"alerts.format", func(c *sensor.Config) any { return &c.Alerts.Format }, "The alert format: json (EVE lines) or text (a table)."},
	{"alerts.rate", func(c *sensor.Config) any { return &c.Alerts.Rate }, "Alerts per second a workload may raise after its burst."},
	{"alerts.burst", func(c *sensor.Config) any { return &c.Alerts.Burst }, "Alerts a workload may raise at once."},
	{"alerts.queue", func(c *sensor.Config) any { return &c.Alerts.Queue }, "Alerts waiting to be written; more are dropped and counted."},
	{"alerts.threshold-file", func(c *sensor.Config) any { return &c.Alerts.ThresholdFile }, "A file of suppress and threshold rules in Suricata's threshold.config syntax, reread on SIGHUP."},
	{"capture.snaplen", func(c *sensor.Config) any { return &c.Capture.Snaplen }, "Bytes kept of each packet."},
	{"capture.block-size", func(c *sensor.Config) any { return &c.Capture.BlockSize }, "Bytes per ring block, a multiple of 4096."},
	{"capture.blocks", func(c *sensor.Config) any { return &c.Capture.Blocks }, "Ring blocks per namespace at rest."},
	{"capture.max-blocks", func(c *sensor.Config) any { return &c.Capture.MaxBlocks }, "Ring blocks a namespace's ring may grow to when it drops packets."},
	{"capture.max-ring-bytes", func(c *sensor.Config) any { return &c.Capture.MaxRingBytes }, "Bytes all rings together may grow to; growth stops there (rings at rest always open)."},
	{"capture.pressure-depth", func(c *sensor.Config) any { return &c.Capture.PressureDepth }, "Bytes of each new TCP direction copied into a ring that dropped lately (0: keep flow.stream-depth)."},
	{"capture.bypass", func(c *sensor.Config) any { return &c.Capture.Bypass }, "Where bulk is turned away: kernel (a socket filter per ring copies only what detection needs and counts the rest; userspace where it cannot load) or off (copy every packet)."},
	{"capture.bypass-flows", func(c *sensor.Config) any { return &c.Capture.BypassFlows }, "Entries of the kernel bypass flow map (an LRU: a forgotten flow is copied up again)."},
	{"capture.queue", func(c *sensor.Config) any { return &c.Capture.Queue }, "Frames waiting for the pipeline; more are dropped and counted."},
	{"capture.block-timeout", func(c *sensor.Config) any { return &c.Capture.BlockTimeout }, "Hand a partly filled ring block over after this long: the detection latency on quiet links."},
	{"flow.max-flows", func(c *sensor.Config) any { return &c.Flow.MaxFlows }, "The flow table's capacity; the least recently seen flows are evicted past it."},
	{"flow.stream-depth", func(c *sensor.Config) any { return &c.Flow.StreamDepth }, "Bytes inspected at the start of each direction of a TCP flow."},
	{"flow.defrag-memcap", func(c *sensor.Config) any { return &c.Flow.DefragMemcap }, "Bytes of IP fragment reassembly buffers; past it the oldest incomplete datagrams are dropped."},
	{"flow.defrag-timeout", func(c *sensor.Config) any { return &c.Flow.DefragTimeout }, "How long an IP datagram waits for its missing fragments."},
	{"flow.defrag-max-frags", func(c *sensor.Config) any { return &c.Flow.DefragMaxFrags }, "Fragments one IP datagram may have."},
	{"intel.files", func(c *sensor.Config) any { return &c.Intel.Files }, "An extra intel list, text or YAML. Repeatable."},
	{"workloads.static", func(c *sensor.Config) any { return &c.Workloads.Static }, "A YAML map of namespaces and containers to workload names."},
	{"workload", func(c *sensor.Config) any { return &c.Workloads.Select }, "Capture only the workloads whose identity matches this pattern (path.Match, e.g. 'k8s/prod/*'); workloads.select in the file. Repeatable."},
	{"workloads.cri-endpoints", func(c *sensor.Config) any { return &c.Workloads.CRIEndpoints }, "Ask this container runtime socket (CRI: containerd, CRI-O) for pods and containers instead of the default ones (/run/containerd/containerd.sock, /run/crio/crio.sock). Repeatable."},
	{"capture.interfaces", func(c *sensor.Config) any { return &c.Capture.Interfaces }, "Also capture this interface of the host's own network namespace. Repeatable."},
	{"state-dir", func(c *sensor.Config) any { return &c.StateDir }, "The directory for state that outlives the process (the learned profiles)."},
	{"profiles.enabled", func(c *sensor.Config) any { return &c.Profiles.Enabled }, "Learn each workload's egress profile and flag (or drop) what leaves it."},
	{"profiles.state", func(c *sensor.Config) any { return &c.Profiles.State }, "The profile state file (default <state-dir>/profiles.db)."},
	{"profiles.window", func(c *sensor.Config) any { return &c.Profiles.Window }, "Learning lasts at least this long."},
	{"profiles.quiet", func(c *sensor.Config) any { return &c.Profiles.Quiet }, "Learning ends only after this long without a new destination."},
	{"profiles.min-flows", func(c *sensor.Config) any { return &c.Profiles.MinFlows }, "Learning also ends after this many flows (0: off)."},
	{"profiles.promote", func(c *sensor.Config) any { return &c.Profiles.Promote }, "Where learning ends: monitoring, enforcing, or manual (minerguard profiles approve)."},
	{"profiles.min-replicas", func(c *sensor.Config) any { return &c.Profiles.MinReplicas }, "Learn a destination only once this many replicas used it."},
	{"profiles.deny", func(c *sensor.Config) any { return &c.Profiles.Deny }, "A domain suffix or CIDR never learned and always a violation. Repeatable."},
	{"profiles.commit-interval", func(c *sensor.Config) any { return &c.Profiles.CommitInterval }, "Commit learned destinations this often."},
	{"profiles.max-entries", func(c *sensor.Config) any { return &c.Profiles.MaxEntries }, "Destinations a profile keeps at most; more are not learned and are counted."},
	{"profiles.max-ips-per-name", func(c *sensor.Config) any { return &c.Profiles.MaxIPsPerName }, "Addresses a learned name keeps at most."},
	{"profiles.relearn-on-image-change", func(c *sensor.Config) any { return &c.Profiles.RelearnOnImageChange }, "Send a workload's profile back to learning when its image changes."},
	{"profiles.backend", func(c *sensor.Config) any { return &c.Profiles.Backend }, "Where profiles live: bbolt (this node) or kubernetes (WorkloadProfiles shared by the cluster; the state file is the cache)."},
	{"profiles.kubeconfig", func(c *sensor.Config) any { return &c.Profiles.Kubeconfig }, "The kubeconfig for the kubernetes backend (default: the pod's service account)."},
	{"profiles.sync-interval", func(c *sensor.Config) any { return &c.Profiles.SyncInterval }, "Merge the node's profiles with the cluster's this often (kubernetes backend; operators' edits arrive by watch within seconds, this is their backstop)."},
	{"enforcement.pin-path", func(c *sensor.Config) any { return &c.Enforcement.PinPath }, "The bpffs directory for the pinned XDP maps and links (enforce mode)."},
	{"enforcement.heartbeat-timeout", func(c *sensor.Config) any { return &c.Enforcement.HeartbeatTimeout }, "The data path fails open when the sensor is silent this long."},
	{"enforcement.host-netns", func(c *sensor.Config) any { return &c.Enforcement.HostNetns }, "The netns of the workloads' host-side veths (default: the sensor's own)."},
	{"enforcement.stale-flow-block", func(c *sensor.Config) any { return &c.Enforcement.StaleFlowBlock }, "A flow block no packet hit this long is removed."},
	{"enforcement.max-blocked-flows", func(c *sensor.Config) any { return &c.Enforcement.MaxBlockedFlows }, "Entries of the XDP flow block map (0: 65536)."},
	{"enforcement.max-blocked-dests", func(c *sensor.Config) any { return &c.Enforcement.MaxBlockedDests }, "Entries of the XDP destination block map (0: 65536)."},
	{"enforcement.drop-signatures", func(c *sensor.Config) any { return &c.Enforcement.DropSignatures }, "A flag-only signature_id that drops in enforce mode too: 9400011 (behaviour), 9400007 (tls-no-sni). Repeatable or comma-separated; default none."},
	{"eve.types", func(c *sensor.Config) any { return &c.EVE.Types }, "EVE record types written to the alert output beside the alerts, as Suricata's eve-log types: stats (a stats record every eve.stats-interval), flow (a flow record as each flow ends, sampled by eve.flow-sample), dns (the queries and answers of pool lookups), tls (each ClientHello: SNI, JA4). Repeatable."},
	{"eve.stats-interval", func(c *sensor.Config) any { return &c.EVE.StatsInterval }, "How often a stats record is written when eve.types has stats."},
	{"eve.flow-sample", func(c *sensor.Config) any { return &c.EVE.FlowSample }, "Write the flow record of one flow in this many (chosen by flow_id), and of every flow that alerted."},
	{"eve.records-rate", func(c *sensor.Config) any { return &c.EVE.RecordsRate }, "At most this many flow, dns and tls records a second of each type (bursts of ten seconds' worth); the rest are counted in minerguard_eve_records_dropped_total."},
	{"control-socket", func(c *sensor.Config) any { return &c.ControlSocketPath }, "The unix socket `minerguard profiles` uses while the sensor runs (default: minerguard.sock beside the profile state)."},
}
