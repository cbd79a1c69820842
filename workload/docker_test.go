package workload

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// inspectJSON is a container inspect response trimmed from Docker Engine API 1.4x output,
// with the fields we do not decode left in so that decoding them is exercised.
func inspectJSON(id, name, image string, labels map[string]string) string {
	lb, _ := json.Marshal(labels)
	return `{
  "Id": "` + id + `",
  "Created": "2025-01-20T10:12:03.402211372Z",
  "Path": "/docker-entrypoint.sh",
  "Args": ["nginx", "-g", "daemon off;"],
  "State": {"Status": "running", "Running": true, "Paused": false, "Restarting": false,
    "OOMKilled": false, "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
    "StartedAt": "2025-01-20T10:12:03.61Z", "FinishedAt": "0001-01-01T00:00:00Z"},
  "Image": "sha256:5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced",
  "ResolvConfPath": "/var/lib/docker/containers/` + id + `/resolv.conf",
  "HostnamePath": "/var/lib/docker/containers/` + id + `/hostname",
  "Name": "` + name + `",
  "RestartCount": 0,
  "Driver": "overlay2",
  "Platform": "linux",
  "HostConfig": {"NetworkMode": "bridge", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
  "Mounts": [],
  "Config": {
    "Hostname": "` + id[:12] + `",
    "Domainname": "",
    "User": "",
    "AttachStdin": false,
    "Tty": false,
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.27.3"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "Image": "` + image + `",
    "Volumes": null,
    "WorkingDir": "",
    "Entrypoint": ["/docker-entrypoint.sh"],
    "OnBuild": null,
    "Labels": ` + string(lb) + `,
    "StopSignal": "SIGQUIT"
  },
  "NetworkSettings": {"SandboxKey": "/var/run/docker/netns/6d9f2e1c4b3a", "Networks": {}}
}`
}

// fakeDocker serves GET /containers/ID/json (optionally version-prefixed) on a unix socket.
type fakeDocker struct {
	containers map[string]string // id -> inspect JSON
	delay      atomic.Int64      // nanoseconds
	requests   atomic.Int64
	sock       string
}

func startFakeDocker(t *testing.T, f *fakeDocker) *fakeDocker {
	t.Helper()
	f.sock = filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if d := time.Duration(f.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		path := r.URL.Path
		if strings.HasPrefix(path, "/v1.") {
			path = path[strings.IndexByte(path[1:], '/')+1:]
		}
		id, ok := strings.CutPrefix(path, "/containers/")
		id, ok2 := strings.CutSuffix(id, "/json")
		body, known := f.containers[id]
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.47")
		switch {
		case r.Method != http.MethodGet || !ok || !ok2:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"page not found"}`))
		case !known:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"No such container: ` + id + `"}`))
		default:
			_, _ = w.Write([]byte(body))
		}
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// procWithContainer is a fake procfs where PID 100 runs in container id (cgroup v2,
// systemd driver) and PID 1 on the host.
func procWithContainer(t *testing.T, cgroupPath string) NetnsInfo {
	root := fakeProc(t, map[string]string{
		pidPath(100, "cgroup"): "0::" + cgroupPath + "\n",
		pidPath(1, "cgroup"):   "0::/init.scope\n",
	})
	return NetnsInfo{Inode: 4026532451, PIDs: []int{1, 100}, ProcRoot: root}
}

// testTimeout is for calls that should succeed: generous, because CI machines stall.
const testTimeout = 20 * time.Second

const dockerID2 = "7c1d9e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"

func TestDockerResolve(t *testing.T) {
	f := startFakeDocker(t, &fakeDocker{containers: map[string]string{
		dockerID: inspectJSON(dockerID, "/shop-api-1", "shop-api:latest", map[string]string{
			LabelComposeProject:                   "shop",
			LabelComposeService:                   "api",
			"com.docker.compose.container-number": "1",
			"com.docker.compose.version":          "2.32.1",
		}),
		dockerID2: inspectJSON(dockerID2, "/api-blue", "registry.example:5000/team/api:1.2@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			map[string]string{"maintainer": "team@example.org"}),
		ctrdID: inspectJSON(ctrdID, "/k8s_app_web-7d4b9c8f5d-x8k2p_prod_"+podUID+"_0", "sha256:5a3221f0137b",
			map[string]string{
				LabelK8sPodName:             "web-7d4b9c8f5d-x8k2p",
				LabelK8sPodNamespace:        "prod",
				LabelK8sPodUID:              podUID,
				LabelK8sContainerName:       "app",
				"io.kubernetes.docker.type": "container",
			}),
		podmanID: inspectJSON(podmanID, "/by-id", "5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced", nil),
	}})
	d := &Docker{Socket: f.sock, Timeout: testTimeout}
	tests := []struct {
		name, cgroup           string
		wantName, wantKind     string
		wantPod, wantNamespace string
		wantImage, wantLabel   string
	}{
		{"compose", "/system.slice/docker-" + dockerID + ".scope", "compose/shop/api", KindCompose, "", "", "shop-api:latest", LabelComposeService},
		{"image with registry port tag and digest", "/docker/" + dockerID2, "image/registry.example:5000/team/api", KindDocker, "", "",
			"registry.example:5000/team/api:1.2@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "maintainer"},
		{"dockershim pod", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUIDus + ".slice/docker-" + ctrdID + ".scope",
			"k8s/prod/Deployment/web", KindKubernetes, "web-7d4b9c8f5d-x8k2p", "prod", "sha256:5a3221f0137b", LabelK8sContainerName},
		{"image id", "/docker/" + podmanID, "container/" + podmanID[:12], KindDocker, "", "", "5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := procWithContainer(t, tt.cgroup)
			before := f.requests.Load()
			for i := range 3 { // later rounds come from the cache
				got, ok := d.Resolve(ns)
				if !ok {
					t.Fatalf("round %d: not answered", i)
				}
				if got.Name != tt.wantName || got.Kind != tt.wantKind || got.Pod != tt.wantPod || got.Namespace != tt.wantNamespace {
					t.Errorf("round %d: got %q %q pod %q ns %q, want %q %q pod %q ns %q", i, got.Name, got.Kind, got.Pod, got.Namespace,
						tt.wantName, tt.wantKind, tt.wantPod, tt.wantNamespace)
				}
				if got.Image != tt.wantImage {
					t.Errorf("image %q, want %q", got.Image, tt.wantImage)
				}
				if !isContainerID(got.Container) || !strings.Contains(tt.cgroup, got.Container) {
					t.Errorf("container %q, want the one in %q", got.Container, tt.cgroup)
				}
				if _, ok := got.Labels[tt.wantLabel]; tt.wantLabel != "" && !ok {
					t.Errorf("labels %v lack %q", got.Labels, tt.wantLabel)
				}
				// The caller may scribble on its copy without changing later answers.
				if got.Labels == nil {
					got.Labels = map[string]string{}
				}
				got.Labels["scribble"] = "x"
			}
			if n := f.requests.Load() - before; n != 1 {
				t.Errorf("%d requests for three resolves, want 1", n)
			}
		})
	}
}

func TestDockerNotAnswered(t *testing.T) {
	f := startFakeDocker(t, &fakeDocker{containers: map[string]string{}})
	t.Run("404 is cached", func(t *testing.T) {
		d := &Docker{Socket: f.sock, Timeout: testTimeout}
		ns := procWithContainer(t, "/docker/"+dockerID)
		for range 2 {
			if got, ok := d.Resolve(ns); ok {
				t.Errorf("answered %+v for an unknown container", got)
			}
		}
		if n := f.requests.Load(); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("other runtime not asked", func(t *testing.T) {
		d := &Docker{Socket: f.sock, Timeout: testTimeout}
		before := f.requests.Load()
		ns := procWithContainer(t, "/kubepods.slice/kubepods-pod"+podUIDus+".slice/cri-containerd-"+ctrdID+".scope")
		if got, ok := d.Resolve(ns); ok {
			t.Errorf("answered %+v for a containerd container", got)
		}
		if f.requests.Load() != before {
			t.Error("asked Docker about a containerd container")
		}
	})
	t.Run("host process", func(t *testing.T) {
		d := &Docker{Socket: f.sock, Timeout: testTimeout}
		root := fakeProc(t, map[string]string{pidPath(1, "cgroup"): "0::/init.scope\n"})
		if got, ok := d.Resolve(NetnsInfo{PIDs: []int{1}, ProcRoot: root}); ok {
			t.Errorf("answered %+v for a host process", got)
		}
		if got, ok := d.Resolve(NetnsInfo{ProcRoot: root}); ok {
			t.Errorf("answered %+v with no processes", got)
		}
	})
	t.Run("socket missing", func(t *testing.T) {
		d := &Docker{Socket: filepath.Join(t.TempDir(), "nope.sock")}
		start := time.Now()
		if got, ok := d.Resolve(procWithContainer(t, "/docker/"+dockerID)); ok {
			t.Errorf("answered %+v without a daemon", got)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("took %v without a daemon", el)
		}
	})
}

func TestDockerSlowDaemon(t *testing.T) {
	f := &fakeDocker{containers: map[string]string{
		dockerID: inspectJSON(dockerID, "/x", "nginx:1.27", nil),
	}}
	f.delay.Store(int64(time.Minute))
	startFakeDocker(t, f)
	now := time.Now()
	d := &Docker{Socket: f.sock, Timeout: 100 * time.Millisecond, now: func() time.Time { return now }}
	ns := procWithContainer(t, "/docker/"+dockerID)
	start := time.Now()
	if got, ok := d.Resolve(ns); ok {
		t.Errorf("answered %+v from a hung daemon", got)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v with a 100ms timeout", el)
	}
	// Backing off: the next namespaces do not each wait for the timeout.
	if _, ok := d.Resolve(ns); ok || f.requests.Load() != 1 {
		t.Errorf("asked again while backing off: %d requests", f.requests.Load())
	}
	// After the back-off the daemon is asked again; the failure was not cached.
	f.delay.Store(0)
	d.Timeout = testTimeout // a loaded test machine must not turn this into another failure
	now = now.Add(dockerBackoff + time.Second)
	if got, ok := d.Resolve(ns); !ok || got.Name != "image/nginx" {
		t.Errorf("after back-off: %+v, %v", got, ok)
	}
}

func TestDockerBoundsLabels(t *testing.T) {
	labels := map[string]string{LabelComposeProject: "p", LabelComposeService: "s"}
	for i := range 200 {
		labels["label."+strconv.Itoa(1000+i)] = strings.Repeat("é", 400) // 800 bytes
	}
	labels[strings.Repeat("k", 300)] = "over-long key"
	f := startFakeDocker(t, &fakeDocker{containers: map[string]string{
		dockerID: inspectJSON(dockerID, "/x", "x", labels),
	}})
	got, ok := (&Docker{Socket: f.sock, Timeout: testTimeout}).Resolve(procWithContainer(t, "/docker/"+dockerID))
	if !ok || got.Name != "compose/p/s" {
		t.Fatalf("got %+v, %v", got, ok)
	}
	if len(got.Labels) != maxLabels {
		t.Errorf("%d labels, want %d", len(got.Labels), maxLabels)
	}
	for k, v := range got.Labels {
		if len(k) > maxLabelKeyLen || len(v) > maxLabelValueLen || !utf8.ValidString(v) {
			t.Errorf("label %q=%q (%d bytes) not bounded", k[:min(len(k), 20)], v[:min(len(v), 20)], len(v))
		}
	}
	if v := got.Labels["label.1000"]; len(v) != 256 {
		t.Errorf("value cut to %d bytes, want 256 (128 two-byte runes)", len(v))
	}
}

func TestImageRepository(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nginx", "nginx"},
		{"nginx:1.27", "nginx"},
		{"library/nginx:latest", "library/nginx"},
		{"docker.io/library/nginx:1.27-alpine", "docker.io/library/nginx"},
		{"registry.example:5000/team/api:1.2@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "registry.example:5000/team/api"},
		{"registry.example:5000/team/api", "registry.example:5000/team/api"},
		{"ghcr.io/org/img@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "ghcr.io/org/img"},
		{"localhost:5000/x", "localhost:5000/x"},
		{"sha256:5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced", ""},
		{"5a3221f0137beb960c34b9cf4455424b6210160fd618c5e79401a07d6e5a2ced", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ImageRepository(tt.in); got != tt.want {
			t.Errorf("ImageRepository(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzImageRepository(f *testing.F) {
	f.Add("registry.example:5000/team/api:1.2@sha256:abc")
	f.Add("nginx")
	f.Add("sha256:5a3221f0137b")
	f.Add(":@/:")
	f.Fuzz(func(t *testing.T, ref string) {
		got := ImageRepository(ref)
		if !strings.HasPrefix(ref, got) || strings.Contains(got, "@") {
			t.Errorf("ImageRepository(%q) = %q", ref, got)
		}
	})
}

// FuzzDockerInspect feeds arbitrary inspect bodies through decoding and naming: never a
// panic, always a name, labels always bounded.
func FuzzDockerInspect(f *testing.F) {
	f.Add(inspectJSON(dockerID, "/a", "nginx:1", map[string]string{LabelComposeProject: "p", LabelComposeService: "s"}))
	f.Add(`{"Config":{"Labels":{"io.kubernetes.pod.name":"a-0","io.kubernetes.pod.namespace":"n"}}}`)
	f.Add(`{"Config":null}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		var c dockerContainer
		if err := json.NewDecoder(strings.NewReader(body)).Decode(&c); err != nil {
			return
		}
		id := dockerIdentity(CgroupInfo{ContainerID: dockerID}, c)
		if id.Name == "" || len(id.Labels) > maxLabels {
			t.Errorf("identity %+v", id)
		}
		for _, v := range id.Labels {
			if len(v) > maxLabelValueLen {
				t.Errorf("value of %d bytes", len(v))
			}
		}
	})
}

func TestIDCacheBounded(t *testing.T) {
	c := idCache{max: 3}
	for i := range 5 {
		c.put(strconv.Itoa(i), answer{ok: true, id: Identity{Name: strconv.Itoa(i)}})
	}
	if c.len() != 3 {
		t.Fatalf("%d entries, want 3", c.len())
	}
	for i := range 5 {
		a, ok := c.get(strconv.Itoa(i))
		if want := i >= 2; ok != want || ok && a.id.Name != strconv.Itoa(i) {
			t.Errorf("entry %d: %+v, %v; want present %v", i, a, ok, want)
		}
	}
	c.put("4", answer{}) // update in place, no eviction
	if a, _ := c.get("4"); a.ok || c.len() != 3 {
		t.Errorf("update: %+v, len %d", a, c.len())
	}
}

func TestTruncUTF8(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},          // é is 2 bytes: cut inside it
		{"a€b", 3, "a"},         // € is 3 bytes
		{"a€b", 4, "a€"},        // exact boundary
		{"\xff\xff\xff", 2, ""}, // invalid bytes are dropped like partial runes
	}
	for _, tt := range tests {
		if got := truncUTF8(tt.in, tt.n); got != tt.want {
			t.Errorf("truncUTF8(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
