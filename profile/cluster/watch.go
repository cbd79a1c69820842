package cluster

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
)

// watchTimeout is how long one watch request is asked to last (jittered up to twice that, so
// nodes do not renew in step); renewing bounds how long a connection that died without a
// word (a vanished load balancer) can hold the watch.
const watchTimeout = 5 * time.Minute

// errWatchEnded is a watch stream that closed before its own timeout: the API server went
// away or dropped it.
var errWatchEnded = errors.New("watch closed by the API server before its timeout")

// Watch brings operators' edits of WorkloadProfiles (spec.state, governance.relearn,
// governance.deny) to this node as they happen, until ctx ends. It watches metadata only
// (Options.Metadata): every node's status write is an event to every node, and a full
// object is up to ~120 KB. An event of a workload this node knows whose metadata.generation
// moved since this node last read or wrote it (the CRD's status subresource keeps status
// writes from moving it) fetches the resource; when its spec differs from what this node
// last took (state, relearn, deny), the workload is synced (SyncOne: the same apply,
// relearn and write-back a periodic Sync makes). Events of status writes and of this node's
// own spec writes carry a generation it has seen and fetch nothing, so they never cause
// writes either. A broken watch is re-established with back-off, from the last resourceVersion, or
// by listing again when that expired (an edit made meanwhile is then found in the list);
// the outage is logged once and counted. Run's periodic Sync stays the backstop.
func (s *Syncer) Watch(ctx context.Context) {
	if s.o.Metadata == nil {
		s.log.Error("cluster profiles: no metadata client (Options.Metadata); operators' edits arrive by the periodic sync only")
		return
	}
	b := *s.o.WatchRetry
	var rv string
	list := true    // no resourceVersion to watch from yet, or it expired
	outage := false // from the first failure until a watch is established again
	pause := func() {
		t := time.NewTimer(b.Step())
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	fail := func(err error) {
		if !outage {
			outage = true
			s.log.Warn("cluster profiles: lost the watch of WorkloadProfiles; operators' edits arrive by the periodic sync until it is back", "err", err)
		}
		pause()
	}
	listed := false
	for ctx.Err() == nil {
		if list {
			if listed {
				s.relists.Add(1)
			}
			var err error
			if rv, err = s.relist(ctx); err != nil {
				fail(err)
				continue
			}
			list, listed = false, true
		}
		timeout := int64((watchTimeout + rand.N(watchTimeout)) / time.Second)
		w, err := s.o.Metadata.Resource(GVR).Watch(ctx, metav1.ListOptions{
			ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout,
		})
		if err != nil {
			switch {
			case ctx.Err() != nil:
			case expired(err):
				// Too far behind the API server's history: list again. Not an outage; the
				// pause only keeps a misbehaving server from making this a busy loop.
				list = true
				pause()
			default:
				fail(err)
			}
			continue
		}
		if outage {
			outage = false
			s.watchRestarts.Add(1)
			s.log.Info("cluster profiles: watching WorkloadProfiles again")
		}
		s.watching.Store(true)
		start := time.Now()
		rv, err = s.consume(ctx, w, rv)
		w.Stop()
		s.watching.Store(false)
		if time.Since(start) >= time.Minute {
			// A stream that held a while starts the back-off afresh; one dropped at once by a
			// flapping server keeps growing it.
			b = *s.o.WatchRetry
		}
		switch {
		case ctx.Err() != nil:
		case expired(err):
			list = true // the stream was fine until its history ran out
			pause()
		case err != nil:
			fail(err)
		case time.Since(start) < time.Duration(timeout)*time.Second*9/10:
			fail(errWatchEnded)
		}
	}
}

// consume handles a watch's events until it ends, returning the last resourceVersion seen
// and, when the stream ended on an error event, that error.
func (s *Syncer) consume(ctx context.Context, w watch.Interface, rv string) (string, error) {
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			return rv, nil
		}
		if ev.Type == watch.Error {
			return rv, apierrors.FromObject(ev.Object)
		}
		m, err := meta.Accessor(ev.Object) // a PartialObjectMetadata; a bookmark's too
		if err != nil {
			continue
		}
		rv = m.GetResourceVersion()
		switch ev.Type {
		case watch.Added, watch.Modified:
			s.changed(ctx, m.GetNamespace(), m.GetName(), m.GetGeneration(), true)
			s.events.Add(1)
		case watch.Deleted:
			// The next Sync writes the profile again from this node's Book.
			s.events.Add(1)
		}
	}
}

// relist reads every WorkloadProfile's metadata (in pages) for the resourceVersion to watch
// from, and syncs the workloads whose resources changed while the watch was not running.
func (s *Syncer) relist(ctx context.Context) (string, error) {
	s.index()
	opts := metav1.ListOptions{Limit: 500}
	var rv string
	var todo []metav1.ObjectMeta // handled after the list: a sync between pages could outlive the continue token
	for {
		lctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		l, err := s.o.Metadata.Resource(GVR).List(lctx, opts)
		cancel()
		if err != nil {
			return "", errorf("listing WorkloadProfiles: %w", err)
		}
		if rv == "" {
			rv = l.GetResourceVersion() // the snapshot every page is read at
		}
		for i := range l.Items {
			if m := &l.Items[i].ObjectMeta; s.workloadOf(m.Namespace, m.Name) != "" {
				todo = append(todo, *m)
			}
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			break
		}
	}
	for _, m := range todo {
		s.changed(ctx, m.Namespace, m.Name, m.Generation, false)
	}
	return rv, nil
}

// changed handles a resource whose metadata the watch or a relist saw, with its
// generation: nothing for a resource of no workload this node knows, nor for a generation
// this node has seen (a status or metadata write, or the echo of its own spec write:
// counted as skipped when event); a sync for a workload whose resource it never read; else
// the resource is fetched, and synced when its spec carries an operator's edit.
func (s *Syncer) changed(ctx context.Context, ns, name string, gen int64, event bool) {
	workload := s.workloadOf(ns, name)
	if workload == "" {
		return // Adopt takes it when the workload appears on this node
	}
	s.mu.Lock()
	prev, known := s.seen[workload]
	s.mu.Unlock()
	switch {
	case !known:
		s.watchSync(ctx, workload)
		return
	case gen == prev.gen:
		if event {
			s.skipped.Add(1)
		}
		return
	case ctx.Err() != nil:
		return
	}
	gctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	u, err := s.client.Resource(GVR).Namespace(ns).Get(gctx, name, metav1.GetOptions{})
	cancel()
	switch {
	case apierrors.IsNotFound(err) || ctx.Err() != nil:
		return // deleted since: the next Sync writes it again
	case err != nil:
		s.failed(workload, err) // the periodic Sync retries
		return
	}
	s.fetches.Add(1)
	if _, edited := s.edited(u); edited {
		s.watchSync(ctx, workload)
		return
	}
	// Another node's spec write (its destinations, which the periodic Sync merges): nothing
	// for the watch to do, and its later status writes need no fetch.
	s.mu.Lock()
	if cur, ok := s.seen[workload]; ok && cur.gen < u.GetGeneration() {
		cur.gen = u.GetGeneration()
		s.seen[workload] = cur
	}
	s.mu.Unlock()
}

// refKey is a resource's namespace and name.
type refKey struct{ ns, name string }

// workloadOf is the workload of the Book whose resource ns/name is, or "". A resource named
// as RefOf names it plainly ("KIND-NAME") maps back to its identity; a hashed name is found
// among the workloads this node synced, adopted or held at the last relist (index).
func (s *Syncer) workloadOf(ns, name string) string {
	s.mu.Lock()
	w, ok := s.refs[refKey{ns, name}]
	s.mu.Unlock()
	if ok {
		if _, had := s.book.State(w); had {
			return w
		}
	}
	for _, k := range kindPrefixes {
		rest, ok := strings.CutPrefix(name, k.prefix)
		if !ok || rest == "" {
			continue
		}
		w := "k8s/" + ns + "/" + k.kind + "/" + rest
		if ref, ok := RefOf(w); ok && ref.Name == name {
			if _, had := s.book.State(w); had {
				return w
			}
		}
	}
	return ""
}

// kindPrefixes are the kinds as resource names start with them ("deployment-").
var kindPrefixes = func() (out []struct{ prefix, kind string }) {
	for kind := range kinds {
		out = append(out, struct{ prefix, kind string }{strings.ToLower(kind) + "-", kind})
	}
	return out
}()

// index maps the resources of every Kubernetes workload of the Book to their workloads,
// dropping those the Book no longer holds.
func (s *Syncer) index() {
	refs := map[refKey]string{}
	for _, sum := range s.book.List() {
		if ref, ok := RefOf(sum.Workload); ok {
			refs[refKey{ref.Namespace, ref.Name}] = sum.Workload
		}
	}
	s.mu.Lock()
	s.refs = refs
	s.mu.Unlock()
}

// edited reports whether u is the resource of a workload this node knows and holds a spec
// this node has not taken yet: a state, relearn request or deny list other than what it
// last read or wrote. Only what edited needs is decoded.
func (s *Syncer) edited(u *unstructured.Unstructured) (string, bool) {
	workload, _, _ := unstructured.NestedString(u.Object, "spec", "workload", "identity")
	ref, ok := RefOf(workload)
	if !ok || ref.Namespace != u.GetNamespace() || ref.Name != u.GetName() {
		return "", false // not a profile this sensor reads (SyncOne would refuse it too)
	}
	if _, had := s.book.State(workload); !had {
		return "", false // Adopt takes it when the workload appears on this node
	}
	state, _, _ := unstructured.NestedString(u.Object, "spec", "state")
	var g Governance
	if m, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "governance"); ok {
		if gm, ok := m.(map[string]any); ok {
			runtime.DefaultUnstructuredConverter.FromUnstructured(gm, &g) //nolint:errcheck // a malformed one is what SyncOne reports
		}
	}
	s.mu.Lock()
	prev, known := s.seen[workload]
	s.mu.Unlock()
	return workload, !known || g.Relearn || prev.state != state || !slices.Equal(prev.deny, g.Deny)
}

// watchSync syncs a workload the cluster edited; a failure is counted and logged by SyncOne
// and the periodic Sync retries it.
func (s *Syncer) watchSync(ctx context.Context, workload string) {
	if ctx.Err() != nil {
		return // stopping: not an API server failure
	}
	if err := s.SyncOne(ctx, workload); err == nil {
		s.watchSyncs.Add(1)
	}
}

// expired reports a resourceVersion older than the API server's history: the watch must
// start again from a list.
func expired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// defaultWatchRetry paces attempts to re-establish a broken watch: from half a second,
// doubling to 15 s, jittered so the nodes of a cluster do not return to a restarted API
// server in step.
var defaultWatchRetry = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: 15 * time.Second}
