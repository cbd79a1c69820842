package main

import (
	"errors"
	"io"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/flow"
)

// floor reads path with replay's reader (capture.File.NextBatch, 16 frames at a time), decodes
// every frame (flow.Decode) and accounts each TCP/UDP packet to its flow in a flow.Table, with
// the same look-ahead as engine.PacketBatch (hash and prefetch the batch first). Every flow is
// Bypass from its first packet: no reassembly, no detector, no output. It returns the packets
// and wire bytes read. What replay does beyond this floor is its detection.
func floor(path string) (packets, wire int64, err error) {
	c, err := capture.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	t := flow.NewTable[struct{}](flow.Config{}, nil)
	type ahead struct {
		p      flow.Packet
		h      uint32
		hashed bool
	}
	var (
		frs [16]capture.Frame
		b   [16]ahead
	)
	for {
		n, err := c.NextBatch(frs[:])
		if err != nil {
			if errors.Is(err, io.EOF) {
				t.Flush()
				return packets, wire, nil
			}
			return packets, wire, err
		}
		for i := range frs[:n] {
			a := &b[i]
			st := flow.Decode(flow.LinkType(frs[i].LinkType), frs[i].Data, &a.p)
			a.hashed = st == flow.OK && a.p.Fragment == flow.NotFragment && (a.p.Proto == 6 || a.p.Proto == 17)
			if a.hashed {
				a.h = t.Hash(&a.p, 0)
				t.Prefetch(a.h)
			}
		}
		for i := range b[:n] {
			if b[i].hashed {
				t.PrefetchFlow(b[i].h, b[i].p.Proto == 6)
			}
		}
		for i := range b[:n] {
			packets++
			wire += int64(frs[i].WireLen)
			if !b[i].hashed {
				continue
			}
			f, _, _ := t.PacketHash(&b[i].p, 0, frs[i].Timestamp.UnixNano(), b[i].h)
			f.Bypass = true
			if f.Proto == flow.ProtoUDP && f.State == flow.StateEstablished {
				t.Close(f) // as replay closes an answered lookup (UDP here is DNS)
			}
		}
	}
}
