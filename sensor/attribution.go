package sensor

import (
	"context"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/internal/tick"
	"github.com/minerguard/minerguard/workload"
)

// A pod's network namespace appears with its sandbox (pause) process, before the runtime has
// registered the sandbox (containerd does once the pod's network is set up) and before
// kubelet has started the container: the first answer may be the cgroup's container ID alone
// (the runtime does not know it yet), or the pod without its container and image. Such a
// namespace is asked about again on a back-off: 1, 2, 4 ... 256 s after the previous try, 9
// tries, about 8.5 minutes in all (a slow image pull), so one that never gets a better
// answer costs a few calls. A new workload name re-attaches the namespace under it (or
// attaches it, when workloads.select now matches); new attributes replace the alerts' copy.
const (
	renameFirst = time.Second
	renameTries = 9
)

// naming is a namespace whose identity may still improve.
type naming struct {
	ns    capture.Netns
	id    workload.Identity // the last answer
	tries int
	next  time.Time
}

// provisional reports whether a better answer may come for a namespace with processes:
// nothing but the cgroup or the inode named it, or a pod without its container.
func provisional(ns capture.Netns, id workload.Identity) bool {
	return ns.PID > 0 && (id.Source == workload.SourceCgroup || id.Kind == workload.KindUnknown ||
		id.Kind == workload.KindKubernetes && id.Container == "")
}

// notePending remembers ns for nameContainers when its identity is provisional, and forgets
// it when it is not (a namespace not selected is resolved again when the watcher's first
// scan reports it).
func (s *Sensor) notePending(ns capture.Netns, id workload.Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !provisional(ns, id) {
		delete(s.naming, ns.Inode)
		return
	}
	if s.naming == nil {
		s.naming = map[uint64]*naming{}
	}
	s.naming[ns.Inode] = &naming{ns: ns, id: id, next: time.Now().Add(renameFirst)}
}

// netnsInfo is what the resolvers are told about a namespace.
func (s *Sensor) netnsInfo(ns capture.Netns) workload.NetnsInfo {
	info := workload.NetnsInfo{Inode: ns.Inode, Name: ns.Name, ProcRoot: s.cfg.ProcRoot}
	if ns.PID > 0 {
		info.PIDs = []int{ns.PID}
	}
	return info
}

// alertWorkload is an identity as alerts show it.
func (s *Sensor) alertWorkload(ns capture.Netns, id workload.Identity) *alert.Workload {
	return &alert.Workload{Identity: id.Name, Kind: id.Kind, Pod: id.Pod, Namespace: id.Namespace,
		Container: id.Container, ContainerName: id.ContainerName, Image: id.Image, Node: s.node,
		Netns: ns.Path, Source: id.Source}
}

// nameContainers asks again, every tick, about the namespaces whose identity is provisional
// and whose back-off has passed, until ctx is done.
func (s *Sensor) nameContainers(ctx context.Context, every time.Duration) {
	tick.Every(ctx, every, func(time.Time) { s.nameContainersOnce(time.Now()) })
}

func (s *Sensor) nameContainersOnce(now time.Time) {
	var due []*naming
	s.mu.Lock()
	for ino, n := range s.naming {
		if now.Before(n.next) {
			continue
		}
		n.tries++
		n.next = now.Add(renameFirst << n.tries)
		if n.tries >= renameTries {
			delete(s.naming, ino) // this is its last try
		}
		due = append(due, n)
	}
	s.mu.Unlock()
	for _, n := range due {
		id := s.names.Resolve(s.netnsInfo(n.ns))
		if !provisional(n.ns, id) {
			s.mu.Lock()
			delete(s.naming, n.ns.Inode)
			s.mu.Unlock()
		} else if n.tries >= renameTries {
			// The retries are bounded: say once that this namespace keeps its provisional name.
			s.log.Warn("workload not named better after every try; keeping the provisional name",
				"netns", n.ns.Path, "workload", id.Name, "tries", n.tries)
		}
		if id.Name == n.id.Name && id.Container == n.id.Container {
			continue
		}
		old := n.id
		n.id = id
		if id.Name == old.Name {
			s.setAttributes(n.ns, id, now)
			continue
		}
		s.rename(n.ns, old, id)
	}
}

// setAttributes gives the alerts of a captured namespace the attributes of a better answer
// about the same workload (its container, image).
func (s *Sensor) setAttributes(ns capture.Netns, id workload.Identity, now time.Time) {
	aw := s.alertWorkload(ns, id)
	s.mu.Lock()
	w := s.rings[ns.Inode]
	if w != nil && w.id.Name == id.Name {
		w.alert = aw // alerts hold the old one as long as they need it: never modified
	}
	s.mu.Unlock()
	if w == nil {
		return
	}
	if s.book != nil && id.Image != "" {
		s.book.SetImage(id.Name, id.Image, now)
	}
	s.log.Info("container named", "netns", ns.Path, "workload", id.Name, "container", id.Container,
		"container_name", id.ContainerName, "image", id.Image)
}

// rename moves a namespace to the workload a better answer names: its ring is closed and a
// new one opened under the new name (profile, metrics and enforcement are per workload), or
// it is attached now that workloads.select matches it, or let go when it no longer does.
func (s *Sensor) rename(ns capture.Netns, old, id workload.Identity) {
	if s.watching(ns.Inode) {
		s.detach(ns.Inode, false)
	}
	if !s.workloadSelected(id.Name) {
		return
	}
	if err := s.open(ns, id, ns.Inode, ""); err != nil {
		s.log.Warn("capturing a namespace under its workload's name", "netns", ns.Path, "workload", id.Name, "was", old.Name, "err", err)
		return
	}
	s.log.Info("workload named", "netns", ns.Path, "workload", id.Name, "was", old.Name, "source", id.Source)
}
