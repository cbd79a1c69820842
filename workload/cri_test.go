package workload

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeRuntime is a CRI RuntimeService with the three calls CRI uses, answering as
// containerd does: NotFound for IDs it does not know, sandboxes filtered by label.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	mu         sync.Mutex
	containers map[string]*runtimeapi.ContainerStatus
	sandboxOf  map[string]string // container ID → sandbox ID
	sandboxes  []*runtimeapi.PodSandbox
	calls      atomic.Int64
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.containers[req.GetContainerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find container %q: not found", req.GetContainerId())
	}
	return &runtimeapi.ContainerStatusResponse{Status: st}, nil
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	var items []*runtimeapi.PodSandbox
next:
	for _, s := range f.sandboxes {
		for k, v := range req.GetFilter().GetLabelSelector() {
			if s.Labels[k] != v {
				continue next
			}
		}
		items = append(items, s)
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	flt := req.GetFilter()
	var items []*runtimeapi.Container
	for id, st := range f.containers {
		if flt.GetPodSandboxId() != "" && f.sandboxOf[id] != flt.GetPodSandboxId() ||
			flt.GetState() != nil && st.GetState() != flt.GetState().GetState() {
			continue
		}
		items = append(items, &runtimeapi.Container{Id: id, PodSandboxId: f.sandboxOf[id], Metadata: st.Metadata, Image: st.Image,
			ImageRef: st.ImageRef, State: st.State, CreatedAt: st.CreatedAt, Labels: st.Labels})
	}
	return &runtimeapi.ListContainersResponse{Containers: items}, nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sandboxes {
		if s.Id == req.GetPodSandboxId() {
			return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{
				Id: s.Id, Metadata: s.Metadata, State: s.State, CreatedAt: s.CreatedAt, Labels: s.Labels, Annotations: s.Annotations,
			}}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "an error occurred when try to find sandbox: not found")
}

// addPod registers a ready sandbox and one container of a pod, with the labels kubelet sets.
func (f *fakeRuntime) addPod(ns, name, uid, sandboxID, containerID, image string, podLabels map[string]string) {
	kl := map[string]string{LabelK8sPodName: name, LabelK8sPodNamespace: ns, LabelK8sPodUID: uid}
	sl := map[string]string{"io.kubernetes.container.name": "POD"}
	for k, v := range kl {
		sl[k] = v
	}
	for k, v := range podLabels {
		sl[k] = v
	}
	f.sandboxes = append(f.sandboxes,
		// An older, exited sandbox of the same pod: the ready one must win.
		&runtimeapi.PodSandbox{Id: sandboxID[:63] + "0", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: uid}, Labels: map[string]string{LabelK8sPodUID: uid, "stale": "yes"}},
		&runtimeapi.PodSandbox{Id: sandboxID, State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: 1737367923402211372,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: uid}, Labels: sl,
			Annotations: map[string]string{"kubernetes.io/config.source": "api"}})
	cl := map[string]string{LabelK8sContainerName: "app"}
	for k, v := range kl {
		cl[k] = v
	}
	f.sandboxOf[containerID] = sandboxID
	f.containers[containerID] = &runtimeapi.ContainerStatus{
		Id:        containerID,
		Metadata:  &runtimeapi.ContainerMetadata{Name: "app"},
		State:     runtimeapi.ContainerState_CONTAINER_RUNNING,
		Image:     &runtimeapi.ImageSpec{Image: image},
		ImageRef:  "docker.io/library/nginx@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Labels:    cl,
		LogPath:   "/var/log/pods/" + ns + "_" + name + "_" + uid + "/app/0.log",
		CreatedAt: 1737367924000000000,
	}
}

func startFakeRuntime(t *testing.T, f *fakeRuntime) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return sock
}

// Sandbox and container IDs of the pods the fake runtime knows.
const (
	sbDeploy  = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	ctDeploy  = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	sbSts     = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
	ctSts     = "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
	sbBare    = "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5"
	ctBare    = "f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6"
	uidDeploy = "11111111-2222-4333-8444-555555555555"
	uidSts    = "21111111-2222-4333-8444-555555555555"
	uidBare   = "31111111-2222-4333-8444-555555555555"
)

func newFakeRuntime() *fakeRuntime {
	f := &fakeRuntime{containers: map[string]*runtimeapi.ContainerStatus{}, sandboxOf: map[string]string{}}
	// A 4-character hash: GuessOwner alone would not recognise it, the label does.
	f.addPod("prod", "api-5b9c-x8k2p", uidDeploy, sbDeploy, ctDeploy, "docker.io/library/nginx:1.27",
		map[string]string{"app": "api", LabelPodTemplateHash: "5b9c"})
	f.addPod("data", "db-0", uidSts, sbSts, ctSts, "quay.io/example/postgres:16",
		map[string]string{"app": "db", LabelControllerRevision: "db-6d4f5c8b7", LabelStatefulSetPodName: "db-0"})
	f.addPod("default", "debug", uidBare, sbBare, ctBare, "sha256:5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced", nil)
	return f
}

// podNetns is a fake procfs for a pod's netns: the pause process (PID 10) first, then the
// app container (PID 20), both under the pod's cgroup (v2, systemd driver, containerd).
func podNetns(t *testing.T, uid, sandbox, container string) NetnsInfo {
	t.Helper()
	slice := "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + underscores(uid) + ".slice/cri-containerd-"
	files := map[string]string{pidPath(10, "cgroup"): "0::" + slice + sandbox + ".scope\n"}
	pids := []int{10}
	if container != "" {
		files[pidPath(20, "cgroup")] = "0::" + slice + container + ".scope\n"
		pids = append(pids, 20)
	}
	return NetnsInfo{Inode: 4026532999, PIDs: pids, ProcRoot: fakeProc(t, files)}
}

func underscores(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

func TestCRIResolve(t *testing.T) {
	f := newFakeRuntime()
	sock := startFakeRuntime(t, f)
	// The first endpoint has no runtime, as on a CRI-O host with containerd in the defaults.
	c := &CRI{Endpoints: []string{"unix://" + filepath.Join(t.TempDir(), "absent.sock"), sock}, Timeout: testTimeout}
	t.Cleanup(func() { _ = c.Close() })
	tests := []struct {
		name                            string
		ns                              NetnsInfo
		wantName, wantPod, wantNS       string
		wantContainer, wantImage, label string
		callsAfter                      int64 // per resolve once cached
	}{
		{"deployment", podNetns(t, uidDeploy, sbDeploy, ctDeploy), "k8s/prod/Deployment/api", "api-5b9c-x8k2p", "prod", ctDeploy, "docker.io/library/nginx:1.27", "app", 0},
		{"statefulset", podNetns(t, uidSts, sbSts, ctSts), "k8s/data/StatefulSet/db", "db-0", "data", ctSts, "quay.io/example/postgres:16", LabelControllerRevision, 0},
		{"bare pod, image by ID", podNetns(t, uidBare, sbBare, ctBare), "k8s/default/Pod/debug", "debug", "default", ctBare,
			"sha256:5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced", LabelPodUID, 0},
		// The pause process alone (the sensor knows one PID of a namespace): the pod's one
		// container is found through the sandbox, which is asked again each time (ContainerStatus
		// NotFound, PodSandboxStatus, ListContainers) while the container's answer is cached.
		{"pause process only", podNetns(t, uidDeploy, sbDeploy, ""), "k8s/prod/Deployment/api", "api-5b9c-x8k2p", "prod", ctDeploy, "docker.io/library/nginx:1.27", "app", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.calls.Load()
			var calls int64
			for i := range 3 {
				got, ok := c.Resolve(tt.ns)
				if !ok {
					t.Fatalf("round %d: not answered", i)
				}
				if i == 0 {
					calls = f.calls.Load() - before
				}
				if got.Name != tt.wantName || got.Kind != KindKubernetes || got.Pod != tt.wantPod || got.Namespace != tt.wantNS {
					t.Errorf("round %d: %q %q pod %q ns %q, want %q pod %q ns %q", i, got.Name, got.Kind, got.Pod, got.Namespace, tt.wantName, tt.wantPod, tt.wantNS)
				}
				if got.Container != tt.wantContainer || got.Image != tt.wantImage || got.ContainerName != "app" || got.Source != SourceCRI {
					t.Errorf("container %q %q image %q source %q, want %q app %q cri", got.Container, got.ContainerName, got.Image, got.Source, tt.wantContainer, tt.wantImage)
				}
				if _, ok := got.Labels[tt.label]; !ok || got.Labels["stale"] != "" {
					t.Errorf("labels %v: want %q and none of the stale sandbox", got.Labels, tt.label)
				}
				got.Labels["scribble"] = "x" // the caller's copy
			}
			if extra := f.calls.Load() - before - calls; extra != 2*tt.callsAfter {
				t.Errorf("%d calls after the first resolve, want %d", extra, 2*tt.callsAfter)
			}
		})
	}
}

// A pod's namespace appears with its sandbox, before its container runs: the first answer
// names the pod alone, and a later one the container, not a cached pod-only answer. With two
// containers running, neither is the namespace's.
func TestCRISandboxBeforeContainer(t *testing.T) {
	f := newFakeRuntime()
	sock := startFakeRuntime(t, f)
	c := &CRI{Endpoints: []string{sock}, Timeout: testTimeout}
	t.Cleanup(func() { _ = c.Close() })
	ns := podNetns(t, uidDeploy, sbDeploy, "")
	f.mu.Lock()
	st := f.containers[ctDeploy]
	st.State = runtimeapi.ContainerState_CONTAINER_CREATED
	f.mu.Unlock()
	got, ok := c.Resolve(ns)
	if !ok || got.Name != "k8s/prod/Deployment/api" || got.Container != "" || got.Image != "" || got.Source != SourceCRI {
		t.Fatalf("before the container runs: %+v %v", got, ok)
	}
	f.mu.Lock()
	st.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	f.mu.Unlock()
	if got, ok = c.Resolve(ns); !ok || got.Container != ctDeploy || got.ContainerName != "app" || got.Image != "docker.io/library/nginx:1.27" {
		t.Fatalf("once it runs: %+v %v", got, ok)
	}
	// A sidecar joins: the namespace is the pod's, no longer one container's.
	f.mu.Lock()
	f.containers[ctBare] = &runtimeapi.ContainerStatus{Id: ctBare, Metadata: &runtimeapi.ContainerMetadata{Name: "sidecar"},
		State: runtimeapi.ContainerState_CONTAINER_RUNNING, Image: st.Image, Labels: st.Labels}
	f.sandboxOf[ctBare] = sbDeploy
	f.mu.Unlock()
	if got, ok = c.Resolve(ns); !ok || got.Name != "k8s/prod/Deployment/api" || got.Container != "" {
		t.Fatalf("two containers: %+v %v", got, ok)
	}
}

func TestCRINotAnswered(t *testing.T) {
	f := newFakeRuntime()
	sock := startFakeRuntime(t, f)
	t.Run("unknown container", func(t *testing.T) {
		c := &CRI{Endpoints: []string{sock}, Timeout: testTimeout}
		defer c.Close()
		// A pod's (the cgroup says so): the runtime may not have registered it yet, and is
		// asked again. A container outside any pod: the NotFound is cached.
		for _, tt := range []struct {
			ns    NetnsInfo
			calls int64
		}{{podNetns(t, uidDeploy, dockerID, ""), 4}, {procWithContainer(t, "/system.slice/cri-containerd-"+dockerID+".scope"), 2}} {
			before := f.calls.Load()
			for range 2 {
				if got, ok := c.Resolve(tt.ns); ok {
					t.Errorf("answered %+v", got)
				}
			}
			// ContainerStatus and PodSandboxStatus per question.
			if n := f.calls.Load() - before; n != tt.calls {
				t.Errorf("%+v: %d calls, want %d", tt.ns, n, tt.calls)
			}
		}
	})
	t.Run("not a pod's container", func(t *testing.T) {
		f.mu.Lock()
		f.containers[crioID] = &runtimeapi.ContainerStatus{Id: crioID, Labels: map[string]string{"nerdctl/name": "x"}}
		f.mu.Unlock()
		c := &CRI{Endpoints: []string{sock}, Timeout: testTimeout}
		defer c.Close()
		if got, ok := c.Resolve(procWithContainer(t, "/system.slice/crio-"+crioID+".scope")); ok {
			t.Errorf("answered %+v", got)
		}
	})
	t.Run("host process", func(t *testing.T) {
		c := &CRI{Endpoints: []string{sock}, Timeout: testTimeout}
		defer c.Close()
		before := f.calls.Load()
		root := fakeProc(t, map[string]string{pidPath(1, "cgroup"): "0::/init.scope\n"})
		if got, ok := c.Resolve(NetnsInfo{PIDs: []int{1}, ProcRoot: root}); ok || f.calls.Load() != before {
			t.Errorf("answered %+v, %d calls", got, f.calls.Load()-before)
		}
	})
}

func TestCRIServerDown(t *testing.T) {
	now := time.Now()
	c := &CRI{Endpoints: []string{filepath.Join(t.TempDir(), "crio.sock")}, Timeout: 500 * time.Millisecond,
		now: func() time.Time { return now }}
	defer c.Close()
	ns := podNetns(t, uidDeploy, sbDeploy, ctDeploy)
	start := time.Now()
	if got, ok := c.Resolve(ns); ok {
		t.Errorf("answered %+v with no runtime", got)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v with no runtime", el)
	}
	// The runtime comes up (e.g. after a restart): failures were not cached, and once the
	// back-off has passed it is asked again.
	f := newFakeRuntime()
	sock := c.Endpoints[0]
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	if _, ok := c.Resolve(ns); ok || f.calls.Load() != 0 {
		t.Errorf("asked during back-off: %d calls", f.calls.Load())
	}
	now = now.Add(criBackoff + time.Second)
	c.Timeout = testTimeout
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok := c.Resolve(ns)
		if ok {
			if got.Name != "k8s/prod/Deployment/api" {
				t.Errorf("got %q", got.Name)
			}
			break
		}
		// gRPC may still be in its reconnect back-off; step the clock past ours again.
		if time.Now().After(deadline) {
			t.Fatal("never answered after the runtime came up")
		}
		time.Sleep(50 * time.Millisecond)
		now = now.Add(criBackoff + time.Second)
	}
}

func TestOwnerFromLabels(t *testing.T) {
	tests := []struct {
		pod        string
		labels     map[string]string
		kind, name string
	}{
		{"api-5b9c-x8k2p", map[string]string{LabelPodTemplateHash: "5b9c"}, "Deployment", "api"},
		{"web-7d4b9c8f5d-x8k2p", map[string]string{LabelPodTemplateHash: "7d4b9c8f5d"}, "Deployment", "web"},
		{"web-7d4b9c8f5d-x8k2p", nil, "Deployment", "web"}, // GuessOwner
		{"web-x8k2p", map[string]string{LabelPodTemplateHash: "7d4b9c8f5d"}, "Controller", "web"},
		{"db-12", map[string]string{LabelControllerRevision: "db-6d4f5c8b7", LabelStatefulSetPodName: "db-12"}, "StatefulSet", "db"},
		{"fluentd-x7k2p", map[string]string{LabelControllerRevision: "7b9d", LabelPodTemplateGeneration: "3"}, "DaemonSet", "fluentd"},
		{"backup-28391234-q7x2m", map[string]string{LabelJobName: "backup-28391234"}, "CronJob", "backup"},
		{"migrate-q7x2m", map[string]string{LabelJobNameLegacy: "migrate"}, "Job", "migrate"},
		{"debug", nil, "Pod", "debug"},
		{"", map[string]string{LabelPodTemplateHash: ""}, "Pod", ""},
	}
	for _, tt := range tests {
		if kind, name := OwnerFromLabels(tt.pod, tt.labels); kind != tt.kind || name != tt.name {
			t.Errorf("OwnerFromLabels(%q, %v) = %s %q, want %s %q", tt.pod, tt.labels, kind, name, tt.kind, tt.name)
		}
	}
}

func FuzzOwnerFromLabels(f *testing.F) {
	f.Add("web-7d4b9c8f5d-x8k2p", "7d4b9c8f5d", "", "")
	f.Add("db-0", "", "db-6d4f5c8b7", "db-0")
	f.Add("-", "-", "-", "-")
	f.Fuzz(func(t *testing.T, pod, hash, rev, sts string) {
		kind, name := OwnerFromLabels(pod, map[string]string{LabelPodTemplateHash: hash, LabelControllerRevision: rev, LabelStatefulSetPodName: sts})
		if kind == "" || len(name) > len(pod) {
			t.Errorf("OwnerFromLabels(%q) = %q %q", pod, kind, name)
		}
	})
}
