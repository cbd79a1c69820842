// Package cluster owns the cluster-wide copy of the learned egress profiles: one
// WorkloadProfile custom resource (minerguard.io/v1alpha1, namespaced, the chart's CRD) per
// Kubernetes workload identity, into which every node's sensor merges what it learned and
// from which a node takes the profile of a workload new to it. The node's profile.Book
// (bbolt) stays the cache the engine reads: the API server is never on the packet path, and
// while it is down the sensor judges from the cache and catches up later.
//
// Writes are resourceVersion compare-and-swap (Get, merge, Update, retry on conflict), so
// concurrent nodes lose nothing; destinations are capped (spec.maxEntries) to stay inside
// etcd's object size, and status says when the cap dropped some. The resource's spec.state
// and spec.governance are also the operator's controls: kubectl edit to approve, relearn or
// deny. Each node watches the resources' metadata (Syncer.Watch), so an edit reaches it within
// seconds; the periodic sync (Syncer.Run) is the backstop for what a broken watch missed.
package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/minerguard/minerguard/profile"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GVR is the WorkloadProfile resource.
var GVR = schema.GroupVersionResource{Group: "minerguard.io", Version: "v1alpha1", Resource: "workloadprofiles"}

// Kind and APIVersion of the resource.
const (
	Kind       = "WorkloadProfile"
	APIVersion = "minerguard.io/v1alpha1"
)

// Caps that keep one resource well inside etcd's 1.5 MiB request limit: a destination with
// its addresses and nodes is at most about 600 bytes of JSON.
const (
	DefaultMaxEntries = 512
	MaxEntriesLimit   = 2048 // the CRD's maximum for spec.maxEntries
	MaxAddrs          = 4    // addresses recorded under a name destination
	MaxSeenBy         = 8    // node names kept per destination; nodes counts exactly up to here
	maxMessage        = 1024
)

// WorkloadProfile is the resource's content the sensor reads and writes (metadata aside).
type WorkloadProfile struct {
	Spec   Spec   `json:"spec"`
	Status Status `json:"status,omitempty"`
}

// Spec is the cluster's profile of one workload and the operator's governance of it.
type Spec struct {
	Workload     WorkloadRef   `json:"workload"`
	State        string        `json:"state"`
	Learning     *Learning     `json:"learning,omitempty"`
	Governance   *Governance   `json:"governance,omitempty"`
	MaxEntries   int           `json:"maxEntries,omitempty"`
	Destinations []Destination `json:"destinations,omitempty"`
}

// WorkloadRef names the workload the profile is of.
type WorkloadRef struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Identity string `json:"identity"`
}

// Learning is the learning window.
type Learning struct {
	Window      string `json:"window,omitempty"`
	Quiet       string `json:"quiet,omitempty"`
	Started     string `json:"started,omitempty"`
	MinFlows    int    `json:"minFlows,omitempty"`
	MinReplicas int    `json:"minReplicas,omitempty"`
}

// Governance is set by operators.
type Governance struct {
	Promote              string   `json:"promote,omitempty"`
	RelearnOnImageChange bool     `json:"relearnOnImageChange,omitempty"`
	Approved             bool     `json:"approved,omitempty"`
	Relearn              bool     `json:"relearn,omitempty"`
	Deny                 []string `json:"deny,omitempty"`
}

// Destination is one learned destination, merged over every node.
type Destination struct {
	Host      string   `json:"host"` // a DNS name, an address, or a CIDR
	Port      int      `json:"port"`
	Transport string   `json:"transport"`
	App       string   `json:"app,omitempty"`
	Addresses []string `json:"addresses,omitempty"` // name destinations: addresses seen (capped)
	FirstSeen string   `json:"firstSeen"`
	LastSeen  string   `json:"lastSeen"`
	Nodes     int      `json:"nodes,omitempty"`
	Replicas  int      `json:"replicas,omitempty"`
	SeenBy    []string `json:"seenBy,omitempty"` // the first MaxSeenBy nodes that learned it
}

// Status is written by the sensors: the totals and one entry per node.
type Status struct {
	Destinations int          `json:"destinations,omitempty"`
	Truncated    bool         `json:"truncated,omitempty"`
	Dropped      int64        `json:"dropped,omitempty"`
	Message      string       `json:"message,omitempty"`
	Nodes        []NodeStatus `json:"nodes,omitempty"`
}

// NodeStatus is one node's view.
type NodeStatus struct {
	Node     string `json:"node"`
	State    string `json:"state,omitempty"`
	Replicas int    `json:"replicas,omitempty"`
	Learned  int    `json:"learned,omitempty"`
	LastSync string `json:"lastSync,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Kinds the CRD accepts as spec.workload.kind.
var kinds = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "Job": true,
	"CronJob": true, "ReplicaSet": true, "Pod": true}

// Ref is where a workload identity's profile lives.
type Ref struct {
	Namespace, Name string
	Workload        WorkloadRef
}

// RefOf maps the sensor's identity of a Kubernetes workload ("k8s/NAMESPACE/KIND/NAME") to
// its resource: in the workload's namespace, named "KIND-NAME" lower-cased. A name that is not
// a valid object name as it stands (too long, or changed by the mapping) gets a hash of the
// identity, so two identities never share a resource. Other identities (netns/..., host/...)
// are node-local: ok is false.
func RefOf(identity string) (Ref, bool) {
	parts := strings.Split(identity, "/")
	if len(parts) != 4 || parts[0] != "k8s" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return Ref{}, false
	}
	ns, kind, name := parts[1], parts[2], parts[3]
	if !kinds[kind] || !dnsLabel(ns) || len(name) > 253 {
		return Ref{}, false
	}
	want := strings.ToLower(kind) + "-" + name
	obj := objectName(want)
	if obj != want || len(obj) > 253 {
		sum := sha256.Sum256([]byte(identity))
		h := hex.EncodeToString(sum[:5])
		if len(obj) > 242 {
			obj = strings.TrimRight(obj[:242], "-.")
		}
		obj += "-" + h
	}
	return Ref{Namespace: ns, Name: obj, Workload: WorkloadRef{Kind: kind, Name: name, Identity: identity}}, true
}

// objectName lower-cases s and replaces what a DNS-1123 subdomain cannot hold with '-'.
func objectName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-.")
}

// dnsLabel reports a valid namespace name (DNS-1123 label).
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return true
}

// hostOf is a destination's host: its name, else its address or prefix.
func hostOf(d profile.Dest) string {
	if d.Name != "" {
		return d.Name
	}
	if d.Addr.IsSingleIP() {
		return d.Addr.Addr().String()
	}
	return d.Addr.String()
}

// destKey identifies a destination in the resource's list (its list-map keys).
type destKey struct {
	host      string
	port      int
	transport string
}

func keyOf(d Destination) destKey { return destKey{d.Host, d.Port, d.Transport} }

// toDest parses a resource destination into the profile's form; ok is false for one the
// sensor cannot use (hand-edited into something invalid).
func toDest(d Destination) (profile.Entry, bool) {
	proto, err := profile.ParseProto(d.Transport)
	if err != nil || d.Port < 0 || d.Port > 65535 || d.Host == "" {
		return profile.Entry{}, false
	}
	e := profile.Entry{Dest: profile.Dest{Port: uint16(d.Port), Proto: proto, App: d.App}}
	if a, err := netip.ParseAddr(d.Host); err == nil {
		a = a.Unmap()
		e.Addr = netip.PrefixFrom(a, a.BitLen())
	} else if p, err := netip.ParsePrefix(d.Host); err == nil {
		e.Addr = p.Masked()
	} else {
		e.Name = strings.ToLower(strings.TrimSuffix(d.Host, "."))
	}
	for _, s := range d.Addresses {
		if a, err := netip.ParseAddr(s); err == nil {
			e.IPs = append(e.IPs, a.Unmap())
		}
	}
	e.First, _ = time.Parse(time.RFC3339, d.FirstSeen)
	return e, true
}

func fmtTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// stateName is a profile state as the resource spells it; 0 (none) is learning.
func stateName(s profile.State) string {
	if s == 0 {
		return profile.Learning.String()
	}
	return s.String()
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("cluster profiles: "+format, args...)
}
