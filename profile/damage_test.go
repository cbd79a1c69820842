package profile_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/statetest"
)

// Every kind of damaged state file is refused by Open and OpenReadOnly with a DamagedError
// (never a panic or a fault), neither moves it; OpenOrRecover moves it aside byte for byte,
// starts an empty state in its place, and a workload that was enforcing in the lost file
// learns again.
func TestDamagedStateKinds(t *testing.T) {
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	for _, k := range statetest.Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "profiles.db")
			statetest.Make(t, path)
			k.Damage(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for name, open := range map[string]func(string, profile.Config, time.Duration) (*profile.Book, error){
				"Open": profile.Open, "OpenReadOnly": profile.OpenReadOnly,
			} {
				b, err := open(path, profile.Config{}, time.Second)
				var de *profile.DamagedError
				if !errors.As(err, &de) || de.Path != path || de.Reason == "" {
					if b != nil {
						b.Close()
					}
					t.Fatalf("%s: %v, want a DamagedError", name, err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: the error is more than one line: %q", name, err)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
					t.Fatalf("%s changed or moved the damaged file", name)
				}
			}
			b, rec, err := profile.OpenOrRecover(path, profile.Config{}, time.Second, now)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			want := path + ".damaged-20261207T110000Z"
			if rec == nil || rec.Path != path || rec.MovedTo != want || rec.Reason == "" {
				t.Fatalf("recovery %+v, want the file moved to %s", rec, want)
			}
			if kept, err := os.ReadFile(want); err != nil || !bytes.Equal(kept, before) {
				t.Fatalf("the damaged file was not kept as it was: %v", err)
			}
			if n := len(b.List()); n != 0 {
				t.Errorf("%d profiles after recovery, want none", n)
			}
			r := b.Check(statetest.Workload, profile.Dest{Name: "svc01.internal.example", Port: 443, Proto: profile.TCP},
				netip.MustParseAddr("10.1.0.1"), now)
			if r.State != profile.Learning || r.In {
				t.Errorf("a workload of the lost state: %+v, want learning again", r)
			}
			t.Logf("%s: %s", k.Name, rec.Reason)
		})
	}
}

// The same file undamaged opens with every profile, and a second recovery in the same second
// does not overwrite the first file moved aside.
func TestUndamagedStateAndSecondRecovery(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "profiles.db")
	statetest.Make(t, path)
	b, rec, err := profile.OpenOrRecover(path, profile.Config{}, time.Second, time.Now())
	if err != nil || rec != nil {
		t.Fatalf("an undamaged state: %v, %+v", err, rec)
	}
	if p, ok := b.Get(statetest.Workload); !ok || p.State != profile.Enforcing || len(b.List()) != 120 {
		t.Fatalf("loaded %d profiles, %s %v", len(b.List()), statetest.Workload, p.State)
	}
	b.Close()
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	for i, want := range []string{".damaged-20261207T110000Z", ".damaged-20261207T110000Z-1"} {
		if err := os.Truncate(path, 100); err != nil {
			t.Fatal(err)
		}
		b, rec, err := profile.OpenOrRecover(path, profile.Config{}, time.Second, now)
		if err != nil || rec == nil || rec.MovedTo != path+want {
			t.Fatalf("recovery %d: %v, %+v", i, err, rec)
		}
		b.Close()
	}
}

// A state file held by a running writer is not damage: OpenOrRecover waits for the lock and
// fails naming the holder, and moves nothing.
func TestRecoverNeverMovesALockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profiles.db")
	held, err := profile.Open(path, profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, rec, err := profile.OpenOrRecover(path, profile.Config{}, 200*time.Millisecond, time.Now())
	if err == nil || rec != nil || !strings.Contains(err.Error(), "in use by another minerguard") {
		t.Fatalf("%v, %+v", err, rec)
	}
	if m, _ := filepath.Glob(path + ".damaged-*"); len(m) != 0 {
		t.Fatalf("moved: %v", m)
	}
}

// FuzzOpenState opens arbitrary bytes as a state file, read-only and for writing: a book or
// an error, never a crash (a SIGBUS or a wild read in the mapping kills the fuzz worker, and
// is reported as one). Seeded with a real state and its damaged kinds.
func FuzzOpenState(f *testing.F) {
	dir := f.TempDir()
	for _, k := range append([]statetest.Kind{{Name: "intact", Damage: func(testing.TB, string) {}}}, statetest.Kinds()...) {
		p := filepath.Join(dir, k.Name)
		small(f, p, k.Name)
		k.Damage(f, p)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "profiles.db")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if bk, err := profile.OpenReadOnly(p, profile.Config{}, time.Second); err == nil {
			bk.List()
			bk.Close()
		}
		if bk, err := profile.Open(p, profile.Config{}, time.Second); err == nil {
			bk.Learn("fuzz/w", profile.Observation{Dest: profile.Dest{Port: 443, Proto: profile.TCP}, IP: netip.MustParseAddr("192.0.2.1")}, time.Now())
			bk.Commit()
			bk.Close()
		}
	})
}

// small writes a state of a few profiles: one 32 KiB file, so the fuzzer's mutations land in
// the structure rather than in bulk.
func small(t testing.TB, path, kind string) {
	t.Helper()
	if kind == "data-page-scribbled" || kind == "profile-value-scribbled" { // need a branch page, or Make's values
		statetest.Make(t, path)
		return
	}
	b, err := profile.Open(path, profile.Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for w := range 3 {
		b.Learn(statetest.Workload+string(rune('a'+w)), profile.Observation{Dest: profile.Dest{Name: "api.example", Port: 443, Proto: profile.TCP},
			IP: netip.MustParseAddr("192.0.2.1")}, time.Now())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
