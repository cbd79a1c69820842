package sensor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/minerguard/minerguard/profile"
)

// openProfiles opens the learned profile state of a live sensor. A second sensor on the same
// state fails after a short wait with a message saying so, instead of hanging.
func openProfiles(cfg Config) (*profile.Book, error) {
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
		return nil, fmt.Errorf("profiles.state %s: %w (set state_dir or profiles.state to a writable directory)", path, err)
	}
	b, err := profile.Open(path, pc, 3*time.Second)
	if err != nil {
		return nil, fmt.Errorf("profiles.state: %w", err)
	}
	return b, nil
}

// runProfiles commits what was learned and ends learning windows every interval until ctx
// ends, then commits a last time. Ended windows are logged; a profile that goes back to
// learning (its image changed) has its profile drops removed.
func (s *Sensor) runProfiles(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return // shutdown commits the last batch
		case now := <-t.C:
			for _, tr := range s.book.Tick(now) {
				s.log.Info("profile state changed", "workload", tr.Workload, "from", tr.From, "to", tr.To, "reason", tr.Reason)
				s.profileMoved(tr.Workload, tr.From, tr.To)
			}
			if err := s.book.Commit(); err != nil {
				s.log.Warn("committing learned profiles; kept in memory and retried", "err", err)
			}
		}
	}
}
