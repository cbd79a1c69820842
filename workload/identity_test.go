package workload

import (
	"strings"
	"sync"
	"testing"
)

type fixed struct {
	id Identity
	ok bool
}

func (f fixed) Resolve(NetnsInfo) (Identity, bool) { return f.id, f.ok }

func TestChainOrderAndFallback(t *testing.T) {
	no := fixed{}
	a := fixed{Identity{Name: "a", Kind: KindStatic}, true}
	b := fixed{Identity{Name: "b", Kind: KindNetns}, true}
	empty := fixed{Identity{Kind: KindDocker}, true} // answered without a name: ignored

	tests := []struct {
		name     string
		chain    *Chain
		want     string
		wantKind string
		failures uint64
	}{
		{"first answer wins", NewChain(a, b), "a", KindStatic, 0},
		{"skips non-answers", NewChain(no, nil, empty, b, a), "b", KindNetns, 0},
		{"fallback", NewChain(no, empty), "netns/ino:4026532451", KindUnknown, 1},
		{"empty chain", NewChain(), "netns/ino:4026532451", KindUnknown, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.chain.Resolve(NetnsInfo{Inode: 4026532451})
			if got.Name != tt.want || got.Kind != tt.wantKind {
				t.Errorf("Resolve = %q/%q, want %q/%q", got.Name, got.Kind, tt.want, tt.wantKind)
			}
			if f := tt.chain.Failures(); f != tt.failures {
				t.Errorf("Failures = %d, want %d", f, tt.failures)
			}
		})
	}
}

func TestChainConcurrentFailures(t *testing.T) {
	c := NewChain(fixed{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				c.Resolve(NetnsInfo{Inode: uint64(j)})
			}
		}()
	}
	wg.Wait()
	if got := c.Failures(); got != 800 {
		t.Errorf("Failures = %d, want 800", got)
	}
}

func TestNamedNetns(t *testing.T) {
	if id, ok := (NamedNetns{}).Resolve(NetnsInfo{Name: "web", Inode: 1}); !ok || id.Name != "netns/web" || id.Kind != KindNetns {
		t.Errorf("Resolve(web) = %+v, %v", id, ok)
	}
	if id, ok := (NamedNetns{}).Resolve(NetnsInfo{Inode: 1}); ok {
		t.Errorf("Resolve(unnamed) = %+v, want no answer", id)
	}
}

// TestDefaultChain wires the suggested order over one fake host: each namespace gets the
// most specific identity available.
func TestDefaultChain(t *testing.T) {
	proc := fakeProc(t, map[string]string{
		pidPath(100, "cgroup"):  "0::/system.slice/docker-" + dockerID + ".scope\n",
		pidPath(200, "cgroup"):  "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUIDus + ".slice/cri-containerd-" + ctrdID + ".scope\n",
		pidPath(200, "environ"): environ("PATH=/usr/bin", "HOSTNAME=web-7d4b9c8f5d-x8k2p", "KUBERNETES_SERVICE_HOST=10.96.0.1", "POD_NAMESPACE=shop"),
		pidPath(300, "cgroup"):  "0::/user.slice/user-1000.slice/session-3.scope\n",
	})
	static, err := ParseStatic(strings.NewReader("workloads:\n  - name: pinned\n    inodes: [77]\n"), "map.yml")
	if err != nil {
		t.Fatal(err)
	}
	c := NewChain(static, KubeEnv{}, NamedNetns{}, Cgroup{})
	tests := []struct {
		ns   NetnsInfo
		want string
	}{
		{NetnsInfo{Inode: 77, PIDs: []int{200}}, "pinned"},
		{NetnsInfo{Inode: 2, PIDs: []int{200}, Name: "ignored"}, "k8s/shop/Deployment/web"},
		{NetnsInfo{Inode: 3, PIDs: []int{300}, Name: "lab"}, "netns/lab"},
		{NetnsInfo{Inode: 4, PIDs: []int{300, 100}}, "container/3f4e2a1b9c0d"},
		{NetnsInfo{Inode: 5, PIDs: []int{300, 999}}, "netns/ino:5"},
	}
	for _, tt := range tests {
		tt.ns.ProcRoot = proc
		if got := c.Resolve(tt.ns).Name; got != tt.want {
			t.Errorf("Resolve(%+v) = %q, want %q", tt.ns, got, tt.want)
		}
	}
	if got := c.Failures(); got != 1 {
		t.Errorf("Failures = %d, want 1", got)
	}
}
