package profile

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenReopenEqualsCommitted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "profiles.db") // the directory is created
	cfg := Config{MinReplicas: 2}
	b, err := Open(path, cfg, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	o := obs(named("api.example", 443), "192.0.2.1")
	o.Replica = "a"
	b.Learn("k8s/default/Deployment/web", o, t0)
	o.Replica = "b"
	b.Learn("k8s/default/Deployment/web", o, t0.Add(time.Second))
	o = obs(named("candidate.example", 443), "192.0.2.9")
	b.Learn("k8s/default/Deployment/web", o, t0.Add(time.Second))
	b.Poison("k8s/default/Deployment/web", named("pool.example", 3333), t0)
	b.Poison("k8s/default/Deployment/web", Dest{Addr: netip.MustParsePrefix("203.0.113.0/24")}, t0)
	b.SetImage("k8s/default/Deployment/web", "registry.example/web@sha256:abc", t0)
	b.Put(Profile{Workload: "netns/db", State: Enforcing, Since: t0.In(time.FixedZone("X", 3600)), Entries: []Entry{
		{Dest: Dest{Addr: netip.MustParsePrefix("10.1.0.0/16"), Port: 5432, Proto: TCP}, First: t0},
		{Dest: Dest{Addr: netip.MustParsePrefix("2001:db8::1/128"), Port: 53, Proto: UDP, App: "dns"}},
	}})
	b.Check("netns/new", named("x.example", 443), ip("192.0.2.1"), t0)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	want := b.Profiles()
	b.Learn("netns/new", obs(named("uncommitted.example", 443), "192.0.2.1"), t0) // Close commits it
	if err := b.Delete("netns/db"); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	want = want[:1]
	b2, err := Open(path, cfg, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	got := b2.Profiles()
	if len(got) != 2 || got[1].Workload != "netns/new" || len(got[1].Candidates) != 1 {
		t.Fatalf("after reopen: %+v", got)
	}
	if !reflect.DeepEqual(got[:1], want) {
		t.Errorf("after reopen:\n got %+v\nwant %+v", got[:1], want)
	}
	if s := b2.Stats(); s.Commits != 0 || s.Profiles != 2 {
		t.Errorf("stats after reopen %+v", s)
	}
	if r := b2.Check("k8s/default/Deployment/web", Dest{Port: 443, Proto: TCP}, ip("192.0.2.1"), t0); !r.In {
		t.Errorf("reopened book does not match: %+v", r)
	}
}

func TestOpenSecondInstanceFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profiles.db")
	b, err := Open(path, Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	start := time.Now()
	_, err = Open(path, Config{}, 200*time.Millisecond)
	if err == nil {
		t.Fatal("second Open succeeded")
	}
	want := fmt.Sprintf("profile state %s is in use by another minerguard (pid %d)", path, os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second Open took %v with a 200ms timeout", d)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profiles.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		m, _ := tx.CreateBucket(bucketMeta)
		return m.Put(keySchema, []byte("2"))
	})
	db.Close()
	_, err = Open(path, Config{}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "schema version 2 is newer than this minerguard understands (1)") {
		t.Fatalf("Open of a schema-2 state: %v", err)
	}
	// Not a bbolt file at all.
	os.WriteFile(path, []byte("hello"), 0o600)
	if _, err := Open(path, Config{}, time.Second); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of garbage: %v", err)
	}
	if _, err := Open(path, Config{MaxEntries: -1}, time.Second); err == nil {
		t.Fatal("invalid config accepted")
	}
}

// crashBatch is batch i of the L3 child: three new names and one more address for an old
// one, at a packet time derived from i, so the parent can rebuild any batch.
func crashBatch(b *Book, i int) {
	now := t0.Add(time.Duration(i) * time.Second)
	for j := range 3 {
		b.Learn("k8s/ns/Deployment/app", obs(named(fmt.Sprintf("n%d-%d.example", i, j), 443), "192.0.2.1"), now)
	}
	b.Learn("k8s/ns/Deployment/app", obs(named("n1-0.example", 443), fmt.Sprintf("198.51.%d.%d", i/256, i%256)), now)
	b.Poison("k8s/ns/Deployment/other", named(fmt.Sprintf("pool%d.example", i), 3333), now)
}

var crashCfg = Config{MaxEntries: 100000, MaxIPsPerName: 100000}

// TestCrashChild is the process the L3 test kills: it learns and commits batches forever.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("MINERGUARD_PROFILE_CRASH_CHILD")
	if path == "" {
		t.Skip("run by TestL3KillDuringLearning")
	}
	b, err := Open(path, crashCfg, 5*time.Second)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	for i := 1; i < 100000; i++ {
		crashBatch(b, i)
		if err := b.Commit(); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Printf("committed %d\n", i)
	}
	os.Exit(0)
}

// docs/testing.md L3: kill -9 during learning; the profile after restart equals the last
// committed one.
func TestL3KillDuringLearning(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "profiles.db")
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), "MINERGUARD_PROFILE_CRASH_CHILD="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 3 + rand.IntN(40)
		// Read to EOF: lines the child printed before it died are still in the pipe, and the
		// last one is the N to compare with.
		last, killed := 0, false
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "error") {
				cmd.Process.Kill()
				t.Fatal(line)
			}
			if n, ok := strings.CutPrefix(line, "committed "); ok {
				last, _ = strconv.Atoi(n)
				if last >= killAt && !killed {
					// A random moment inside a later batch or commit.
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
				}
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child ended before it was killed (last commit %d)", round, last)
		}
		b, err := Open(path, crashCfg, time.Second)
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		got := b.Profiles()
		b.Close()
		matched := -1
		for _, n := range []int{last, last + 1} {
			ref := NewMemory(crashCfg)
			for i := 1; i <= n; i++ {
				crashBatch(ref, i)
			}
			if reflect.DeepEqual(got, ref.Profiles()) {
				matched = n
				break
			}
		}
		if matched < 0 {
			t.Fatalf("round %d: killed after \"committed %d\": the state equals no committed batch (%d profiles, %d entries)",
				round, last, len(got), len(got[0].Entries))
		}
		t.Logf("round %d: killed after \"committed %d\", state = batch %d", round, last, matched)
	}
}

// Opening and checking write nothing: a checking replay leaves the state byte for byte.
func TestOpenWritesNothingUnlessChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profiles.db")
	b, err := Open(path, Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b.Learn("w", obs(named("api.example", 443), "192.0.2.1"), t0)
	b.Close()
	before, _ := os.ReadFile(path)

	b, err = Open(path, Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("Open+Close without changes rewrote the state")
	}

	r1, err := OpenReadOnly(path, Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := OpenReadOnly(path, Config{}, time.Second) // readers share the file
	if err != nil {
		t.Fatal(err)
	}
	if r := r1.Check("w", named("api.example", 443), ip("192.0.2.1"), t0); !r.In {
		t.Errorf("read-only check: %+v", r)
	}
	r1.Check("new", named("x.example", 443), ip("192.0.2.1"), t0) // creates a profile in memory
	r1.Learn("w", obs(named("more.example", 443), "192.0.2.2"), t0)
	if err := r1.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Config{}, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "in use by another minerguard") {
		t.Errorf("Open beside readers: %v", err)
	}
	r1.Close()
	r2.Close()
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a read-only Book wrote the state")
	}
	if _, err := OpenReadOnly(filepath.Join(t.TempDir(), "none.db"), Config{}, time.Second); err == nil {
		t.Error("read-only open of a missing file succeeded")
	}
}

// A failed commit is counted and its changes stay pending for the next one.
func TestCommitErrorKeepsChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profiles.db")
	b, err := Open(path, Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b.Learn("w", obs(named("api.example", 443), "192.0.2.1"), t0)
	db := b.db
	db.Close() // the disk goes away under the Book
	if err := b.Commit(); err == nil {
		t.Fatal("commit to a closed database succeeded")
	}
	if s := b.Stats(); s.CommitErrors != 1 || s.Commits != 0 {
		t.Fatalf("stats %+v", s)
	}
	b.db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Commits != 1 {
		t.Fatalf("stats %+v", s)
	}
	b.Close()
	b, err = Open(path, Config{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if p, ok := b.Get("w"); !ok || len(p.Entries) != 1 {
		t.Errorf("the retried commit lost the entry: %+v", p)
	}
}

// Check, Learn, Tick and Commit from several goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "profiles.db"), Config{MinFlows: 50, Quiet: -1}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				w := fmt.Sprintf("w%d", i%3)
				d := named(fmt.Sprintf("n%d.example", i%20), 443)
				switch g {
				case 0:
					b.Learn(w, obs(d, "192.0.2.1"), t0)
				case 1:
					b.Check(w, d, ip("192.0.2.1"), t0)
				case 2:
					b.Tick(t0.Add(time.Duration(i) * time.Second))
					b.Poison(w, named("pool.example", 3333), t0)
				case 3:
					if err := b.Commit(); err != nil {
						t.Error(err)
					}
					b.List()
					b.Stats()
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	if s := b.Stats(); s.Profiles != 3 || s.Learning+s.Monitoring != 3 {
		t.Errorf("stats %+v", s)
	}
}
