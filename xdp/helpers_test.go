package xdp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/minerguard/minerguard/internal/netnstest"
)

// openTest opens a Manager pinned under its own /sys/fs/bpf/minerguard-test-<random> and
// removes every pin at cleanup. It skips when BPF/XDP is unusable here.
func openTest(t testing.TB, o Options) *Manager {
	t.Helper()
	netnstest.RequireRoot(t)
	b := make([]byte, 4)
	rand.Read(b)
	if o.PinPath == "" {
		o.PinPath = "/sys/fs/bpf/minerguard-test-" + hex.EncodeToString(b)
	}
	m, err := Open(o)
	if errors.Is(err, ErrUnsupported) {
		netnstest.SkipReal(t, "BPF/XDP unusable here: %v", err)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Remove(); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	return m
}

func counterDelta(after, before Stats) map[string]uint64 {
	d := map[string]uint64{}
	add := func(name string, a, b uint64) {
		if a != b {
			d[name] = a - b
		}
	}
	add("passed", after.Passed, before.Passed)
	add("dropped_flow", after.DroppedFlow, before.DroppedFlow)
	add("dropped_dest", after.DroppedDest, before.DroppedDest)
	add("flagged_flow", after.FlaggedFlow, before.FlaggedFlow)
	add("flagged_dest", after.FlaggedDest, before.FlaggedDest)
	add("failed_open", after.FailedOpen, before.FailedOpen)
	add("not_parsed", after.NotParsed, before.NotParsed)
	add("bypass", after.Bypass, before.Bypass)
	return d
}
