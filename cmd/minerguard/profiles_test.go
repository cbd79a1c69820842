package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/sensor"
	netv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

var learnT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// learnedState writes a state with two workloads: web (learning: a name and an address) and
// db (enforcing).
func learnedState(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "profiles.db")
	b, err := profile.Open(path, profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	web := "k8s/shop/Deployment/web"
	b.Learn(web, profile.Observation{Dest: profile.Dest{Name: "api.example", Port: 443, Proto: profile.TCP, App: "tls"},
		IP: netip.MustParseAddr("192.0.2.1")}, learnT0)
	b.Learn(web, profile.Observation{Dest: profile.Dest{Port: 5432, Proto: profile.TCP}, IP: netip.MustParseAddr("10.1.2.3")}, learnT0)
	b.Learn("netns/db", profile.Observation{Dest: profile.Dest{Port: 53, Proto: profile.UDP}, IP: netip.MustParseAddr("10.0.0.53")}, learnT0)
	if err := b.Approve("netns/db", profile.Enforcing, learnT0); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// squash joins each line's fields with one space, so tests do not depend on column widths.
func squash(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

func TestProfilesListShowApproveReset(t *testing.T) {
	state := learnedState(t)
	out, errs, code := run(t, "profiles", "--profiles", state, "list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errs)
	}
	for _, want := range []string{"WORKLOAD STATE ENTRIES SINCE LAST NEW", "k8s/shop/Deployment/web learning 2 2026-03-01T12:00:00Z 2026-03-01T12:00:00Z",
		"netns/db enforcing 1"} {
		if !strings.Contains(squash(out), want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	out, _, code = run(t, "profiles", "--profiles", state, "list", "-o", "json")
	var rows []struct {
		Workload string
		State    string
		Entries  int
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 0 || len(rows) != 2 || rows[0].State != "learning" || rows[1].Entries != 1 {
		t.Fatalf("list -o json: exit %d, %v, %+v:\n%s", code, err, rows, out)
	}

	out, _, code = run(t, "profiles", "--profiles", state, "show", "k8s/shop/Deployment/web", "-o", "yaml")
	ps, err := profile.Decode(strings.NewReader(out))
	if code != 0 || err != nil || len(ps) != 1 || len(ps[0].Entries) != 2 || ps[0].Entries[1].Name != "api.example" {
		t.Fatalf("show -o yaml: exit %d, %v, %+v\n%s", code, err, ps, out)
	}
	out, _, _ = run(t, "profiles", "--profiles", state, "show", "k8s/shop/Deployment/web")
	if !strings.Contains(out, "api.example:443/tcp") || !strings.Contains(out, "192.0.2.1") {
		t.Errorf("show text:\n%s", out)
	}

	out, errs, code = run(t, "profiles", "--profiles", state, "approve", "k8s/shop/Deployment/web", "--to", "enforcing")
	if code != 0 || out != "k8s/shop/Deployment/web: enforcing\n" {
		t.Fatalf("approve: exit %d, %q %q", code, out, errs)
	}
	out, _, _ = run(t, "profiles", "--profiles", state, "list")
	if !strings.Contains(squash(out), "k8s/shop/Deployment/web enforcing 2") {
		t.Errorf("approve not persisted:\n%s", out)
	}
	if _, errs, code := run(t, "profiles", "--profiles", state, "approve", "nobody"); code != 2 || !strings.Contains(errs, "nobody: no profile") {
		t.Errorf("approve of a missing workload: exit %d, %q", code, errs)
	}
	if _, errs, code := run(t, "profiles", "--profiles", state, "approve", "netns/db", "--to", "sleeping"); code != 2 || !strings.Contains(errs, "unknown profile state") {
		t.Errorf("approve --to sleeping: exit %d, %q", code, errs)
	}

	if out, _, code := run(t, "profiles", "--profiles", state, "reset", "netns/db"); code != 0 || out != "netns/db: learning\n" {
		t.Fatalf("reset: exit %d %q", code, out)
	}
	out, _, _ = run(t, "profiles", "--profiles", state, "list")
	if !strings.Contains(squash(out), "netns/db learning 0") {
		t.Errorf("reset not persisted:\n%s", out)
	}
}

func TestProfilesExportImportDiff(t *testing.T) {
	state := learnedState(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "baseline.yaml")
	_, errs, code := run(t, "profiles", "--profiles", state, "export", "--out", file)
	if code != 0 || !strings.Contains(errs, "wrote 2 profiles to "+file) {
		t.Fatalf("export: exit %d, %q", code, errs)
	}
	// Import into a fresh state: same profiles.
	fresh := filepath.Join(dir, "fresh", "profiles.db")
	out, errs, code := run(t, "profiles", "--profiles", fresh, "import", file)
	if code != 0 || !strings.Contains(out, "imported 2 profiles: k8s/shop/Deployment/web, netns/db") {
		t.Fatalf("import: exit %d, %q %q", code, out, errs)
	}
	a, _, _ := run(t, "profiles", "--profiles", state, "export", "--format", "json")
	b, _, _ := run(t, "profiles", "--profiles", fresh, "export", "--format", "json")
	if a != b || a == "" {
		t.Errorf("after import:\n%s\nwant\n%s", b, a)
	}

	// Unchanged: exit 0, nothing printed.
	if out, errs, code := run(t, "profiles", "--profiles", state, "diff", "k8s/shop/Deployment/web", file); code != 0 || out != "" {
		t.Errorf("diff of the same: exit %d, %q %q", code, out, errs)
	}
	// Learn one more destination and forget one through an import of an edited file.
	bk, err := profile.Open(state, profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	bk.Learn("k8s/shop/Deployment/web", profile.Observation{Dest: profile.Dest{Name: "new.example", Port: 443, Proto: profile.TCP},
		IP: netip.MustParseAddr("192.0.2.9")}, learnT0.Add(time.Hour))
	p, _ := bk.Get("k8s/shop/Deployment/web")
	p.Entries = p.Entries[1:] // drops 10.1.2.3:5432/tcp
	if err := bk.Put(p); err != nil {
		t.Fatal(err)
	}
	bk.Close()
	out, _, code = run(t, "profiles", "--profiles", state, "diff", "k8s/shop/Deployment/web", file)
	if code != 1 || out != "- 10.1.2.3:5432/tcp\n+ new.example:443/tcp\n" {
		t.Errorf("diff: exit %d:\n%s", code, out)
	}
	out, _, code = run(t, "profiles", "--profiles", state, "diff", "k8s/shop/Deployment/web", file, "-o", "json")
	if code != 1 || !strings.Contains(out, `"added": [`) || !strings.Contains(out, `"new.example:443/tcp"`) {
		t.Errorf("diff -o json: exit %d:\n%s", code, out)
	}
	if _, errs, code := run(t, "profiles", "--profiles", state, "diff", "k8s/other/Deployment/x", file); code != 2 || !strings.Contains(errs, "has no profile for") {
		t.Errorf("diff of a workload not in the file: exit %d, %q", code, errs)
	}

	// A bad import changes nothing.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("kind: MinerguardProfiles\nprofiles:\n- {workload: a, state: learning}\n- {workload: b, state: bored}\n"), 0o644)
	if _, errs, code := run(t, "profiles", "--profiles", fresh, "import", bad); code != 2 || !strings.Contains(errs, "unknown profile state \"bored\"") {
		t.Errorf("bad import: exit %d, %q", code, errs)
	}
	if out, _, _ := run(t, "profiles", "--profiles", fresh, "list"); strings.Contains(out, "\na ") {
		t.Errorf("bad import partly applied:\n%s", out)
	}
}

func TestProfilesExportNetworkPolicy(t *testing.T) {
	state := learnedState(t)
	out, errs, code := run(t, "profiles", "--profiles", state, "export", "k8s/shop/Deployment/web", "--format", "networkpolicy")
	if code != 0 {
		t.Fatalf("export: exit %d, %s", code, errs)
	}
	var np netv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(out), &np); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if np.Namespace != "shop" || np.Name != "minerguard-web" || len(np.Spec.Egress) != 3 || np.Spec.Egress[1].To[0].IPBlock.CIDR != "192.0.2.1/32" {
		t.Errorf("policy %+v\n%s", np, out)
	}
	// Two workloads, one of them not from Kubernetes: it needs --namespace and --pod-selector.
	_, errs, code = run(t, "profiles", "--profiles", state, "export", "--format", "ciliumnetworkpolicy")
	if code != 2 || !strings.Contains(errs, "netns/db: not a Kubernetes identity") {
		t.Errorf("export of a netns workload: exit %d, %q", code, errs)
	}
	out, _, code = run(t, "profiles", "--profiles", state, "export", "--format", "ciliumnetworkpolicy",
		"--namespace", "data", "--pod-selector", "role=db")
	if code != 0 || strings.Count(out, "kind: CiliumNetworkPolicy") != 2 || !strings.Contains(out, "\n---\n") || !strings.Contains(out, "role: db") {
		t.Errorf("export of both: exit %d\n%s", code, out)
	}
	if _, errs, code := run(t, "profiles", "--profiles", state, "export", "--format", "iptables"); code != 2 || !strings.Contains(errs, "unknown export format") {
		t.Errorf("--format iptables: exit %d, %q", code, errs)
	}
}

func TestProfilesStateErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.db")
	if _, errs, code := run(t, "profiles", "--profiles", missing, "list"); code != 2 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing state: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("list created the state file")
	}
	state := learnedState(t)
	if _, errs, code := run(t, "profiles", "--profiles", state, "list", "-o", "xml"); code != 2 || !strings.Contains(errs, "unknown output format") {
		t.Errorf("-o xml: exit %d, %q", code, errs)
	}
	// A running sensor holds the lock.
	b, err := profile.Open(state, profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, errs, code := run(t, "profiles", "--profiles", state, "--lock-timeout", "100ms", "list")
	if code != 2 || !strings.Contains(errs, "is in use by another minerguard") {
		t.Errorf("locked state: exit %d, %q", code, errs)
	}
}

// While a sensor holds the state, the profile commands go through its control socket: they
// see its live profiles, and approve, reset and import change them in the running sensor
// (at once, and committed: the file says so after the sensor stopped).
func TestProfilesThroughRunningSensor(t *testing.T) {
	state := learnedState(t)
	cfg := sensor.Default()
	cfg.Netns = []string{"minerguard-test-none"} // captures nothing: only the profiles matter here
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.StateDir = filepath.Dir(state)
	cfg.Mode = "monitor"
	s, err := sensor.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := sensor.DialControl(cfg.ControlSocket()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sensor's control socket never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	web := "k8s/shop/Deployment/web"
	p := func(args ...string) string {
		t.Helper()
		out, errs, code := run(t, append([]string{"profiles", "--profiles", state, "--lock-timeout", "100ms"}, args...)...)
		if code != 0 {
			t.Fatalf("profiles %v: exit %d: %s", args, code, errs)
		}
		return out
	}
	if out := squash(p("list")); !strings.Contains(out, web+" learning 2") || !strings.Contains(out, "netns/db enforcing 1") {
		t.Fatalf("list through the sensor:\n%s", out)
	}
	if out := p("approve", web, "--to", "enforcing"); out != web+": enforcing (running sensor)\n" {
		t.Errorf("approve: %q", out)
	}
	var shown struct {
		Profiles []struct{ Workload, State string } `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(p("show", web, "-o", "json")), &shown); err != nil || len(shown.Profiles) != 1 || shown.Profiles[0].State != "enforcing" {
		t.Errorf("show after approve: %+v %v", shown, err)
	}
	p("reset", "netns/db")
	exported := filepath.Join(t.TempDir(), "web.yaml")
	p("export", web, "--out", exported)
	if _, errs, code := run(t, "profiles", "--profiles", state, "approve", "nobody"); code != 2 || !strings.Contains(errs, "no profile") {
		t.Errorf("approving an unknown workload: exit %d %q", code, errs)
	}
	// Import replaces web's profile with the exported one, changed to monitoring.
	data, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(exported, []byte(strings.Replace(string(data), "enforcing", "monitoring", 1)), 0o600)
	if out := p("import", exported); !strings.Contains(out, "into the running sensor") {
		t.Errorf("import: %q", out)
	}

	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, err := profile.OpenReadOnly(state, profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if pr, _ := b.Get(web); pr.State != profile.Monitoring || len(pr.Entries) != 2 {
		t.Errorf("web on disk: %v with %d entries, want monitoring with 2", pr.State, len(pr.Entries))
	}
	if pr, _ := b.Get("netns/db"); pr.State != profile.Learning || len(pr.Entries) != 0 {
		t.Errorf("db on disk: %v with %d entries, want learning with 0", pr.State, len(pr.Entries))
	}
}

func TestBlocksWithoutSensor(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "minerguard.sock")
	if _, errs, code := run(t, "blocks", "--socket", sock, "list"); code != 2 || !strings.Contains(errs, "no sensor answers on "+sock) {
		t.Errorf("blocks list without a sensor: exit %d %q", code, errs)
	}
	if _, errs, code := run(t, "blocks", "--socket", sock, "list", "-o", "xml"); code != 2 || !strings.Contains(errs, "unknown output format") {
		t.Errorf("blocks list -o xml: exit %d %q", code, errs)
	}
}
