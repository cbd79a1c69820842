package sensor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/minerguard/minerguard/internal/crilab"
	"github.com/minerguard/minerguard/internal/evetest"
	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/minerguard/minerguard/workload"
)

// A miner in a pod, run as on a Kubernetes node by a real containerd and runc (the
// distribution's packages; a daemon of the test's own, internal/crilab) from an image built
// here, while the sensor runs: its alert names the pod's owner, the container's ID, name and
// image as the runtime's CRI API tells them, not what /proc alone would say.
func TestSensorNamesContainerThroughCRI(t *testing.T) {
	netnstest.RequireRoot(t)
	node := netnstest.New(t, "node") // the node's network as the runtime sees it: the pods' bridge, the pool
	lab := crilab.Start(t, node, 77)
	imageID := lab.ImportImages(t)
	pool := lab.Gateway + ":3333"
	serve(t, node, pool)

	ns := "mg-lab-" + randHex(3)
	cfg := Default()
	cfg.Netns = []string{"all"} // a pod's namespace has no name under /var/run/netns
	cfg.Workloads.Select = []string{"k8s/" + ns + "/*/*"}
	cfg.Workloads.CRIEndpoints = []string{lab.Socket}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	startSensor(t, cfg, out)

	pod := crilab.Pod{Namespace: ns, Name: "web-7c9d8b6f5d-x2x7q", UID: uuid4(),
		Labels:    map[string]string{"app": "web", workload.LabelPodTemplateHash: "7c9d8b6f5d"},
		Container: "miner", Image: crilab.PayloadImage, ImageID: imageID, Args: []string{"stratum", pool}}
	_, ctr := lab.RunPod(t, pod)

	// The container logs in every 300 ms; its namespace is captured within 2 s of the sandbox,
	// its container named within seconds of starting.
	var a map[string]any
	var wl map[string]any
	for deadline := time.Now().Add(40 * time.Second); a == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var m map[string]any
			if l == "" || json.Unmarshal([]byte(l), &m) != nil {
				continue
			}
			ctx, _ := m["alert"].(map[string]any)["context"].(map[string]any)
			if w, _ := ctx["workload"].(map[string]any); w != nil && w["container"] != nil {
				a, wl = m, w
				break
			}
		}
	}
	if a == nil {
		t.Fatalf("no alert naming a container within 40 s; alerts:\n%s\ncontainer log:\n%s\ncontainerd:\n%s", out.String(), lab.ContainerLog(pod), lab.Log())
	}
	evetest.Lines(t, "sensor", []byte(out.String()))
	mg := a["alert"].(map[string]any)["context"].(map[string]any)
	if a["dest_ip"] != lab.Gateway || a["dest_port"] != 3333.0 || mg["detector"] != "stratum" {
		t.Errorf("alert: %v", a)
	}
	want := map[string]any{
		"identity":       "k8s/" + ns + "/Deployment/web", // the owner, from the sandbox's pod-template-hash label
		"kind":           workload.KindKubernetes,
		"pod":            pod.Name,
		"namespace":      ns,
		"container":      ctr,
		"container_name": "miner",
		"image":          crilab.PayloadImage, // the runtime's name for the image ID kubelet passed
		"source":         workload.SourceCRI,
	}
	for k, v := range want {
		if wl[k] != v {
			t.Errorf("workload.%s = %v, want %v", k, wl[k], v)
		}
	}
	if p, _ := wl["netns"].(string); !strings.HasPrefix(p, "/proc/") {
		t.Errorf("workload.netns = %v, want the /proc path of a process of the pod", wl["netns"])
	}

	// What /proc alone tells of the container's process: its ID, not its pod, name or image.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := lab.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["info"]), &info); err != nil || info.Pid <= 0 {
		t.Fatalf("container pid: %v %q", err, st.GetInfo()["info"])
	}
	id, ok := workload.Cgroup{}.Resolve(workload.NetnsInfo{PIDs: []int{info.Pid}})
	if !ok || id.Name != "container/"+ctr[:12] || id.Image != "" || id.Pod != "" || id.Labels[workload.LabelPodUID] != pod.UID {
		t.Errorf("from /proc: %+v %v", id, ok)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// uuid4 is a random pod UID in the form Kubernetes gives them.
func uuid4() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}
