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
	nodeA, err := profile.Open(filepath.Join(t.TempDir(), "node-a.db"), profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nodeA.Close() })
	now := time.Now()
	nodeA.Learn(web, profile.Observation{Dest: profile.Dest{Port: 8080, Proto: profile.TCP}, IP: netip.MustParseAddr(poolIP), Node: "node-a"}, now)
	if err := nodeA.Approve(web, profile.Monitoring, now); err != nil {
		t.Fatal(err)
	}
	if err := cluster.New(kc.Dyn, nodeA, cluster.Options{Node: "node-a", Timeout: 5 * time.Second}).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}

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
