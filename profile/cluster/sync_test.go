package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minerguard/minerguard/profile"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

const web = "k8s/shop/Deployment/web"

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// fakeClient is a dynamic client on an in-memory store that keeps metadata.generation as
// the API server does for the CRD (it has a status subresource): 1 at creation, one more
// for each write that changes the spec, unchanged by status writes.
func fakeClient() *dynamicfake.FakeDynamicClient {
	c := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GVR: "WorkloadProfileList"})
	c.PrependReactor("create", "workloadprofiles", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if u, ok := a.(k8stesting.CreateAction).GetObject().(*unstructured.Unstructured); ok {
			u.SetGeneration(1)
		}
		return false, nil, nil
	})
	c.PrependReactor("update", "workloadprofiles", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ua := a.(k8stesting.UpdateAction)
		u, ok := ua.GetObject().(*unstructured.Unstructured)
		if !ok {
			return false, nil, nil
		}
		cur, err := c.Tracker().Get(GVR, ua.GetNamespace(), u.GetName())
		if err != nil {
			return false, nil, nil // the tracker answers
		}
		cu := cur.(*unstructured.Unstructured)
		gen := cu.GetGeneration()
		if ua.GetSubresource() == "" && !reflect.DeepEqual(cu.Object["spec"], u.Object["spec"]) {
			gen++
		}
		u.SetGeneration(gen)
		return false, nil, nil
	})
	return c
}

func tcp(name string, port uint16) profile.Dest {
	return profile.Dest{Name: name, Port: port, Proto: profile.TCP}
}

// learned is a node's Book in which web learned dests and was promoted to monitoring.
func learned(t *testing.T, dests ...profile.Dest) *profile.Book {
	t.Helper()
	b := profile.NewMemory(profile.Config{Promote: profile.Learning})
	for _, d := range dests {
		b.Learn(web, profile.Observation{Dest: d, IP: netip.MustParseAddr("192.0.2.10"), Replica: "r1", Node: "a"}, t0)
	}
	if err := b.Approve(web, profile.Monitoring, t0); err != nil {
		t.Fatal(err)
	}
	return b
}

func get(t *testing.T, c *dynamicfake.FakeDynamicClient, ref Ref) WorkloadProfile {
	t.Helper()
	u, err := c.Resource(GVR).Namespace(ref.Namespace).Get(context.Background(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wp, err := decode(u)
	if err != nil {
		t.Fatal(err)
	}
	return wp
}

func TestRefOf(t *testing.T) {
	r, ok := RefOf(web)
	if !ok || r.Namespace != "shop" || r.Name != "deployment-web" || r.Workload.Kind != "Deployment" || r.Workload.Identity != web {
		t.Fatalf("RefOf(%s) = %+v, %v", web, r, ok)
	}
	// A name the mapping changes gets the identity's hash: two identities never share one.
	a, _ := RefOf("k8s/shop/StatefulSet/Web_1")
	b, _ := RefOf("k8s/shop/StatefulSet/web-1")
	if a.Name == b.Name || !strings.HasPrefix(a.Name, "statefulset-web-1-") || b.Name != "statefulset-web-1" {
		t.Fatalf("names %q and %q", a.Name, b.Name)
	}
	long, ok := RefOf("k8s/shop/Job/" + strings.Repeat("x", 253))
	if !ok || len(long.Name) > 253 {
		t.Fatalf("long name %d bytes, %v", len(long.Name), ok)
	}
	for _, id := range []string{"netns/web", "host/eth0", "k8s/shop/Thing/web", "k8s/Shop/Deployment/web", "k8s/shop/Deployment/"} {
		if _, ok := RefOf(id); ok {
			t.Errorf("RefOf(%q) is a cluster profile", id)
		}
	}
}

func TestMergeInto(t *testing.T) {
	spec := Spec{MaxEntries: 3}
	pa := profile.Profile{Entries: []profile.Entry{
		{Dest: tcp("api.example", 443), First: t0, IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		{Dest: profile.Dest{Addr: netip.MustParsePrefix("198.51.100.0/24"), Port: 53, Proto: profile.UDP}, First: t0},
	}}
	if ch, dr := mergeInto(&spec, pa, "a", t0); !ch || dr != 0 || len(spec.Destinations) != 2 {
		t.Fatalf("first merge: changed %v dropped %d, %+v", ch, dr, spec.Destinations)
	}
	pb := profile.Profile{Entries: []profile.Entry{
		{Dest: tcp("api.example", 443), First: t0.Add(-time.Hour), IPs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
		{Dest: tcp("db.example", 5432), First: t0},
		{Dest: tcp("extra.example", 80), First: t0}, // over the cap of 3
	}}
	ch, dr := mergeInto(&spec, pb, "b", t0.Add(time.Minute))
	if !ch || dr != 1 || len(spec.Destinations) != 3 {
		t.Fatalf("second merge: changed %v dropped %d, %+v", ch, dr, spec.Destinations)
	}
	api := spec.Destinations[1]
	if api.Host != "api.example" || api.Nodes != 2 || api.FirstSeen != fmtTime(t0.Add(-time.Hour)) ||
		strings.Join(api.SeenBy, ",") != "a,b" || strings.Join(api.Addresses, ",") != "192.0.2.1,192.0.2.2" {
		t.Fatalf("merged destination %+v", api)
	}
	if spec.Destinations[0].Host != "198.51.100.0/24" || spec.Destinations[0].Transport != "udp" {
		t.Fatalf("prefix destination %+v", spec.Destinations[0])
	}
	// The same again changes nothing: no write.
	if ch, _ := mergeInto(&spec, pb, "b", t0.Add(2*time.Minute)); ch {
		t.Fatal("a merge of what the resource holds changed it")
	}
	// Round trip to the profile's form.
	es := entriesOf(&spec)
	if len(es) != 3 || es[1].Name != "api.example" || len(es[1].IPs) != 2 || es[0].Addr.Bits() != 24 {
		t.Fatalf("entries %+v", es)
	}
}

// Node A's learning reaches node B, where web is new: B judges it by A's profile at once.
func TestSyncThenAdopt(t *testing.T) {
	c := fakeClient()
	a := New(c, learned(t, tcp("api.example", 443), tcp("db.example", 5432)), Options{Node: "a", Now: func() time.Time { return t0 }})
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ref, _ := RefOf(web)
	wp := get(t, c, ref)
	if wp.Spec.State != "monitoring" || len(wp.Spec.Destinations) != 2 || wp.Spec.Workload.Identity != web {
		t.Fatalf("resource after A's sync: %+v", wp.Spec)
	}
	if len(wp.Status.Nodes) != 1 || wp.Status.Nodes[0].Node != "a" || wp.Status.Nodes[0].Learned != 2 || wp.Status.Destinations != 2 {
		t.Fatalf("status %+v", wp.Status)
	}

	bb := profile.NewMemory(profile.Config{})
	b := New(c, bb, Options{Node: "b", Now: func() time.Time { return t0 }})
	if err := b.Adopt(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	if r := bb.Check(web, tcp("pool.example", 3333), netip.Addr{}, t0); !r.Exists || r.In || r.State != profile.Monitoring {
		t.Fatalf("B's verdict on a destination out of the cluster's profile: %+v", r)
	}
	if r := bb.Check(web, tcp("db.example", 5432), netip.Addr{}, t0); !r.In {
		t.Fatalf("B's verdict on a destination A learned: %+v", r)
	}
	if st := b.Stats(); st.Adopted != 1 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A workload the cluster does not know is left to learn locally; non-Kubernetes ones too.
	if err := b.Adopt(context.Background(), "k8s/shop/Deployment/other"); err != nil {
		t.Fatal(err)
	}
	if _, ok := bb.State("k8s/shop/Deployment/other"); ok {
		t.Fatal("an unknown workload got a profile")
	}
	// Nothing changed: a second sync writes nothing.
	before := len(c.Actions())
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, act := range c.Actions()[before:] {
		if act.GetVerb() != "get" {
			t.Fatalf("an idle sync wrote: %v", act)
		}
	}
}

// A write that loses the compare-and-swap is merged again into the newer resource.
func TestSyncRetriesConflict(t *testing.T) {
	c := fakeClient()
	a := New(c, learned(t, tcp("api.example", 443)), Options{Node: "a"})
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once atomic.Bool
	c.PrependReactor("update", "workloadprofiles", func(act k8stesting.Action) (bool, runtime.Object, error) {
		if act.GetSubresource() == "" && once.CompareAndSwap(false, true) {
			return true, nil, apierrors.NewConflict(GVR.GroupResource(), "deployment-web", errors.New("stale resourceVersion"))
		}
		return false, nil, nil
	})
	b := New(c, learned(t, tcp("db.example", 5432)), Options{Node: "b"})
	if err := b.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ref, _ := RefOf(web)
	if wp := get(t, c, ref); len(wp.Spec.Destinations) != 2 {
		t.Fatalf("after the retried write: %+v", wp.Spec.Destinations)
	}
	if st := b.Stats(); st.Conflicts != 1 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// With the API server down the node keeps its learning, logs once, and pushes it when the
// server is back.
func TestSyncDownThenCatchUp(t *testing.T) {
	c := fakeClient()
	var down atomic.Bool
	down.Store(true)
	c.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			// What client-go returns when nothing listens.
			return true, nil, &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/apis", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
		}
		return false, nil, nil
	})
	var logs bytes.Buffer
	book := learned(t, tcp("api.example", 443))
	s := New(c, book, Options{Node: "a", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		if err := s.Sync(context.Background()); err == nil {
			t.Fatal("sync succeeded with the API server down")
		}
	}
	if err := s.Adopt(context.Background(), "k8s/shop/Deployment/new"); err == nil {
		t.Fatal("adopt succeeded with the API server down")
	}
	if st := s.Stats(); !st.Down || st.Errors != 3 {
		t.Fatalf("stats while down %+v", st)
	}
	if n := strings.Count(logs.String(), "unreachable"); n != 1 {
		t.Fatalf("logged %d times while down:\n%s", n, logs.String())
	}
	// Learned while down (the Book is the cache), then the server comes back.
	book.Learn(web, profile.Observation{Dest: tcp("late.example", 443)}, t0) // monitoring: not learned
	if _, err := book.AddEntries(web, []profile.Entry{{Dest: tcp("late.example", 443)}}, t0); err != nil {
		t.Fatal(err)
	}
	down.Store(false)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ref, _ := RefOf(web)
	if wp := get(t, c, ref); len(wp.Spec.Destinations) != 2 {
		t.Fatalf("after catching up: %+v", wp.Spec.Destinations)
	}
	if st := s.Stats(); st.Down || st.CatchUps != 1 {
		t.Fatalf("stats after catching up %+v", st)
	}
}

// A resource the API server refuses (here: a profile object that names another workload, as
// a hand-made one might) is that workload's problem: logged once, counted, and the server is
// not marked down, so other workloads still adopt the cluster's profiles.
func TestRefusedResourceIsNotAnOutage(t *testing.T) {
	c := fakeClient()
	a := New(c, learned(t, tcp("api.example", 443)), Options{Node: "a"})
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ref, _ := RefOf(web)
	u, err := c.Resource(GVR).Namespace(ref.Namespace).Get(context.Background(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedField(u.Object, "k8s/shop/Deployment/impostor", "spec", "workload", "identity")
	if _, err := c.Resource(GVR).Namespace(ref.Namespace).Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	book := learned(t, tcp("db.example", 5432))
	b := New(c, book, Options{Node: "b", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		if err := b.SyncOne(context.Background(), web); err == nil {
			t.Fatal("a sync into a resource naming another workload succeeded")
		}
	}
	if st := b.Stats(); st.Down || st.Errors != 3 {
		t.Fatalf("stats after refusals: %+v", st)
	}
	if n := strings.Count(logs.String(), "refused"); n != 1 || strings.Contains(logs.String(), "unreachable") {
		t.Fatalf("logged %d refusals:\n%s", n, logs.String())
	}
	// Another workload's profile is still adopted: the server was never marked down.
	const api = "k8s/shop/Deployment/api"
	ab := profile.NewMemory(profile.Config{Promote: profile.Learning})
	ab.Learn(api, profile.Observation{Dest: tcp("cache.example", 6379), IP: netip.MustParseAddr("192.0.2.11"), Replica: "r1", Node: "c"}, t0)
	if err := ab.Approve(api, profile.Monitoring, t0); err != nil {
		t.Fatal(err)
	}
	if err := New(c, ab, Options{Node: "c"}).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Adopt(context.Background(), api); err != nil {
		t.Fatalf("adopting another workload after the refusals: %v", err)
	}
	if st, ok := book.State(api); !ok || st != profile.Monitoring {
		t.Fatalf("B's state of %s after adopting: %v %v", api, st, ok)
	}
}

// An operator's kubectl edit of the resource reaches every node's Book.
func TestOperatorEdits(t *testing.T) {
	c := fakeClient()
	ab := learned(t, tcp("api.example", 443), tcp("pool.example", 3333))
	a := New(c, ab, Options{Node: "a"})
	if err := a.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	ref, _ := RefOf(web)
	edit := func(f func(*Spec)) {
		t.Helper()
		rc := c.Resource(GVR).Namespace(ref.Namespace)
		u, err := rc.Get(context.Background(), ref.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wp, _ := decode(u)
		f(&wp.Spec)
		if err := encodeSpec(u, &wp); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Approve to enforcing and deny a destination.
	edit(func(s *Spec) {
		s.State = "enforcing"
		s.Governance = &Governance{Deny: []string{"pool.example:3333"}}
	})
	if err := a.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	if st, _ := ab.State(web); st != profile.Enforcing {
		t.Fatalf("state after the operator approved enforcing: %v", st)
	}
	if r := ab.Check(web, tcp("pool.example", 3333), netip.Addr{}, t0); r.In || !r.Poisoned {
		t.Fatalf("denied destination: %+v", r)
	}
	// Relearn: the node clears its profile and the resource's, and the flag.
	edit(func(s *Spec) { s.Governance.Relearn = true })
	if err := a.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	p, _ := ab.Get(web)
	wp := get(t, c, ref)
	if p.State != profile.Learning || len(p.Entries) != 0 || wp.Spec.State != "learning" || wp.Spec.Governance.Relearn || len(wp.Spec.Destinations) != 0 {
		t.Fatalf("after relearn: local %v %d entries; resource %+v", p.State, len(p.Entries), wp.Spec)
	}
	// Another node that had the old profile follows the cluster back to learning.
	bb := learned(t, tcp("api.example", 443))
	b := New(c, bb, Options{Node: "b"})
	b.seen[web] = seenState{state: "monitoring"}
	if err := b.SyncOne(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	if st, _ := bb.State(web); st != profile.Learning {
		t.Fatalf("B's state after the cluster relearned: %v", st)
	}
}
