package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/kubetest"
	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// kubectlEdit changes a workload's WorkloadProfile as `kubectl edit` does: Get, change the
// object, Update on its resourceVersion.
func kubectlEdit(t *testing.T, dyn dynamic.Interface, workload string, f func(obj map[string]any)) {
	t.Helper()
	ref, _ := cluster.RefOf(workload)
	rc := dyn.Resource(cluster.GVR).Namespace(ref.Namespace)
	u, err := rc.Get(context.Background(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f(u.Object)
	if _, err := rc.Update(context.Background(), u, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatalf("editing %s/%s: %v", ref.Namespace, ref.Name, err)
	}
}

func addDeny(t *testing.T, dyn dynamic.Interface, workload, dest string) {
	t.Helper()
	kubectlEdit(t, dyn, workload, func(obj map[string]any) {
		deny, _, _ := unstructured.NestedStringSlice(obj, "spec", "governance", "deny")
		if err := unstructured.SetNestedStringSlice(obj, append(deny, dest), "spec", "governance", "deny"); err != nil {
			t.Fatal(err)
		}
	})
}

// An operator's edits reach a node by its watch of WorkloadProfiles, against a real
// kube-apiserver and etcd, with the periodic sync and the refresh both an hour away: a deny
// poisons the destination in the node's Book (the engine then flags it), spec.state to
// learning and an approval move the node's state; the events of the node's own writes
// write nothing; the API server stops and restarts and the watch comes back for a later
// edit.
func TestWatchRealAPIServer(t *testing.T) {
	kc := kubetest.Start(t)
	kc.Namespace(t, "shop")
	dyn := kc.Dyn
	ctx := context.Background()

	// Another node profiled web: monitoring, with the one destination it learned.
	a := newNode(t, "node-a", dyn)
	now := time.Now()
	a.book.Learn(web, profile.Observation{Dest: profile.Dest{Port: 8080, Proto: profile.TCP}, IP: netip.MustParseAddr("10.77.0.2"), Node: "node-a"}, now)
	if err := a.book.Approve(web, profile.Monitoring, now); err != nil {
		t.Fatal(err)
	}
	if err := a.sync.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// This node: web adopted from the cluster; only the watch can bring what follows.
	book, err := profile.Open(t.TempDir()+"/profiles.db", profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { book.Close() })
	retry := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 100, Cap: 2 * time.Second}
	b, err := cluster.NewForConfig(kc.Config, book, cluster.Options{Node: "node-b", Timeout: 5 * time.Second, Refresh: time.Hour, WatchRetry: &retry})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Adopt(ctx, web); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(wctx, time.Hour) })
	wg.Go(func() { b.Watch(wctx) })
	t.Cleanup(func() { stop(); wg.Wait() })
	// Generous bounds: a loaded 2-core machine under -race; an edit normally arrives in ms.
	const arrive = 30 * time.Second
	netnstest.Eventually(t, arrive, "the watch established", func() bool { return b.Stats().Watching })
	start := b.Stats()
	edits := uint64(0) // operators' writes since the watch started: one event each

	// (a) A deny with a destination: poisoned in the Book, so out of profile, on every port.
	miner := netip.MustParseAddr("10.77.0.9")
	if r := book.Check(web, profile.Dest{Port: 3333, Proto: profile.TCP}, miner, time.Now()); r.Poisoned || r.State != profile.Monitoring {
		t.Fatalf("before the deny: %+v", r)
	}
	addDeny(t, dyn, web, "10.77.0.9:3333")
	edits++
	edited := time.Now()
	netnstest.Eventually(t, arrive, "the deny in node B's Book", func() bool {
		r := book.Check(web, profile.Dest{Port: 3333, Proto: profile.TCP}, miner, time.Now())
		return r.Poisoned && !r.In && r.State == profile.Monitoring
	})
	took := []time.Duration{time.Since(edited)} // reported, not asserted: the machine is shared
	if r := book.Check(web, profile.Dest{Port: 8080, Proto: profile.TCP}, netip.MustParseAddr("10.77.0.2"), time.Now()); !r.In {
		t.Fatalf("the learned destination after the deny: %+v", r)
	}

	// (c) This node's own write (what a periodic sync pushes) comes back as an event that
	// writes nothing: once every write since the watch started has had its event handled,
	// the writes are the ones counted here and the watch synced only the operator's edit.
	if _, err := book.AddEntries(web, []profile.Entry{{Dest: profile.Dest{Name: "db.shop.svc", Port: 5432, Proto: profile.TCP}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.SyncOne(ctx, web); err != nil {
		t.Fatal(err)
	}
	settled := func(what string, syncs uint64) {
		t.Helper()
		netnstest.Eventually(t, arrive, what, func() bool {
			st := b.Stats()
			return st.Events == start.Events+edits+(st.Writes-start.Writes)
		})
		if st := b.Stats(); st.WatchSyncs != syncs {
			t.Fatalf("%s: %+v, want %d syncs by the watch (its own writes' events sync nothing)", what, st, syncs)
		}
	}
	settled("the echoes of node B's writes", 1)
	w := b.Stats().Writes
	if w-start.Writes < 2 {
		t.Fatalf("node B wrote %d times since the watch started (its status after the deny, its new destination)", w-start.Writes)
	}

	// (b) spec.state to learning, then an approval to enforcing (as `minerguard profiles
	// approve` does it).
	kubectlEdit(t, dyn, web, func(obj map[string]any) {
		if err := unstructured.SetNestedField(obj, "learning", "spec", "state"); err != nil {
			t.Fatal(err)
		}
	})
	edits++
	edited = time.Now()
	netnstest.Eventually(t, arrive, "node B learning again", func() bool { st, _ := book.State(web); return st == profile.Learning })
	took = append(took, time.Since(edited))
	if err := cluster.SetState(ctx, dyn, web, profile.Enforcing); err != nil {
		t.Fatal(err)
	}
	edits++
	edited = time.Now()
	netnstest.Eventually(t, arrive, "node B enforcing", func() bool { st, _ := book.State(web); return st == profile.Enforcing })
	took = append(took, time.Since(edited))
	settled("the state edits and their echoes", 3)

	// (d) The API server goes away and comes back: the watch is established again and a
	// later edit still arrives by it.
	api := kc.Env.ControlPlane.GetAPIServer()
	if err := api.Stop(); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, arrive, "the watch seen broken", func() bool { return !b.Stats().Watching })
	restarted := time.Now()
	if err := api.Start(); err != nil {
		t.Fatalf("restarting kube-apiserver: %v", err)
	}
	netnstest.Eventually(t, 2*arrive, "the watch back", func() bool { st := b.Stats(); return st.Watching && st.WatchRestarts >= 1 })
	back := time.Since(restarted)
	other := netip.MustParseAddr("10.77.0.10")
	addDeny(t, dyn, web, other.String())
	edited = time.Now()
	netnstest.Eventually(t, arrive, "the deny made after the restart", func() bool {
		return book.Check(web, profile.Dest{Port: 443, Proto: profile.TCP}, other, time.Now()).Poisoned
	})
	took = append(took, time.Since(edited))
	t.Logf("edit → node B's Book (deny, learning, enforcing, deny after the restart; 20 ms polls): %v; watch back %v after the API server was started", took, back)
	st := b.Stats()
	if st.WatchSyncs != 4 || st.Syncs != start.Syncs+5 || st.Adopted != 1 {
		t.Fatalf("stats %+v: want 4 syncs by the watch and one explicit, no periodic sync", st)
	}
	t.Logf("node B: %d events, %d writes, %d watch syncs, %d restarts, %d relists", st.Events, st.Writes, st.WatchSyncs, st.WatchRestarts, st.Relists)
}

// wire counts what a client asks of the API server: reads of one resource by name (Gets)
// and the bytes its watch streams carried.
type wire struct {
	name       string
	gets       atomic.Int64
	watchBytes atomic.Int64
}

func (c *wire) config(rc *rest.Config) *rest.Config {
	rc = rest.CopyConfig(rc)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/workloadprofiles/"+c.name) {
				c.gets.Add(1)
			}
			resp, err := rt.RoundTrip(r)
			if err == nil && r.URL.Query().Get("watch") == "true" {
				resp.Body = &countBody{ReadCloser: resp.Body, n: &c.watchBytes}
			}
			return resp, err
		})
	})
	return rc
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type countBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Other nodes' status writes (every node writes its entry at least once per Refresh, per
// workload) reach a watching node as metadata events whose generation did not move: against
// a real kube-apiserver, a burst of them fetches nothing and syncs nothing on the node (its
// counters and its requests on the wire say so), another node's spec write is fetched once
// and synced not, and an operator's edit after them still arrives. Beside it a full-object
// watch (what the node ran before) receives the same burst, for the bytes per event.
func TestWatchSkipsStatusWrites(t *testing.T) {
	kc := kubetest.Start(t)
	kc.Namespace(t, "shop")
	dyn := kc.Dyn
	ctx := context.Background()
	ref, _ := cluster.RefOf(web)
	rc := dyn.Resource(cluster.GVR).Namespace(ref.Namespace)

	// A full-size profile (512 destinations) learned by node A.
	a := newNode(t, "node-a", dyn)
	now := time.Now()
	for i := range cluster.DefaultMaxEntries - 12 { // room for the one learned below
		a.book.Learn(web, profile.Observation{Dest: profile.Dest{Name: fmt.Sprintf("svc-%d.shop.svc.cluster.local", i), Port: 443, Proto: profile.TCP},
			IP: netip.AddrFrom4([4]byte{10, 78, byte(i >> 8), byte(i)}), Node: "node-a"}, now)
	}
	if err := a.book.Approve(web, profile.Monitoring, now); err != nil {
		t.Fatal(err)
	}
	if err := a.sync.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	book, err := profile.Open(t.TempDir()+"/profiles.db", profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { book.Close() })
	onWire := &wire{name: ref.Name}
	b, err := cluster.NewForConfig(onWire.config(kc.Config), book, cluster.Options{Node: "node-b", Timeout: 5 * time.Second, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Adopt(ctx, web); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { b.Watch(wctx) })
	t.Cleanup(func() { stop(); wg.Wait() })

	// The full-object watch of before, on its own connection, for comparison.
	full := &wire{name: ref.Name}
	fdyn, err := dynamic.NewForConfig(full.config(kc.Config))
	if err != nil {
		t.Fatal(err)
	}
	fw, err := fdyn.Resource(cluster.GVR).Watch(wctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fw.Stop)
	var fullEvents atomic.Int64
	wg.Go(func() {
		for range fw.ResultChan() {
			fullEvents.Add(1)
		}
	})

	const arrive = 30 * time.Second
	netnstest.Eventually(t, arrive, "the watch established", func() bool { return b.Stats().Watching })
	netnstest.Eventually(t, arrive, "the full watch's initial event", func() bool { return fullEvents.Load() == 1 })
	start, gets0 := b.Stats(), onWire.gets.Load()
	bytes0, fullBytes0 := onWire.watchBytes.Load(), full.watchBytes.Load()
	u, err := rc.Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen := u.GetGeneration()
	if mf := len(u.GetManagedFields()); mf > 2 {
		t.Errorf("the sensors' writes left %d managedFields entries: %+v", mf, u.GetManagedFields())
	}

	// node-x writes its status entry 50 times (each a new lastSync: a real change, an event).
	const burst = 50
	for i := range burst {
		u, err := rc.Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodes, _, _ := unstructured.NestedSlice(u.Object, "status", "nodes")
		nodes = append(nodes[:0:0], nodes...)
		entry := map[string]any{"node": "node-x", "state": "monitoring", "lastSync": now.Add(time.Duration(i+1) * time.Second).UTC().Format(time.RFC3339)}
		found := false
		for j, n := range nodes {
			if m, ok := n.(map[string]any); ok && m["node"] == "node-x" {
				nodes[j], found = entry, true
			}
		}
		if !found {
			nodes = append(nodes, entry)
		}
		if err := unstructured.SetNestedSlice(u.Object, nodes, "status", "nodes"); err != nil {
			t.Fatal(err)
		}
		u.SetManagedFields([]metav1.ManagedFieldsEntry{{}}) // as a sensor writes (stripManagedFields)
		if _, err := rc.UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "minerguard"}); err != nil {
			t.Fatal(err)
		}
	}
	if u, err = rc.Get(ctx, ref.Name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if u.GetGeneration() != gen {
		t.Fatalf("status writes moved metadata.generation %d → %d: the CRD's status subresource is not in force", gen, u.GetGeneration())
	}
	netnstest.Eventually(t, arrive, "the burst's events on node B", func() bool { return b.Stats().Events == start.Events+burst })
	netnstest.Eventually(t, arrive, "the burst's events on the full watch", func() bool { return fullEvents.Load() == 1+burst })
	st := b.Stats()
	if st.Skipped != start.Skipped+burst || st.Fetches != start.Fetches || st.Syncs != start.Syncs || st.WatchSyncs != 0 ||
		st.Writes != start.Writes || onWire.gets.Load() != gets0 {
		t.Fatalf("after %d status writes by node-x: %+v (from %+v), %d Gets on the wire: want every event skipped, nothing fetched, synced or written",
			burst, st, start, onWire.gets.Load()-gets0)
	}
	perEvent, fullPerEvent := (onWire.watchBytes.Load()-bytes0)/burst, (full.watchBytes.Load()-fullBytes0)/burst
	t.Logf("bytes per status event on the wire (500 destinations): metadata watch %d, full-object watch %d", perEvent, fullPerEvent)
	if perEvent*4 > fullPerEvent {
		t.Errorf("a metadata event is %d bytes, a full one %d: the metadata watch should carry a small fraction", perEvent, fullPerEvent)
	}

	// Node A learns a destination and pushes it: a spec write, fetched once by node B (its
	// generation moved), not an operator's edit, so not synced.
	if n, err := a.book.AddEntries(web, []profile.Entry{{Dest: profile.Dest{Name: "new.shop.svc", Port: 443, Proto: profile.TCP}}}, time.Now()); n != 1 || err != nil {
		t.Fatalf("node A learning one more: %d, %v", n, err)
	}
	w0 := a.sync.Stats().Writes
	if err := a.sync.SyncOne(ctx, web); err != nil {
		t.Fatal(err)
	}
	aw := a.sync.Stats().Writes - w0
	netnstest.Eventually(t, arrive, "node A's writes on node B", func() bool { return b.Stats().Events == start.Events+burst+aw })
	if st := b.Stats(); st.Fetches != start.Fetches+1 || st.WatchSyncs != 0 || st.Syncs != start.Syncs {
		t.Fatalf("after node A's spec write: %+v, want one fetch and no sync", st)
	}

	if u, err = rc.Get(ctx, ref.Name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	// The operator's edit after all that arrives.
	addDeny(t, dyn, web, "10.78.9.9:3333")
	netnstest.Eventually(t, arrive, "the deny in node B's Book", func() bool {
		return book.Check(web, profile.Dest{Port: 3333, Proto: profile.TCP}, netip.MustParseAddr("10.78.9.9"), time.Now()).Poisoned
	})
	netnstest.Eventually(t, arrive, "the deny's sync done", func() bool { return b.Stats().WatchSyncs == 1 })
	if st := b.Stats(); st.Fetches != start.Fetches+2 {
		t.Fatalf("after the operator's deny: %+v, want it fetched and synced", st)
	}
}
