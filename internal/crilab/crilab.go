// Package crilab runs a containerd of a test's own, with runc and CNI from the distribution's
// packages, so that a test can run real pods and containers through the Kubernetes Container
// Runtime Interface without touching the host's runtime: its root, state, socket, runc root,
// CNI configuration and IP leases are in the test's temporary directory, and the daemon runs
// inside a network namespace the test made, so the pods' bridge and their host-side veths
// are there too. Images come from an OCI archive the test writes (WriteOCIArchive) and
// `ctr images import` loads: no registry, no network.
//
// Outside the test's directory only what containerd 1.6 hard-codes is touched: its shims'
// sockets under /run/containerd/s (named by a hash of the lab's socket path, removed when
// the shims exit) and CNI's result cache under /var/lib/cni (the lab's network name, removed
// at cleanup). Pods' cgroups are made under a parent of the lab's own, removed at cleanup.
package crilab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/minerguard/minerguard/internal/netnstest"
)

// Names of the images Images builds and imports.
const (
	PauseImage   = "minerguard.test/lab/pause:1"
	PayloadImage = "minerguard.test/lab/miner:1"
)

// CNIDirs are where Debian's containernetworking-plugins and upstream put the plugins.
var CNIDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Lab is a running containerd with its CRI plugin.
type Lab struct {
	Dir     string // everything the lab writes
	Socket  string // containerd's gRPC socket (CRI and containerd's own API)
	Netns   string // the named netns the daemon runs in
	Gateway string // the pods' gateway: the bridge's address in Netns
	// CgroupParent is the cgroupfs parent a pod's cgroup goes under (kubelet uses
	// /kubepods/QOS): "/minerguard-lab-RANDOM".
	CgroupParent string

	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient

	network string
	cmd     *exec.Cmd
	conn    *grpc.ClientConn
}

// Start runs containerd inside netns (a namespace netnstest.New made) with a bridge network
// for the pods in 10.199.<subnet>.0/24 (gateway .1 on the bridge in netns), and waits until
// its CRI plugin reports the runtime and the network ready. It skips (netnstest.SkipReal)
// when containerd, ctr, runc or the CNI plugins are missing. Everything is stopped and
// removed at cleanup: the pods, the daemon and its shims, mounts, cgroups and directories.
func Start(t testing.TB, netns string, subnet int) *Lab {
	t.Helper()
	netnstest.RequireRoot(t)
	for _, bin := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			netnstest.SkipReal(t, "needs %s (apt: containerd runc)", bin)
		}
	}
	cniDir := ""
	for _, d := range CNIDirs {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			cniDir = d
			break
		}
	}
	if cniDir == "" {
		netnstest.SkipReal(t, "needs the CNI plugins bridge, host-local and loopback (apt: containernetworking-plugins)")
	}
	b := make([]byte, 4)
	rand.Read(b)
	tag := hex.EncodeToString(b)
	// Unix socket paths are limited to 108 bytes: a short directory of its own, not t.TempDir.
	dir, err := os.MkdirTemp("", "mg-crilab-")
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{Dir: dir, Socket: filepath.Join(dir, "containerd.sock"), Netns: netns,
		Gateway: fmt.Sprintf("10.199.%d.1", subnet), CgroupParent: "/minerguard-lab-" + tag, network: "mg-lab-" + tag}
	t.Cleanup(func() { l.stop(t) })
	for _, d := range []string{"root", "state", "runc", "cni", "ipam", "opt", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The bridge exists before the first pod, so that a test can listen on the gateway; the
	// bridge plugin adopts it.
	netnstest.Run(t, "ip", "-n", netns, "link", "add", "mglab0", "type", "bridge")
	netnstest.Run(t, "ip", "-n", netns, "addr", "add", l.Gateway+"/24", "dev", "mglab0")
	netnstest.Run(t, "ip", "-n", netns, "link", "set", "mglab0", "up")
	write(t, filepath.Join(dir, "cni", "10-lab.conflist"), fmt.Sprintf(cniConf, l.network, subnet, subnet, filepath.Join(dir, "ipam")))
	cfg := filepath.Join(dir, "config.toml")
	write(t, cfg, strings.NewReplacer("DIR", dir, "CNIBIN", cniDir, "PAUSE", PauseImage).Replace(containerdConf))

	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	l.cmd = exec.Command("containerd", "--config", cfg)
	l.cmd.Stdout, l.cmd.Stderr = log, log
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Forked from a thread inside netns, the daemon and what it starts (shims, CNI plugins)
	// live there; the pods' own namespaces are made by containerd.
	if err := netnstest.Do(t, netns, l.cmd.Start); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	l.conn, err = grpc.NewClient("unix://"+l.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	l.Runtime, l.Images = runtimeapi.NewRuntimeServiceClient(l.conn), runtimeapi.NewImageServiceClient(l.conn)
	l.waitReady(t, 30*time.Second)
	return l
}

// cniConf: a bridge with the gateway on it, host-local leases in the lab's directory.
const cniConf = `{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [{
    "type": "bridge", "bridge": "mglab0", "isGateway": true, "ipMasq": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.199.%d.0/24", "gateway": "10.199.%d.1"}]],
             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}
  }]
}
`

// containerdConf: every path the lab's, the native snapshotter (plain directories: works
// on any filesystem, and the images are small), the lab's pause image as the sandbox image.
const containerdConf = `version = 2
root = "DIR/root"
state = "DIR/state"

[grpc]
  address = "DIR/containerd.sock"

[ttrpc]
  address = "DIR/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "DIR/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "PAUSE"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  restrict_oom_score_adj = true # no lower than the daemon: lowering needs CAP_SYS_RESOURCE, which a CI sandbox may withhold
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "CNIBIN"
    conf_dir = "DIR/cni"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "DIR/runc"
`

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitReady polls the CRI status until the runtime and its network are ready.
func (l *Lab) waitReady(t testing.TB, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		if err := l.exited(); err != nil {
			t.Fatalf("containerd exited: %v\n%s", err, l.Log())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := l.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
		cancel()
		if err == nil {
			ready := 0
			last = ""
			for _, c := range st.GetStatus().GetConditions() {
				if c.GetStatus() {
					ready++
				} else {
					last += fmt.Sprintf(" %s: %s %s;", c.GetType(), c.GetReason(), c.GetMessage())
				}
			}
			if ready == len(st.GetStatus().GetConditions()) && ready >= 2 {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("containerd not ready within %v: %s\n%s", limit, last, l.Log())
}

// exited reports the daemon's exit, without waiting for it.
func (l *Lab) exited() error {
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(l.cmd.Process.Pid, &ws, syscall.WNOHANG, nil)
	if err != nil {
		return err
	}
	if pid == l.cmd.Process.Pid {
		l.cmd.Process.Release()
		return fmt.Errorf("status %v", ws)
	}
	return nil
}

// Log is the end of the daemon's log so far (for a failing test's message).
func (l *Lab) Log() string {
	s, _ := readTail(filepath.Join(l.Dir, "containerd.log"), 16<<10)
	return s
}

func readTail(path string, n int) (string, error) {
	b, err := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b), err
}

// Ctr runs ctr against the lab's daemon in the k8s.io namespace (where CRI looks).
func (l *Lab) Ctr(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", l.Socket, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Images builds the payload (a static Go program, ./payload), writes the pause and payload
// images as one OCI archive and imports it with `ctr images import`. It returns the
// payload image's ID (what kubelet puts in a container's config after a pull).
func (l *Lab) ImportImages(t testing.TB) (payloadID string) {
	t.Helper()
	bin := BuildPayload(t)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(l.Dir, "images.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	err = WriteOCIArchive(f, []File{{Path: "payload", Mode: 0o755, Data: data}}, []Image{
		{Name: PauseImage, Entrypoint: []string{"/payload"}, Cmd: []string{"pause"}},
		{Name: PayloadImage, Entrypoint: []string{"/payload"}, Cmd: []string{"pause"}},
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	l.Ctr(t, "images", "import", "--snapshotter", "native", archive)
	// CRI learns of imported images from containerd's events: wait for both.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p, perr := l.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: PauseImage}})
		w, werr := l.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: PayloadImage}})
		cancel()
		if perr == nil && werr == nil && p.GetImage() != nil && w.GetImage() != nil {
			return w.GetImage().GetId()
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRI does not see the imported images (%v, %v): %s", perr, werr, l.Ctr(t, "images", "ls"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BuildPayload builds ./payload static (CGO_ENABLED=0) into a temporary directory.
func BuildPayload(t testing.TB) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no source path")
	}
	out := filepath.Join(t.TempDir(), "payload")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = filepath.Join(filepath.Dir(self), "payload")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the payload: %v: %s", err, b)
	}
	return out
}

// stop removes the pods, stops the daemon and its shims, and removes what they left.
func (l *Lab) stop(t testing.TB) {
	if l.cmd != nil && l.cmd.Process != nil && l.Runtime != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if pods, err := l.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.GetItems() {
				if _, err := l.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
					t.Logf("crilab: stopping pod %s: %v", p.GetMetadata().GetName(), err)
				}
				if _, err := l.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
					t.Logf("crilab: removing pod %s: %v", p.GetMetadata().GetName(), err)
				}
			}
		}
		cancel()
	}
	if l.conn != nil {
		l.conn.Close()
	}
	if l.cmd != nil && l.cmd.Process != nil {
		l.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { l.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			l.cmd.Process.Kill()
			<-done
		}
	}
	// Shims outlive their daemon by design (they reparent to init): the lab's are those
	// started with its socket, and only those are killed.
	for _, pid := range l.shims() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	l.unmountAll()
	removeCgroups(l.CgroupParent)
	if m, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", l.network+"-*")); len(m) > 0 {
		for _, p := range m {
			os.Remove(p)
		}
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		t.Logf("crilab: removing %s: %v", l.Dir, err)
	}
}

// shims lists the PIDs of containerd-shim processes whose command line names the lab's socket.
func (l *Lab) shims() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if strings.Contains(args[0], "containerd-shim") && strings.Contains(string(b), l.Socket) {
			out = append(out, pid)
		}
	}
	return out
}

// unmountAll detaches every mount under the lab's directory, deepest first.
func (l *Lab) unmountAll() {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], l.Dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// removeCgroups removes the cgroups runc made under parent, deepest first, in every
// hierarchy (cgroup v1) or the unified one (v2). Only empty cgroups can go: the pods are gone.
func removeCgroups(parent string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		top := filepath.Join(r, parent)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			syscall.Rmdir(dirs[i])
		}
	}
}
