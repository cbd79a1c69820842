package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/intel"
	"github.com/minerguard/minerguard/internal/kubetest"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// node is one node's sensor as far as profiles go: its own bbolt state, its engine, its sync.
type node struct {
	name string
	book *profile.Book
	sync *cluster.Syncer
}

func newNode(t *testing.T, name string, dyn dynamic.Interface) *node {
	t.Helper()
	// Learning ends after the first flows and no quiet period: the replay is seconds long.
	b, err := profile.Open(filepath.Join(t.TempDir(), "profiles.db"), profile.Config{MinFlows: 1, Quiet: -1}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &node{name: name, book: b, sync: cluster.New(dyn, b, cluster.Options{Node: name, Timeout: 3 * time.Second})}
}

const web = "k8s/shop/Deployment/web"

// replay runs captures through an engine of the node as the live sensor's pipeline would,
// with every flow from 10.77.0.1 (the pod's address in the captures) attributed to workload,
// and returns the EVE JSON lines it wrote.
func (n *node) replay(t *testing.T, workload string, files ...string) []map[string]any {
	t.Helper()
	var out bytes.Buffer
	w := alert.NewJSONWriter(&out)
	pod := netip.MustParseAddr("10.77.0.1")
	id := &alert.Workload{Identity: workload, Kind: "kubernetes", Node: n.name}
	e := engine.New(engine.Options{
		Detector: detect.New(intel.Builtin(), detect.ModeMonitor),
		Sink:     sinkFunc(func(ev *alert.Event) { w.Write(ev) }), //nolint:errcheck // a bytes.Buffer
		Profiles: n.book,
		Workload: func(_ uint64, src netip.Addr) *alert.Workload {
			if src == pod {
				return id
			}
			return nil
		},
	})
	for i, f := range files {
		c, err := capture.Open(filepath.Join("../../testdata/captures", f))
		if err != nil {
			t.Fatal(err)
		}
		e.SetLabel(f)
		var fr capture.Frame
		for {
			if err := c.Next(&fr); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			e.Packet(flow.LinkType(fr.LinkType), fr.Data, fr.Timestamp, uint64(i+1)<<32|uint64(fr.Interface))
		}
		c.Close()
	}
	e.Flush()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("alert JSON %s: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

type sinkFunc func(*alert.Event)

func (f sinkFunc) Alert(e *alert.Event) { f(e) }

// outOfProfile are the egress-not-in-profile alerts (signature 9400008) among lines, as
// "dest_ip:dest_port".
func outOfProfile(lines []map[string]any) []string {
	var out []string
	for _, l := range lines {
		a, _ := l["alert"].(map[string]any)
		if a == nil || a["signature_id"] != float64(9400008) {
			continue
		}
		out = append(out, fmt.Sprintf("%v:%v", l["dest_ip"], l["dest_port"]))
	}
	return out
}

func getProfile(t *testing.T, dyn dynamic.Interface, workload string) map[string]any {
	t.Helper()
	ref, _ := cluster.RefOf(workload)
	u, err := dyn.Resource(cluster.GVR).Namespace(ref.Namespace).Get(context.Background(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("WorkloadProfile of %s: %v", workload, err)
	}
	return u.Object
}

func destinations(obj map[string]any) []string {
	ds, _, _ := unstructured.NestedSlice(obj, "spec", "destinations")
	var out []string
	for _, d := range ds {
		m := d.(map[string]any)
		out = append(out, fmt.Sprintf("%v:%v/%v", m["host"], m["port"], m["transport"]))
	}
	return out
}

// Two nodes' sensors against a real kube-apiserver and etcd: node A learns a workload's
// benign traffic and its profile reaches the cluster; node B, where the workload is new,
// takes it and flags a miner out of profile at once (a third node without the cluster
// learns the miner as normal); both write one profile concurrently and nothing is lost, also
// across an API server restart.
func TestTwoNodesRealAPIServer(t *testing.T) {
	kc := kubetest.Start(t)
	kc.Namespace(t, "shop")
	dyn := kc.Dyn
	ctx := context.Background()
	a, b, c := newNode(t, "node-a", dyn), newNode(t, "node-b", dyn), newNode(t, "node-c", dyn)

	// Node A learns web's benign traffic; its learning window ends (MinFlows) and it syncs.
	benign := []string{"benign-https-sni-and-http-api.pcap", "benign-dns-ordinary-names.pcap"}
	if got := outOfProfile(a.replay(t, web, benign...)); len(got) != 0 {
		t.Fatalf("node A alerted out of profile while learning: %v", got)
	}
	if tr := a.book.Tick(time.Now()); len(tr) != 1 || tr[0].To != profile.Monitoring {
		t.Fatalf("node A's learning did not end: %+v", tr)
	}
	if err := a.sync.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	learned := destinations(getProfile(t, dyn, web))
	if st, _, _ := unstructured.NestedString(getProfile(t, dyn, web), "spec", "state"); st != "monitoring" || len(learned) == 0 {
		t.Fatalf("web's profile in the cluster: state %q, destinations %v", st, learned)
	}
	t.Logf("node A's profile of %s in the cluster: %v", web, learned)

	// Node B: web is new here. The sensor adopts the cluster's profile when the workload
	// appears, so the miner's very first flow is judged against it.
	if err := b.sync.Adopt(ctx, web); err != nil {
		t.Fatal(err)
	}
	miner := "mining-stratum-client-3333.pcap"
	lines := b.replay(t, web, append(slices.Clone(benign), miner)...)
	if got := outOfProfile(lines); len(got) != 1 || got[0] != "10.77.0.2:3333" {
		t.Fatalf("node B's out-of-profile alerts: %v (want the miner's 10.77.0.2:3333 alone)", got)
	}
	for _, l := range lines {
		if a, _ := l["alert"].(map[string]any); a != nil && a["signature_id"] == float64(9400008) {
			raw, _ := json.Marshal(l)
			if !strings.Contains(string(raw), web) || !strings.Contains(string(raw), "node-b") {
				t.Fatalf("alert does not name the workload and node: %s", raw)
			}
		}
	}
	// Node C never asked the cluster: the same traffic is learned as normal there.
	if got := outOfProfile(c.replay(t, web, miner)); len(got) != 0 {
		t.Fatalf("a node without the cluster's profile flagged %v", got)
	}

	// An operator approves enforcing through the API (as `minerguard profiles --kubeconfig
	// approve` and kubectl edit do); node B takes it at its next sync.
	if err := cluster.SetState(ctx, dyn, web, profile.Enforcing); err != nil {
		t.Fatal(err)
	}
	if err := b.sync.SyncOne(ctx, web); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.book.State(web); st != profile.Enforcing {
		t.Fatalf("node B's state after the operator's approval: %v", st)
	}
	ps, skipped, err := cluster.List(ctx, dyn)
	if err != nil || skipped != 0 || len(ps) != 1 || ps[0].Workload != web || ps[0].State != profile.Enforcing || len(ps[0].Entries) != len(learned) {
		t.Fatalf("listing the cluster's profiles: %v, %d skipped, %+v", err, skipped, ps)
	}

	// Both nodes learn another workload and write its one profile concurrently; the API
	// server restarts in the middle. Every destination either node learned ends up in it.
	const api = "k8s/shop/Deployment/api"
	round := func(from, to int, wantErr bool) {
		var wg sync.WaitGroup
		for _, n := range []*node{a, b} {
			wg.Go(func() {
				for i := from; i < to; i++ {
					now := time.Now()
					for _, name := range []string{fmt.Sprintf("%s-%d.example", n.name, i), fmt.Sprintf("shared-%d.example", i)} {
						n.book.Learn(api, profile.Observation{Dest: profile.Dest{Name: name, Port: 443, Proto: profile.TCP}, Node: n.name}, now)
					}
					err := n.sync.SyncOne(ctx, api)
					if (err != nil) != wantErr {
						t.Errorf("%s sync %d: %v (want error: %v)", n.name, i, err, wantErr)
						return
					}
					if err := n.book.Commit(); err != nil {
						t.Errorf("%s commit: %v", n.name, err)
					}
				}
			})
		}
		wg.Wait()
	}
	// Every sync writes, in turn with the other node's: compare-and-swap conflicts.
	round(0, 15, false)
	apiServer := kc.Env.ControlPlane.GetAPIServer()
	if err := apiServer.Stop(); err != nil {
		t.Fatal(err)
	}
	round(15, 20, true) // the API server is down: learned into the cache, not lost
	for _, n := range []*node{a, b} {
		if st := n.sync.Stats(); !st.Down {
			t.Fatalf("%s: not down while the API server is: %+v", n.name, st)
		}
	}
	if err := apiServer.Start(); err != nil {
		t.Fatalf("restarting kube-apiserver: %v", err)
	}
	round(20, 30, false)
	obj := getProfile(t, dyn, api)
	got := destinations(obj)
	for i := range 30 {
		for _, h := range []string{"node-a-%d.example", "node-b-%d.example", "shared-%d.example"} {
			if want := fmt.Sprintf(h, i) + ":443/tcp"; !slices.Contains(got, want) {
				t.Errorf("lost %s (have %d destinations)", want, len(got))
			}
		}
	}
	ds, _, _ := unstructured.NestedSlice(obj, "spec", "destinations")
	for _, d := range ds {
		m := d.(map[string]any)
		if strings.HasPrefix(m["host"].(string), "shared-") && (m["nodes"] != int64(2) || len(m["seenBy"].([]any)) != 2) {
			t.Errorf("shared destination not counted for both nodes: %v", m)
		}
	}
	nodes, _, _ := unstructured.NestedSlice(obj, "status", "nodes")
	if len(nodes) != 2 {
		t.Errorf("status nodes %v", nodes)
	}
	var conflicts uint64
	for _, n := range []*node{a, b} {
		st := n.sync.Stats()
		conflicts += st.Conflicts
		if st.CatchUps != 1 || st.Down || st.Errors != 5 {
			t.Errorf("%s: %+v (want one catch-up after 5 failed syncs)", n.name, st)
		}
	}
	t.Logf("%s: %d destinations, %d compare-and-swap conflicts retried", api, len(got), conflicts)
}
