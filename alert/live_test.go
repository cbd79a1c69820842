package alert

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type slowWriter struct {
	mu      sync.Mutex
	n       int
	release chan struct{}
}

func (s *slowWriter) Write(*Event) error { <-s.release; s.mu.Lock(); s.n++; s.mu.Unlock(); return nil }
func (s *slowWriter) Flush() error       { return nil }

// A stalled writer never blocks Alert: the queue fills, the rest is dropped and counted.
func TestQueueNeverBlocks(t *testing.T) {
	w := &slowWriter{release: make(chan struct{})}
	q := NewQueue(w, 10, nil)
	e := sample()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			q.Alert(e)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Alert blocked on a stalled writer")
	}
	close(w.release)
	q.Close()
	st := q.Stats()
	if st.Written+st.Dropped != 1000 || st.Dropped < 900 || st.Written != uint64(w.n) {
		t.Fatalf("stats %+v, writer saw %d", st, w.n)
	}
}

func TestRateLimiter(t *testing.T) {
	r := NewRateLimiter(1, 3)
	t0 := time.Unix(100, 0)
	got := 0
	for i := 0; i < 10; i++ {
		if r.Allow("web", t0) {
			got++
		}
	}
	if got != 3 || !r.Allow("db", t0) {
		t.Fatalf("burst: %d", got)
	}
	if !r.Allow("web", t0.Add(1100*time.Millisecond)) || r.Allow("web", t0.Add(1100*time.Millisecond)) {
		t.Fatal("refill: want exactly one token after 1.1 s")
	}
}

func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "alerts.json")
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("one\n"))
	os.Rename(p, p+".1") // logrotate moves the file away
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("two\n"))
	a, _ := os.ReadFile(p + ".1")
	b, _ := os.ReadFile(p)
	if string(a) != "one\n" || string(b) != "two\n" {
		t.Fatalf("rotated %q, new %q", a, b)
	}
}

func TestQueueWritesJSON(t *testing.T) {
	var b bytes.Buffer
	q := NewQueue(NewJSONWriter(&b), 100, NewRateLimiter(10, 2))
	e := sample()
	e.MG.Workload = &Workload{Identity: "netns/web"}
	for i := 0; i < 5; i++ {
		q.Alert(e)
	}
	q.Close()
	if n := strings.Count(b.String(), "\n"); n != 2 || q.Stats().RateLimited != 3 {
		t.Fatalf("%d lines, stats %+v", n, q.Stats())
	}
}
