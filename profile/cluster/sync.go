package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minerguard/minerguard/internal/tick"
	"github.com/minerguard/minerguard/profile"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
)

// Options configure a Syncer.
type Options struct {
	Node    string        // this node's name: its status entry and its mark in seenBy
	Timeout time.Duration // per API request (default 5s)
	Logger  *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Refresh: a workload whose local profile did not change since its last sync is synced
	// again only after this long (default 5m), so an idle node costs the API server little;
	// while the watch is broken, it bounds how long an operator's edit takes to reach a node
	// whose profile is idle.
	Refresh time.Duration
	// Retry paces the attempts of a write that lost a compare-and-swap (default: 12 tries,
	// from 10 ms doubling to 2 s, jittered).
	Retry *wait.Backoff
	// WatchRetry paces the attempts to re-establish a broken watch (default: from 0.5 s
	// doubling to 15 s, jittered).
	WatchRetry *wait.Backoff
	// Metadata is the client Watch lists and watches with: metadata only, so another node's
	// status write costs this node a few hundred bytes, not the whole resource. NewForConfig
	// makes it beside the dynamic client; Watch does nothing without it.
	Metadata metadata.Interface
}

// Stats are the Syncer's counters.
type Stats struct {
	Syncs     uint64 // workloads synced (read, merged, written when something changed)
	Writes    uint64 // resource writes (spec or status) that succeeded
	Conflicts uint64 // writes that lost a compare-and-swap and were retried
	Errors    uint64 // syncs that failed (the API server down, refused writes)
	CatchUps  uint64 // times the API server came back and the node's learning was pushed
	Adopted   uint64 // workloads new to this node that took the cluster's profile
	Dropped   uint64 // destinations the resource's cap left out
	Down      bool   // the last request failed

	// The watch (Watch): operators' edits as they happen.
	Events        uint64 // watch events received (added, modified, deleted WorkloadProfiles)
	WatchSyncs    uint64 // workloads synced because an event or a relist carried a cluster edit
	WatchRestarts uint64 // watches established again after the API server went away or dropped them
	Relists       uint64 // lists after the first: the watch's resourceVersion had expired
	Skipped       uint64 // events of known workloads whose generation had not moved: only status or metadata changed
	Fetches       uint64 // resources read in full because an event or a relist showed a new generation
	Watching      bool   // a watch is established
}

// Syncer merges one node's profile.Book with the cluster's WorkloadProfiles. It is safe for
// concurrent use; the Book stays the engine's source of truth on the packet path.
type Syncer struct {
	client dynamic.Interface
	book   *profile.Book
	o      Options
	log    *slog.Logger

	mu   sync.Mutex
	seen map[string]seenState // workload → the resource as this node last read or wrote it
	last map[string]syncMark  // workload → its local profile at its last successful sync
	refs map[refKey]string    // resource → the workload of the Book it belongs to (see workloadOf)

	refused sync.Map // workload → true: its refusal is logged (failed), until it syncs again

	syncs, writes, conflicts, errs, catchUps, adopted, dropped   atomic.Uint64
	events, watchSyncs, watchRestarts, relists, skipped, fetches atomic.Uint64
	down, watching                                               atomic.Bool
}

// syncMark is a local profile's fingerprint at its last successful sync.
type syncMark struct {
	sum profile.Summary
	at  time.Time
}

// seenState is what a node remembers of a resource between syncs, to tell the cluster's
// changes (an operator's kubectl edit, another node's promotion) from its own.
type seenState struct {
	state string
	deny  []string
	gen   int64 // metadata.generation of the spec taken: a status write does not move it
}

// New returns a Syncer of book through client.
func New(client dynamic.Interface, book *profile.Book, o Options) *Syncer {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Minute
	}
	if o.Retry == nil {
		// Jittered and growing: nodes that lost to each other do not collide again in step.
		o.Retry = &wait.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Jitter: 1, Steps: 12, Cap: 2 * time.Second}
	}
	if o.WatchRetry == nil {
		o.WatchRetry = &defaultWatchRetry
	}
	return &Syncer{client: client, book: book, o: o, log: o.Logger, seen: map[string]seenState{}, last: map[string]syncMark{}, refs: map[refKey]string{}}
}

// NewForConfig returns a Syncer of book reaching the API server through rc: the dynamic
// client its syncs read and write with, and the metadata client its watch uses.
func NewForConfig(rc *rest.Config, book *profile.Book, o Options) (*Syncer, error) {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	if o.Metadata, err = metadata.NewForConfig(rc); err != nil {
		return nil, err
	}
	return New(dyn, book, o), nil
}

// Stats returns the counters.
func (s *Syncer) Stats() Stats {
	return Stats{Syncs: s.syncs.Load(), Writes: s.writes.Load(), Conflicts: s.conflicts.Load(),
		Errors: s.errs.Load(), CatchUps: s.catchUps.Load(), Adopted: s.adopted.Load(),
		Dropped: s.dropped.Load(), Down: s.down.Load(),
		Events: s.events.Load(), WatchSyncs: s.watchSyncs.Load(), WatchRestarts: s.watchRestarts.Load(),
		Relists: s.relists.Load(), Skipped: s.skipped.Load(), Fetches: s.fetches.Load(), Watching: s.watching.Load()}
}

// Adopt gives a workload new to this node the cluster's profile, before its first flow is
// judged: its learned destinations and its state. A workload the cluster does not know (or
// not a Kubernetes workload) is left to learn locally. While the API server is known to be
// down it returns at once: the node judges from its cache and Run catches up.
func (s *Syncer) Adopt(ctx context.Context, workload string) error {
	ref, ok := RefOf(workload)
	if !ok {
		return nil
	}
	if s.down.Load() {
		return errorf("adopting %s: API server unreachable; judging from the local cache", workload)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	u, err := s.client.Resource(GVR).Namespace(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s.up()
		return nil
	}
	if err != nil {
		s.failed(workload, err)
		return errorf("adopting %s: %w", workload, err)
	}
	s.up()
	wp, err := decode(u)
	if err != nil || wp.Spec.Workload.Identity != workload {
		return errorf("adopting %s: resource %s/%s is not its profile: %v", workload, ref.Namespace, ref.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, had := s.book.State(workload)
	s.apply(workload, &wp.Spec, u.GetGeneration())
	s.refs[refKey{ref.Namespace, ref.Name}] = workload
	if !had {
		s.adopted.Add(1)
	}
	return nil
}

// Run syncs every interval until ctx ends: with Watch, the backstop for the edits a broken
// watch missed; without it, how edits arrive.
func (s *Syncer) Run(ctx context.Context, every time.Duration) {
	tick.Every(ctx, every, func(time.Time) {
		s.Sync(ctx) //nolint:errcheck // counted and logged inside
	})
}

// Sync merges every Kubernetes workload of the Book with its resource: the cluster's changes
// come in, this node's learning goes out. It returns the first error; the others are
// counted. A failure leaves the Book as it was, to be pushed at the next Sync.
func (s *Syncer) Sync(ctx context.Context) error {
	var first error
	now := s.o.Now()
	for _, sum := range s.book.List() {
		if _, ok := RefOf(sum.Workload); !ok {
			continue
		}
		s.mu.Lock()
		m, ok := s.last[sum.Workload]
		s.mu.Unlock()
		if ok && m.sum == sum && now.Sub(m.at) < s.o.Refresh && !s.down.Load() {
			continue // nothing learned here since, and the cluster's edits can wait
		}
		if err := s.SyncOne(ctx, sum.Workload); err != nil && first == nil {
			first = err
			if s.down.Load() {
				break // the rest would wait for the same timeout
			}
		}
	}
	return first
}

// SyncOne merges one workload's profile with its resource (compare-and-swap on
// resourceVersion, retried on conflict).
func (s *Syncer) SyncOne(ctx context.Context, workload string) error {
	ref, ok := RefOf(workload)
	if !ok {
		return nil
	}
	s.mu.Lock() // one sync per node at a time: the seen map follows the Book
	defer s.mu.Unlock()
	wasDown := s.down.Load()
	rc := s.client.Resource(GVR).Namespace(ref.Namespace)
	var after *WorkloadProfile
	var out *unstructured.Unstructured
	var dropped int
	outer := ctx
	err := retry.RetryOnConflict(*s.o.Retry, func() error {
		ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		defer cancel()
		now := s.o.Now()
		u, err := rc.Get(ctx, ref.Name, metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		if err != nil && !create {
			return err
		}
		var wp WorkloadProfile
		if create {
			u = &unstructured.Unstructured{}
			u.SetAPIVersion(APIVersion)
			u.SetKind(Kind)
			u.SetNamespace(ref.Namespace)
			u.SetName(ref.Name)
			u.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "minerguard"})
			wp.Spec.Workload = ref.Workload
		} else if wp, err = decode(u); err != nil {
			return err
		}
		if wp.Spec.Workload.Identity != workload {
			return errorf("resource %s/%s names workload %q, not %q", ref.Namespace, ref.Name, wp.Spec.Workload.Identity, workload)
		}
		before := copySpec(wp.Spec)
		if !create {
			s.apply(workload, &wp.Spec, u.GetGeneration())
		}
		relearn := wp.Spec.Governance != nil && wp.Spec.Governance.Relearn
		if relearn {
			// An operator asked for relearning: this node clears the cluster's profile
			// (the others follow the state change) and its own.
			if err := s.book.Reset(workload, now); err != nil && !errors.Is(err, profile.ErrNoProfile) {
				return err
			}
			wp.Spec.Governance.Relearn = false
			wp.Spec.Destinations = nil
			wp.Spec.State = profile.Learning.String()
			if wp.Spec.Learning == nil {
				wp.Spec.Learning = &Learning{}
			}
			wp.Spec.Learning.Started = fmtTime(now)
		}
		local, ok := s.book.Get(workload)
		if !ok {
			return nil // nothing learned here (MaxProfiles): nothing to give
		}
		// The node's own state change (its learning window ended) goes to the cluster; the
		// cluster's changes were applied to the Book above, so they agree unless this node
		// moved since.
		if st := stateName(local.State); st != wp.Spec.State && !relearn {
			wp.Spec.State = st
			if local.State == profile.Learning {
				if wp.Spec.Learning == nil {
					wp.Spec.Learning = &Learning{}
				}
				wp.Spec.Learning.Started = fmtTime(local.Since)
			}
		}
		if wp.Spec.Learning == nil {
			wp.Spec.Learning = &Learning{Started: fmtTime(local.Since)}
		}
		_, dropped = mergeInto(&wp.Spec, local, s.o.Node, now)
		specChanged := create || !reflect.DeepEqual(before, wp.Spec)
		if specChanged {
			if err := encodeSpec(u, &wp); err != nil {
				return err
			}
			stripManagedFields(u)
			if create {
				u, err = rc.Create(ctx, u, metav1.CreateOptions{FieldManager: "minerguard"})
				if apierrors.IsAlreadyExists(err) {
					s.conflicts.Add(1)
					return apierrors.NewConflict(GVR.GroupResource(), ref.Name, err) // another node created it first: merge into theirs
				}
				if err == nil && len(u.GetManagedFields()) > 0 {
					// A create makes its writer the owner of every field it set, and asking
					// to strip does not apply to creates (nor to status writes): one update
					// strips them, or the metadata of every later status write carries them.
					u = s.stripCreated(outer, rc, u)
				}
			} else {
				u, err = rc.Update(ctx, u, metav1.UpdateOptions{FieldManager: "minerguard"})
			}
			if apierrors.IsConflict(err) {
				s.conflicts.Add(1)
			}
			if err != nil {
				return err
			}
			s.writes.Add(1)
		}
		s.dropped.Add(uint64(dropped))
		// The generation of what this node read or just wrote: the event of its own spec write
		// carries it, so the watch does not fetch it again.
		s.seen[workload] = seenState{state: wp.Spec.State, deny: denyOf(&wp.Spec), gen: u.GetGeneration()}
		s.refs[refKey{ref.Namespace, ref.Name}] = workload
		after, out = &wp, u
		return nil
	})
	if err == nil && after != nil {
		err = s.writeStatus(ctx, rc, out, ref.Name, workload, dropped)
	}
	s.syncs.Add(1)
	if err != nil {
		s.failed(workload, err)
		return errorf("syncing %s: %w", workload, err)
	}
	if sum, ok := s.book.Summary(workload); ok { // the Book after the merge: what the next Sync compares with
		s.last[workload] = syncMark{sum: sum, at: s.o.Now()}
	}
	if wasDown {
		s.catchUps.Add(1)
		s.log.Info("API server reachable again: pushed what this node learned meanwhile", "workload", workload)
	}
	s.up()
	s.refused.Delete(workload)
	return nil
}

// writeStatus sets this node's status entry and the totals (status subresource,
// compare-and-swap from the object the spec write returned).
func (s *Syncer) writeStatus(ctx context.Context, rc dynamic.ResourceInterface, u *unstructured.Unstructured, name, workload string, dropped int) error {
	local, _ := s.book.Get(workload)
	return retry.RetryOnConflict(*s.o.Retry, func() error {
		ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		defer cancel()
		if u == nil {
			var err error
			if u, err = rc.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		cur, err := decode(u)
		if err != nil {
			return err
		}
		st := cur.Status
		limit := cur.Spec.maxEntries()
		want := NodeStatus{Node: s.o.Node, State: stateName(local.State), Learned: learnedBy(&cur.Spec, s.o.Node)}
		st.Destinations = len(cur.Spec.Destinations)
		// The most one node could not add: nodes see the same cap, and summing their
		// repeated attempts would count one destination many times.
		st.Dropped = max(st.Dropped, int64(dropped))
		st.Truncated = st.Dropped > 0 && st.Destinations >= limit
		st.Message = ""
		if st.Truncated {
			st.Message = "destinations capped at spec.maxEntries: this profile is incomplete; raise maxEntries (at most 2048) or relearn"
		}
		i := slices.IndexFunc(st.Nodes, func(n NodeStatus) bool { return n.Node == s.o.Node })
		if i >= 0 {
			old := st.Nodes[i]
			old.LastSync, want.LastSync = "", ""
			if reflect.DeepEqual(old, want) && reflect.DeepEqual(st, cur.Status) &&
				s.o.Now().Sub(parseTime(cur.Status.Nodes[i].LastSync)) < statusEvery {
				return nil // nothing new: no write
			}
		}
		want.LastSync = fmtTime(s.o.Now())
		st.Nodes = slices.Clone(st.Nodes)
		if i >= 0 {
			st.Nodes[i] = want
		} else {
			st.Nodes = append(st.Nodes, want)
		}
		cur.Status = st
		if err := encodeStatus(u, &cur); err != nil {
			return err
		}
		stripManagedFields(u)
		_, err = rc.UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "minerguard"})
		if apierrors.IsConflict(err) {
			s.conflicts.Add(1)
			u = nil // read it again
		}
		if err == nil {
			s.writes.Add(1)
		}
		return err
	})
}

// stripCreated strips the managedFields a create recorded, with requests of its own time
// budget (the create's may be spent: a loaded API server took more than Timeout for a create
// and an update of a full profile), retried on a conflict (from the resource as it is now) or a
// failure, a few times. It returns the resource as last written or read; if every try fails,
// the next spec write strips them.
func (s *Syncer) stripCreated(parent context.Context, rc dynamic.ResourceInterface, u *unstructured.Unstructured) *unstructured.Unstructured {
	for try := 0; try < 3 && parent.Err() == nil; try++ {
		ctx, cancel := context.WithTimeout(parent, s.o.Timeout)
		stripManagedFields(u)
		v, err := rc.Update(ctx, u, metav1.UpdateOptions{FieldManager: "minerguard"})
		if err == nil {
			cancel()
			s.writes.Add(1)
			return v
		}
		if apierrors.IsConflict(err) {
			s.conflicts.Add(1)
		}
		g, gerr := rc.Get(ctx, u.GetName(), metav1.GetOptions{})
		cancel()
		if gerr == nil {
			if len(g.GetManagedFields()) == 0 {
				return g // another write stripped them
			}
			u = g
		}
	}
	s.log.Warn("cluster profiles: could not strip a new profile's field ownership; the next spec write does (until then its watch events are large)", "resource", u.GetName())
	return u
}

// stripManagedFields asks the API server to drop the resource's managedFields before this
// write records its own: kept, the API server's field ownership lists every destination
// (spec.destinations is a list-map) and every node's status entry, about as large as the
// spec, and the metadata every node's watch receives at every write would carry it. The
// sensors write with compare-and-swap updates, never server-side apply, so no one relies
// on it; the write leaves ownership of only the fields it changed.
func stripManagedFields(u *unstructured.Unstructured) {
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{}})
}

// statusEvery refreshes a node's lastSync even when nothing changed, so a node that stopped
// syncing shows.
const statusEvery = 5 * time.Minute

// apply brings the cluster's changes into the Book: the destinations other nodes learned,
// the state when it changed in the cluster since this node last looked (an operator's edit,
// another node's promotion), and deny entries new to this node; gen is the resource's
// generation the spec is of. Caller holds mu.
func (s *Syncer) apply(workload string, spec *Spec, gen int64) {
	now := s.o.Now()
	prev, known := s.seen[workload]
	cs, err := profile.ParseState(spec.State)
	if err != nil {
		cs = profile.Learning
	}
	ls, had := s.book.State(workload)
	switch {
	case !had || !known && cs > ls:
		// New to this node, or this node restarted behind the cluster: take its state.
		if cs == profile.Learning {
			break
		}
		if _, err := s.book.AddEntries(workload, entriesOf(spec), now); err == nil {
			s.book.Approve(workload, cs, now) //nolint:errcheck // the profile exists: AddEntries made it
		}
	case known && prev.state != spec.State && cs != ls:
		if cs == profile.Learning {
			s.book.Reset(workload, now) //nolint:errcheck // it exists (had)
		} else {
			s.book.Approve(workload, cs, now) //nolint:errcheck // it exists (had)
		}
	}
	if _, err := s.book.AddEntries(workload, entriesOf(spec), now); err != nil {
		s.log.Warn("taking the cluster's profile", "workload", workload, "err", err)
	}
	for _, d := range denyOf(spec) {
		if slices.Contains(prev.deny, d) {
			continue
		}
		if dest, ok := parseDeny(d); ok {
			s.book.Poison(workload, dest, now)
		}
	}
	s.seen[workload] = seenState{state: spec.State, deny: denyOf(spec), gen: gen}
}

func denyOf(spec *Spec) []string {
	if spec.Governance == nil {
		return nil
	}
	return spec.Governance.Deny
}

// parseDeny reads a governance deny entry: a name, an address or a CIDR, optionally with
// ":port" (the port is not kept: a denied host is denied on every port, the stricter reading).
func parseDeny(s string) (profile.Dest, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return profile.Dest{Addr: netip.PrefixFrom(a, a.BitLen())}, true
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return profile.Dest{Addr: p.Masked()}, true
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		return parseDeny(h)
	}
	if s == "" {
		return profile.Dest{}, false
	}
	return profile.Dest{Name: s}, true
}

// failed records a failed request: the first failure after a success is logged, the rest
// only counted (an API server down for an hour must not fill the log).
// failed counts a failed request. Only an API server that did not answer (unreachable) is
// marked down, which makes Adopt return at once until a request succeeds again; a refusal of
// one resource (invalid, forbidden, not the workload's profile) is that workload's problem,
// logged once for it, and leaves adoption of the others alone.
func (s *Syncer) failed(workload string, err error) {
	s.errs.Add(1)
	if !unreachable(err) {
		if _, logged := s.refused.LoadOrStore(workload, true); !logged {
			s.log.Warn("cluster profiles: the API server refused this workload's profile; it is judged from the local cache", "workload", workload, "err", err)
		}
		return
	}
	if !s.down.Swap(true) {
		s.log.Warn("cluster profiles: API server unreachable; judging from the local cache and catching up later", "err", err)
	}
}

// unreachable reports whether err says the API server did not answer or could not serve:
// the connection failed or timed out, or it answered 5xx or 429.
func unreachable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return true
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return true
	}
	return false
}

func (s *Syncer) up() { s.down.Store(false) }

// decode reads the resource's spec and status.
func decode(u *unstructured.Unstructured) (WorkloadProfile, error) {
	var wp WorkloadProfile
	err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &wp)
	return wp, err
}

func encodeSpec(u *unstructured.Unstructured, wp *WorkloadProfile) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&wp.Spec)
	if err != nil {
		return err
	}
	u.Object["spec"] = m
	return nil
}

func encodeStatus(u *unstructured.Unstructured, wp *WorkloadProfile) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&wp.Status)
	if err != nil {
		return err
	}
	u.Object["status"] = m
	return nil
}

// copySpec copies what a merge may change, so that the copy tells whether it did.
func copySpec(s Spec) Spec {
	c := s
	c.Destinations = slices.Clone(s.Destinations) // nil stays nil: DeepEqual tells them apart
	for i, d := range c.Destinations {
		d.Addresses, d.SeenBy = slices.Clone(d.Addresses), slices.Clone(d.SeenBy)
		c.Destinations[i] = d
	}
	if s.Learning != nil {
		l := *s.Learning
		c.Learning = &l
	}
	if s.Governance != nil {
		g := *s.Governance
		g.Deny = slices.Clone(g.Deny)
		c.Governance = &g
	}
	return c
}
