package workload

import (
	"context"
	"maps"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pod labels that controllers put on the pods they create, and that kubelet copies onto the
// pod sandbox.
const (
	LabelPodTemplateHash       = "pod-template-hash"                  // Deployment (via ReplicaSet)
	LabelControllerRevision    = "controller-revision-hash"           // StatefulSet, DaemonSet
	LabelStatefulSetPodName    = "statefulset.kubernetes.io/pod-name" // StatefulSet
	LabelPodTemplateGeneration = "pod-template-generation"            // DaemonSet
	LabelJobName               = "batch.kubernetes.io/job-name"       // Job (1.27+)
	LabelJobNameLegacy         = "job-name"                           // Job
)

// CRI defaults.
var DefaultCRIEndpoints = []string{
	"unix:///run/containerd/containerd.sock",
	"unix:///run/crio/crio.sock",
}

// DefaultCRITimeout bounds each CRI call.
const DefaultCRITimeout = 2 * time.Second

// criBackoff is how long an endpoint that failed to answer is left alone, so that a runtime
// that is absent or hung costs one timeout per interval, not one per namespace.
const criBackoff = 10 * time.Second

// CRI names a namespace from the Kubernetes Container Runtime Interface (containerd, CRI-O)
// on its unix socket: ContainerStatus gives the pod of the container a process runs in, the
// pod sandbox's labels give the owning controller without the API server (pod-template-hash
// means a Deployment, controller-revision-hash plus the StatefulSet pod-name label a
// StatefulSet), and the name is "k8s/NAMESPACE/KIND/NAME" (Kind "kubernetes"). The sandbox's
// own process (pause) names the pod, and its container when it runs exactly one. It answers
// false when no endpoint knows the container or none answers within Timeout. Answers are
// cached per container ID (not per sandbox: a pod's containers start after its namespace
// appears, and restart); connections are made on first use and reused. Use a pointer;
// the zero value uses the defaults and is safe for concurrent use. Close releases the
// connections.
type CRI struct {
	Endpoints []string      // default DefaultCRIEndpoints; "unix:///path" or "/path"
	Timeout   time.Duration // per call; default DefaultCRITimeout

	mu    sync.Mutex
	conns map[string]*criConn
	cache idCache
	now   func() time.Time // for tests
}

type criConn struct {
	cc        *grpc.ClientConn
	rt        runtimeapi.RuntimeServiceClient
	downUntil time.Time // guarded by CRI.mu
}

// Resolve implements Resolver.
func (c *CRI) Resolve(ns NetnsInfo) (Identity, bool) {
	// A pod's netns holds the sandbox ("pause") process, whose cgroup names the sandbox and
	// not a container, and the containers' processes: try each distinct ID.
	root := ns.procRoot()
	var ids []CgroupInfo
	for _, pid := range ns.pids() {
		info, ok := ReadCgroup(root, pid)
		if !ok || info.Runtime == RuntimePodman || seen(ids, info.ContainerID) {
			continue
		}
		ids = append(ids, info)
	}
	// What is known already first: the pause process comes first, and asking about it again
	// costs calls its container's cached answer saves.
	for _, info := range ids {
		if a, ok := c.cache.get(info.ContainerID); ok && a.ok && a.id.Container != "" {
			return a.id, true
		}
	}
	var sandboxOnly answer
	for _, info := range ids {
		a, ok := c.cache.get(info.ContainerID)
		if !ok {
			var definite, keep bool
			a, definite, keep = c.lookup(info)
			if !definite {
				continue // a runtime did not answer: ask again next time
			}
			if keep {
				c.cache.put(info.ContainerID, a)
				a.id.Labels = maps.Clone(a.id.Labels) // the cache keeps its own
			}
		}
		if a.ok && a.id.Container != "" {
			return a.id, true
		}
		if a.ok && !sandboxOnly.ok {
			sandboxOnly = a // the pod without its container: kept in case nothing better turns up
		}
	}
	return sandboxOnly.id, sandboxOnly.ok
}

func seen(ids []CgroupInfo, id string) bool {
	for _, x := range ids {
		if x.ContainerID == id {
			return true
		}
	}
	return false
}

// lookup asks each endpoint about a container, then about a sandbox of that ID (the pause
// process). definite is false when an endpoint failed, so "not found" might be wrong. keep
// is false for a sandbox: its containers come later and are restarted, so what it runs is
// asked each time; and for "not found" about a pod's process (the cgroup names a pod): the
// sandbox's process runs before containerd registers the sandbox (after its network is set
// up), so the runtime may know it on the next try.
func (c *CRI) lookup(info CgroupInfo) (a answer, definite, keep bool) {
	definite = true
	for _, ep := range c.endpoints() {
		conn := c.conn(ep)
		if conn == nil {
			definite = false
			continue
		}
		sandbox := false
		id, found, err := c.fromContainer(conn, info)
		if err == nil && !found {
			id, found, err = c.fromSandbox(conn, info)
			sandbox = found
		}
		if err != nil {
			c.markDown(conn)
			definite = false
			continue
		}
		if found {
			return answer{id: id, ok: true}, true, !sandbox
		}
	}
	return answer{}, definite, definite && info.PodUID == ""
}

func (c *CRI) endpoints() []string {
	if len(c.Endpoints) > 0 {
		return c.Endpoints
	}
	return DefaultCRIEndpoints
}

func (c *CRI) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultCRITimeout
}

func (c *CRI) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// conn returns the (lazily created) client of an endpoint, or nil while it backs off.
func (c *CRI) conn(ep string) *criConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.conns[ep]; ok {
		if c.clock().Before(conn.downUntil) {
			return nil
		}
		return conn
	}
	target := ep
	if strings.HasPrefix(target, "/") {
		target = "unix://" + target
	}
	// NewClient does not dial; the first call does, and fails fast when the socket is missing.
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil
	}
	if c.conns == nil {
		c.conns = make(map[string]*criConn)
	}
	conn := &criConn{cc: cc, rt: runtimeapi.NewRuntimeServiceClient(cc)}
	c.conns[ep] = conn
	return conn
}

func (c *CRI) markDown(conn *criConn) {
	c.mu.Lock()
	conn.downUntil = c.clock().Add(criBackoff)
	c.mu.Unlock()
}

// Close closes the connections; Resolve may still be called and reconnects.
func (c *CRI) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ep, conn := range c.conns {
		conn.cc.Close()
		delete(c.conns, ep)
	}
	return nil
}

func (c *CRI) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout())
}

// fromContainer: found false with no error means the endpoint does not know the container.
func (c *CRI) fromContainer(conn *criConn, info CgroupInfo) (Identity, bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := conn.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: info.ContainerID})
	if status.Code(err) == codes.NotFound {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, err
	}
	st := resp.GetStatus()
	pod, ok := PodFromLabels(st.GetLabels())
	if !ok {
		return Identity{}, false, nil // a container, but not a pod's (e.g. nerdctl)
	}
	if pod.UID == "" {
		pod.UID = info.PodUID
	}
	image := st.GetImage().GetImage()
	if image == "" || ImageRepository(image) == "" {
		// An image ID says less than the reference the user asked for.
		if u := st.GetImage().GetUserSpecifiedImage(); u != "" {
			image = u
		} else if image == "" {
			image = st.GetImageRef()
		}
	}
	var podLabels map[string]string
	if pod.UID != "" {
		podLabels, err = c.sandboxLabels(conn, pod.UID)
		if err != nil {
			return Identity{}, false, err
		}
	}
	id := podIdentity(pod, podLabels)
	id.Container, id.Image = info.ContainerID, image
	id.ContainerName = st.GetMetadata().GetName()
	if id.ContainerName == "" {
		id.ContainerName = pod.Container
	}
	return id, true, nil
}

// sandboxLabels returns the labels of the pod's sandbox (the pod's own labels), preferring a
// ready one when the pod was recreated; nil when there is none.
func (c *CRI) sandboxLabels(conn *criConn, podUID string) (map[string]string, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := conn.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{LabelK8sPodUID: podUID}},
	})
	if err != nil {
		return nil, err
	}
	var best *runtimeapi.PodSandbox
	for _, s := range resp.GetItems() {
		if best == nil || s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY && best.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			best = s
		}
	}
	return best.GetLabels(), nil
}

// fromSandbox handles the pause process: its cgroup ID is the sandbox ID.
func (c *CRI) fromSandbox(conn *criConn, info CgroupInfo) (Identity, bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := conn.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: info.ContainerID})
	if status.Code(err) == codes.NotFound {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, err
	}
	st := resp.GetStatus()
	md := st.GetMetadata()
	pod := PodRef{Namespace: md.GetNamespace(), Name: md.GetName(), UID: md.GetUid()}
	if pod.Namespace == "" || pod.Name == "" {
		if p, ok := PodFromLabels(st.GetLabels()); ok {
			pod = p
		} else {
			return Identity{}, false, nil
		}
	}
	id := podIdentity(pod, st.GetLabels())
	// A pod's namespace appears with its sandbox, whose process is usually the first found in
	// it: name the container too when the pod runs exactly one (with several, the traffic of
	// the namespace is no one container's).
	ctr, err := c.onlyContainer(conn, info.ContainerID)
	if err != nil || ctr == "" {
		return id, true, err
	}
	if a, ok := c.cache.get(ctr); ok && a.ok {
		return a.id, true, nil
	}
	cid, found, err := c.fromContainer(conn, CgroupInfo{ContainerID: ctr, Runtime: info.Runtime, PodUID: pod.UID})
	if err != nil || !found {
		return id, true, err // exited in between: the pod alone
	}
	c.cache.put(ctr, answer{id: cid, ok: true})
	cid.Labels = maps.Clone(cid.Labels) // the cache keeps its own
	return cid, true, nil
}

// onlyContainer returns the ID of the one running container of a sandbox, "" when it runs
// none or several.
func (c *CRI) onlyContainer(conn *criConn, sandboxID string) (string, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := conn.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		PodSandboxId: sandboxID,
		State:        &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return "", err
	}
	if items := resp.GetContainers(); len(items) == 1 {
		return items[0].GetId(), nil
	}
	return "", nil
}

// podIdentity names a pod by its owner as far as its labels tell.
func podIdentity(pod PodRef, podLabels map[string]string) Identity {
	kind, name := OwnerFromLabels(pod.Name, podLabels)
	labels := boundLabels(podLabels)
	if pod.UID != "" {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelPodUID] = pod.UID
	}
	return Identity{
		Name:      "k8s/" + pod.Namespace + "/" + kind + "/" + name,
		Kind:      KindKubernetes,
		Pod:       pod.Name,
		Namespace: pod.Namespace,
		Labels:    labels,
		Source:    SourceCRI,
	}
}

// OwnerFromLabels derives a pod's owning workload from the labels its controller set:
//
//	pod-template-hash=H                                Deployment: pod name minus "-H-xxxxx"
//	controller-revision-hash + statefulset...pod-name  StatefulSet: pod name minus "-ORDINAL"
//	controller-revision-hash + pod-template-generation DaemonSet: pod name minus "-xxxxx"
//	batch.kubernetes.io/job-name=J (or job-name)       Job J, or CronJob when J ends in a time
//
// and falls back to GuessOwner on the pod name.
func OwnerFromLabels(podName string, labels map[string]string) (kind, name string) {
	if h := labels[LabelPodTemplateHash]; h != "" {
		if i := strings.LastIndex(podName, "-"+h+"-"); i > 0 {
			return "Deployment", podName[:i]
		}
	}
	if labels[LabelControllerRevision] != "" {
		if labels[LabelStatefulSetPodName] != "" {
			if base, ok := cutSuffixFrom(podName, isOrdinal); ok {
				return "StatefulSet", base
			}
		}
		if labels[LabelPodTemplateGeneration] != "" {
			if base, ok := cutSuffixFrom(podName, isGenerateSuffix); ok {
				return "DaemonSet", base
			}
		}
	}
	job := labels[LabelJobName]
	if job == "" {
		job = labels[LabelJobNameLegacy]
	}
	if job != "" && strings.HasPrefix(podName, job+"-") {
		return OwnerFromPod(podName, "Job", job)
	}
	return GuessOwner(podName)
}
