package workload

import (
	"strings"
	"testing"
)

func TestParseCgroupLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       CgroupInfo
		ok         bool
	}{
		{"docker v1 cgroupfs", "12:pids:/docker/" + dockerID, CgroupInfo{ContainerID: dockerID}, true},
		{"docker v1 name=systemd", "1:name=systemd:/docker/" + dockerID, CgroupInfo{ContainerID: dockerID}, true},
		{"docker v2 systemd", "0::/system.slice/docker-" + dockerID + ".scope", CgroupInfo{ContainerID: dockerID, Runtime: RuntimeDocker}, true},
		{"k8s v1 cgroupfs burstable", "11:memory:/kubepods/burstable/pod" + podUID + "/" + ctrdID,
			CgroupInfo{ContainerID: ctrdID, PodUID: podUID}, true},
		{"k8s v2 cgroupfs guaranteed", "0::/kubepods/pod" + podUID + "/" + ctrdID,
			CgroupInfo{ContainerID: ctrdID, PodUID: podUID}, true},
		{"k8s v2 systemd containerd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUIDus + ".slice/cri-containerd-" + ctrdID + ".scope",
			CgroupInfo{ContainerID: ctrdID, Runtime: RuntimeContainerd, PodUID: podUID}, true},
		{"k8s v2 systemd guaranteed", "0::/kubepods.slice/kubepods-pod" + podUIDus + ".slice/cri-containerd-" + ctrdID + ".scope",
			CgroupInfo{ContainerID: ctrdID, Runtime: RuntimeContainerd, PodUID: podUID}, true},
		{"k8s v1 systemd cri-o", "4:cpu,cpuacct:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUIDus + ".slice/crio-" + crioID + ".scope",
			CgroupInfo{ContainerID: crioID, Runtime: RuntimeCRIO, PodUID: podUID}, true},
		{"k8s dockershim", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUIDus + ".slice/docker-" + dockerID + ".scope",
			CgroupInfo{ContainerID: dockerID, Runtime: RuntimeDocker, PodUID: podUID}, true},
		{"kind node inside docker", "0::/docker/" + dockerID + "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + podUIDus + ".slice/cri-containerd-" + ctrdID + ".scope",
			CgroupInfo{ContainerID: ctrdID, Runtime: RuntimeContainerd, PodUID: podUID}, true},
		{"podman rootful", "0::/machine.slice/libpod-" + podmanID + ".scope/container", CgroupInfo{ContainerID: podmanID, Runtime: RuntimePodman}, true},
		{"podman rootless", "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + podmanID + ".scope",
			CgroupInfo{ContainerID: podmanID, Runtime: RuntimePodman}, true},
		{"cri-o conmon is not the container", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUIDus + ".slice/crio-conmon-" + crioID + ".scope", CgroupInfo{}, false},
		{"podman conmon", "0::/machine.slice/libpod-conmon-" + podmanID + ".scope", CgroupInfo{}, false},
		{"host session", "0::/user.slice/user-1000.slice/session-3.scope", CgroupInfo{}, false},
		{"cgroup namespace root", "0::/", CgroupInfo{}, false},
		{"containerd service", "0::/system.slice/containerd.service", CgroupInfo{}, false},
		{"short id", "12:pids:/docker/" + dockerID[:63], CgroupInfo{}, false},
		{"upper-case hex is not a runtime id", "12:pids:/docker/" + strings.ToUpper(dockerID), CgroupInfo{}, false},
		{"no fields", "/docker/" + dockerID, CgroupInfo{}, false},
		{"one colon", "0:/docker/" + dockerID, CgroupInfo{}, false},
		{"path with colon", "0::/weird:dir/docker-" + dockerID + ".scope", CgroupInfo{ContainerID: dockerID, Runtime: RuntimeDocker}, true},
		{"crlf", "0::/docker/" + dockerID + "\r", CgroupInfo{ContainerID: dockerID}, true},
		{"bad pod uid", "0::/kubepods/podnot-a-uid/" + ctrdID, CgroupInfo{ContainerID: ctrdID}, true},
		{"empty", "", CgroupInfo{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseCgroupLine(tt.line)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseCgroupLine(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// Whole files as real hosts produce them: cgroup v1 lists every hierarchy, hybrid hosts
// add a v2 "0::" line that may point elsewhere.
func TestParseCgroupFile(t *testing.T) {
	v1 := "" +
		"12:devices:/docker/" + dockerID + "\n" +
		"11:freezer:/docker/" + dockerID + "\n" +
		"10:cpu,cpuacct:/docker/" + dockerID + "\n" +
		"1:name=systemd:/docker/" + dockerID + "\n" +
		"0::/system.slice/containerd.service\n"
	got, ok := ParseCgroup(strings.NewReader(v1))
	if !ok || got.ContainerID != dockerID || got.ShortID() != "3f4e2a1b9c0d" {
		t.Errorf("v1 file: %+v, %v", got, ok)
	}
	host := "12:devices:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n0::/user.slice/user-1000.slice/session-2.scope\n"
	if got, ok := ParseCgroup(strings.NewReader(host)); ok {
		t.Errorf("host file: %+v, want none", got)
	}
	// An over-long line is not read to the end of memory.
	huge := strings.Repeat("x", 1<<20) + "\n0::/docker/" + dockerID + "\n"
	if got, ok := ParseCgroup(strings.NewReader(huge)); ok {
		t.Errorf("huge file: %+v, want none", got)
	}
}

func TestCgroupResolver(t *testing.T) {
	proc := fakeProc(t, map[string]string{
		pidPath(10, "cgroup"): "0::/init.scope\n",
		pidPath(20, "cgroup"): "0::/kubepods/burstable/pod" + podUID + "/" + ctrdID + "\n",
		pidPath(30, "cgroup"): "0::/system.slice/docker-" + dockerID + ".scope\n",
	})
	tests := []struct {
		pids      []int
		want      string
		container string
		podUID    string
		ok        bool
	}{
		{[]int{10, 30}, "container/3f4e2a1b9c0d", dockerID, "", true},
		{[]int{20}, "container/9b1c5e0f2a7d", ctrdID, podUID, true},
		{[]int{10, 404}, "", "", "", false},
		{nil, "", "", "", false},
	}
	for _, tt := range tests {
		id, ok := Cgroup{}.Resolve(NetnsInfo{Inode: 9, PIDs: tt.pids, ProcRoot: proc})
		if ok != tt.ok || id.Name != tt.want || id.Container != tt.container || id.Labels[LabelPodUID] != tt.podUID {
			t.Errorf("pids %v: %+v, %v; want %q container %q pod %q", tt.pids, id, ok, tt.want, tt.container, tt.podUID)
		}
		if ok && id.Kind != KindDocker {
			t.Errorf("pids %v: Kind %q, want %q", tt.pids, id.Kind, KindDocker)
		}
	}
}

func FuzzParseCgroup(f *testing.F) {
	f.Add("0::/system.slice/docker-" + dockerID + ".scope")
	f.Add("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUIDus + ".slice/cri-containerd-" + ctrdID + ".scope")
	f.Add("11:memory:/kubepods/burstable/pod" + podUID + "/" + ctrdID)
	f.Add("0::/machine.slice/libpod-" + podmanID + ".scope/container")
	f.Add("0::/")
	f.Add("::")
	f.Fuzz(func(t *testing.T, line string) {
		info, ok := ParseCgroupLine(line)
		if !ok {
			if info != (CgroupInfo{}) {
				t.Fatalf("no match but %+v", info)
			}
			return
		}
		if !isContainerID(info.ContainerID) || !strings.Contains(line, info.ContainerID) {
			t.Fatalf("container %q not an id from %q", info.ContainerID, line)
		}
		if info.PodUID != "" && !isPodUID(info.PodUID) {
			t.Fatalf("pod uid %q", info.PodUID)
		}
		if strings.ContainsAny(line, "\n") {
			return
		}
		if again, _ := ParseCgroup(strings.NewReader(line + "\n")); again != info {
			t.Fatalf("file parse %+v != line parse %+v", again, info)
		}
	})
}
