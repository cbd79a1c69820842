package engine

import (
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect/behaviour"
	"github.com/minerguard/minerguard/flow"
)

// The behaviour detector watches TLS flows that nothing else flagged, from their ClientHello
// until it decides: at its checkpoint (behaviour.Checkpoint after the session's first
// app-data record), or earlier when the flow leaves its reach. It reads record headers from
// each packet (behaviour.Flow, ~90 bytes from a bounded free list), so it holds no inspection
// slot and no stream buffer while it watches; the flow is not "done" (the live capture keeps
// handing its packets up) until it decides. It decides within the stream depth: a flow that
// sends more than StreamDepth bytes either way is bulk, not a pool session (a miner sends a
// few hundred bytes a minute), and past the depth the kernel bypass would stop handing its
// payload up anyway.

// maxBehaviour bounds the flows watched at once (default for Options.MaxBehaviour).
const maxBehaviour = 65536

// behPool recycles trackers; at most max are in use.
type behPool struct {
	free  []*behaviour.Flow
	inUse int
	max   int
}

func (p *behPool) get() *behaviour.Flow {
	if p.inUse >= p.max {
		return nil
	}
	p.inUse++
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	return new(behaviour.Flow)
}

func (p *behPool) put(b *behaviour.Flow) {
	p.inUse--
	b.Reset()
	p.free = append(p.free, b)
}

// watch starts the behaviour detector on a TLS flow whose ClientHello was just read; base is
// where the TLS starts in each direction's stream (after a tunnel's preamble).
func (e *Engine) watch(f *flow.Flow[state], base [2]int, noALPN bool) {
	s := &f.App
	if s.alerted != 0 || e.model == nil || s.det == nil || s.det.beh != nil {
		return // already flagged: nothing for the behaviour score to add
	}
	for d := range f.Stream {
		if f.Stream[d].Gap || base[d] > len(f.Stream[d].Data()) {
			return // the record boundaries are not known
		}
	}
	b := e.beh.get()
	if b == nil {
		e.stats.BehaviourNoSlot++
		return
	}
	e.stats.BehaviourWatched++
	for d := range f.Stream {
		st := &f.Stream[d]
		b.Sync(d, st.Base+uint32(base[d]), st.Data()[base[d]:])
	}
	s.det.beh, s.det.noALPN = b, noALPN
	s.flags |= flagWatched
	s.det.watchIdx = len(e.watched)
	e.watched = append(e.watched, f)
}

// behave feeds one packet of a watched flow to its tracker and decides when it is time.
func (e *Engine) behave(f *flow.Flow[state], dir flow.Dir, p *flow.Packet) {
	d := f.App.det
	b := d.beh
	if len(p.Payload) > 0 && !p.Snapped {
		b.Feed(int(dir), p.Seq, p.Payload, e.now)
	} else if p.Snapped {
		b.Lost = true // the record headers past the snap length are not there
	}
	depth := uint32(e.table.Config().StreamDepth)
	switch {
	case b.Lost:
		e.stats.BehaviourLost++
	case b.Bytes(behaviour.Up) >= depth || b.Bytes(behaviour.Down) >= depth:
		e.stats.BehaviourBulk++
	case b.Due(e.now):
		e.score(f, e.now)
	default:
		return
	}
	e.unwatch(f)
}

// score computes f's features at now and alerts when the model says so.
func (e *Engine) score(f *flow.Flow[state], now time.Time) {
	d := f.App.det
	e.stats.BehaviourScored++
	ctx := behaviour.Context{NoALPN: d.noALPN,
		HiddenName: d.facts.DstName == "" && e.encDNS.Used(e.nameScope(f), now)}
	x := d.beh.Features(now, ctx)
	sc := e.model.Score(x)
	if sc < e.model.Threshold {
		return
	}
	feats := make(map[string]float64, len(x))
	for i, v := range x {
		feats[behaviour.FeatureNames[i]] = round2(v)
	}
	d.behaviour = &alert.Behaviour{Score: round2(sc), Threshold: e.model.Threshold, Model: e.model.Version, Features: feats}
	d.facts.Behaviour = true
	at := e.now
	e.now = now // the alert's time is the checkpoint's, also when a timer reached it
	e.evaluate(f)
	e.now = at
}

// tickBehaviour scores the watched flows whose checkpoint passed without a packet since (a
// quiet pool session: no job, no submit until the 60 s keepalive). Live, Tick runs on a
// timer, so a flow is scored within a tick of its checkpoint whatever its packets do.
func (e *Engine) tickBehaviour(now time.Time) {
	for i := 0; i < len(e.watched); {
		f := e.watched[i]
		if b := f.App.det.beh; b.Due(now) {
			e.score(f, now)
			e.unwatch(f) // swaps the last watched flow into i
			continue
		}
		i++
	}
}

// unwatch stops the behaviour detector on f; when its inspection already ended, f is done.
func (e *Engine) unwatch(f *flow.Flow[state]) {
	s := &f.App
	if s.det == nil || s.det.beh == nil {
		return
	}
	e.dropWatched(f)
	if f.Bypass && s.flags&flagDone == 0 { // finish ran while it was watched
		e.finish(f, finishDecided)
	}
}

// dropWatched returns f's tracker and takes f off the watched list (swap with the last).
func (e *Engine) dropWatched(f *flow.Flow[state]) {
	d := f.App.det
	e.beh.put(d.beh)
	d.beh = nil
	f.App.flags &^= flagWatched
	i, last := d.watchIdx, len(e.watched)-1
	if i <= last && e.watched[i] == f {
		e.watched[i] = e.watched[last]
		e.watched[i].App.det.watchIdx = i
		e.watched[last] = nil
		e.watched = e.watched[:last]
	}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
