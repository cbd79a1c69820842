package tick

import (
	"context"
	"testing"
	"time"
)

// Every calls f once a tick, not before the first, and returns when ctx ends.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	var calls []time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, 10*time.Millisecond, func(now time.Time) {
			calls = append(calls, now)
			if len(calls) == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if len(calls) != 3 || !calls[0].After(start) || !calls[1].After(calls[0]) || !calls[2].After(calls[1]) {
		t.Fatalf("calls at %v (start %v)", calls, start)
	}
}
