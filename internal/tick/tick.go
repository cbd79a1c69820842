// Package tick owns the periodic loop the long-running parts share (the sensor's jobs, the
// cluster profile sync, the XDP heartbeat): call a function every interval until the context
// ends.
package tick

import (
	"context"
	"time"
)

// Every calls f with each tick's time, every d, until ctx is done; the first call comes after
// d, not at once.
func Every(ctx context.Context, d time.Duration, f func(now time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}
