package workload

import (
	"strconv"
	"sync/atomic"
)

// Identity kinds.
const (
	KindKubernetes = "kubernetes"
	KindCompose    = "compose"
	KindDocker     = "docker"
	KindNetns      = "netns"
	KindStatic     = "static"
	KindUnknown    = "unknown"
)

// Sources: which resolver named a workload, so an alert tells an answer of the container
// runtime from a guess made from /proc.
const (
	SourceCRI     = "cri"      // the CRI API of containerd or CRI-O
	SourceDocker  = "docker"   // the Docker Engine API
	SourceKubeEnv = "kube-env" // a pod's cgroup and environment in /proc
	SourceCgroup  = "cgroup"   // the container ID in /proc/PID/cgroup, nothing more
	SourceNetns   = "netns"    // the name under /var/run/netns
	SourceStatic  = "static"   // the operator's map
)

// Identity names a workload. Name is the identity; the other fields are attributes that may
// differ between replicas.
type Identity struct {
	Name      string // e.g. "k8s/default/Deployment/web", "netns/web", "container/3f4e2a1b9c0d"
	Kind      string // one of the Kind* constants
	Pod       string
	Namespace string // Kubernetes namespace
	Container string // full container ID
	// ContainerName is the name the container has in its pod spec (CRI), or Docker's name.
	ContainerName string
	Image         string
	Node          string
	Labels        map[string]string
	Source        string // the Source* constant of the resolver that answered; "" for Fallback
}

// NetnsInfo describes one network namespace to resolve.
type NetnsInfo struct {
	Inode    uint64
	Name     string // name under /var/run/netns, or ""
	PIDs     []int  // processes in the namespace; may be empty
	ProcRoot string // procfs mount; "" means /proc
}

func (ns NetnsInfo) procRoot() string {
	if ns.ProcRoot == "" {
		return "/proc"
	}
	return ns.ProcRoot
}

// maxPIDs bounds the work spent on one namespace: the processes of one pod or container
// all tell the same story, so a few are enough.
const maxPIDs = 16

func (ns NetnsInfo) pids() []int {
	if len(ns.PIDs) > maxPIDs {
		return ns.PIDs[:maxPIDs]
	}
	return ns.PIDs
}

// Resolver names the workload of a namespace, or reports false when it cannot.
type Resolver interface {
	Resolve(ns NetnsInfo) (Identity, bool)
}

// Chain tries resolvers in order; the first that answers wins. It is safe for concurrent use
// when its resolvers are.
type Chain struct {
	rs       []Resolver
	failures atomic.Uint64
}

// NewChain returns a Chain over rs; nil resolvers are skipped.
func NewChain(rs ...Resolver) *Chain {
	c := &Chain{}
	for _, r := range rs {
		if r != nil {
			c.rs = append(c.rs, r)
		}
	}
	return c
}

// Resolve returns the first answer, or the fallback identity "netns/ino:INODE" (Kind
// "unknown") and counts a failure: the namespace is still captured, under a name that is
// at least stable for its lifetime.
func (c *Chain) Resolve(ns NetnsInfo) Identity {
	for _, r := range c.rs {
		if id, ok := r.Resolve(ns); ok && id.Name != "" {
			return id
		}
	}
	c.failures.Add(1)
	return Fallback(ns.Inode)
}

// Failures is the number of namespaces no resolver could name.
func (c *Chain) Failures() uint64 { return c.failures.Load() }

// Fallback is the identity of a namespace nothing else could name.
func Fallback(inode uint64) Identity {
	return Identity{Name: "netns/ino:" + strconv.FormatUint(inode, 10), Kind: KindUnknown}
}
