package xdp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Attachment describes where a workload's traffic is enforced.
type Attachment struct {
	Workload   string
	WorkloadID uint64
	NsInode    uint64
	Links      []AttachedLink
}

// AttachedLink is one XDP link.
type AttachedLink struct {
	Ifname    string // interface name in the netns the link is in
	Ifindex   int
	View      View // ViewEgress: host-side veth in HostNetns; ViewIngress: inside the workload netns
	LinkID    uint32
	Pin       string
	Readopted bool // an existing pinned link was reused (sensor restarted)
}

func (m *Manager) linkDir() string { return filepath.Join(m.opts.PinPath, "links") }

func pinName(nsInode uint64, ifname string) string {
	return strconv.FormatUint(nsInode, 10) + "_" + ifname
}

// adoptLinks loads the pinned links and drops those whose interface is gone (a deleted
// interface leaves its link defunct, with ifindex 0).
func (m *Manager) adoptLinks() error {
	ents, err := os.ReadDir(m.linkDir())
	if err != nil {
		return fmt.Errorf("listing pinned links: %w", err)
	}
	for _, e := range ents {
		path := filepath.Join(m.linkDir(), e.Name())
		inode, ifname, ok := strings.Cut(e.Name(), "_")
		ino, perr := strconv.ParseUint(inode, 10, 64)
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil || !ok || perr != nil {
			if l != nil {
				l.Close()
			}
			os.Remove(path) // not ours or unreadable: it cannot be re-adopted
			continue
		}
		info, err := l.Info()
		if err != nil || info.XDP() == nil || info.XDP().Ifindex == 0 {
			l.Unpin()
			l.Close()
			continue
		}
		m.links[e.Name()] = &pinnedLink{link: l, nsInode: ino, ifname: ifname}
	}
	return nil
}

type target struct {
	ns      netns.NsHandle
	ifname  string
	ifindex int
	view    View
}

// Attach enforces workload's policy on the netns at nsPath (inode nsInode; 0 = read it from
// nsPath). It attaches on the host-side peers (in HostNetns) of the netns's veths, seeing
// the workload's egress; when the netns has no veth into HostNetns, on its own non-loopback
// Ethernet interfaces, seeing its ingress. Links pinned by an earlier run for the same
// netns and interface are re-adopted and switched to a freshly loaded program.
func (m *Manager) Attach(workload string, nsPath string, nsInode uint64) (Attachment, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return Attachment{}, fmt.Errorf("opening netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(ns), &st); err != nil {
		return Attachment{}, fmt.Errorf("stat netns %s: %w", nsPath, err)
	}
	if nsInode == 0 {
		nsInode = st.Ino
	} else if st.Ino != nsInode {
		return Attachment{}, fmt.Errorf("netns %s has inode %d, not %d", nsPath, st.Ino, nsInode)
	}
	var hst unix.Stat_t
	if err := unix.Fstat(int(m.hostNs), &hst); err == nil && hst.Ino == st.Ino && hst.Dev == st.Dev {
		// Its interfaces are the host's: enforcing one workload there would hit everyone.
		return Attachment{}, fmt.Errorf("netns %s is the host netns: not attaching", nsPath)
	}
	targets, err := m.targets(ns)
	if err != nil {
		return Attachment{}, fmt.Errorf("finding interfaces of netns %s: %w", nsPath, err)
	}
	if len(targets) == 0 {
		return Attachment{}, fmt.Errorf("netns %s has no veth into the host netns and no Ethernet interface", nsPath)
	}
	wid := WorkloadID(workload)
	a := Attachment{Workload: workload, WorkloadID: wid, NsInode: nsInode}
	for _, t := range targets {
		al, err := m.attachOne(wid, nsInode, t)
		if err != nil {
			return a, fmt.Errorf("attaching xdp to %s: %w", t.ifname, err)
		}
		a.Links = append(a.Links, al)
	}
	return a, nil
}

// targets lists where to attach for the netns ns. A veth's peer is taken to be in HostNetns
// only when both ends agree: the workload side's link-netnsid is HostNetns's id and its peer
// index names a veth in HostNetns whose own peer is the workload side, in the workload netns.
func (m *Manager) targets(ns netns.NsHandle) ([]target, error) {
	wh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer wh.Close()
	hh, err := netlink.NewHandleAt(m.hostNs)
	if err != nil {
		return nil, err
	}
	defer hh.Close()
	links, err := wh.LinkList()
	if err != nil {
		return nil, err
	}
	hostID, err := wh.GetNetNsIdByFd(int(m.hostNs)) // HostNetns as the workload netns names it
	if err != nil {
		return nil, fmt.Errorf("looking up the host netns id: %w", err)
	}
	wlID, err := hh.GetNetNsIdByFd(int(ns)) // the workload netns as HostNetns names it
	if err != nil {
		return nil, fmt.Errorf("looking up the workload netns id: %w", err)
	}
	var host, inside []target
	for _, l := range links {
		at := l.Attrs()
		if at.Flags&(1<<2) != 0 || at.EncapType != "ether" { // net.FlagLoopback
			continue
		}
		inside = append(inside, target{ns: ns, ifname: at.Name, ifindex: at.Index, view: ViewIngress})
		if l.Type() != "veth" || hostID < 0 || wlID < 0 || at.NetNsID != hostID || at.ParentIndex == 0 {
			continue
		}
		peer, err := hh.LinkByIndex(at.ParentIndex)
		if err != nil {
			continue
		}
		pa := peer.Attrs()
		if peer.Type() != "veth" || pa.ParentIndex != at.Index || pa.NetNsID != wlID {
			continue
		}
		host = append(host, target{ns: m.hostNs, ifname: pa.Name, ifindex: pa.Index, view: ViewEgress})
	}
	if len(host) > 0 {
		return host, nil
	}
	return inside, nil
}

// attachOne re-adopts the pinned link for (nsInode, interface) if it is still attached to
// that very interface, else attaches a new link and pins it.
func (m *Manager) attachOne(wid, nsInode uint64, t target) (AttachedLink, error) {
	name := pinName(nsInode, t.ifname)
	path := filepath.Join(m.linkDir(), name)
	al := AttachedLink{Ifname: t.ifname, Ifindex: t.ifindex, View: t.view, Pin: path}

	prog, err := m.loadProgram(wid, t.view)
	if err != nil {
		return al, err
	}
	defer prog.Close() // the link holds its own reference

	m.mu.Lock()
	defer m.mu.Unlock()
	pl := m.links[name]
	if pl == nil {
		if l, err := link.LoadPinnedLink(path, nil); err == nil {
			pl = &pinnedLink{link: l, nsInode: nsInode, ifname: t.ifname}
		}
	}
	if pl != nil {
		if id, ok := stillAttached(pl.link, t); ok {
			if err := pl.link.Update(prog); err != nil {
				return al, fmt.Errorf("updating re-adopted link: %w", err)
			}
			m.links[name] = pl
			al.LinkID, al.Readopted = id, true
			return al, nil
		}
		pl.link.Unpin()
		pl.link.Close()
		delete(m.links, name)
	}
	var l link.Link
	err = inNetns(t.ns, func() error {
		var err error
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: t.ifindex})
		return err
	})
	if err != nil {
		return al, err
	}
	if err := l.Pin(path); err != nil {
		l.Close()
		return al, fmt.Errorf("pinning link: %w", err)
	}
	if info, err := l.Info(); err == nil {
		al.LinkID = uint32(info.ID)
	}
	m.links[name] = &pinnedLink{link: l, nsInode: nsInode, ifname: t.ifname}
	return al, nil
}

// stillAttached reports whether l is the XDP program of interface t: the link's ifindex
// alone is ambiguous across namespaces, so the interface must also report l's program.
func stillAttached(l link.Link, t target) (uint32, bool) {
	info, err := l.Info()
	if err != nil || info.XDP() == nil || int(info.XDP().Ifindex) != t.ifindex {
		return 0, false
	}
	h, err := netlink.NewHandleAt(t.ns)
	if err != nil {
		return 0, false
	}
	defer h.Close()
	nl, err := h.LinkByIndex(t.ifindex)
	if err != nil || nl.Attrs().Name != t.ifname || nl.Attrs().Xdp == nil || nl.Attrs().Xdp.ProgId != uint32(info.Program) {
		return 0, false
	}
	return uint32(info.ID), true
}

// Detach removes the links of one netns (unpinned and closed: its traffic is no longer
// inspected). Detaching a netns with no links is not an error.
func (m *Manager) Detach(nsInode uint64) error {
	prefix := strconv.FormatUint(nsInode, 10) + "_"
	var errs []error
	m.mu.Lock()
	for name, pl := range m.links {
		if strings.HasPrefix(name, prefix) {
			if err := pl.link.Unpin(); err != nil {
				errs = append(errs, err)
			}
			pl.link.Close()
			delete(m.links, name)
		}
	}
	m.mu.Unlock()
	// Pins this manager did not load (another instance): removing the pin drops the link.
	if ents, err := os.ReadDir(m.linkDir()); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				if err := os.Remove(filepath.Join(m.linkDir(), e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detaching netns %d: %w", nsInode, err)
	}
	return nil
}

// inNetns runs fn on a locked OS thread inside ns. If switching back fails the thread stays
// locked, so it exits with its goroutine instead of serving others in the wrong netns.
func inNetns(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("opening current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("entering netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leaving netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
