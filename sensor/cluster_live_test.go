package sensor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/kubetest"
	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// A whole sensor with profiles.backend kubernetes against a real kube-apiserver and etcd:
// another node already profiled web (monitoring, one learned destination) into its
// WorkloadProfile. This node has never seen web; it adopts the cluster's profile when it
// opens web's namespace, before reading a packet, so web's first connection outside the
// profile raises egress-not-in-profile at once while the learned destination stays quiet. A
// workload the cluster does not know (api, same traffic) is learning here: no alert.
func TestSensorAdoptsClusterProfile(t *testing.T) {
	netnstest.RequireRoot(t)
	kc := kubetest.Start(t)
	kc.Namespace(t, "shop")
	app, other, pool := netnstest.New(t, "kweb"), netnstest.New(t, "kapi"), netnstest.New(t, "kpool")
	_, poolIP := netnstest.Veth(t, app, pool, 93)
	_, otherPoolIP := netnstest.Veth(t, other, pool, 94)
	for _, a := range []string{poolIP + ":8080", poolIP + ":9090", otherPoolIP + ":9090"} {
		serve(t, pool, a)
	}

	// Node A's sensor learned web's one destination, and its learning ended.
	const web, api = "k8s/shop/Deployment/web", "k8s/shop/Deployment/api"
	pushLearned(t, kc.Dyn, web, poolIP)

	// This node: the operator's static map names the two namespaces as the pods' workloads.
	static := filepath.Join(t.TempDir(), "workloads.yaml")
	m := fmt.Sprintf("workloads:\n  - name: %s\n    netns: [%s]\n  - name: %s\n    netns: [%s]\n", web, app, api, other)
	if err := os.WriteFile(static, []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Netns = []string{app, other}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.Workloads.Static = static
	cfg.Profiles.Backend = "kubernetes"
	cfg.Profiles.Kubeconfig = kc.Kubeconfig(t)
	// No periodic sync during the test: only the adoption at attach can bring web's profile.
	cfg.Profiles.SyncInterval = time.Hour
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	if s.cluster == nil {
		t.Fatal("profiles.backend kubernetes made no cluster sync")
	}
	// Ready: both namespaces attached, so web's profile is in the Book before any traffic.
	if st, ok := s.book.State(web); !ok || st != profile.Monitoring {
		t.Fatalf("web's state before its first packet: %v (known %v), want monitoring from the cluster", st, ok)
	}
	if st := s.cluster.Stats(); st.Adopted != 1 || st.Syncs != 0 {
		t.Fatalf("cluster sync stats %+v: want web adopted, no periodic sync", st)
	}

	talk(t, app, poolIP+":8080", login)        // learned: quiet
	talk(t, other, otherPoolIP+":9090", login) // api is learning here: quiet
	talk(t, app, poolIP+":9090", login)        // outside web's profile

	// The miner's login raises its own alert; the profile's is the one looked for.
	var got map[string]any
	netnstest.Eventually(t, 5*time.Second, "an egress-not-in-profile alert for web", func() bool {
		for l := range strings.Lines(out.String()) {
			if !strings.HasSuffix(l, "\n") {
				break // still being written
			}
			var a map[string]any
			if err := json.Unmarshal([]byte(l), &a); err != nil {
				t.Fatalf("alert JSON %q: %v", l, err)
			}
			if al, _ := a["alert"].(map[string]any); al != nil && al["signature_id"] == float64(9400008) && a["dest_port"] == float64(9090) {
				got = a
				return true
			}
		}
		return false
	})
	al := got["alert"].(map[string]any)
	ctx, _ := al["context"].(map[string]any)
	wl, _ := ctx["workload"].(map[string]any)
	prof, _ := ctx["profile"].(map[string]any)
	if ctx["detector"] != "egress-not-in-profile" || prof["state"] != "monitoring" || prof["destination"] != poolIP+":9090/tcp" || al["action"] != "allowed" ||
		got["dest_ip"] != poolIP || wl["identity"] != web || wl["node"] != s.node {
		raw, _ := json.Marshal(got)
		t.Errorf("out-of-profile alert %s", raw)
	}
	// The connections before it were judged first (one pipeline): none of them was flagged
	// out of profile.
	for l := range strings.Lines(out.String()) {
		var a map[string]any
		json.Unmarshal([]byte(l), &a) //nolint:errcheck // parsed above
		al, _ := a["alert"].(map[string]any)
		if al != nil && al["signature_id"] == float64(9400008) && (a["dest_port"] == float64(8080) || a["dest_ip"] == otherPoolIP) {
			t.Errorf("flagged out of profile: %s", strings.TrimSpace(l))
		}
	}
	if st, _ := s.book.State(api); st != profile.Learning {
		t.Errorf("api, unknown to the cluster: %v, want learning", st)
	}
}

// A whole sensor with profiles.backend kubernetes and the periodic sync an hour away: web
// was adopted from the cluster with 8080 learned, and a connection there is quiet. An
// operator then denies that address with a kubectl-style Update of the WorkloadProfile; the
// sensor's watch brings it in seconds, and the next connection to 8080 raises
// egress-not-in-profile. Nothing but the watch synced.
func TestSensorWatchesClusterDeny(t *testing.T) {
	netnstest.RequireRoot(t)
	kc := kubetest.Start(t)
	kc.Namespace(t, "shop")
	app, pool := netnstest.New(t, "wweb"), netnstest.New(t, "wpool")
	_, poolIP := netnstest.Veth(t, app, pool, 95)
	serve(t, pool, poolIP+":8080")

	const web = "k8s/shop/Deployment/web"
	pushLearned(t, kc.Dyn, web, poolIP)

	static := filepath.Join(t.TempDir(), "workloads.yaml")
	if err := os.WriteFile(static, fmt.Appendf(nil, "workloads:\n  - name: %s\n    netns: [%s]\n", web, app), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Netns = []string{app}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.Workloads.Static = static
	cfg.Profiles.Backend = "kubernetes"
	cfg.Profiles.Kubeconfig = kc.Kubeconfig(t)
	cfg.Profiles.SyncInterval = time.Hour
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	if st, ok := s.book.State(web); !ok || st != profile.Monitoring {
		t.Fatalf("web's state: %v (known %v), want monitoring from the cluster", st, ok)
	}
	// Generous bounds: a loaded 2-core machine under -race; an edit normally arrives in ms.
	netnstest.Eventually(t, 30*time.Second, "the sensor's watch of WorkloadProfiles", func() bool { return s.cluster.Stats().Watching })
	const hello = "hello\n"
	talk(t, app, poolIP+":8080", hello) // learned: quiet
	// Judged before the deny is made, so only the second connection can be flagged.
	netnstest.Eventually(t, 10*time.Second, "the first connection checked against web's profile", func() bool { return s.pipe.Stats().ProfileChecks >= 1 })

	// The operator's deny, as kubectl edit writes it.
	ref, _ := cluster.RefOf(web)
	rc := kc.Dyn.Resource(cluster.GVR).Namespace(ref.Namespace)
	u, err := rc.Get(context.Background(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedStringSlice(u.Object, []string{poolIP + ":8080"}, "spec", "governance", "deny"); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Update(context.Background(), u, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	edited := time.Now()
	netnstest.Eventually(t, 30*time.Second, "the deny in the sensor's Book", func() bool {
		return s.book.Check(web, profile.Dest{Port: 8080, Proto: profile.TCP}, netip.MustParseAddr(poolIP), time.Now()).Poisoned
	})
	t.Logf("the deny reached the sensor's Book %v after the Update (20 ms polls; reported, not asserted)", time.Since(edited))
	talk(t, app, poolIP+":8080", hello)

	var flagged []map[string]any
	netnstest.Eventually(t, 10*time.Second, "an egress-not-in-profile alert for the denied destination", func() bool {
		flagged = flagged[:0]
		for l := range strings.Lines(out.String()) {
			if !strings.HasSuffix(l, "\n") {
				break // still being written
			}
			var a map[string]any
			if err := json.Unmarshal([]byte(l), &a); err != nil {
				t.Fatalf("alert JSON %q: %v", l, err)
			}
			if al, _ := a["alert"].(map[string]any); al != nil && al["signature_id"] == float64(9400008) {
				flagged = append(flagged, a)
			}
		}
		return len(flagged) > 0
	})
	got := flagged[0]
	al := got["alert"].(map[string]any)
	actx, _ := al["context"].(map[string]any)
	wl, _ := actx["workload"].(map[string]any)
	prof, _ := actx["profile"].(map[string]any)
	if len(flagged) != 1 || got["dest_ip"] != poolIP || got["dest_port"] != float64(8080) || wl["identity"] != web ||
		prof["state"] != "monitoring" || prof["destination"] != poolIP+":8080/tcp" {
		raw, _ := json.Marshal(flagged)
		t.Errorf("out-of-profile alerts %s: want one, for the second connection to the denied %s:8080", raw, poolIP)
	}
	// The engine's counters are published once a pipeline tick.
	netnstest.Eventually(t, 10*time.Second, "the engine's counters published", func() bool { return s.pipe.Stats().ProfileViolations >= 1 })
	if st := s.pipe.Stats(); st.ProfileChecks != 2 || st.ProfileViolations != 1 {
		t.Errorf("engine: %d profile checks, %d violations; want both connections checked, the second a violation", st.ProfileChecks, st.ProfileViolations)
	}
	if st := s.cluster.Stats(); st.WatchSyncs != 1 || st.Syncs != 1 || st.Adopted != 1 {
		t.Errorf("cluster sync stats %+v: want web adopted and synced once, by the watch", st)
	}
}

// pushLearned is another node (node-a) whose sensor learned workload's one destination,
// ip:8080/tcp, ended its learning (monitoring) and synced it to the cluster.
func pushLearned(t *testing.T, dyn dynamic.Interface, workload, ip string) {
	t.Helper()
	nodeA, err := profile.Open(filepath.Join(t.TempDir(), "node-a.db"), profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nodeA.Close() })
	now := time.Now()
	nodeA.Learn(workload, profile.Observation{Dest: profile.Dest{Port: 8080, Proto: profile.TCP}, IP: netip.MustParseAddr(ip), Node: "node-a"}, now)
	if err := nodeA.Approve(workload, profile.Monitoring, now); err != nil {
		t.Fatal(err)
	}
	if err := cluster.New(dyn, nodeA, cluster.Options{Node: "node-a", Timeout: 5 * time.Second}).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}
