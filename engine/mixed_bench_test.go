package engine

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/flow"
)

type frame struct {
	data []byte
	ts   time.Time
	link flow.LinkType
}

// BenchmarkEngineMixed runs the engine over the packets of a real or generated capture held
// in memory (MINERGUARD_BENCH_PCAP, e.g. bench/out/mixed.pcap; at most 400,000 packets), so
// it measures the pipeline without file I/O. One op is one packet.
func BenchmarkEngineMixed(b *testing.B) { benchMixed(b, 1) }

// BenchmarkEngineMixedBatch is BenchmarkEngineMixed through PacketBatch, 16 packets at a
// time as replay hands them over: the lookahead that overlaps the flow lookups' misses.
func BenchmarkEngineMixedBatch(b *testing.B) { benchMixed(b, batchMax) }

// benchMixed feeds the frames one at a time (batch 1: Packet) or batch at a time.
func benchMixed(b *testing.B, batch int) {
	path := os.Getenv("MINERGUARD_BENCH_PCAP")
	if path == "" {
		b.Skip("set MINERGUARD_BENCH_PCAP to a capture (make bench-gen writes bench/out/mixed.pcap)")
	}
	c, err := capture.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	var frames []frame
	var f capture.Frame
	for len(frames) < 400000 {
		if err := c.Next(&f); err != nil {
			if err != io.EOF {
				b.Log(err)
			}
			break
		}
		frames = append(frames, frame{append([]byte(nil), f.Data...), f.Timestamp, flow.LinkType(f.LinkType)})
	}
	c.Close()
	span := frames[len(frames)-1].ts.Sub(frames[0].ts) + time.Second
	e := newEngine(&collect{})
	fs := make([]Frame, 0, batch)
	b.ReportAllocs()
	b.ResetTimer()
	round := time.Duration(0)
	for i := 0; i < b.N; i++ {
		j := i % len(frames)
		if j == 0 && i > 0 {
			// Replay again later in packet time so flows are new again, not stale.
			round += span
		}
		fr := &frames[j]
		if batch == 1 {
			e.Packet(fr.link, fr.data, fr.ts.Add(round), 1)
			continue
		}
		fs = append(fs, Frame{fr.link, fr.data, fr.ts.Add(round), 1})
		if len(fs) == batch || i == b.N-1 {
			e.PacketBatch(fs)
			fs = fs[:0]
		}
	}
}
