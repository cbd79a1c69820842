package alert

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Writer is where alerts go: a JSONWriter or TextWriter.
type Writer interface {
	Write(*Event) error
	Flush() error
}

// Queue hands alerts from the packet path to a writer goroutine. Enqueue never blocks: when
// the queue is full or the alert's workload is over its rate, the alert is dropped and
// counted, so a flood of alerts cannot stall capture.
type Queue struct {
	ch      chan Event
	limit   *RateLimiter
	dropped atomic.Uint64 // queue full
	limited atomic.Uint64 // over the per-workload rate
	written atomic.Uint64
	errs    atomic.Uint64
	done    chan struct{}

	// Observe, when set (before the first Alert), is called by the writer goroutine with
	// each alert it wrote: the sensor measures capture-to-alert latency with it.
	Observe func(*Event)
}

// NewQueue starts a goroutine writing alerts to w (flushing after each burst) until Close.
// size bounds the queued alerts; limit may be nil for no rate limit.
func NewQueue(w Writer, size int, limit *RateLimiter) *Queue {
	q := &Queue{ch: make(chan Event, size), limit: limit, done: make(chan struct{})}
	go func() {
		defer close(q.done)
		for e := range q.ch {
			if err := w.Write(&e); err != nil {
				q.errs.Add(1)
			} else if q.Observe != nil && e.Stats == nil && !e.IsRecord() {
				q.Observe(&e)
			}
			q.written.Add(1)
			if len(q.ch) == 0 {
				if err := w.Flush(); err != nil {
					q.errs.Add(1)
				}
			}
		}
		w.Flush()
	}()
	return q
}

// Alert enqueues a copy of e (it implements engine.Sink).
func (q *Queue) Alert(e *Event) {
	key := ""
	if e.MG.Workload != nil {
		key = e.MG.Workload.Identity
	}
	if q.limit != nil && !q.limit.Allow(key, e.Timestamp) {
		q.limited.Add(1)
		return
	}
	select {
	case q.ch <- *e:
	default:
		q.dropped.Add(1)
	}
}

// Record enqueues a copy of a record that is not an alert (a stats record): no rate limit,
// and counted as dropped when the queue is full.
func (q *Queue) Record(e *Event) {
	select {
	case q.ch <- *e:
	default:
		q.dropped.Add(1)
	}
}

// Offer enqueues a copy of a record that may be lost (flow, dns, tls) while the queue is
// less than half full, so that records never take the room alerts need; it reports whether
// it did (the caller counts what it did not).
func (q *Queue) Offer(e *Event) bool {
	if len(q.ch) >= cap(q.ch)/2 {
		return false
	}
	select {
	case q.ch <- *e:
		return true
	default:
		return false
	}
}

// QueueStats are the queue's counters.
type QueueStats struct{ Written, Dropped, RateLimited, WriteErrors uint64 }

// Stats returns the counters.
func (q *Queue) Stats() QueueStats {
	return QueueStats{q.written.Load(), q.dropped.Load(), q.limited.Load(), q.errs.Load()}
}

// Close drains the queue and stops the writer goroutine. No Alert may follow.
func (q *Queue) Close() {
	close(q.ch)
	<-q.done
}

// RateLimiter is a token bucket per key (workload): Burst alerts at once, then Rate a second.
// Keys are bounded: past MaxKeys, unknown keys share one bucket.
type RateLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
	maxKeys int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter allows burst alerts at once and rate per second after that, per key.
func NewRateLimiter(rate float64, burst int) *RateLimiter {
	return &RateLimiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}, maxKeys: 10000}
}

// Allow reports whether key may alert at time now, and takes a token if so.
func (r *RateLimiter) Allow(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[key]
	if b == nil {
		if len(r.buckets) >= r.maxKeys {
			key = "\x00overflow"
			b = r.buckets[key]
		}
		if b == nil {
			b = &bucket{tokens: r.burst, last: now}
			r.buckets[key] = b
		}
	}
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(r.burst, b.tokens+d*r.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Forget drops the bucket of a workload that is gone.
func (r *RateLimiter) Forget(key string) {
	r.mu.Lock()
	delete(r.buckets, key)
	r.mu.Unlock()
}

// File is an alert output file that can be reopened (log rotation: SIGHUP).
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenFile opens path for appending, creating it if needed.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

// Write appends p.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Write(p)
}

// Reopen closes and reopens the file by name, so a rotated file is let go.
func (f *File) Reopen() error {
	nf, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	f.mu.Lock()
	old := f.f
	f.f = nf
	f.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Close()
}
