package workload

import (
	"reflect"
	"strings"
	"testing"
)

func TestOwnerFromPod(t *testing.T) {
	tests := []struct {
		pod, ownerKind, ownerName string
		kind, name                string
	}{
		{"web-7d4b9c8f5d-x8k2p", "ReplicaSet", "web-7d4b9c8f5d", "Deployment", "web"},
		{"api-server-6b8f9d7c4-q2wzl", "ReplicaSet", "api-server-6b8f9d7c4", "Deployment", "api-server"},
		{"legacy-x8k2p", "ReplicaSet", "legacy", "ReplicaSet", "legacy"},          // bare ReplicaSet: no hash to strip
		{"web-abcde-x8k2p", "ReplicaSet", "web-abcde", "ReplicaSet", "web-abcde"}, // vowel: not a safe-encoded hash
		{"backup-28391234-q7x2m", "Job", "backup-28391234", "CronJob", "backup"},
		{"migrate-db-x7k2p", "Job", "migrate-db", "Job", "migrate-db"},
		{"db-0", "StatefulSet", "db", "StatefulSet", "db"},
		{"fluentd-x7k2p", "DaemonSet", "fluentd", "DaemonSet", "fluentd"},
		{"runner-abc", "Workflow", "ci", "Workflow", "ci"}, // custom controller is its own workload
		{"debug", "", "", "Pod", "debug"},
		{"kube-apiserver-node1", "Node", "node1", "Pod", "kube-apiserver-node1"},
	}
	for _, tt := range tests {
		kind, name := OwnerFromPod(tt.pod, tt.ownerKind, tt.ownerName)
		if kind != tt.kind || name != tt.name {
			t.Errorf("OwnerFromPod(%q, %q, %q) = %s/%s, want %s/%s", tt.pod, tt.ownerKind, tt.ownerName, kind, name, tt.kind, tt.name)
		}
	}
}

func TestGuessOwner(t *testing.T) {
	tests := []struct{ pod, kind, name string }{
		{"web-7d4b9c8f5d-x8k2p", "Deployment", "web"},
		{"coredns-5dd5756b68-7xkqz", "Deployment", "coredns"},
		{"my-app-v2-6b8f9d7c4-q2wzl", "Deployment", "my-app-v2"},
		{"backup-28391234-q7x2m", "CronJob", "backup"},
		{"db-0", "StatefulSet", "db"},
		{"kafka-broker-12", "StatefulSet", "kafka-broker"},
		{"fluentd-x7k2p", "Controller", "fluentd"},
		{"debug", "Pod", "debug"},
		{"web-01", "Pod", "web-01"},           // leading zero: not an ordinal
		{"-0", "Pod", "-0"},                   // no base
		{"nginx-hello", "Pod", "nginx-hello"}, // vowels: not a generated suffix
	}
	for _, tt := range tests {
		kind, name := GuessOwner(tt.pod)
		if kind != tt.kind || name != tt.name {
			t.Errorf("GuessOwner(%q) = %s/%s, want %s/%s", tt.pod, kind, name, tt.kind, tt.name)
		}
	}
}

func TestPodFromLabels(t *testing.T) {
	labels := map[string]string{
		LabelK8sPodName: "web-7d4b9c8f5d-x8k2p", LabelK8sPodNamespace: "shop",
		LabelK8sPodUID: podUID, LabelK8sContainerName: "nginx",
	}
	got, ok := PodFromLabels(labels)
	want := PodRef{Namespace: "shop", Name: "web-7d4b9c8f5d-x8k2p", UID: podUID, Container: "nginx"}
	if !ok || got != want {
		t.Errorf("PodFromLabels = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := PodFromLabels(map[string]string{"com.docker.compose.project": "shop"}); ok {
		t.Error("PodFromLabels accepted a non-Kubernetes container")
	}
}

func TestPodFromEnv(t *testing.T) {
	k8s := "KUBERNETES_SERVICE_HOST=10.96.0.1"
	tests := []struct {
		name string
		env  string
		want PodRef
		ok   bool
	}{
		{"hostname only", environ("PATH=/bin", k8s, "HOSTNAME=web-7d4b9c8f5d-x8k2p"), PodRef{Name: "web-7d4b9c8f5d-x8k2p"}, true},
		{"downward api", environ(k8s, "HOSTNAME=custom", "POD_NAME=db-0", "POD_NAMESPACE=data"), PodRef{Name: "db-0", Namespace: "data"}, true},
		{"invalid namespace ignored", environ(k8s, "HOSTNAME=db-0", "POD_NAMESPACE=Not_Valid"), PodRef{Name: "db-0"}, true},
		{"not kubernetes", environ("HOSTNAME=3f4e2a1b9c0d"), PodRef{}, false},
		{"invalid hostname", environ(k8s, "HOSTNAME=UPPER_case"), PodRef{}, false},
		{"no trailing nul, value with =", environ(k8s) + "HOSTNAME=a=b", PodRef{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PodFromEnv(ParseEnviron([]byte(tt.env)))
			if got != tt.want || ok != tt.ok {
				t.Errorf("PodFromEnv = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseEnviron(t *testing.T) {
	env := ParseEnviron([]byte("A=1\x00B=x=y\x00\x00=nokey\x00NOEQ\x00C="))
	want := map[string]string{"A": "1", "B": "x=y", "C": ""}
	if len(env) != len(want) {
		t.Fatalf("ParseEnviron = %v, want %v", env, want)
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("env[%q] = %q, %v; want %q", k, got, ok, v)
		}
	}
}

func TestKubeEnvResolver(t *testing.T) {
	k8sCgroup := "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUIDus + ".slice/cri-containerd-" + ctrdID + ".scope\n"
	pauseCgroup := "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUIDus + ".slice/cri-containerd-" + crioID + ".scope\n"
	proc := fakeProc(t, map[string]string{
		// pause: in the pod, no Kubernetes environment.
		pidPath(1, "cgroup"):  pauseCgroup,
		pidPath(1, "environ"): environ("PATH=/"),
		// app container: namespace from the service-account mount.
		pidPath(2, "cgroup"):                k8sCgroup,
		pidPath(2, "environ"):               environ("HOSTNAME=web-7d4b9c8f5d-x8k2p", "KUBERNETES_SERVICE_HOST=10.96.0.1"),
		pidPath(2, "root/"+saNamespacePath): "shop",
		// same, but no way to learn the namespace.
		pidPath(3, "cgroup"):  k8sCgroup,
		pidPath(3, "environ"): environ("HOSTNAME=web-7d4b9c8f5d-x8k2p", "KUBERNETES_SERVICE_HOST=10.96.0.1"),
		// Docker container that sets KUBERNETES_SERVICE_HOST: not in a pod cgroup.
		pidPath(4, "cgroup"):  "0::/system.slice/docker-" + dockerID + ".scope\n",
		pidPath(4, "environ"): environ("HOSTNAME=fake-0", "KUBERNETES_SERVICE_HOST=x", "POD_NAMESPACE=x"),
		// StatefulSet pod with downward API namespace.
		pidPath(5, "cgroup"):  "0::/kubepods/pod" + podUID + "/" + ctrdID + "\n",
		pidPath(5, "environ"): environ("HOSTNAME=db-0", "KUBERNETES_SERVICE_HOST=10.96.0.1", "POD_NAMESPACE=data"),
	})
	tests := []struct {
		pids []int
		want Identity
		ok   bool
	}{
		{[]int{1, 2}, Identity{Name: "k8s/shop/Deployment/web", Kind: KindKubernetes, Pod: "web-7d4b9c8f5d-x8k2p", Namespace: "shop", Container: ctrdID, Source: SourceKubeEnv}, true},
		{[]int{5}, Identity{Name: "k8s/data/StatefulSet/db", Kind: KindKubernetes, Pod: "db-0", Namespace: "data", Container: ctrdID, Source: SourceKubeEnv}, true},
		{[]int{1, 3}, Identity{}, false},
		{[]int{4}, Identity{}, false},
		{[]int{}, Identity{}, false},
	}
	for _, tt := range tests {
		got, ok := KubeEnv{}.Resolve(NetnsInfo{Inode: 1, PIDs: tt.pids, ProcRoot: proc})
		if ok != tt.ok {
			t.Errorf("pids %v: ok = %v, want %v (%+v)", tt.pids, ok, tt.ok, got)
			continue
		}
		if !ok {
			continue
		}
		if got.Labels[LabelPodUID] != podUID {
			t.Errorf("pids %v: pod uid label %q", tt.pids, got.Labels[LabelPodUID])
		}
		got.Labels = nil
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("pids %v:\n got %+v\nwant %+v", tt.pids, got, tt.want)
		}
	}
}

func TestDNSNames(t *testing.T) {
	for _, s := range []string{"a", "web-0", "a.b-c.d", strings.Repeat("a", 63)} {
		if !isDNSSubdomain(s) {
			t.Errorf("isDNSSubdomain(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-a", "a-", "A", "a..b", "a_b", strings.Repeat("a", 64)} {
		if isDNSSubdomain(s) {
			t.Errorf("isDNSSubdomain(%q) = true", s)
		}
	}
}
