package cluster

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
// governance.deny) to this node as they happen, until ctx ends: an event whose spec
// differs from what this node last read or wrote for a workload it knows syncs that
// workload (SyncOne: the same apply, relearn and write-back a periodic Sync makes). Events
// of this node's own writes match what it last wrote and are no-ops, so they never cause
// writes. A broken watch is re-established with back-off, from the last resourceVersion, or
// by listing again when that expired (an edit made meanwhile is then found in the list);
// the outage is logged once and counted. Run's periodic Sync stays the backstop.
func (s *Syncer) Watch(ctx context.Context) {
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
		w, err := s.client.Resource(GVR).Watch(ctx, metav1.ListOptions{
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
		u, isU := ev.Object.(*unstructured.Unstructured)
		if !isU {
			continue
		}
		rv = u.GetResourceVersion()
		switch ev.Type {
		case watch.Added, watch.Modified:
			if workload, edited := s.edited(u); edited {
				s.watchSync(ctx, workload)
			}
			s.events.Add(1)
		case watch.Deleted:
			// The next Sync writes the profile again from this node's Book.
			s.events.Add(1)
		}
	}
}

// relist reads every WorkloadProfile (in pages) for the resourceVersion to watch from, and
// syncs the workloads whose resources changed while the watch was not running.
func (s *Syncer) relist(ctx context.Context) (string, error) {
	opts := metav1.ListOptions{Limit: 100}
	var rv string
	var todo []string // synced after the list: a sync between pages could outlive the continue token
	for {
		lctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		l, err := s.client.Resource(GVR).List(lctx, opts)
		cancel()
		if err != nil {
			return "", errorf("listing WorkloadProfiles: %w", err)
		}
		if rv == "" {
			rv = l.GetResourceVersion() // the snapshot every page is read at
		}
		for i := range l.Items {
			if workload, edited := s.edited(&l.Items[i]); edited {
				todo = append(todo, workload)
			}
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			break
		}
	}
	for _, workload := range todo {
		s.watchSync(ctx, workload)
	}
	return rv, nil
}

// edited reports whether u is the resource of a workload this node knows and holds a spec
// this node has not taken yet: a state, relearn request or deny list other than what it
// last read or wrote. Only what edited needs is decoded: every node's status write is an
// event to every node.
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
