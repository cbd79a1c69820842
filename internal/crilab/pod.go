package crilab

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pod is a one-container pod as kubelet would ask the runtime for it.
type Pod struct {
	Namespace, Name, UID string
	Labels               map[string]string // the pod's labels (pod-template-hash, app, ...)
	Container            string            // the container's name in the pod spec
	Image                string            // the reference the pod spec names
	ImageID              string            // what the image resolved to (ImportImages)
	Args                 []string
}

// Kubelet's labels on sandboxes and containers (pkg/kubelet/types).
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// RunPod runs p as kubelet does: RunPodSandbox with the pod's labels plus kubelet's (the
// sandbox's namespace and pause process appear now), then CreateContainer with the image ID
// and the spec's reference, then StartContainer. The pod's cgroup is under CgroupParent. The
// lab's cleanup removes it.
func (l *Lab) RunPod(t testing.TB, p Pod) (sandboxID, containerID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kl := map[string]string{labelPodName: p.Name, labelPodNamespace: p.Namespace, labelPodUID: p.UID}
	podLabels := map[string]string{}
	for k, v := range p.Labels {
		podLabels[k] = v
	}
	for k, v := range kl {
		podLabels[k] = v
	}
	nsOpts := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: p.UID},
		Hostname:     p.Name,
		LogDirectory: filepath.Join(l.Dir, "logs", p.Namespace+"_"+p.Name+"_"+p.UID),
		Labels:       podLabels,
		Annotations:  map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    l.CgroupParent + "/pod" + p.UID,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: nsOpts},
		},
	}
	sb, err := l.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\n%s", err, l.Log())
	}
	cl := map[string]string{labelContainerName: p.Container}
	for k, v := range kl {
		cl[k] = v
	}
	ct, err := l.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  sb.GetPodSandboxId(),
		SandboxConfig: sbCfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: p.Container},
			Image:    &runtimeapi.ImageSpec{Image: p.ImageID, UserSpecifiedImage: p.Image},
			Args:     p.Args,
			Labels:   cl,
			LogPath:  p.Container + "/0.log",
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: nsOpts},
			},
		},
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v\n%s", err, l.Log())
	}
	if _, err := l.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ct.GetContainerId()}); err != nil {
		t.Fatalf("StartContainer: %v\n%s", err, l.Log())
	}
	return sb.GetPodSandboxId(), ct.GetContainerId()
}

// ContainerLog is what the container wrote (CRI log format), for a failing test's message.
func (l *Lab) ContainerLog(p Pod) string {
	b, _ := readTail(filepath.Join(l.Dir, "logs", p.Namespace+"_"+p.Name+"_"+p.UID, p.Container, "0.log"), 8<<10)
	return b
}
