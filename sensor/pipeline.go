package sensor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
)

// Pipeline funnels frames from any number of capture goroutines into one engine goroutine.
// Submit copies the frame into a pooled buffer and never blocks: when the queue is full the
// frame is dropped and counted, so a slow pipeline cannot stall the kernel rings. The engine
// runs on wall-clock time and publishes a copy of its counters once a second for scrapes.
type Pipeline struct {
	eng     *engine.Engine
	ch      chan frameMsg
	dropped atomic.Uint64
	stats   atomic.Pointer[engine.Stats]
	done    chan struct{}
	small   sync.Pool // *[]byte of smallFrame capacity
}

type frameMsg struct {
	buf   *[]byte
	link  flow.LinkType
	ts    time.Time
	scope uint64
	small bool
}

// smallFrame covers any frame of a 1500-byte MTU with headroom; larger (GRO) frames get
// buffers of their own.
const smallFrame = 2048

// NewPipeline starts the engine goroutine with a queue of size frames. tick is how often
// idle flows are expired and the counters published.
func NewPipeline(eng *engine.Engine, size int, tick time.Duration) *Pipeline {
	p := &Pipeline{eng: eng, ch: make(chan frameMsg, size), done: make(chan struct{})}
	p.small.New = func() any { b := make([]byte, 0, smallFrame); return &b }
	st := eng.Stats()
	p.stats.Store(&st)
	go p.run(tick)
	return p
}

// Submit queues a copy of frame; it reports false when the frame was dropped.
func (p *Pipeline) Submit(link flow.LinkType, frame []byte, ts time.Time, scope uint64) bool {
	m := frameMsg{link: link, ts: ts, scope: scope}
	if len(frame) <= smallFrame {
		m.buf, m.small = p.small.Get().(*[]byte), true
		*m.buf = append((*m.buf)[:0], frame...)
	} else {
		b := append([]byte(nil), frame...)
		m.buf = &b
	}
	select {
	case p.ch <- m:
		return true
	default:
		p.dropped.Add(1)
		if m.small {
			p.small.Put(m.buf)
		}
		return false
	}
}

func (p *Pipeline) run(tick time.Duration) {
	defer close(p.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	publish := func() {
		st := p.eng.Stats()
		p.stats.Store(&st)
	}
	for {
		select {
		case m, ok := <-p.ch:
			if !ok {
				p.eng.Flush()
				publish()
				return
			}
			p.eng.Packet(m.link, *m.buf, m.ts, m.scope)
			if m.small {
				p.small.Put(m.buf)
			}
		case now := <-t.C:
			p.eng.Tick(now)
			publish()
		}
	}
}

// Stats returns the engine counters as last published (at most one tick old).
func (p *Pipeline) Stats() engine.Stats { return *p.stats.Load() }

// Dropped is the number of frames dropped because the queue was full.
func (p *Pipeline) Dropped() uint64 { return p.dropped.Load() }

// Close stops accepting frames, lets the engine finish the queued ones and flush its flows,
// and waits. No Submit may follow.
func (p *Pipeline) Close() {
	close(p.ch)
	<-p.done
}
