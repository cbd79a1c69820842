package sensor

import (
	"crypto/rand"
	"encoding/binary"
	"net"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/engine"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// stamp puts on every alert what only the sensor knows: its name (EVE host) and the
// interface the flow was captured on (in_iface).
type stamp struct {
	s    *Sensor
	next engine.Sink
}

func (st stamp) Alert(e *alert.Event) {
	e.Host = st.s.node
	st.s.mu.RLock()
	if w := st.s.rings[e.Scope]; w != nil {
		e.InIface = w.iface
	}
	st.s.mu.RUnlock()
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
