package main

import (
	"errors"
	"io"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
)

// With more than one core, replay reads on a goroutine of its own: the read(2) copy and the
// record headers (about a sixth of a single-core replay) run beside the engine. The reader
// copies each frame into a block and hands over whole blocks, ~700 packets each, through
// channels; the engine takes them in order, so what it sees, and reports, is the same.
const (
	pipeBlocks     = 2         // in flight: one being read while the other is run
	pipeBlockBytes = 384 << 10 // frame bytes a block holds (a frame is at most 256 KiB)
	pipeBlockMax   = 768       // frames a block holds
)

type pipeBlock struct {
	buf    []byte
	frames []engine.Frame
	err    error // after frames: the reader's error (io.EOF at the end)
}

func replayPiped(eng *engine.Engine, c *capture.File, scope uint64, show func()) error {
	free, full := make(chan *pipeBlock, pipeBlocks), make(chan *pipeBlock, pipeBlocks)
	for range pipeBlocks {
		free <- &pipeBlock{buf: make([]byte, 0, pipeBlockBytes), frames: make([]engine.Frame, 0, pipeBlockMax)}
	}
	stop := make(chan struct{})
	go readBlocks(c, scope, free, full, stop)
	defer close(stop) // the reader ends at its next block when the engine stops early
	shown := 0
	for b := range full {
		eng.PacketBatch(b.frames)
		if shown += len(b.frames); shown >= 0x4000 {
			shown = 0
			show()
		}
		if b.err != nil {
			if errors.Is(b.err, io.EOF) {
				return nil
			}
			return b.err
		}
		free <- b
	}
	return nil
}

// readBlocks fills free blocks with the frames of c and passes them on in order; the block
// with an error (io.EOF at the end) is the last.
func readBlocks(c *capture.File, scope uint64, free <-chan *pipeBlock, full chan<- *pipeBlock, stop <-chan struct{}) {
	defer close(full)
	var (
		fr      capture.Frame
		pending bool // fr was read but did not fit the last block
	)
	for {
		var b *pipeBlock
		select {
		case b = <-free:
		case <-stop:
			return
		}
		b.buf, b.frames, b.err = b.buf[:0], b.frames[:0], nil
		for len(b.frames) < cap(b.frames) {
			if !pending {
				if b.err = c.Next(&fr); b.err != nil {
					break
				}
			}
			if len(b.buf)+len(fr.Data) > cap(b.buf) {
				pending = true // fr stays valid until the next Next: it opens the next block
				break
			}
			pending = false
			off := len(b.buf)
			b.buf = append(b.buf, fr.Data...)
			b.frames = append(b.frames, engine.Frame{Link: flow.LinkType(fr.LinkType), Data: b.buf[off:len(b.buf):len(b.buf)], TS: fr.Timestamp, Scope: scope | uint64(fr.Interface)})
		}
		full <- b
		if b.err != nil {
			return
		}
	}
}
