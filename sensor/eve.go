package sensor

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/internal/tick"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"gopkg.in/yaml.v3"
)

// stamp puts on every alert what only the sensor knows: its name (EVE host) and the
// interface the flow was captured on (in_iface).
type stamp struct {
	s    *Sensor
	next engine.Sink
}

func (st stamp) Alert(e *alert.Event) {
	e.Host = st.s.node
	e.InIface = st.s.ifaceOf(e.Scope)
	st.next.Alert(e)
}

// flowSalt is drawn once per start, so the flow_ids of two sensors, or of one sensor before
// and after a restart, do not collide.
func flowSalt() uint64 {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return binary.LittleEndian.Uint64(b[:])
}

// captureIface is what alerts name as in_iface for a ring: the host interface it is bound to,
// else the namespace's one interface other than loopback (the ring skips loopback, so every
// frame came through it), else "any" (several, or none yet), as tcpdump -i any.
func captureIface(ns capture.Netns, ifname string) string {
	if ifname != "" {
		return ifname
	}
	h, err := netns.GetFromPath(ns.Path)
	if err != nil {
		return "any"
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return "any"
	}
	defer nh.Close()
	links, err := nh.LinkList()
	if err != nil {
		return "any"
	}
	name := ""
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		if name != "" {
			return "any"
		}
		name = a.Name
	}
	if name == "" {
		return "any"
	}
	return name
}

// EVEConfig chooses the EVE records written to the alert output, as Suricata's eve-log types:
// alerts always; with "stats" in Types a stats record every StatsInterval; with "flow" a flow
// record when a flow ends (for one flow in FlowSample, and every flow that alerted), "dns" the
// queries and answers of pool lookups, "tls" each ClientHello (SNI, JA4). Flow, dns and tls
// records are capped at RecordsRate a second per type and counted when stopped.
type EVEConfig struct {
	Types         EVETypes      `yaml:"types"`
	StatsInterval time.Duration `yaml:"stats_interval"`
	FlowSample    int           `yaml:"flow_sample"`
	RecordsRate   float64       `yaml:"records_rate"`
}

// EVETypes are the record types of eve.types; decoding refuses others with their line.
type EVETypes []string

// eveTypes are the types there are.
var eveTypes = alert.RecordTypes

// UnmarshalYAML decodes a list of known types.
func (t *EVETypes) UnmarshalYAML(n *yaml.Node) error {
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	if err := checkEVETypes(l); err != nil {
		return fmt.Errorf("line %d: eve.types: %w", n.Line, err)
	}
	*t = l
	return nil
}

func checkEVETypes(l []string) error {
	for _, x := range l {
		if !slices.Contains(eveTypes, x) {
			return fmt.Errorf("%q: want %s", x, strings.Join(eveTypes, ", "))
		}
	}
	return nil
}

// CheckEVE checks the eve keys (also when they came from flags).
func (c *Config) CheckEVE() error {
	if err := checkEVETypes(c.EVE.Types); err != nil {
		return fmt.Errorf("eve.types: %w", err)
	}
	if slices.Contains(c.EVE.Types, "stats") && c.EVE.StatsInterval < time.Second {
		return fmt.Errorf("eve.stats_interval: %v: want at least 1s", c.EVE.StatsInterval)
	}
	if c.EVE.FlowSample < 1 {
		return fmt.Errorf("eve.flow_sample: %d: want at least 1 (1: every flow)", c.EVE.FlowSample)
	}
	if c.EVE.RecordsRate <= 0 {
		return fmt.Errorf("eve.records_rate: %v: want more than 0", c.EVE.RecordsRate)
	}
	return nil
}

// runStats writes a stats record every interval until ctx is done.
func (s *Sensor) runStats(ctx context.Context, every time.Duration) {
	tick.Every(ctx, every, func(now time.Time) {
		s.queue.Record(&alert.Event{Timestamp: now, Host: s.node, Stats: s.statsRecord(now)})
	})
}

// statsRecord is the sensor's counters since it started, under Suricata's stats names.
func (s *Sensor) statsRecord(now time.Time) *alert.Stats {
	l, st := s.live(), s.pipe.Stats()
	r := l.Rings()
	sup, thr := s.tuning.Stopped()
	return &alert.Stats{
		Uptime: int64(now.Sub(s.started).Seconds()), KernelPackets: r.Packets, KernelDrops: r.Dropped,
		Packets: st.Packets, Bytes: st.Bytes, Invalid: st.DecodeErrorsTotal(),
		FlowsTotal: st.Flow.Created, FlowsActive: uint64(st.Flow.Active),
		Alerts: st.AlertsTotal(), Suppressed: sup + thr, DNSMessages: st.DNSMessages, TLSClientHellos: st.TLSHellos,
	}
}
