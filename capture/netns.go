package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is one network namespace found on the host.
type Netns struct {
	Inode uint64 // nsfs inode: the namespace's identity while it lives
	Dev   uint64 // nsfs device of Inode
	Path  string // a path that opens it: /var/run/netns/NAME or /proc/PID/ns/net
	Name  string // NAME for an entry of a netns directory, else ""
	PID   int    // a process in it, 0 if none was seen
}

// DiscoverOptions says where Namespaces looks.
type DiscoverOptions struct {
	ProcRoot    string   // default "/proc"; the host's proc when running in a container
	NetnsDirs   []string // default /var/run/netns and /var/run/docker/netns
	IncludeHost bool     // also report the namespace of ProcRoot/1 (ours if that is unreadable)
}

// DefaultNetnsDirs are the directories where ip-netns(8) and Docker bind-mount namespaces.
var DefaultNetnsDirs = []string{"/var/run/netns", "/var/run/docker/netns"}

const nsfsMagic = 0x6e736673

type nsKey struct{ dev, ino uint64 }

func (n Netns) key() nsKey { return nsKey{n.Dev, n.Inode} }

// Namespaces lists the network namespaces on the host, one entry per namespace (deduplicated
// by nsfs device and inode), sorted by inode. A namespace both named and used by processes
// gets its name and path from the netns directory and a PID from /proc.
func Namespaces(opts DiscoverOptions) ([]Netns, error) {
	proc := opts.ProcRoot
	if proc == "" {
		proc = "/proc"
	}
	dirs := opts.NetnsDirs
	if dirs == nil {
		dirs = DefaultNetnsDirs
	}
	host, herr := hostNetns(proc)
	hostKnown := herr == nil
	seen := map[nsKey]int{}
	var out []Netns
	add := func(n Netns) {
		if i, ok := seen[n.key()]; ok {
			if out[i].PID == 0 {
				out[i].PID = n.PID
			}
			return
		}
		seen[n.key()] = len(out)
		out = append(out, n)
	}
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue // not there on this host (no ip-netns, no Docker): nothing to find
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			// A name whose bind mount failed or was undone is a plain file: not a namespace.
			var fs unix.Statfs_t
			if unix.Statfs(p, &fs) != nil || fs.Type != nsfsMagic {
				continue
			}
			k, err := statNs(p)
			if err != nil {
				continue
			}
			add(Netns{Inode: k.ino, Dev: k.dev, Path: p, Name: e.Name()})
		}
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("netns discovery: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		p := filepath.Join(proc, e.Name(), "ns", "net")
		k, err := statNs(p)
		if err != nil {
			continue // the process exited, or is a kernel thread without a readable ns
		}
		add(Netns{Inode: k.ino, Dev: k.dev, Path: p, PID: pid})
	}
	res := out[:0]
	for _, n := range out {
		if hostKnown && n.key() == host && !opts.IncludeHost {
			continue
		}
		res = append(res, n)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Inode < res[j].Inode })
	return res, nil
}

// hostNetns is the namespace of init. When init's is unreadable (a PID 1 with capabilities
// we lack denies the ptrace check) it is ours: a sensor runs in the host namespace.
func hostNetns(proc string) (nsKey, error) {
	k, err := statNs(filepath.Join(proc, "1", "ns", "net"))
	if err != nil {
		k, err = statNs(filepath.Join(proc, "self", "ns", "net"))
	}
	return k, err
}

func statNs(path string) (nsKey, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsKey{}, err
	}
	return nsKey{uint64(st.Dev), st.Ino}, nil
}

// NetnsEventKind says whether a namespace appeared or went away.
type NetnsEventKind int

const (
	NetnsAdded NetnsEventKind = iota + 1
	NetnsRemoved
)

func (k NetnsEventKind) String() string {
	switch k {
	case NetnsAdded:
		return "added"
	case NetnsRemoved:
		return "removed"
	}
	return "unknown"
}

// NetnsEvent is one change seen by a Watcher.
type NetnsEvent struct {
	Kind  NetnsEventKind
	Netns Netns
}

// WatchOptions configures a Watcher.
type WatchOptions struct {
	DiscoverOptions
	Interval time.Duration // between scans; default 1 s, so a change is seen within 2 s
	// OnError, if set, hears a failed scan after the first; the previous view is kept so a
	// transient failure never reports every namespace removed.
	OnError func(error)
}

// Watcher polls Namespaces and reports what changed. It starts no goroutines of its own:
// Run does all the work on the caller's goroutine.
type Watcher struct {
	opts    WatchOptions
	current map[nsKey]Netns
	list    func() ([]Netns, error) // Namespaces(opts.DiscoverOptions); tests replace it
}

// NewWatcher returns a Watcher; nothing is scanned until Run.
func NewWatcher(opts WatchOptions) *Watcher {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	w := &Watcher{opts: opts, current: map[nsKey]Netns{}}
	w.list = func() ([]Netns, error) { return Namespaces(w.opts.DiscoverOptions) }
	return w
}

// Run scans at once, reports every namespace found as added, then rescans every Interval
// and reports additions and removals, calling fn on this goroutine, until ctx is done. It
// returns ctx's error, or the first scan's error (a wrong ProcRoot, say).
func (w *Watcher) Run(ctx context.Context, fn func(NetnsEvent)) error {
	if err := w.scan(fn); err != nil {
		return err
	}
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := w.scan(fn); err != nil && w.opts.OnError != nil {
				w.opts.OnError(err)
			}
		}
	}
}

func (w *Watcher) scan(fn func(NetnsEvent)) error {
	list, err := w.list()
	if err != nil {
		return err
	}
	now := make(map[nsKey]Netns, len(list))
	for _, n := range list {
		now[n.key()] = n
	}
	var removed []Netns
	replaced := map[nsKey]bool{}
	for k, n := range w.current {
		if m, ok := now[k]; ok && n.Name != "" && m.Name != "" && n.Name != m.Name {
			// The same inode under another name: the named namespace was deleted and a new
			// one took its freed inode between two scans (the kernel reuses them at once). It
			// is another namespace: the old one goes, the new one comes.
			removed = append(removed, n)
			replaced[k] = true
			continue
		}
		if _, ok := now[k]; !ok {
			// A listing can miss a namespace that still exists (a name whose mount is being
			// touched by ip-netns while we read the directory): it is gone only when the path
			// it was found by no longer opens it. A false removal would stop its capture.
			if still, err := statNs(n.Path); err == nil && still == k {
				now[k] = n
				continue
			}
			removed = append(removed, n)
		}
	}
	sort.Slice(removed, func(i, j int) bool { return removed[i].Inode < removed[j].Inode })
	old := w.current
	w.current = now
	// Removals first: a consumer bounded by a namespace cap frees slots before filling them.
	for _, n := range removed {
		fn(NetnsEvent{Kind: NetnsRemoved, Netns: n})
	}
	for _, n := range list {
		if _, ok := old[n.key()]; !ok || replaced[n.key()] {
			fn(NetnsEvent{Kind: NetnsAdded, Netns: n})
		}
	}
	return nil
}

// ErrNetnsGone says the namespace a Netns described no longer exists (or its path now opens
// a different one).
var ErrNetnsGone = errors.New("network namespace is gone")
