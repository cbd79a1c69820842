package sensor

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/minerguard/minerguard/workload"
)

// runtimeLater answers about one namespace as containerd does about a pod's sandbox process
// before it has registered the sandbox: the cgroup's container ID alone; once known is set,
// the pod and its container.
type runtimeLater struct {
	inode uint64
	known atomic.Bool
	asked atomic.Int64
}

const laterID = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"

func (r *runtimeLater) Resolve(ns workload.NetnsInfo) (workload.Identity, bool) {
	if ns.Inode != r.inode {
		return workload.Identity{}, false
	}
	r.asked.Add(1)
	if !r.known.Load() {
		return workload.Identity{Name: "container/" + laterID[:12], Kind: workload.KindDocker, Container: laterID, Source: workload.SourceCgroup}, true
	}
	return workload.Identity{Name: "k8s/shop/Deployment/web", Kind: workload.KindKubernetes, Pod: "web-7c9d8b6f5d-x2x7q", Namespace: "shop",
		Container: laterID, ContainerName: "app", Image: "registry.example/shop/web:2", Source: workload.SourceCRI}, true
}

// A namespace first named by its cgroup alone is not among workloads.select; asked again, the
// runtime names its pod, and the sensor captures it under that workload: the miner's alert
// names the pod, container and image.
func TestSensorNamesWorkloadLater(t *testing.T) {
	netnstest.RequireRoot(t)
	app, pool := netnstest.New(t, "later"), netnstest.New(t, "pool")
	_, poolIP := netnstest.Veth(t, app, pool, 78)
	serve(t, pool, poolIP+":3333")
	// A process in it, as a pod's namespace always has one: the cgroup is read through it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	proc := exec.CommandContext(ctx, "ip", "netns", "exec", app, "sleep", "60")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { proc.Process.Kill(); proc.Wait() }()
	var st syscall.Stat_t
	if err := syscall.Stat("/var/run/netns/"+app, &st); err != nil {
		t.Fatal(err)
	}
	rt := &runtimeLater{inode: st.Ino}

	cfg := Default()
	cfg.Netns = []string{"all"}
	cfg.Workloads.Select = []string{"k8s/shop/*/*"}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensorWith(t, cfg, out, func(s *Sensor) { s.names = workload.NewChain(rt) })
	for deadline := time.Now().Add(10 * time.Second); rt.asked.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the namespace was never resolved")
		}
	}
	if s.watching(st.Ino) {
		t.Fatal("captured as container/ID12, which workloads.select does not match")
	}
	rt.known.Store(true)
	for deadline := time.Now().Add(15 * time.Second); !s.watching(st.Ino); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not captured once the runtime named its pod (asked %d times)", rt.asked.Load())
		}
	}
	talk(t, app, poolIP+":3333", login)
	var a map[string]any
	for deadline := time.Now().Add(5 * time.Second); a == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if l, _, ok := strings.Cut(out.String(), "\n"); ok {
			if err := json.Unmarshal([]byte(l), &a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if a == nil {
		t.Fatal("no alert")
	}
	wl := a["alert"].(map[string]any)["context"].(map[string]any)["workload"].(map[string]any)
	if wl["identity"] != "k8s/shop/Deployment/web" || wl["container"] != laterID || wl["container_name"] != "app" ||
		wl["image"] != "registry.example/shop/web:2" || wl["source"] != "cri" {
		t.Errorf("workload %v", wl)
	}
	// Named for good: no more questions.
	n := rt.asked.Load()
	s.nameContainersOnce(time.Now().Add(time.Hour))
	if rt.asked.Load() != n {
		t.Errorf("asked again about a namespace fully named")
	}
}
