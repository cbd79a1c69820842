package workload

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Kubernetes label keys that kubelet puts on every container it creates through the CRI
// (and, with dockershim, on Docker containers).
const (
	LabelK8sPodName       = "io.kubernetes.pod.name"
	LabelK8sPodNamespace  = "io.kubernetes.pod.namespace"
	LabelK8sPodUID        = "io.kubernetes.pod.uid"
	LabelK8sContainerName = "io.kubernetes.container.name"
)

// safeAlphabet is what k8s.io/apimachinery/pkg/util/rand.SafeEncodeString and generateName
// suffixes use: no vowels, no 0/1/3, so generated names never spell words.
const safeAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// OwnerFromPod returns the workload that owns a pod, given the pod's controller owner
// reference (empty for a bare pod): a ReplicaSet "web-7d4b9c8f5d" becomes Deployment "web",
// a Job "backup-28391234" becomes CronJob "backup"; other owners (StatefulSet, DaemonSet,
// custom controllers) are themselves the workload. A bare pod, or a static pod owned by its
// Node, is its own workload.
func OwnerFromPod(podName, ownerKind, ownerName string) (kind, name string) {
	if ownerKind == "" || ownerName == "" || ownerKind == "Node" {
		return "Pod", podName
	}
	switch ownerKind {
	case "ReplicaSet":
		if base, ok := cutSuffixFrom(ownerName, isTemplateHash); ok {
			return "Deployment", base
		}
	case "Job":
		if base, ok := cutSuffixFrom(ownerName, isCronJobTime); ok {
			return "CronJob", base
		}
	}
	return ownerKind, ownerName
}

// GuessOwner derives the owning workload from a pod name alone, for when owner references
// are not available (the pod name came from the container's HOSTNAME). It recognises the
// names controllers generate:
//
//	web-7d4b9c8f5d-x8k2p   Deployment web   (ReplicaSet hash, then generateName suffix)
//	backup-28391234-q7x2m  CronJob backup   (Job's scheduled minute, then suffix)
//	db-0                   StatefulSet db   (ordinal)
//	fluentd-x7k2p          Controller fluentd (DaemonSet, Job or bare ReplicaSet: the kind
//	                       needs the API, but the prefix is the same for all its pods)
//
// Anything else is a bare pod. A name that was truncated to 63 characters as a hostname
// may have lost the hash and then reads as a bare pod.
func GuessOwner(podName string) (kind, name string) {
	if rest, ok := cutSuffixFrom(podName, isGenerateSuffix); ok {
		if base, ok := cutSuffixFrom(rest, isCronJobTime); ok {
			return "CronJob", base
		}
		if base, ok := cutSuffixFrom(rest, isTemplateHash); ok {
			return "Deployment", base
		}
		return "Controller", rest
	}
	if base, ok := cutSuffixFrom(podName, isOrdinal); ok {
		return "StatefulSet", base
	}
	return "Pod", podName
}

// cutSuffixFrom splits "base-suffix" when ok(suffix) and base is not empty.
func cutSuffixFrom(s string, ok func(string) bool) (string, bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || !ok(s[i+1:]) {
		return "", false
	}
	return s[:i], true
}

func isSafe(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(safeAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// isTemplateHash: pod-template-hash is a uint32 in decimal, safe-encoded (≤ 10 chars);
// fewer than 6 would be a hash below 100000, rare enough to prefer not misreading names.
func isTemplateHash(s string) bool { return isSafe(s, 6, 10) }

// isGenerateSuffix: generateName appends 5 safe characters.
func isGenerateSuffix(s string) bool { return isSafe(s, 5, 5) }

// isCronJobTime: a CronJob names its Jobs by the scheduled time in minutes since the epoch
// (8 digits since 1989).
func isCronJobTime(s string) bool {
	if len(s) < 8 || len(s) > 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isOrdinal(s string) bool {
	if s == "" || len(s) > 6 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	_, err := strconv.Atoi(s)
	return err == nil
}

// PodRef is a pod as seen from one of its containers.
type PodRef struct {
	Namespace, Name, UID, Container string
}

// PodFromLabels reads the pod from the labels kubelet puts on its containers; ok is false
// when they are not there (not a Kubernetes container).
func PodFromLabels(labels map[string]string) (PodRef, bool) {
	p := PodRef{
		Namespace: labels[LabelK8sPodNamespace],
		Name:      labels[LabelK8sPodName],
		UID:       labels[LabelK8sPodUID],
		Container: labels[LabelK8sContainerName],
	}
	return p, p.Namespace != "" && p.Name != ""
}

// Environment variables a pod spec conventionally fills from the downward API
// (fieldRef metadata.namespace / metadata.name).
var (
	namespaceEnv = [...]string{"POD_NAMESPACE", "K8S_POD_NAMESPACE", "KUBERNETES_NAMESPACE", "MY_POD_NAMESPACE"}
	podNameEnv   = [...]string{"POD_NAME", "K8S_POD_NAME", "MY_POD_NAME"}
)

// PodFromEnv reads the pod name and namespace from a container's environment. The pod name
// is a downward-API variable if one is set, else HOSTNAME (which the runtime sets to the pod's
// hostname, the pod name unless the spec overrides it). The namespace comes only from a
// downward-API variable; "" when unknown. ok is false outside Kubernetes (no
// KUBERNETES_SERVICE_HOST) or without a valid name.
func PodFromEnv(env map[string]string) (PodRef, bool) {
	if env["KUBERNETES_SERVICE_HOST"] == "" {
		return PodRef{}, false
	}
	var p PodRef
	for _, k := range podNameEnv {
		if v := env[k]; isDNSSubdomain(v) {
			p.Name = v
			break
		}
	}
	if p.Name == "" && isDNSSubdomain(env["HOSTNAME"]) {
		p.Name = env["HOSTNAME"]
	}
	for _, k := range namespaceEnv {
		if v := env[k]; isDNSLabel(v) {
			p.Namespace = v
			break
		}
	}
	return p, p.Name != ""
}

// ParseEnviron splits a /proc/PID/environ blob (NUL-separated KEY=VALUE) into a map.
func ParseEnviron(b []byte) map[string]string {
	env := make(map[string]string)
	for len(b) > 0 {
		var kv []byte
		if i := bytes.IndexByte(b, 0); i >= 0 {
			kv, b = b[:i], b[i+1:]
		} else {
			kv, b = b, nil
		}
		if k, v, ok := bytes.Cut(kv, []byte{'='}); ok && len(k) > 0 {
			env[string(k)] = string(v)
		}
	}
	return env
}

// maxEnviron bounds what is read of an environment; the variables we need come early and an
// environment larger than this is not worth the memory.
const maxEnviron = 256 << 10

func readLimited(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// saNamespacePath is where a pod's service-account namespace is mounted (when the token is
// automounted, the default).
const saNamespacePath = "var/run/secrets/kubernetes.io/serviceaccount/namespace"

// KubeEnv names a Kubernetes pod's namespace by its owning workload
// ("k8s/NAMESPACE/KIND/NAME", Kind "kubernetes") using only procfs: the cgroup path proves the
// process is in a pod (and gives container ID and pod UID), the environment gives the pod
// name, and the namespace comes from a downward-API variable or the mounted service-account
// namespace file. The owner kind is guessed from the pod name (GuessOwner) because owner
// references need the API; a CRI resolver can replace this one.
type KubeEnv struct{}

// Resolve implements Resolver.
func (KubeEnv) Resolve(ns NetnsInfo) (Identity, bool) {
	root := ns.procRoot()
	for _, pid := range ns.pids() {
		info, ok := ReadCgroup(root, pid)
		if !ok || info.PodUID == "" {
			continue
		}
		pidDir := filepath.Join(root, strconv.Itoa(pid))
		b, err := readLimited(filepath.Join(pidDir, "environ"), maxEnviron)
		if err != nil {
			continue
		}
		// The pause (sandbox) container shares the netns but has no pod environment.
		pod, ok := PodFromEnv(ParseEnviron(b))
		if !ok {
			continue
		}
		if pod.Namespace == "" {
			if b, err := readLimited(filepath.Join(pidDir, "root", saNamespacePath), 256); err == nil {
				if v := strings.TrimSpace(string(b)); isDNSLabel(v) {
					pod.Namespace = v
				}
			}
		}
		if pod.Namespace == "" {
			continue
		}
		kind, name := GuessOwner(pod.Name)
		return Identity{
			Name:      "k8s/" + pod.Namespace + "/" + kind + "/" + name,
			Kind:      KindKubernetes,
			Pod:       pod.Name,
			Namespace: pod.Namespace,
			Container: info.ContainerID,
			Labels:    map[string]string{LabelPodUID: info.PodUID},
			Source:    SourceKubeEnv,
		}, true
	}
	return Identity{}, false
}

// isDNSLabel checks an RFC 1123 label (Kubernetes namespace names).
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isDNSSubdomain checks an RFC 1123 subdomain (Kubernetes pod names).
func isDNSSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isDNSLabel(l) {
			return false
		}
	}
	return true
}
