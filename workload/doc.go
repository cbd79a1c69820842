// Package workload owns the mapping from a network namespace to the workload it belongs to.
//
// A workload identity is what a whitelist (profile) and an alert belong to, so it must be the
// same for every replica and survive restarts: the Kubernetes owner of a pod
// ("k8s/NAMESPACE/KIND/NAME", ReplicaSet hash stripped), a named netns ("netns/NAME"), an
// operator's static map, or, when nothing better is known, the container ("container/ID12").
// Pod, container ID, image and netns inode are attributes of an Identity, never its Name.
//
// Resolvers are small and pluggable; a Chain tries them in order and falls back to
// "netns/ino:INODE" so that a namespace is still captured when attribution fails. The
// sensor's order is most specific first:
//
//	workload.NewChain(static, &workload.CRI{}, workload.KubeEnv{}, &workload.Docker{},
//		workload.NamedNetns{}, workload.Cgroup{})
//
// The static map and procfs are read as files; CRI (gRPC over the runtime's unix socket)
// and the Docker Engine API (HTTP over its socket) are asked with a timeout, cached per
// container, and backed off when the daemon does not answer. Identity.Source says which
// resolver answered. A pod's namespace appears with its sandbox process, before the runtime
// has registered the sandbox and before the container runs: CRI does not cache what it could
// not yet say about a pod's process, and names the container through the sandbox once it
// runs exactly one; the sensor asks again about such namespaces (sensor/attribution.go).
// sensor/cri_live_test.go checks this against a real containerd (internal/crilab).
package workload
