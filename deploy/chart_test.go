package deploy

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minerguard/minerguard/workload"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "helm/minerguard"

// tool returns the path of a tool built by deploy/tools/build.sh (helm, kubeconform, crane,
// k8s-schemas). Building them cold takes minutes, so `go test` uses them only once built
// (`make chart-check` builds them and sets MINERGUARD_REQUIRE_TOOLS, turning the skip into a
// failure).
func tool(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command("tools/build.sh", name)
	cmd.Env = append(os.Environ(), "MINERGUARD_TOOLS_NO_BUILD=1")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		if os.Getenv("MINERGUARD_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s is not built (deploy/tools/build.sh %s)", name, name)
		}
		t.Skipf("%s not built: run make chart-check (builds it from Go modules into the tools cache)", name)
	}
	if err != nil {
		t.Fatalf("tools/build.sh %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// docs splits a multi-document YAML stream into its non-empty documents by kind.
func docs(t *testing.T, s string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, d := range strings.Split(s, "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(d), &meta); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, d)
		}
		if meta.Kind != "" {
			out[meta.Kind] = append(out[meta.Kind], d)
		}
	}
	return out
}

// kubeconform validates files strictly (unknown fields refused) against the Kubernetes
// schemas and the CRD's; the Prometheus Operator kinds have no schema offline and are skipped
// by name, nothing else.
func kubeconform(t *testing.T, kc, schemas, crdSchemas string, files ...string) (string, error) {
	t.Helper()
	args := []string{"-strict", "-summary", "-kubernetes-version", "1.37.2",
		"-schema-location", schemas + "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
		"-schema-location", crdSchemas + "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
		"-skip", "ServiceMonitor,PrometheusRule"}
	return run(t, kc, append(args, files...)...)
}

type chartTools struct{ helm, kc, schemas, crdSchemas string }

func setup(t *testing.T, withHelm bool) chartTools {
	t.Helper()
	c := chartTools{kc: tool(t, "kubeconform"), schemas: tool(t, "k8s-schemas")}
	if withHelm {
		c.helm = tool(t, "helm")
	}
	// The CRD's schema comes from this checkout's CRD, so it is made per run.
	c.crdSchemas = t.TempDir()
	mustRun(t, "go", "run", "./tools/k8sschema", "-crd", chartDir+"/crds/workloadprofiles.minerguard.io.yaml", "-out", c.crdSchemas)
	return c
}

func (c chartTools) template(t *testing.T, set ...string) (string, error) {
	args := []string{"template", "minerguard", chartDir, "--namespace", "minerguard", "--include-crds"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return run(t, c.helm, args...)
}

func TestChartLintAndValidate(t *testing.T) {
	c := setup(t, true)
	mustRun(t, c.helm, "lint", "--strict", chartDir)
	sensor := filepath.Join(t.TempDir(), "minerguard")
	mustRun(t, "go", "build", "-o", sensor, "../cmd/minerguard")

	cases := []struct {
		name       string
		set        []string
		caps       []string
		socketHost string // runtime socket on the node; "" for none
		socketIn   string // where the sensor looks for it
		monitoring bool
	}{
		{name: "defaults", caps: []string{"NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "BPF"},
			socketHost: "/run/containerd/containerd.sock", socketIn: strings.TrimPrefix(workload.DefaultCRIEndpoints[0], "unix://")},
		{name: "enforce-docker-monitoring",
			set:  []string{"mode=enforce", "runtime.type=docker", "serviceMonitor.enabled=true", "prometheusRule.enabled=true", "intel.configMap=my-intel", "intel.files={/etc/minerguard/intel/pools.txt}"},
			caps: []string{"NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "BPF", "NET_ADMIN"}, socketHost: workload.DefaultDockerSocket, socketIn: workload.DefaultDockerSocket, monitoring: true},
		{name: "crio-k3s-path", set: []string{"runtime.type=crio", "runtime.socketPath=/run/k3s/crio.sock", "mode=learn", "profiles.promote=manual", "capture.bypass=off"},
			caps: []string{"NET_RAW", "SYS_ADMIN", "SYS_PTRACE"}, socketHost: "/run/k3s/crio.sock", socketIn: strings.TrimPrefix(workload.DefaultCRIEndpoints[1], "unix://")},
		{name: "no-runtime", set: []string{"runtime.type=none", "rbac.create=false"}, caps: []string{"NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "BPF"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.template(t, tc.set...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			f := filepath.Join(t.TempDir(), "rendered.yaml")
			if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if res, err := kubeconform(t, c.kc, c.schemas, c.crdSchemas, f); err != nil {
				t.Fatalf("kubeconform: %v\n%s", err, res)
			} else if !strings.Contains(res, "Invalid: 0, Errors: 0") || strings.Contains(res, "Valid: 0,") {
				t.Fatalf("kubeconform summary: %s", res)
			}
			kinds := docs(t, out)
			for _, k := range []string{"DaemonSet", "ConfigMap", "Service", "CustomResourceDefinition"} {
				if len(kinds[k]) != 1 {
					t.Errorf("%d %s rendered, want 1", len(kinds[k]), k)
				}
			}
			if got := len(kinds["ServiceMonitor"]) + len(kinds["PrometheusRule"]); tc.monitoring && got != 2 || !tc.monitoring && got != 0 {
				t.Errorf("%d Prometheus Operator objects rendered with monitoring=%v", got, tc.monitoring)
			}
			checkDaemonSet(t, kinds["DaemonSet"][0], tc.caps, tc.socketHost, tc.socketIn)
			if slices.Contains(tc.set, "rbac.create=false") {
				if len(kinds["ClusterRole"]) != 0 {
					t.Errorf("rbac.create=false rendered %d ClusterRoles", len(kinds["ClusterRole"]))
				}
			} else if len(kinds["ClusterRole"]) != 1 {
				t.Errorf("%d ClusterRoles rendered, want 1", len(kinds["ClusterRole"]))
			} else {
				checkRBAC(t, kinds["ClusterRole"][0])
			}
			checkConfig(t, sensor, kinds["ConfigMap"][0], kinds["DaemonSet"][0])
			if tc.monitoring {
				checkRules(t, kinds["PrometheusRule"][0])
			}
		})
	}

	// values.schema.json refuses what the sensor would refuse at start.
	for _, bad := range []string{"mode=block", "runtime.type=podman", "profiles.window=1day", "metrics.port=0", "resources.limits.memory=lots"} {
		if out, err := c.template(t, bad); err == nil {
			t.Errorf("helm template --set %s rendered; want the values schema to refuse it", bad)
		} else if !strings.Contains(out, "values don't meet the specifications of the schema") && !strings.Contains(out, "schema") {
			t.Errorf("--set %s refused for another reason: %s", bad, out)
		}
	}

	// The Kubernetes schemas have teeth: a misspelt DaemonSet field is refused.
	out, err := c.template(t)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "typo.yaml")
	if err := os.WriteFile(f, []byte(strings.Replace(out, "imagePullPolicy:", "imagePulPolicy:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := kubeconform(t, c.kc, c.schemas, c.crdSchemas, f); err == nil {
		t.Errorf("a misspelt DaemonSet field passed kubeconform:\n%s", res)
	}
}

func checkDaemonSet(t *testing.T, doc string, caps []string, socketHost, socketIn string) {
	t.Helper()
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict([]byte(doc), &ds); err != nil {
		t.Fatalf("DaemonSet: %v", err)
	}
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	ctr := spec.Containers[0]
	if ctr.Image != "ghcr.io/minerguard/minerguard:0.1.0" {
		t.Errorf("image %q", ctr.Image)
	}
	sc := ctr.SecurityContext
	if sc == nil || sc.Privileged != nil && *sc.Privileged || sc.Capabilities == nil {
		t.Fatalf("securityContext %+v", sc)
	}
	var got []string
	for _, c := range sc.Capabilities.Add {
		got = append(got, string(c))
	}
	if !slices.Equal(got, caps) || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities add %v drop %v, want add %v drop [ALL]", got, sc.Capabilities.Drop, caps)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("root filesystem writable or privilege escalation allowed: %+v", sc)
	}
	if ctr.Resources.Requests.Memory().String() != "160Mi" || ctr.Resources.Limits.Memory().String() != "448Mi" {
		t.Errorf("memory request %v limit %v", ctr.Resources.Requests.Memory(), ctr.Resources.Limits.Memory())
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounts := map[string]string{} // container path -> host path
	for _, m := range ctr.VolumeMounts {
		if hp, ok := hostPaths[m.Name]; ok {
			mounts[m.MountPath] = hp
		}
	}
	for in, host := range map[string]string{"/host/proc": "/proc", "/sys/fs/bpf": "/sys/fs/bpf", "/host/sys/fs/cgroup": "/sys/fs/cgroup", "/var/lib/minerguard": "/var/lib/minerguard"} {
		if mounts[in] != host {
			t.Errorf("%s mounted from %q, want the node's %s", in, mounts[in], host)
		}
	}
	if socketIn != "" && mounts[socketIn] != socketHost {
		t.Errorf("runtime socket: %s mounted from %q, want %s (mounts %v)", socketIn, mounts[socketIn], socketHost, mounts)
	}
	for in, host := range mounts {
		if strings.HasSuffix(host, ".sock") && (socketIn == "" || in != socketIn) {
			t.Errorf("unexpected socket mount %s from %s", in, host)
		}
	}
	if !spec.HostPID || !spec.HostNetwork {
		t.Errorf("hostPID %v hostNetwork %v", spec.HostPID, spec.HostNetwork)
	}
}

// checkRBAC checks that the ClusterRole grants what the kubernetes profile backend asks of
// the API server: read, create and update WorkloadProfiles and their status, and list and
// watch them (profile/cluster's Watch: operators' edits within seconds).
func checkRBAC(t *testing.T, doc string) {
	t.Helper()
	var cr rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(doc), &cr); err != nil {
		t.Fatalf("ClusterRole: %v", err)
	}
	granted := func(resource string) []string {
		var verbs []string
		for _, r := range cr.Rules {
			if slices.Contains(r.APIGroups, "minerguard.io") && slices.Contains(r.Resources, resource) {
				verbs = append(verbs, r.Verbs...)
			}
		}
		return verbs
	}
	for resource, want := range map[string][]string{
		"workloadprofiles":        {"get", "list", "watch", "create", "update"},
		"workloadprofiles/status": {"get", "update"},
	} {
		got := granted(resource)
		for _, v := range want {
			if !slices.Contains(got, v) {
				t.Errorf("ClusterRole grants %v on %s; the sensor needs %q", got, resource, v)
			}
		}
	}
}

// checkConfig runs the sensor's own validation on the config the chart renders, and checks
// that its proc_root is where the chart mounts the node's /proc.
func checkConfig(t *testing.T, sensor, cmDoc, dsDoc string) {
	t.Helper()
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(cmDoc), &cm); err != nil {
		t.Fatal(err)
	}
	cfg := cm.Data["sensor.yaml"]
	// --config.check looks at the paths too: here they are the pod's, so point them at this
	// machine's (the mounts are checked against the DaemonSet below).
	local := strings.Replace(cfg, "proc_root: /host/proc", "proc_root: /proc", 1)
	local = strings.Replace(local, "state_dir: /var/lib/minerguard", "state_dir: "+t.TempDir(), 1)
	// The intel file the test's values name stands in for the user's ConfigMap: a real list.
	intelFile, err := filepath.Abs("../intel/builtin/domains.txt")
	if err != nil {
		t.Fatal(err)
	}
	local = strings.Replace(local, "/etc/minerguard/intel/pools.txt", intelFile, 1)
	f := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(f, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	// profiles.backend kubernetes reaches the API server with the pod's service account; here
	// a kubeconfig stands in for it (the check parses it, connects nowhere).
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, sensor, "sensor", "--config", f, "--config.check", "--profiles.kubeconfig", kc); err != nil {
		t.Errorf("minerguard sensor --config.check refuses the chart's config: %v\n%s\n%s", err, out, cfg)
	}
	var parsed struct {
		ProcRoot string `json:"proc_root"`
		StateDir string `json:"state_dir"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.ProcRoot != "/host/proc" || parsed.StateDir != "/var/lib/minerguard" || !strings.Contains(dsDoc, "mountPath: "+parsed.ProcRoot) {
		t.Errorf("config proc_root %q state_dir %q do not match the DaemonSet's mounts", parsed.ProcRoot, parsed.StateDir)
	}
}

// checkRules checks the PrometheusRule's expressions with the dashboard's checker.
func checkRules(t *testing.T, doc string) {
	t.Helper()
	var pr struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert, Expr string
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(doc), &pr); err != nil {
		t.Fatal(err)
	}
	have := exposed(t)
	have["up"] = map[string]bool{}
	n := 0
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "MinerguardSensorDown" {
				continue // `up` is Prometheus' own
			}
			for _, b := range checkExpr(r.Expr, have) {
				t.Errorf("rule %s: %s", r.Alert, b)
			}
		}
	}
	if n < 4 {
		t.Errorf("%d rules", n)
	}
}

// The CRD validates the example CR; a CR with a wrong state, a misspelt field or a port out of
// range does not pass.
func TestChartCRDExamples(t *testing.T) {
	c := setup(t, false)
	example := "helm/minerguard/examples/workloadprofile.yaml"
	if out, err := kubeconform(t, c.kc, c.schemas, c.crdSchemas, example); err != nil || !strings.Contains(out, "Valid: 1,") {
		t.Fatalf("example CR: %v\n%s", err, out)
	}
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{
		{"state: monitoring", "state: sleeping"},
		{"transport: udp", "transprot: udp"},
		{"port: 443", "port: 70000"},
		{"governance: {promote: monitoring", "governance: {promote: always"},
	} {
		mutated := strings.Replace(string(b), bad[0], bad[1], 1)
		if mutated == string(b) {
			t.Fatalf("example has no %q", bad[0])
		}
		f := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(f, []byte(mutated), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := kubeconform(t, c.kc, c.schemas, c.crdSchemas, f); err == nil {
			t.Errorf("CR with %q passed validation:\n%s", bad[1], out)
		}
	}
}

// deploy/kubernetes/minerguard.yaml is the chart rendered with its defaults (`make
// manifests`), for clusters without Helm; it must not drift from the chart.
func TestManifestsFromChart(t *testing.T) {
	helm := tool(t, "helm")
	want, err := os.ReadFile("kubernetes/minerguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := mustRun(t, "make", "-s", "-C", "..", "manifests-print", "HELM="+helm)
	if got != string(want) {
		t.Errorf("deploy/kubernetes/minerguard.yaml differs from the chart's rendering: run make manifests")
	}
}
