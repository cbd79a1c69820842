package sensor

import (
	"context"
	"errors"
	"time"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/internal/tick"
)

// Ring sizing. A namespace at rest costs its ring (capture.blocks × capture.block_size,
// 4 × 128 KiB by default): with the kernel bypass only headers, DNS and each flow's first
// stream_depth bytes reach it, so a small ring suffices and 110 namespaces stay within a
// DaemonSet's budget. A ring that drops is re-created with twice the blocks, up to
// capture.max_blocks, while all rings together stay within capture.max_ring_bytes; one that
// has not dropped for ringShrinkAfter goes back to the default.
// A ring that drops also gets, at once, a lower stream depth in the kernel filter
// (capture.pressure_depth, 4 KiB: a Stratum login, a ClientHello) for bytes not yet seen,
// so bulk flows' first 64 KiB do not crowd out new flows' first bytes; after pressureCalm
// without drops flows get the full depth again (directions already past stay past).
// The new ring opens before the old one closes, so a resize loses nothing (a few frames may
// be seen twice, which reassembly takes as retransmissions).

// pressureCalm is how long a ring under pressure must go without drops before its flows get
// their full stream depth again.
const pressureCalm = 10 * time.Second

// ringShrinkAfter is how long a grown ring must go without drops before it shrinks again.
const ringShrinkAfter = 2 * time.Minute

func (s *Sensor) shrinkAfter() time.Duration {
	if d := time.Duration(s.ringShrinkAfter.Load()); d > 0 {
		return d
	}
	return ringShrinkAfter
}

func (s *Sensor) openRing(ns capture.Netns, scope uint64, ifname string, blocks int) (*capture.Ring, error) {
	bp := s.bp
	if s.deferBypass.Load() {
		bp = nil // attachBypassAll adds it once the sensor is ready
	}
	return capture.OpenRing(ns, capture.RingOptions{
		Interface: ifname, Snaplen: s.cfg.Capture.Snaplen, BlockSize: s.cfg.Capture.BlockSize,
		NumBlocks: blocks, BlockTimeout: s.cfg.Capture.BlockTimeout,
		Bypass: bp, Scope: scope,
	})
}

// attachBypassAll gives the kernel bypass to every ring opened without it (those found at
// start), one program load each, until done or ctx ends.
func (s *Sensor) attachBypassAll(ctx context.Context) {
	s.mu.RLock()
	ws := make([]*watched, 0, len(s.rings))
	for _, w := range s.rings {
		ws = append(ws, w)
	}
	s.mu.RUnlock()
	for _, w := range ws {
		if ctx.Err() != nil {
			return
		}
		s.mu.RLock()
		r := w.ring // may have been resized (then it has the bypass) or closed meanwhile
		s.mu.RUnlock()
		if _, on := r.BypassStats(); on {
			continue
		}
		if err := r.AttachBypass(s.bp, w.scope); err != nil && !errors.Is(err, capture.ErrRingClosed) {
			s.log.Warn("capturing without the kernel bypass: its filter could not be attached to this ring", "netns", w.ns.Path, "workload", w.id.Name, "err", err)
		}
	}
}

// bypassRingsLocked counts the rings with the kernel bypass attached; s.mu held.
func (s *Sensor) bypassRingsLocked() int {
	n := 0
	for _, w := range s.rings {
		if _, on := w.ring.BypassStats(); on {
			n++
		}
	}
	return n
}

// sizeRings checks every ring's drops each interval until ctx is done.
func (s *Sensor) sizeRings(ctx context.Context, interval time.Duration) {
	tick.Every(ctx, interval, s.checkRings)
}

func (s *Sensor) checkRings(now time.Time) {
	base, most := s.cfg.Capture.Blocks, max(s.cfg.Capture.MaxBlocks, s.cfg.Capture.Blocks)
	type change struct {
		w      *watched
		blocks int
	}
	var todo []change
	// The write lock: the fields of w below are read by scrapes.
	s.mu.Lock()
	budget := s.cfg.Capture.MaxRingBytes - s.ringBytesLocked() // what growth may still take
	for _, w := range s.rings {
		st, err := w.ring.Stats()
		if err != nil {
			continue
		}
		dropped := st.Drops > w.lastDrops
		w.lastDrops = st.Drops
		switch {
		case dropped:
			w.calm = now
			if _, on := w.ring.BypassStats(); on && !w.pressure && s.cfg.Capture.PressureDepth > 0 {
				// Bulk flows' first bytes make room for new flows' first bytes at once;
				// growing the ring (below) takes effect from the next check on.
				if w.ring.SetBypassDepth(s.cfg.Capture.PressureDepth) == nil {
					w.pressure = true
					s.pressureEngaged.Add(1)
				}
			}
			if w.blocks < most {
				n := min(w.blocks*2, most)
				if extra := (n - w.blocks) * s.cfg.Capture.BlockSize; extra <= budget {
					budget -= extra
					todo = append(todo, change{w, n})
				} else {
					s.ringGrowsRefused.Add(1)
				}
			}
		case w.blocks > base && now.Sub(w.calm) >= s.shrinkAfter():
			todo = append(todo, change{w, base})
		}
		if w.pressure && now.Sub(w.calm) >= pressureCalm && w.ring.SetBypassDepth(0) == nil {
			w.pressure = false
		}
	}
	s.mu.Unlock()
	for _, c := range todo {
		s.resize(c.w, c.blocks, now)
	}
}

// resize replaces w's ring by one of blocks blocks.
func (s *Sensor) resize(w *watched, blocks int, now time.Time) {
	r, err := s.openRing(w.ns, w.scope, w.ifname, blocks)
	if err != nil {
		s.ringResizeFailures.Add(1)
		s.log.Warn("resizing a capture ring", "netns", w.ns.Path, "workload", w.id.Name, "blocks", blocks, "err", err)
		return
	}
	s.mu.Lock()
	if s.rings[w.scope] != w { // detached meanwhile
		s.mu.Unlock()
		r.Close()
		return
	}
	old := w.ring
	grow := blocks > w.blocks
	w.ring, w.blocks, w.lastDrops, w.calm = r, blocks, 0, now
	if st, err := old.Stats(); err == nil {
		s.closed[w.label] = addRing(s.closed[w.label], st)
	}
	if grow {
		s.ringGrows++
	} else {
		s.ringShrinks++
	}
	if w.pressure {
		r.SetBypassDepth(s.cfg.Capture.PressureDepth) // the new ring has a slot of its own
	}
	s.mu.Unlock()
	s.read(r, w.scope)
	old.Close()
	if bs, on := old.BypassStats(); on {
		s.mu.Lock()
		s.bpClosed.add(w.label, bs, true)
		s.mu.Unlock()
	}
	s.log.Info("capture ring resized", "netns", w.ns.Path, "workload", w.id.Name, "blocks", blocks,
		"bytes", blocks*s.cfg.Capture.BlockSize)
}

// ringBytesLocked is the memory of every open ring; s.mu held.
func (s *Sensor) ringBytesLocked() int {
	n := 0
	for _, w := range s.rings {
		n += w.blocks * s.cfg.Capture.BlockSize
	}
	return n
}

// pressureLocked counts the rings under pressure; s.mu held.
func (s *Sensor) pressureLocked() int {
	n := 0
	for _, w := range s.rings {
		if w.pressure {
			n++
		}
	}
	return n
}
