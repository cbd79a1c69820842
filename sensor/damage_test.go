package sensor

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/statetest"
	"github.com/minerguard/minerguard/xdp"
)

// A damaged profile state never stops the sensor: for every kind of damage a real sensor
// starts, becomes ready and captures; the file is moved aside as it was; one error names both
// paths; minerguard_state_recoveries_total is 1; and the workload it then sees learns (no
// profile of the lost file survives to enforce).
func TestSensorStartsOnDamagedState(t *testing.T) {
	netnstest.RequireRoot(t)
	web, pool := netnstest.New(t, "dmg"), netnstest.New(t, "dpool")
	_, poolIP := netnstest.Veth(t, web, pool, 41)
	serve(t, pool, poolIP+":8080")
	for _, k := range statetest.Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "profiles.db")
			statetest.Make(t, state)
			k.Damage(t, state)
			before, err := os.ReadFile(state)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Default()
			cfg.Netns = []string{web}
			cfg.Web.ListenAddress = "127.0.0.1:0"
			cfg.StateDir = dir
			logs := &syncBuf{}
			s, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)), &syncBuf{})
			if err != nil {
				t.Fatalf("the sensor refused to start: %v", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			netnstest.Eventually(t, 5*time.Second, "sensor ready", s.Ready)

			moved, _ := filepath.Glob(state + ".damaged-*")
			if len(moved) != 1 {
				t.Fatalf("moved aside: %v, want one file", moved)
			}
			if kept, _ := os.ReadFile(moved[0]); !bytes.Equal(kept, before) {
				t.Errorf("%s is not the damaged file as it was", moved[0])
			}
			var errs []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "level=ERROR") {
					errs = append(errs, l)
				}
			}
			if len(errs) != 1 || !strings.Contains(errs[0], "state="+state) || !strings.Contains(errs[0], "moved_to="+moved[0]) {
				t.Errorf("want one error naming %s and %s, got:\n%s", state, moved[0], strings.Join(errs, "\n"))
			}
			m := scrape(t, s)
			for _, want := range []string{"minerguard_state_recoveries_total 1", `minerguard_profiles{state="enforcing"} 0`} {
				if !strings.Contains(m, want) {
					t.Errorf("metrics lack %q", want)
				}
			}
			if n := len(s.book.List()); n != 0 {
				t.Errorf("%d profiles after the recovery", n)
			}
			// It watches: a flow of the workload is seen and starts a learning profile.
			talk(t, web, poolIP+":8080", "hello\n")
			wl := "netns/" + web
			netnstest.Eventually(t, 5*time.Second, "a profile for "+wl, func() bool { _, ok := s.book.Get(wl); return ok })
			if p, _ := s.book.Get(wl); p.State != profile.Learning {
				t.Errorf("%s: %v, want learning", wl, p.State)
			}
		})
	}
}

// In enforce mode the pinned profile drops of a previous run go with the lost state: the
// workload learns again, so nothing it does may stay dropped for being out of a profile that
// no longer exists. A miner's block (a pool) stays.
func TestDamagedStateDropsLostProfileBlocks(t *testing.T) {
	l := newRoutedLab(t, 81)
	wl := "netns/" + l.Work
	m, err := xdp.Open(xdp.Options{PinPath: l.pinPath})
	if err != nil {
		t.Skipf("no XDP here: %v", err)
	}
	notInProfile := netip.MustParsePrefix("10.199.82.2/32")
	pool := netip.MustParsePrefix("192.0.2.66/32")
	if err := m.BlockDest(wl, notInProfile, 8443, 6, uint32(detect.ReasonNotInProfile)); err != nil {
		t.Fatal(err)
	}
	if err := m.BlockDest(wl, pool, 0, 0, uint32(detect.ReasonPoolIP)); err != nil {
		t.Fatal(err)
	}
	m.Close() // the pins stay, as after a sensor's stop

	dir := t.TempDir()
	statetest.Make(t, filepath.Join(dir, "profiles.db"))
	statetest.Kinds()[0].Damage(t, filepath.Join(dir, "profiles.db"))
	cfg := l.config()
	cfg.Profiles.Enabled = true
	cfg.StateDir = dir
	s, _ := startEnforcing(t, cfg)
	if _, ok := s.enf.m.DestBlock(wl, notInProfile, 8443, 6); ok {
		t.Error("the lost profile's drop is still installed")
	}
	if _, ok := s.enf.m.DestBlock(wl, pool, 0, 0); !ok {
		t.Error("the pool's block went with the profile's")
	}
	if !strings.Contains(scrape(t, s), "minerguard_state_recoveries_total 1") {
		t.Error("the recovery is not counted")
	}
}
