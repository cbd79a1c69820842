package workload

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Container runtimes recognised from cgroup paths.
const (
	RuntimeDocker     = "docker"
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimePodman     = "podman"
)

// LabelPodUID is the label carrying the Kubernetes pod UID found in a kubepods cgroup path.
const LabelPodUID = "kubernetes.io/pod-uid"

// CgroupInfo is what a cgroup path tells about the container a process runs in.
type CgroupInfo struct {
	ContainerID string // 64 lowercase hex
	Runtime     string // Runtime* constant, or "" for a bare ID (cgroupfs driver)
	PodUID      string // Kubernetes pod UID with dashes, when under kubepods
}

// ShortID is the 12-character form Docker prints.
func (c CgroupInfo) ShortID() string {
	if len(c.ContainerID) < 12 {
		return c.ContainerID
	}
	return c.ContainerID[:12]
}

// scopePrefixes maps a systemd scope prefix to its runtime. The "*-conmon-" scopes hold the
// runtime monitor, not the container, and are deliberately absent.
var scopePrefixes = [...]struct{ prefix, runtime string }{
	{"cri-containerd-", RuntimeContainerd},
	{"docker-", RuntimeDocker},
	{"crio-", RuntimeCRIO},
	{"libpod-", RuntimePodman},
}

// ParseCgroupLine parses one line of /proc/PID/cgroup, cgroup v1
// ("4:cpu,cpuacct:/docker/ID") or v2 ("0::/system.slice/docker-ID.scope"). The deepest path
// component naming a container wins, so nested runtimes (kind, Docker-in-Docker) give the
// innermost container.
func ParseCgroupLine(line string) (CgroupInfo, bool) {
	// hierarchy-ID:controllers:path; the path itself may contain ':'.
	i := strings.IndexByte(line, ':')
	if i < 0 {
		return CgroupInfo{}, false
	}
	j := strings.IndexByte(line[i+1:], ':')
	if j < 0 {
		return CgroupInfo{}, false
	}
	return ParseCgroupPath(strings.TrimRight(line[i+1+j+1:], "\r\n"))
}

// ParseCgroupPath extracts the container (and pod) from a cgroup path.
func ParseCgroupPath(path string) (CgroupInfo, bool) {
	var info CgroupInfo
	found := false
	for path != "" {
		k := strings.LastIndexByte(path, '/')
		comp := path[k+1:]
		if k < 0 {
			path = ""
		} else {
			path = path[:k]
		}
		if !found {
			if id, rt, ok := containerComponent(comp); ok {
				info.ContainerID, info.Runtime, found = id, rt, true
			}
			continue
		}
		if uid, ok := podComponent(comp); ok {
			info.PodUID = uid
			break
		}
	}
	return info, found
}

// containerComponent recognises "ID" and "PREFIX-ID.scope".
func containerComponent(c string) (id, runtime string, ok bool) {
	if isContainerID(c) {
		return c, "", true
	}
	rest, ok := strings.CutSuffix(c, ".scope")
	if !ok {
		return "", "", false
	}
	for _, p := range scopePrefixes {
		if s, ok := strings.CutPrefix(rest, p.prefix); ok && isContainerID(s) {
			return s, p.runtime, true
		}
	}
	return "", "", false
}

// podComponent recognises "podUID" (cgroupfs driver) and
// "[PREFIX-]kubepods[-QOS]-podUID_WITH_UNDERSCORES.slice" (systemd driver).
func podComponent(c string) (string, bool) {
	if s, ok := strings.CutSuffix(c, ".slice"); ok {
		k := strings.LastIndex(s, "-pod")
		// kind and some installs put a prefix before it ("kubelet-kubepods-...").
		if k < 0 || !strings.Contains(s[:k], "kubepods") {
			return "", false
		}
		uid := strings.ReplaceAll(s[k+len("-pod"):], "_", "-")
		return uid, isPodUID(uid)
	}
	uid, ok := strings.CutPrefix(c, "pod")
	return uid, ok && isPodUID(uid)
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// isPodUID checks the 8-4-4-4-12 UUID form Kubernetes uses.
func isPodUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// maxCgroupFile bounds what is read of /proc/PID/cgroup; real files are a few KiB.
const maxCgroupFile = 64 << 10

// ParseCgroup reads a /proc/PID/cgroup file and returns the first container found. A v1
// file names the container once per hierarchy, always the same one.
func ParseCgroup(r io.Reader) (CgroupInfo, bool) {
	sc := bufio.NewScanner(io.LimitReader(r, maxCgroupFile))
	sc.Buffer(make([]byte, 0, 4096), maxCgroupFile)
	for sc.Scan() {
		if info, ok := ParseCgroupLine(sc.Text()); ok {
			return info, true
		}
	}
	return CgroupInfo{}, false
}

// ReadCgroup parses PROCROOT/PID/cgroup.
func ReadCgroup(procRoot string, pid int) (CgroupInfo, bool) {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return CgroupInfo{}, false
	}
	defer f.Close()
	return ParseCgroup(f)
}

// containerOf returns the container of the first process of ns that is in one.
func containerOf(ns NetnsInfo) (CgroupInfo, int, bool) {
	root := ns.procRoot()
	for _, pid := range ns.pids() {
		if info, ok := ReadCgroup(root, pid); ok {
			return info, pid, true
		}
	}
	return CgroupInfo{}, 0, false
}

// Cgroup names a namespace by the container its processes run in: "container/ID12", Kind
// "docker". This identity differs per replica, so it belongs after every resolver that
// knows the workload (Static, KubeEnv, NamedNetns).
type Cgroup struct{}

// Resolve implements Resolver.
func (Cgroup) Resolve(ns NetnsInfo) (Identity, bool) {
	info, _, ok := containerOf(ns)
	if !ok {
		return Identity{}, false
	}
	return cgroupIdentity(info), true
}

func cgroupIdentity(info CgroupInfo) Identity {
	id := Identity{Name: "container/" + info.ShortID(), Kind: KindDocker, Container: info.ContainerID, Source: SourceCgroup}
	if info.PodUID != "" {
		id.Labels = map[string]string{LabelPodUID: info.PodUID}
	}
	return id
}
