package sensor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minerguard/minerguard/detect"
	"gopkg.in/yaml.v3"
)

// Config is the sensor's configuration: one YAML file, every key also a flag (cmd/minerguard
// maps --web.listen-address to web.listen_address and so on).
type Config struct {
	Netns     []string `yaml:"netns"`      // names under /var/run/netns, or "all" (every netns but the host's)
	HostNetns bool     `yaml:"host_netns"` // also capture the host's own netns
	ProcRoot  string   `yaml:"proc_root"`  // /proc, or the host's /proc mounted into the sensor's container
	Mode      string   `yaml:"mode"`       // monitor | enforce

	Web struct {
		ListenAddress string `yaml:"listen_address"`
	} `yaml:"web"`

	Alerts struct {
		Output string  `yaml:"output"` // "-" for stdout, or a file (reopened on SIGHUP)
		Format string  `yaml:"format"` // json | text
		Rate   float64 `yaml:"rate"`   // alerts per second per workload, after Burst
		Burst  int     `yaml:"burst"`
		Queue  int     `yaml:"queue"` // alerts waiting for the writer; more are dropped and counted
		// ThresholdFile holds suppress and threshold rules in Suricata's threshold.config
		// syntax (alert.Tuning); reread on SIGHUP.
		ThresholdFile string `yaml:"threshold_file"`
	} `yaml:"alerts"`

	Capture struct {
		Snaplen   int `yaml:"snaplen"`
		BlockSize int `yaml:"block_size"` // bytes per ring block
		Blocks    int `yaml:"blocks"`     // ring blocks per netns at rest
		// MaxBlocks bounds a ring that grows because it dropped packets (re-created with
		// twice the blocks each time; back to Blocks after two calm minutes).
		MaxBlocks int `yaml:"max_blocks"`
		// MaxRingBytes bounds all rings together: growth stops there (counted), so the
		// sensor's memory has a ceiling whatever the number of namespaces under pressure.
		// Rings at rest always open.
		MaxRingBytes int `yaml:"max_ring_bytes"`
		// PressureDepth is how many bytes of each TCP direction not yet seen the kernel
		// filter copies into a ring that dropped lately (0: keep flow.stream_depth).
		PressureDepth int `yaml:"pressure_depth"`
		Queue         int `yaml:"queue"` // frames waiting for the pipeline; more are dropped and counted
		// Interfaces are host interfaces captured in the sensor's own netns besides the
		// namespaces (a node without per-workload namespaces, or a SPAN port).
		Interfaces []string `yaml:"interfaces"`
		// BlockTimeout hands a partly filled ring block to the sensor after this long: the
		// floor of detection latency on quiet links (20 ms gave a 19 ms median).
		BlockTimeout time.Duration `yaml:"block_timeout"`
		// Bypass is where bulk is turned away: kernel (a socket filter on each ring copies
		// each TCP direction up to flow.stream_depth, DNS whole, and nothing of a flow the
		// engine is done with; falls back to userspace with one warning where it cannot
		// load) or off (every packet copied up, as before).
		Bypass string `yaml:"bypass"`
		// BypassFlows sizes the kernel flow map (an LRU shared by every ring); a flow it
		// forgot is handed up again, never lost.
		BypassFlows int `yaml:"bypass_flows"`
	} `yaml:"capture"`

	Flow struct {
		MaxFlows    int `yaml:"max_flows"`
		StreamDepth int `yaml:"stream_depth"`
		// IP fragment reassembly (flow.DefragConfig): memory cap in bytes, how long a
		// datagram waits for its fragments, and how many fragments it may have.
		DefragMemcap   int           `yaml:"defrag_memcap"`
		DefragTimeout  time.Duration `yaml:"defrag_timeout"`
		DefragMaxFrags int           `yaml:"defrag_max_frags"`
	} `yaml:"flow"`

	Intel struct {
		Files []string `yaml:"files"`
	} `yaml:"intel"`

	Workloads struct {
		Static string   `yaml:"static"` // YAML map of netns/container to workload names
		Select []string `yaml:"select"` // capture only workloads whose identity matches one of these path.Match patterns
		// CRIEndpoints are the container runtime sockets asked for pods and containers
		// ("unix:///path" or "/path"); empty: containerd's and CRI-O's default sockets.
		CRIEndpoints []string `yaml:"cri_endpoints"`
		// Addresses are CIDR=NAME pairs naming a packet's workload by its source address in
		// `replay --config` (live, a namespace is the workload).
		Addresses []string `yaml:"addresses"`
	} `yaml:"workloads"`

	// StateDir holds what outlives the process (the learned profiles).
	StateDir string `yaml:"state_dir"`
	// ControlSocketPath is the unix socket `minerguard profiles` uses while the sensor runs
	// (default minerguard.sock beside the profile state).
	ControlSocketPath string `yaml:"control_socket"`

	Profiles ProfilesConfig `yaml:"profiles"`

	Enforcement EnforcementConfig `yaml:"enforcement"`

	// EVE chooses the records written beside alerts (eve.go).
	EVE EVEConfig `yaml:"eve"`
}

// ProfilesConfig controls the learned egress profiles.
type ProfilesConfig struct {
	Enabled bool   `yaml:"enabled"`
	State   string `yaml:"state"` // bbolt file; default <state_dir>/profiles.db
	// Window and Quiet: learning lasts at least Window and ends after Quiet without a new
	// destination; MinFlows, when set, may end it earlier.
	Window   time.Duration `yaml:"window"`
	Quiet    time.Duration `yaml:"quiet"`
	MinFlows int           `yaml:"min_flows"`
	// Promote is where a profile goes when learning ends: monitoring, enforcing, or manual
	// (stays learning until `minerguard profiles approve`).
	Promote              string        `yaml:"promote"`
	MaxEntries           int           `yaml:"max_entries"`
	MaxIPsPerName        int           `yaml:"max_ips_per_name"`
	MinReplicas          int           `yaml:"min_replicas"`
	RelearnOnImageChange bool          `yaml:"relearn_on_image_change"`
	Deny                 []string      `yaml:"deny"`            // never learned, always a violation
	CommitInterval       time.Duration `yaml:"commit_interval"` // learned batches are committed this often
	// Backend is where profiles live: bbolt (this node's state file alone) or kubernetes
	// (one WorkloadProfile per workload across the cluster, merged by every node; the state
	// file stays the node's cache, which it judges from while the API server is down).
	Backend string `yaml:"backend"`
	// Kubeconfig reaches the API server for the kubernetes backend; empty: the pod's
	// service account (in-cluster).
	Kubeconfig string `yaml:"kubeconfig"`
	// SyncInterval (kubernetes): push what this node learned this often. Operators' edits
	// arrive by watch within seconds; this sync is also their backstop.
	SyncInterval time.Duration `yaml:"sync_interval"`
}

// EnforcementConfig controls dropping in enforce mode (XDP).
type EnforcementConfig struct {
	PinPath          string        `yaml:"pin_path"`          // bpffs directory for pinned maps and links
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"` // a sensor silent this long fails open
	// HostNetns is the netns holding the host side of the workloads' veths: "" for the
	// sensor's own (hostNetwork), or a path such as /proc/1/ns/net.
	HostNetns string `yaml:"host_netns"`
	// MaxBlockedFlows and MaxBlockedDests size the XDP block maps (0: 65536 each). Pinned
	// maps keep the size they were created with until they are removed.
	MaxBlockedFlows int `yaml:"max_blocked_flows"`
	// StaleFlowBlock is how long a flow block may go without a dropped packet before it is
	// removed (blocks of flows the sensor never saw end: it was killed, or restarted).
	StaleFlowBlock  time.Duration `yaml:"stale_flow_block"`
	MaxBlockedDests int           `yaml:"max_blocked_dests"`
	// DropSignatures are the flag-only signatures the operator makes drop in enforce mode too:
	// 9400011 (behaviour) and 9400007 (tls-no-sni) may be listed (detect.Reason.OptInDrop).
	// Empty by default: they flag, never drop.
	DropSignatures []int `yaml:"drop_signatures"`
	// Workloads override the mode per workload: the first entry whose match (path.Match on the
	// identity) fits wins.
	Workloads []WorkloadMode `yaml:"workloads"`
}

// DropAlso is the reason set of Enforcement.DropSignatures (Check rejects the ids that cannot
// be opted in, so a checked config gives every one it lists).
func (e EnforcementConfig) DropAlso() detect.Reasons {
	var rs detect.Reasons
	for _, id := range e.DropSignatures {
		if r, ok := detect.ReasonOf(id); ok && r.OptInDrop() {
			rs = rs.With(r)
		}
	}
	return rs
}

// WorkloadMode is a per-workload enforcement override.
type WorkloadMode struct {
	Match      string `yaml:"match"`
	Mode       string `yaml:"mode"`        // monitor | enforce | bypass
	FailClosed bool   `yaml:"fail_closed"` // keep dropping when the sensor's heartbeat stops
}

// Default returns the configuration used when a key is not set.
func Default() Config {
	var c Config
	c.Netns = []string{"all"}
	c.ProcRoot = "/proc"
	c.Mode = "monitor"
	c.Web.ListenAddress = ":9417"
	c.Alerts.Output = "-"
	c.Alerts.Format = "json"
	c.Alerts.Rate = 10
	c.Alerts.Burst = 100
	c.Alerts.Queue = 10000
	c.Capture.Snaplen = 65535
	c.Capture.BlockSize = 128 << 10
	c.Capture.Blocks = 4
	c.Capture.MaxBlocks = 64
	c.Capture.MaxRingBytes = 128 << 20
	c.Capture.PressureDepth = 4096
	c.Capture.Queue = 65536
	c.Capture.BlockTimeout = 4 * time.Millisecond
	c.Capture.Bypass = "kernel"
	c.Capture.BypassFlows = 65536
	c.Flow.MaxFlows = 262144
	c.Flow.StreamDepth = 64 << 10
	c.Flow.DefragMemcap = 16 << 20
	c.Flow.DefragTimeout = 30 * time.Second
	c.Flow.DefragMaxFrags = 64
	c.StateDir = "/var/lib/minerguard"
	c.Profiles.Enabled = true
	c.Profiles.Window = 24 * time.Hour
	c.Profiles.Quiet = time.Hour
	c.Profiles.Promote = "monitoring"
	c.Profiles.MaxEntries = 1000
	c.Profiles.MaxIPsPerName = 1000
	c.Profiles.MinReplicas = 1
	c.Profiles.RelearnOnImageChange = true
	c.Profiles.CommitInterval = 5 * time.Second
	c.Profiles.Backend = "bbolt"
	c.Profiles.SyncInterval = 30 * time.Second
	c.Enforcement.PinPath = "/sys/fs/bpf/minerguard"
	c.Enforcement.HeartbeatTimeout = 30 * time.Second
	c.Enforcement.StaleFlowBlock = 15 * time.Minute
	c.EVE = EVEConfig{Types: []string{"alert"}, StatsInterval: 30 * time.Second, FlowSample: 1, RecordsRate: 100}
	return c
}

// MaxConfigSize bounds the config file: it is read whole.
const MaxConfigSize = 1 << 20

// Load reads a config file over the defaults. Unknown keys, wrong types and invalid values
// are errors naming the key and its line; nothing is half-applied.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	if len(b) > MaxConfigSize {
		return Config{}, fmt.Errorf("%s: larger than %d bytes", path, MaxConfigSize)
	}
	c, err := Parse(b)
	var ps Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			p.File = path
		}
		return c, ps
	}
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML over the defaults and validates the result. Every invalid value is
// reported (Problems), each with its key and line; the decoded config comes with Problems
// too, for --config.check to check the rest of it, and must not be run.
func Parse(b []byte) (Config, error) {
	c := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return Config{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, decodeErrors(err, &root) // every unknown key and wrong type, by key path
	}
	if err := c.Validate(); err != nil {
		var ps Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				p.Line = lineOf(&root, strings.Split(p.Key, "."))
			}
			return c, ps
		}
		return Config{}, err
	}
	return c, nil
}

// ValueError is a key with a value out of range: Msg has the value and what to do.
type ValueError struct {
	Key, Msg string
	File     string // the config file, when it came from one
	Line     int    // its line there (0: not known, or a flag)
}

func (e *ValueError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Key + ": " + e.Msg)
	return b.String()
}

// Problems are every invalid value of a config, in the order of its keys: one line each.
type Problems []*ValueError

func (ps Problems) Error() string {
	ls := make([]string, len(ps))
	for i, p := range ps {
		ls[i] = p.Error()
	}
	return strings.Join(ls, "\n")
}

// Caps' upper bounds: a value past them is a typo or would take the node's memory.
const (
	maxAlertBurst     = 1_000_000
	maxAlertQueue     = 1 << 20 // queued alerts are about 1 KiB each: 1 GiB
	maxAlertRate      = 1_000_000
	maxSnaplen        = 1 << 18 // what the capture ring accepts
	minSnaplen        = 64
	maxBlockSize      = 128 << 20
	maxBlocks         = 1024
	maxRingBytes      = 1 << 30 // block_size × blocks, per namespace
	maxCaptureQueue   = 1 << 22
	maxFlows          = 1 << 24 // each flow is a few hundred bytes: several GiB at the cap
	maxStreamDepth    = 16 << 20
	maxDefragMemcap   = 1 << 30
	maxDefragFrags    = 8192 // 64 KiB in 8-byte fragments, the least IP allows
	maxDefragTimeout  = 10 * time.Minute
	maxProfileItems   = 100_000 // what the profile state reads back (profile codec): more could not be reopened
	maxMinReplicas    = 10_000
	maxBlockedEntries = 1 << 24
)

// Validate checks every value and reports every problem (Problems), each naming the key, the
// value and what is wanted.
func (c *Config) Validate() error {
	var ps Problems
	bad := func(key, format string, args ...any) {
		ps = append(ps, &ValueError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.Mode {
	case "learn", "monitor", "enforce":
	default:
		bad("mode", "%q: want learn, monitor or enforce", c.Mode)
	}
	if len(c.Netns) == 0 {
		bad("netns", "empty: give names or all")
	}
	for _, n := range c.Netns {
		if n == "" || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
			bad("netns", "%q is not a netns name", n)
		}
	}
	if c.ProcRoot == "" {
		bad("proc_root", "empty: want /proc, or the host's /proc mounted into the sensor's container")
	}
	if err := checkListen(c.Web.ListenAddress); err != nil {
		bad("web.listen_address", "%q: %v", c.Web.ListenAddress, err)
	}
	switch c.Alerts.Format {
	case "json", "text":
	default:
		bad("alerts.format", "%q: want json or text", c.Alerts.Format)
	}
	if c.Alerts.Output == "" {
		bad("alerts.output", `empty: want - (stdout) or a file`)
	}
	if !(c.Alerts.Rate > 0 && c.Alerts.Rate <= maxAlertRate) {
		bad("alerts.rate", "%v: want more than 0 and at most %d alerts per second per workload", c.Alerts.Rate, maxAlertRate)
	}
	rng := func(key string, v, lo, hi int, what string) {
		if v < lo || v > hi {
			bad(key, "%d: want %d to %d (%s)", v, lo, hi, what)
		}
	}
	rng("alerts.burst", c.Alerts.Burst, 1, maxAlertBurst, "alerts a workload may raise at once")
	rng("alerts.queue", c.Alerts.Queue, 1, maxAlertQueue, "alerts waiting for the writer; default 10000")
	rng("capture.snaplen", c.Capture.Snaplen, minSnaplen, maxSnaplen, "bytes kept per packet; default 65535")
	rng("capture.block_size", c.Capture.BlockSize, 4096, maxBlockSize, "bytes per ring block; default 131072")
	rng("capture.max_blocks", c.Capture.MaxBlocks, 1, maxBlocks, "ring blocks a ring that drops may grow to; default 64")
	rng("capture.max_ring_bytes", c.Capture.MaxRingBytes, 1, 1<<40, "bytes all rings together may grow to; default 134217728")
	rng("capture.bypass_flows", c.Capture.BypassFlows, 1, 1<<24, "entries of the kernel bypass flow map; default 65536")
	switch c.Capture.Bypass {
	case "kernel", "off":
	default:
		bad("capture.bypass", "%q: want kernel or off", c.Capture.Bypass)
	}
	if c.Capture.PressureDepth < 0 {
		bad("capture.pressure_depth", "%d: must not be negative (0 keeps flow.stream_depth)", c.Capture.PressureDepth)
	}
	if c.Capture.BlockSize%4096 != 0 {
		bad("capture.block_size", "%d: must be a multiple of the page size (4096)", c.Capture.BlockSize)
	}
	rng("capture.blocks", c.Capture.Blocks, 1, maxBlocks, "ring blocks per namespace at rest; default 4")
	if c.Capture.BlockSize > 0 && c.Capture.Blocks > 0 && int64(c.Capture.BlockSize)*int64(c.Capture.Blocks) > maxRingBytes {
		bad("capture.blocks", "%d blocks of %d bytes: a ring of more than %d bytes per namespace; lower capture.blocks or capture.block_size",
			c.Capture.Blocks, c.Capture.BlockSize, maxRingBytes)
	}
	rng("capture.queue", c.Capture.Queue, 1, maxCaptureQueue, "frames waiting for the pipeline; default 65536")
	if c.Capture.BlockTimeout < time.Millisecond || c.Capture.BlockTimeout > time.Second {
		bad("capture.block_timeout", "%v: want 1ms to 1s", c.Capture.BlockTimeout)
	}
	for _, i := range c.Capture.Interfaces {
		if i == "" || len(i) > 15 || strings.ContainsAny(i, "/ \x00") {
			bad("capture.interfaces", "%q is not an interface name", i)
		}
	}
	rng("flow.max_flows", c.Flow.MaxFlows, 1, maxFlows, "flow table capacity; default 262144")
	rng("flow.defrag_memcap", c.Flow.DefragMemcap, 1, maxDefragMemcap, "bytes of IP fragment reassembly buffers; default 16777216")
	rng("flow.defrag_max_frags", c.Flow.DefragMaxFrags, 1, maxDefragFrags, "fragments one datagram may have; default 64, a 64 KiB datagram in 8-byte fragments has 8192")
	if c.Flow.DefragTimeout <= 0 || c.Flow.DefragTimeout > maxDefragTimeout {
		bad("flow.defrag_timeout", "%v: want more than 0 and at most %v (default 30s, as Linux's ipfrag_time)", c.Flow.DefragTimeout, maxDefragTimeout)
	}
	rng("flow.stream_depth", c.Flow.StreamDepth, 1, maxStreamDepth, "bytes inspected per direction; default 65536, beyond the cap one flow would hold a 16th of the 256 MiB reassembly budget")
	for i, f := range c.Intel.Files {
		if f == "" {
			bad("intel.files", "entry %d is empty: want a file path", i+1)
		}
	}
	for _, p := range c.Workloads.Select {
		if _, err := path.Match(p, ""); err != nil {
			bad("workloads.select", "%q: %v", p, err)
		}
	}
	for _, ep := range c.Workloads.CRIEndpoints {
		if p := strings.TrimPrefix(ep, "unix://"); !strings.HasPrefix(p, "/") {
			bad("workloads.cri_endpoints", "%q: want unix:///PATH or an absolute socket path", ep)
		}
	}
	for _, a := range c.Workloads.Addresses {
		cidr, name, ok := strings.Cut(a, "=")
		_, perr := netip.ParsePrefix(strings.TrimSpace(cidr))
		_, aerr := netip.ParseAddr(strings.TrimSpace(cidr))
		if !ok || strings.TrimSpace(name) == "" || (perr != nil && aerr != nil) {
			bad("workloads.addresses", "%q: want CIDR=NAME (10.0.1.0/24=shop/web)", a)
		}
	}
	switch c.Profiles.Promote {
	case "monitoring", "enforcing", "manual":
	default:
		bad("profiles.promote", "%q: want monitoring, enforcing or manual", c.Profiles.Promote)
	}
	rng("profiles.max_entries", c.Profiles.MaxEntries, 1, maxProfileItems, "destinations per workload; default 1000")
	rng("profiles.max_ips_per_name", c.Profiles.MaxIPsPerName, 1, maxProfileItems, "addresses kept per name; default 1000")
	rng("profiles.min_replicas", c.Profiles.MinReplicas, 1, maxMinReplicas, "replicas that must use a destination before it is learned; default 1")
	if c.Profiles.MinFlows < 0 {
		bad("profiles.min_flows", "%d: must not be negative (0: off)", c.Profiles.MinFlows)
	}
	if c.Profiles.Window < time.Second {
		bad("profiles.window", "%v: want at least 1s", c.Profiles.Window)
	}
	if c.Profiles.Quiet < 0 {
		bad("profiles.quiet", "%v: must not be negative", c.Profiles.Quiet)
	}
	if c.Profiles.CommitInterval < 100*time.Millisecond {
		bad("profiles.commit_interval", "%v: want at least 100ms", c.Profiles.CommitInterval)
	}
	switch c.Profiles.Backend {
	case "bbolt", "kubernetes":
	default:
		bad("profiles.backend", "%q: want bbolt (this node's state file) or kubernetes (WorkloadProfiles shared by the cluster)", c.Profiles.Backend)
	}
	if c.Profiles.SyncInterval < time.Second {
		bad("profiles.sync_interval", "%v: want at least 1s", c.Profiles.SyncInterval)
	}
	if c.Profiles.Enabled && c.Profiles.State == "" && c.StateDir == "" {
		bad("state_dir", "empty: profiles need a place to keep their state (or set profiles.state)")
	}
	if c.Enforcement.HeartbeatTimeout < time.Second {
		bad("enforcement.heartbeat_timeout", "%v: want at least 1s", c.Enforcement.HeartbeatTimeout)
	}
	if c.Enforcement.PinPath == "" {
		bad("enforcement.pin_path", "empty: want a directory on bpffs (default /sys/fs/bpf/minerguard)")
	}
	if c.Enforcement.StaleFlowBlock < time.Second {
		bad("enforcement.stale_flow_block", "%v: want at least 1s (default 15m: longer than a TCP flow's idle timeout)", c.Enforcement.StaleFlowBlock)
	}
	rng("enforcement.max_blocked_flows", c.Enforcement.MaxBlockedFlows, 0, maxBlockedEntries, "0 means the default 65536")
	rng("enforcement.max_blocked_dests", c.Enforcement.MaxBlockedDests, 0, maxBlockedEntries, "0 means the default 65536")
	for _, id := range c.Enforcement.DropSignatures {
		r, ok := detect.ReasonOf(id)
		switch {
		case !ok:
			bad("enforcement.drop_signatures", "%d: no such signature (minerguard signatures lists them)", id)
		case r.Record():
			bad("enforcement.drop_signatures", "%d (%s): a record, not an alert: never dropped", id, r)
		case !r.OptInDrop():
			bad("enforcement.drop_signatures", "%d (%s): not a flag-only detection (want 9400011 behaviour or 9400007 tls-no-sni; the strong ones drop already, the profile's drop once the profile enforces)", id, r)
		}
	}
	for _, w := range c.Enforcement.Workloads {
		if _, err := path.Match(w.Match, ""); err != nil || w.Match == "" {
			bad("enforcement.workloads", "match %q: not a path.Match pattern", w.Match)
		}
		switch w.Mode {
		case "monitor", "enforce", "bypass":
		default:
			bad("enforcement.workloads", "%s: mode %q: want monitor, enforce or bypass", w.Match, w.Mode)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// checkListen accepts what net.Listen("tcp", a) would bind: [host]:port with a port of 0 to
// 65535 (or a service name) and a host that is empty, an IP address, or a name.
func checkListen(a string) error {
	if a == "" {
		return errors.New("empty: want HOST:PORT, such as :9417 or 127.0.0.1:9417")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, such as :9417 or 127.0.0.1:9417 (%v)", err)
	}
	var errs []string
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			errs = append(errs, fmt.Sprintf("port %d: want 0 to 65535", n))
		}
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		errs = append(errs, fmt.Sprintf("port %q: not a number or a known service", port))
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil {
		// Not an address: a name, but not something that only looks like a broken address.
		if strings.Trim(host, "0123456789.") == "" || strings.Contains(host, ":") || !validHostName(host) {
			errs = append(errs, fmt.Sprintf("host %q: not an IP address or a host name", host))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// ProfileState is the bbolt file of the learned profiles.
func (c *Config) ProfileState() string {
	if c.Profiles.State != "" {
		return c.Profiles.State
	}
	return filepath.Join(c.StateDir, "profiles.db")
}

// lineOf finds the line of a key path in a YAML document.
func lineOf(n *yaml.Node, path []string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for i, k := range path {
		if n.Kind != yaml.MappingNode {
			return 0
		}
		found := false
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				if i == len(path)-1 {
					return n.Content[j].Line
				}
				n = n.Content[j+1]
				found = true
				break
			}
		}
		if !found {
			return 0
		}
	}
	return 0
}
