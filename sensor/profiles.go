package sensor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/minerguard/minerguard/internal/tick"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/cluster"
	"github.com/minerguard/minerguard/xdp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeConfig reaches the API server: from a kubeconfig file, or with the pod's service
// account when path is empty.
func kubeConfig(path string) (*rest.Config, error) {
	if path == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("profiles.backend kubernetes: not in a pod (%v); set profiles.kubeconfig", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("profiles.kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// openCluster makes the sync of the node's profiles with the cluster's WorkloadProfiles.
// Nothing is requested yet: an API server down at start is the same as one down later.
func openCluster(cfg Config, b *profile.Book, node string, log *slog.Logger) (*cluster.Syncer, error) {
	rc, err := kubeConfig(cfg.Profiles.Kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.UserAgent = "minerguard/" + node
	s, err := cluster.NewForConfig(rc, b, cluster.Options{Node: node, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("profiles.backend kubernetes: %w", err)
	}
	return s, nil
}

// adoptTimeout bounds the wait for the cluster's profile of a workload new to the node; past
// it the workload starts learning locally and the next sync merges.
const adoptTimeout = 2 * time.Second

// adopt gives a workload new to this node the cluster's profile before its first flow.
func (s *Sensor) adopt(workload string) {
	ctx, cancel := context.WithTimeout(context.Background(), adoptTimeout)
	defer cancel()
	if err := s.cluster.Adopt(ctx, workload); err != nil {
		s.log.Debug("no cluster profile for a workload new to this node: it is judged from the local cache", "workload", workload, "err", err)
	}
}

// openProfiles opens the learned profile state of a live sensor. A second sensor on the same
// state fails after a short wait with a message saying so, instead of hanging. A damaged
// state never stops the sensor: it is moved aside (kept for forensics) and an empty one
// started, which the returned Recovery reports.
func openProfiles(cfg Config) (*profile.Book, *profile.Recovery, error) {
	p := cfg.Profiles
	pc := profile.Config{
		Window: p.Window, Quiet: p.Quiet, MinFlows: p.MinFlows, MaxEntries: p.MaxEntries,
		MaxIPsPerName: p.MaxIPsPerName, MinReplicas: p.MinReplicas,
		RelearnOnImageChange: p.RelearnOnImageChange, Deny: p.Deny,
	}
	if p.Quiet == 0 {
		pc.Quiet = -1 // no quiet period asked for
	}
	switch {
	case cfg.Mode == "learn" || p.Promote == "manual":
		pc.Promote = profile.Learning
	case p.Promote == "enforcing":
		pc.Promote = profile.Enforcing
	default:
		pc.Promote = profile.Monitoring
	}
	path := cfg.ProfileState()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("profiles.state %s: %w (set state_dir or profiles.state to a writable directory)", path, err)
	}
	b, rec, err := profile.OpenOrRecover(path, pc, 3*time.Second, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("profiles.state: %w", err)
	}
	return b, rec, nil
}

// recovered reports a damaged state that was moved aside: one error naming both files,
// counted in minerguard_state_recoveries_total.
func (s *Sensor) recovered(rec *profile.Recovery) {
	s.recoveries.Add(1)
	s.log.Error("profile state was damaged: moved it aside and started with no profiles; every workload learns again",
		"state", rec.Path, "moved_to", rec.MovedTo, "damage", rec.Reason)
}

// clearProfileBlocks removes the pinned XDP blocks that a lost profile stood behind (a
// previous run's out-of-profile drops): with the state gone every workload learns again, and
// a learning workload enforces no profile. A miner's blocks stay.
func (e *enforcer) clearProfileBlocks() {
	all, err := e.m.Blocks()
	if err != nil {
		e.log.Warn("listing XDP blocks to remove those of the lost profiles", "err", err)
		return
	}
	wids := map[uint64]bool{}
	for _, b := range all {
		if slices.Contains(profileReasons, b.Reason) {
			wids[b.WorkloadID] = true
		}
	}
	n := 0
	for wid := range wids {
		c, err := e.m.Clear(wid, func(b xdp.Entry) bool { return slices.Contains(profileReasons, b.Reason) })
		n += c
		if err != nil {
			e.log.Warn("removing the XDP blocks of a lost profile", "err", err)
		}
	}
	if n > 0 {
		e.log.Info("removed the XDP profile blocks of the lost profiles", "blocks", n)
	}
}

// runProfiles commits what was learned and ends learning windows every interval until ctx
// ends, then commits a last time. Ended windows are logged; a profile that goes back to
// learning (its image changed) has its profile drops removed.
func (s *Sensor) runProfiles(ctx context.Context, every time.Duration) {
	// Shutdown commits the last batch.
	tick.Every(ctx, every, func(now time.Time) {
		for _, tr := range s.book.Tick(now) {
			s.log.Info("profile state changed", "workload", tr.Workload, "from", tr.From, "to", tr.To, "reason", tr.Reason)
			s.profileMoved(tr.Workload, tr.From, tr.To)
		}
		if err := s.book.Commit(); err != nil {
			s.log.Warn("committing learned profiles; kept in memory and retried", "err", err)
		}
	})
}
