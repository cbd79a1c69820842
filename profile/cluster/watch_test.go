package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/minerguard/minerguard/profile"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/metadata"
	k8stesting "k8s.io/client-go/testing"
)

// metaOf is a metadata client on the dynamic fake's store, as the real one is on the API
// server's: lists and watches answer with the objects' metadata only. The dynamic fake's
// watch reactors (expiry, outages) stay in force.
type metaOf struct {
	c *dynamicfake.FakeDynamicClient
}

func (m metaOf) Resource(gvr schema.GroupVersionResource) metadata.Getter {
	return metaRes{r: m.c.Resource(gvr)}
}

// metaRes lists and watches; what the watch never calls is left unimplemented (nil).
type metaRes struct {
	metadata.ResourceInterface
	r  dynamic.NamespaceableResourceInterface
	ns string
}

func (m metaRes) Namespace(ns string) metadata.ResourceInterface { return metaRes{r: m.r, ns: ns} }

func (m metaRes) res() dynamic.ResourceInterface {
	if m.ns == "" {
		return m.r
	}
	return m.r.Namespace(m.ns)
}

func partial(u *unstructured.Unstructured) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"},
		ObjectMeta: metav1.ObjectMeta{Namespace: u.GetNamespace(), Name: u.GetName(), ResourceVersion: u.GetResourceVersion(),
			Generation: u.GetGeneration(), Labels: u.GetLabels()},
	}
}

func (m metaRes) List(ctx context.Context, opts metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	l, err := m.res().List(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{ResourceVersion: l.GetResourceVersion(), Continue: l.GetContinue()}}
	for i := range l.Items {
		out.Items = append(out.Items, *partial(&l.Items[i]))
	}
	return out, nil
}

func (m metaRes) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := m.res().Watch(ctx, opts)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
		if u, ok := ev.Object.(*unstructured.Unstructured); ok {
			ev.Object = partial(u)
		}
		return ev, true
	}), nil
}

// watchOpts are a watching node's options on the fake.
func watchOpts(c *dynamicfake.FakeDynamicClient, node string) Options {
	return Options{Node: node, WatchRetry: &fastRetry, Metadata: metaOf{c}}
}

// fastRetry keeps the tests' outages short; the pacing itself is wait.Backoff's.
var fastRetry = wait.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 100, Cap: 50 * time.Millisecond}

// watching runs s.Watch until the test ends and returns once the watch is established.
func watching(t *testing.T, s *Syncer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Watch(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	netnstest.Eventually(t, 10*time.Second, "the watch established", func() bool { return s.Stats().Watching })
}

// editSpec changes web's resource as kubectl edit would (Get, change, Update).
func editSpec(t *testing.T, c *dynamicfake.FakeDynamicClient, f func(*Spec)) {
	t.Helper()
	ref, _ := RefOf(web)
	rc := c.Resource(GVR).Namespace(ref.Namespace)
	u, err := rc.Get(context.Background(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wp, err := decode(u)
	if err != nil {
		t.Fatal(err)
	}
	f(&wp.Spec)
	if err := encodeSpec(u, &wp); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Update(context.Background(), u, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
}

func denyPool(s *Spec) {
	if s.Governance == nil {
		s.Governance = &Governance{}
	}
	s.Governance.Deny = append(s.Governance.Deny, "pool.example:3333")
}

// An operator's edit reaches the Book by the watch, with no Sync; the events of the node's
// own writes (its spec and status) sync nothing and write nothing.
func TestWatchEditsNotEchoes(t *testing.T) {
	c := fakeClient()
	book := learned(t, tcp("api.example", 443), tcp("pool.example", 3333))
	s := New(c, book, watchOpts(c, "a"))
	if err := s.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	watching(t, s)
	start := s.Stats()

	// This node writes: a destination it was given locally goes out (spec and status).
	if _, err := book.AddEntries(web, []profile.Entry{{Dest: tcp("db.example", 5432)}}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	own := s.Stats().Writes - start.Writes
	if own != 2 {
		t.Fatalf("the node's sync wrote %d times, want spec and status", own)
	}
	// Each write is one event; once both are handled, nothing followed from them.
	netnstest.Eventually(t, 10*time.Second, "the echoes of the node's writes", func() bool { return s.Stats().Events == start.Events+own })
	if st := s.Stats(); st.Writes != start.Writes+own || st.WatchSyncs != 0 {
		t.Fatalf("the node's own writes came back as edits: %+v", st)
	}

	// The operator denies the pool and approves enforcing.
	editSpec(t, c, func(sp *Spec) { denyPool(sp); sp.State = "enforcing" })
	netnstest.Eventually(t, 10*time.Second, "the deny in the Book", func() bool {
		return book.Check(web, tcp("pool.example", 3333), netip.Addr{}, t0).Poisoned
	})
	if st, _ := book.State(web); st != profile.Enforcing {
		t.Fatalf("state after the operator approved enforcing: %v", st)
	}
	// The edit's sync wrote this node's status (its state moved); that echo syncs nothing.
	netnstest.Eventually(t, 10*time.Second, "every event handled", func() bool {
		st := s.Stats()
		return st.Events == start.Events+1+(st.Writes-start.Writes)
	})
	if st := s.Stats(); st.WatchSyncs != 1 || st.Syncs != start.Syncs+2 || st.WatchRestarts != 0 || st.Relists != 0 {
		t.Fatalf("stats after one edit: %+v (want one sync by the watch)", st)
	}
}

// A relearn request by watch clears the node's profile and the resource's, as SyncOne's
// relearn does; the other node follows the resource back to learning by its own watch.
func TestWatchRelearn(t *testing.T) {
	c := fakeClient()
	ab, bb := learned(t, tcp("api.example", 443)), learned(t, tcp("api.example", 443))
	a, b := New(c, ab, watchOpts(c, "a")), New(c, bb, watchOpts(c, "b"))
	for _, n := range []*Syncer{a, b} {
		if err := n.SyncOne(context.Background(), web); err != nil {
			t.Fatal(err)
		}
		watching(t, n)
	}
	editSpec(t, c, func(sp *Spec) {
		sp.Governance = &Governance{Relearn: true}
	})
	for _, bk := range []*profile.Book{ab, bb} {
		netnstest.Eventually(t, 10*time.Second, "relearning on both nodes", func() bool {
			p, _ := bk.Get(web)
			return p.State == profile.Learning && len(p.Entries) == 0
		})
	}
	ref, _ := RefOf(web)
	netnstest.Eventually(t, 10*time.Second, "the relearn flag cleared", func() bool {
		wp := get(t, c, ref)
		return wp.Spec.State == "learning" && !wp.Spec.Governance.Relearn && len(wp.Spec.Destinations) == 0
	})
}

// The resourceVersion expired while watching: the watch lists again, and an edit the
// broken stream never delivered is found in the list.
func TestWatchRelistsWhenExpired(t *testing.T) {
	c := fakeClient()
	book := learned(t, tcp("api.example", 443))
	s := New(c, book, watchOpts(c, "a"))
	if err := s.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	stale := watch.NewFake()
	var watches atomic.Int32
	c.PrependWatchReactor("workloadprofiles", func(k8stesting.Action) (bool, watch.Interface, error) {
		if watches.Add(1) == 1 {
			return true, stale, nil // delivers nothing but the expiry below
		}
		return false, nil, nil
	})
	watching(t, s)
	editSpec(t, c, denyPool)
	stale.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old resource version"})
	netnstest.Eventually(t, 10*time.Second, "the deny found by the relist", func() bool {
		return book.Check(web, tcp("pool.example", 3333), netip.Addr{}, t0).Poisoned
	})
	netnstest.Eventually(t, 10*time.Second, "the second watch", func() bool { return watches.Load() == 2 && s.Stats().Watching })
	if st := s.Stats(); st.Relists != 1 || st.WatchSyncs != 1 || st.WatchRestarts != 0 {
		t.Fatalf("stats %+v: want one relist that synced the edit, no outage", st)
	}
}

// The API server goes away under an established watch: the stream ends early, attempts fail
// (logged once), the watch comes back (counted) and a later edit arrives by it.
func TestWatchComesBack(t *testing.T) {
	c := fakeClient()
	book := learned(t, tcp("api.example", 443))
	var logs syncBuf
	o := watchOpts(c, "a")
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := New(c, book, o)
	if err := s.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	first := watch.NewFake()
	var down atomic.Bool
	var watches, refused atomic.Int32
	c.PrependWatchReactor("workloadprofiles", func(k8stesting.Action) (bool, watch.Interface, error) {
		if down.Load() {
			refused.Add(1)
			return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		}
		if watches.Add(1) == 1 {
			return true, first, nil
		}
		return false, nil, nil
	})
	watching(t, s)
	down.Store(true)
	first.Stop() // the API server closed the stream long before its timeout
	netnstest.Eventually(t, 10*time.Second, "several failed attempts", func() bool { return refused.Load() >= 3 })
	if st := s.Stats(); st.Watching || st.WatchRestarts != 0 {
		t.Fatalf("stats while the API server is away: %+v", st)
	}
	down.Store(false)
	netnstest.Eventually(t, 10*time.Second, "the watch back", func() bool { return s.Stats().WatchRestarts == 1 && s.Stats().Watching })
	editSpec(t, c, denyPool)
	netnstest.Eventually(t, 10*time.Second, "the deny by the new watch", func() bool {
		return book.Check(web, tcp("pool.example", 3333), netip.Addr{}, t0).Poisoned
	})
	out := logs.String()
	if strings.Count(out, "lost the watch") != 1 || strings.Count(out, "watching WorkloadProfiles again") != 1 {
		t.Fatalf("want the outage logged once and its end once:\n%s", out)
	}
}

// syncBuf is a log buffer the watch's goroutine writes while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BenchmarkWatchEcho is what a status-only event costs a node that knows the workload (every
// node's status write is an event to every node). Before the metadata watch: edited on a
// full-size resource (512 destinations) after client-go's JSON decoding of the whole event
// (client-json); now: decoding the event's metadata (metadata-json) and the skip; as the
// anchor, decoding the whole resource as a sync does.
func BenchmarkWatchEcho(b *testing.B) {
	book := profile.NewMemory(profile.Config{Promote: profile.Learning})
	book.Learn(web, profile.Observation{Dest: tcp("api.example", 443)}, t0)
	s := New(fakeClient(), book, Options{Node: "a"})
	spec := Spec{Workload: WorkloadRef{Kind: "Deployment", Name: "web", Identity: web}, State: "monitoring",
		Governance: &Governance{Deny: []string{"pool.example"}}}
	for i := range DefaultMaxEntries {
		spec.Destinations = append(spec.Destinations, Destination{Host: fmt.Sprintf("svc-%d.shop.svc.cluster.local", i), Port: 443, Transport: "tcp",
			Addresses: []string{"10.0.0.1", "10.0.0.2"}, FirstSeen: fmtTime(t0), LastSeen: fmtTime(t0), Nodes: 2, Replicas: 3, SeenBy: []string{"node-a", "node-b"}})
	}
	ref, _ := RefOf(web)
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(APIVersion)
	u.SetKind(Kind)
	u.SetNamespace(ref.Namespace)
	u.SetName(ref.Name)
	if err := encodeSpec(u, &WorkloadProfile{Spec: spec}); err != nil {
		b.Fatal(err)
	}
	s.seen[web] = seenState{state: spec.State, deny: spec.Governance.Deny}
	b.Run("edited", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.edited(u); ok {
				b.Fatal("an unchanged spec read as an edit")
			}
		}
	})
	// What client-go does with every event before the watch sees it: the JSON into an
	// unstructured object.
	raw, err := u.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("client-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v unstructured.Unstructured
			if err := v.UnmarshalJSON(raw); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(raw)), "event-bytes")
	})
	// Now: the metadata of the event (what the metadata client decodes; the API server
	// sends it as protobuf, smaller still) and the decision that skips it.
	u.SetResourceVersion("123456")
	u.SetGeneration(7)
	u.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "minerguard"})
	s.seen[web] = seenState{state: spec.State, deny: spec.Governance.Deny, gen: 7}
	pm := partial(u)
	pm.UID, pm.CreationTimestamp = "93f3f60a-5c9e-46ff-bcad-7cefc47de59c", metav1.NewTime(t0)
	mraw, err := json.Marshal(pm)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("metadata-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v metav1.PartialObjectMetadata
			if err := json.Unmarshal(mraw, &v); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(mraw)), "event-bytes")
	})
	b.Run("skip", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		skipped := s.Stats().Skipped
		for b.Loop() {
			s.changed(ctx, ref.Namespace, ref.Name, 7, true)
		}
		if s.Stats().Skipped-skipped != uint64(b.N) || s.Stats().Fetches != 0 {
			b.Fatalf("not every event skipped: %+v", s.Stats())
		}
	})
	b.Run("decode-anchor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decode(u); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Other nodes' status writes are events whose generation did not move: they fetch nothing
// and sync nothing (no Get reaches the client); another node's spec write is fetched once
// and, not being an operator's edit, synced not; an operator's edit after them arrives.
func TestWatchSkipsStatusOnly(t *testing.T) {
	c := fakeClient()
	book := learned(t, tcp("api.example", 443))
	s := New(c, book, watchOpts(c, "a"))
	if err := s.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	watching(t, s)
	start := s.Stats()
	ref, _ := RefOf(web)
	rc := c.Resource(GVR).Namespace(ref.Namespace)
	u, err := rc.Get(context.Background(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.ClearActions()
	const burst = 50
	for i := range burst {
		u = u.DeepCopy()
		if err := unstructured.SetNestedSlice(u.Object, []any{map[string]any{"node": "node-x", "lastSync": fmtTime(t0.Add(time.Duration(i) * time.Second))}}, "status", "nodes"); err != nil {
			t.Fatal(err)
		}
		if u, err = rc.UpdateStatus(context.Background(), u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	netnstest.Eventually(t, 10*time.Second, "the burst's events", func() bool { return s.Stats().Events == start.Events+burst })
	gets := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == "get" {
			gets++
		}
	}
	if st := s.Stats(); gets != 0 || st.Skipped != start.Skipped+burst || st.Fetches != 0 || st.Syncs != start.Syncs || st.Writes != start.Writes {
		t.Fatalf("after %d status writes by node-x: %+v, %d Gets: want all skipped, nothing fetched or synced", burst, st, gets)
	}

	// Another node's spec write: a destination it learned.
	editSpec(t, c, func(sp *Spec) {
		sp.Destinations = append(sp.Destinations, Destination{Host: "cache.example", Port: 6379, Transport: "tcp", FirstSeen: fmtTime(t0), LastSeen: fmtTime(t0)})
	})
	netnstest.Eventually(t, 10*time.Second, "the spec write's event", func() bool { return s.Stats().Events == start.Events+burst+1 })
	if st := s.Stats(); st.Fetches != 1 || st.WatchSyncs != 0 || st.Syncs != start.Syncs {
		t.Fatalf("after another node's spec write: %+v, want it fetched once and not synced", st)
	}
	editSpec(t, c, denyPool)
	netnstest.Eventually(t, 10*time.Second, "the operator's deny synced", func() bool { return s.Stats().WatchSyncs == 1 })
	if !book.Check(web, tcp("pool.example", 3333), netip.Addr{}, t0).Poisoned {
		t.Fatal("the deny did not reach the Book")
	}
	if st := s.Stats(); st.Fetches != 2 {
		t.Fatalf("after the deny: %+v, want a second fetch", st)
	}
}

// A resource's name maps back to a workload of the Book: plainly named ones by their name,
// hashed ones (names too long for an object name) once indexed; others to none.
func TestWorkloadOf(t *testing.T) {
	long := "k8s/shop/Deployment/" + strings.Repeat("x", 250)
	book := learned(t, tcp("api.example", 443))
	book.Learn(long, profile.Observation{Dest: tcp("api.example", 443)}, t0)
	s := New(fakeClient(), book, Options{Node: "a"})
	lref, _ := RefOf(long)
	if lref.Name == "deployment-"+strings.Repeat("x", 250) {
		t.Fatalf("the long name was not hashed: %s", lref.Name)
	}
	if w := s.workloadOf("shop", "deployment-web"); w != web {
		t.Fatalf("deployment-web: %q", w)
	}
	if w := s.workloadOf("shop", lref.Name); w != "" {
		t.Fatalf("a hashed name before the index: %q", w)
	}
	s.index()
	if w := s.workloadOf("shop", lref.Name); w != long {
		t.Fatalf("a hashed name after the index: %q", w)
	}
	for _, name := range []string{"deployment-api", "statefulset-web", "web", "deployment-"} {
		if w := s.workloadOf("shop", name); w != "" {
			t.Fatalf("%s: %q, want none (not in the Book)", name, w)
		}
	}
	if w := s.workloadOf("other", "deployment-web"); w != "" {
		t.Fatalf("another namespace: %q", w)
	}
}
