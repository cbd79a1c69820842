package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/kubetest"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// `minerguard profiles --kubeconfig` against a real kube-apiserver and etcd: list and show
// read the WorkloadProfile a node's sensor wrote; approve and reset change it, and a node
// takes the change at its next sync; so does an operator's edit of the resource itself (an
// update, as kubectl edit makes).
func TestProfilesClusterCLI(t *testing.T) {
	kc := kubetest.Start(t)
	kc.Namespace(t, "shop")
	kubeconfig := kc.Kubeconfig(t)
	ctx := context.Background()

	// A node's sensor learned web and its learning ended; it syncs to the cluster.
	const web = "k8s/shop/Deployment/web"
	book, err := profile.Open(filepath.Join(t.TempDir(), "profiles.db"), profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { book.Close() })
	now := time.Now()
	book.Learn(web, profile.Observation{Dest: profile.Dest{Name: "api.example", Port: 443, Proto: profile.TCP, App: "tls"},
		IP: netip.MustParseAddr("192.0.2.1"), Node: "node-a"}, now)
	book.Learn(web, profile.Observation{Dest: profile.Dest{Port: 5432, Proto: profile.TCP}, IP: netip.MustParseAddr("10.1.2.3"), Node: "node-a"}, now)
	if err := book.Approve(web, profile.Monitoring, now); err != nil {
		t.Fatal(err)
	}
	node := cluster.New(kc.Dyn, book, cluster.Options{Node: "node-a", Timeout: 5 * time.Second})
	if err := node.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	cli := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, append([]string{"profiles", "--kubeconfig", kubeconfig}, args...)...)
	}
	out, errs, code := cli("list")
	if code != 0 || !strings.Contains(squash(out), web+" monitoring 2 ") {
		t.Fatalf("list: exit %d: %s\n%s", code, errs, out)
	}
	out, _, code = cli("list", "-o", "json")
	var rows []struct{ Workload, State string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 0 || len(rows) != 1 || rows[0].Workload != web || rows[0].State != "monitoring" {
		t.Fatalf("list -o json: exit %d, %v, %+v\n%s", code, err, rows, out)
	}
	out, errs, code = cli("show", web, "-o", "yaml")
	ps, err := profile.Decode(strings.NewReader(out))
	if code != 0 || err != nil || len(ps) != 1 || ps[0].State != profile.Monitoring || len(ps[0].Entries) != 2 {
		t.Fatalf("show -o yaml: exit %d, %v, %+v: %s\n%s", code, err, ps, errs, out)
	}
	names := []string{ps[0].Entries[0].String(), ps[0].Entries[1].String()}
	if !strings.Contains(strings.Join(names, " "), "api.example:443/tcp") {
		t.Errorf("show: entries %v", names)
	}
	if _, errs, code = cli("show", "k8s/shop/Deployment/nope"); code == 0 || !strings.Contains(errs, "nope") {
		t.Errorf("show of a workload without a profile: exit %d: %s", code, errs)
	}

	state := func() (string, bool) {
		t.Helper()
		ref, _ := cluster.RefOf(web)
		u, err := kc.Dyn.Resource(cluster.GVR).Namespace(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st, _, _ := unstructured.NestedString(u.Object, "spec", "state")
		relearn, _, _ := unstructured.NestedBool(u.Object, "spec", "governance", "relearn")
		return st, relearn
	}
	synced := func(want profile.State) {
		t.Helper()
		if err := node.SyncOne(ctx, web); err != nil {
			t.Fatal(err)
		}
		if st, _ := book.State(web); st != want {
			t.Fatalf("the node's Book after its sync: %v, want %v", st, want)
		}
	}

	// approve: the resource changes, and the node takes it.
	out, errs, code = cli("approve", web, "--to", "enforcing")
	if code != 0 || !strings.Contains(out, "enforcing (cluster)") {
		t.Fatalf("approve: exit %d: %s\n%s", code, errs, out)
	}
	if st, _ := state(); st != "enforcing" {
		t.Fatalf("the WorkloadProfile after approve: state %q", st)
	}
	synced(profile.Enforcing)

	// The operator edits the resource (kubectl edit): back to monitoring.
	ref, _ := cluster.RefOf(web)
	rc := kc.Dyn.Resource(cluster.GVR).Namespace(ref.Namespace)
	u, err := rc.Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(u.Object, "monitoring", "spec", "state"); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Update(ctx, u, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	synced(profile.Monitoring)
	if out, _, _ = cli("list"); !strings.Contains(squash(out), web+" monitoring 2 ") {
		t.Errorf("list after the edit:\n%s", out)
	}

	// reset asks the nodes to relearn: the first to sync clears the profile and the flag.
	out, errs, code = cli("reset", web)
	if code != 0 || !strings.Contains(out, "relearn requested") {
		t.Fatalf("reset: exit %d: %s\n%s", code, errs, out)
	}
	if _, relearn := state(); !relearn {
		t.Fatal("reset did not set spec.governance.relearn")
	}
	synced(profile.Learning)
	if p, _ := book.Get(web); len(p.Entries) != 0 {
		t.Errorf("relearning kept entries %v", p.Entries)
	}
	if st, relearn := state(); st != "learning" || relearn {
		t.Errorf("the WorkloadProfile after the node relearned: state %q, relearn %v", st, relearn)
	}

	// What only a node's state file holds is refused, and so is a node-local identity.
	if _, errs, code = cli("approve", "netns/db"); code == 0 || !strings.Contains(errs, "node-local") {
		t.Errorf("approve of a netns identity: exit %d: %s", code, errs)
	}
	exported := filepath.Join(t.TempDir(), "web.yaml")
	if _, errs, code = cli("export", web, "--out", exported); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errs)
	}
	if ps, err := readProfiles(exported); err != nil || len(ps) != 1 || ps[0].Workload != web || ps[0].State != profile.Learning {
		t.Errorf("exported %v, %+v", err, ps)
	}
	if _, errs, code = cli("import", exported); code == 0 || !strings.Contains(errs, "--kubeconfig") {
		t.Errorf("import with --kubeconfig: exit %d: %s", code, errs)
	}
}
