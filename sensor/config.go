package sensor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

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
		Blocks    int `yaml:"blocks"`     // ring blocks per netns
		Queue     int `yaml:"queue"`      // frames waiting for the pipeline; more are dropped and counted
		// Interfaces are host interfaces captured in the sensor's own netns besides the
		// namespaces (a node without per-workload namespaces, or a SPAN port).
		Interfaces []string `yaml:"interfaces"`
		// BlockTimeout hands a partly filled ring block to the sensor after this long: the
		// floor of detection latency on quiet links (20 ms gave a 19 ms median).
		BlockTimeout time.Duration `yaml:"block_timeout"`
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
	// Workloads override the mode per workload: the first entry whose match (path.Match on the
	// identity) fits wins.
	Workloads []WorkloadMode `yaml:"workloads"`
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
	c.Capture.BlockSize = 1 << 20
	c.Capture.Blocks = 4
	c.Capture.Queue = 65536
	c.Capture.BlockTimeout = 4 * time.Millisecond
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
	c.Enforcement.PinPath = "/sys/fs/bpf/minerguard"
	c.Enforcement.HeartbeatTimeout = 30 * time.Second
	c.Enforcement.StaleFlowBlock = 15 * time.Minute
	c.EVE = EVEConfig{Types: []string{"alert"}, StatsInterval: 30 * time.Second}
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
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML over the defaults and validates the result.
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
		var ve *ValueError
		if errors.As(err, &ve) {
			if line := lineOf(&root, strings.Split(ve.Key, ".")); line > 0 {
				return Config{}, fmt.Errorf("line %d: %w", line, err)
			}
		}
		return Config{}, err
	}
	return c, nil
}

// ValueError is a key with a value out of range.
type ValueError struct {
	Key, Msg string
}

func (e *ValueError) Error() string { return e.Key + ": " + e.Msg }

// Validate checks every value; the error names the key.
func (c *Config) Validate() error {
	bad := func(key, msg string) error { return &ValueError{key, msg} }
	switch c.Mode {
	case "learn", "monitor", "enforce":
	default:
		return bad("mode", fmt.Sprintf("%q: want learn, monitor or enforce", c.Mode))
	}
	switch c.Alerts.Format {
	case "json", "text":
	default:
		return bad("alerts.format", fmt.Sprintf("%q: want json or text", c.Alerts.Format))
	}
	if len(c.Netns) == 0 {
		return bad("netns", "empty: give names or all")
	}
	for _, n := range c.Netns {
		if n == "" || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
			return bad("netns", fmt.Sprintf("%q is not a netns name", n))
		}
	}
	for key, v := range map[string]int{
		"alerts.burst": c.Alerts.Burst, "alerts.queue": c.Alerts.Queue, "capture.snaplen": c.Capture.Snaplen,
		"capture.block_size": c.Capture.BlockSize, "capture.blocks": c.Capture.Blocks, "capture.queue": c.Capture.Queue,
		"flow.max_flows": c.Flow.MaxFlows, "flow.stream_depth": c.Flow.StreamDepth,
		"flow.defrag_memcap": c.Flow.DefragMemcap, "flow.defrag_max_frags": c.Flow.DefragMaxFrags,
		"profiles.max_entries": c.Profiles.MaxEntries, "profiles.max_ips_per_name": c.Profiles.MaxIPsPerName,
		"profiles.min_replicas": c.Profiles.MinReplicas,
	} {
		if v < 1 {
			return bad(key, fmt.Sprintf("%d: must be at least 1", v))
		}
	}
	if c.Flow.DefragTimeout <= 0 {
		return bad("flow.defrag_timeout", fmt.Sprintf("%v: must be positive", c.Flow.DefragTimeout))
	}
	if c.Alerts.Rate <= 0 {
		return bad("alerts.rate", fmt.Sprintf("%v: must be positive", c.Alerts.Rate))
	}
	if c.Capture.BlockTimeout < time.Millisecond || c.Capture.BlockTimeout > time.Second {
		return bad("capture.block_timeout", fmt.Sprintf("%v: want 1ms to 1s", c.Capture.BlockTimeout))
	}
	if c.Capture.BlockSize%4096 != 0 {
		return bad("capture.block_size", fmt.Sprintf("%d: must be a multiple of the page size (4096)", c.Capture.BlockSize))
	}
	for _, p := range c.Workloads.Select {
		if _, err := path.Match(p, ""); err != nil {
			return bad("workloads.select", fmt.Sprintf("%q: %v", p, err))
		}
	}
	for _, i := range c.Capture.Interfaces {
		if i == "" || len(i) > 15 || strings.ContainsAny(i, "/ \x00") {
			return bad("capture.interfaces", fmt.Sprintf("%q is not an interface name", i))
		}
	}
	if c.Web.ListenAddress == "" {
		return bad("web.listen_address", "empty")
	}
	switch c.Profiles.Promote {
	case "monitoring", "enforcing", "manual":
	default:
		return bad("profiles.promote", fmt.Sprintf("%q: want monitoring, enforcing or manual", c.Profiles.Promote))
	}
	if c.Profiles.MinFlows < 0 {
		return bad("profiles.min_flows", fmt.Sprintf("%d: must not be negative", c.Profiles.MinFlows))
	}
	if c.Profiles.Window < time.Second {
		return bad("profiles.window", fmt.Sprintf("%v: want at least 1s", c.Profiles.Window))
	}
	if c.Profiles.Quiet < 0 {
		return bad("profiles.quiet", fmt.Sprintf("%v: must not be negative", c.Profiles.Quiet))
	}
	if c.Profiles.CommitInterval < 100*time.Millisecond {
		return bad("profiles.commit_interval", fmt.Sprintf("%v: want at least 100ms", c.Profiles.CommitInterval))
	}
	if c.Profiles.Enabled && c.Profiles.State == "" && c.StateDir == "" {
		return bad("state_dir", "empty: profiles need a place to keep their state (or set profiles.state)")
	}
	if c.Enforcement.HeartbeatTimeout < time.Second {
		return bad("enforcement.heartbeat_timeout", fmt.Sprintf("%v: want at least 1s", c.Enforcement.HeartbeatTimeout))
	}
	for _, a := range c.Workloads.Addresses {
		cidr, name, ok := strings.Cut(a, "=")
		_, perr := netip.ParsePrefix(strings.TrimSpace(cidr))
		_, aerr := netip.ParseAddr(strings.TrimSpace(cidr))
		if !ok || strings.TrimSpace(name) == "" || (perr != nil && aerr != nil) {
			return bad("workloads.addresses", fmt.Sprintf("%q: want CIDR=NAME (10.0.1.0/24=shop/web)", a))
		}
	}
	if c.Enforcement.PinPath == "" {
		return bad("enforcement.pin_path", "empty")
	}
	if c.Enforcement.StaleFlowBlock < time.Second {
		return bad("enforcement.stale_flow_block", fmt.Sprintf("%v: want at least 1s (default 15m: longer than a TCP flow's idle timeout)", c.Enforcement.StaleFlowBlock))
	}
	for key, n := range map[string]int{"enforcement.max_blocked_flows": c.Enforcement.MaxBlockedFlows,
		"enforcement.max_blocked_dests": c.Enforcement.MaxBlockedDests} {
		if n < 0 || n > 1<<24 {
			return bad(key, fmt.Sprintf("%d: want 0 (default 65536) to %d", n, 1<<24))
		}
	}
	for _, w := range c.Enforcement.Workloads {
		if _, err := path.Match(w.Match, ""); err != nil || w.Match == "" {
			return bad("enforcement.workloads", fmt.Sprintf("match %q: not a path.Match pattern", w.Match))
		}
		switch w.Mode {
		case "monitor", "enforce", "bypass":
		default:
			return bad("enforcement.workloads", fmt.Sprintf("%s: mode %q: want monitor, enforce or bypass", w.Match, w.Mode))
		}
	}
	return nil
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
