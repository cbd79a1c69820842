package engine

import (
	"encoding/json"
	"io"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/flow"
)

// PacketBatch is Packet with look-ahead: over every test capture (mining, benign, fragments,
// pcapng, SLL2), fed one by one, 16 at a time and 3 at a time, the alerts (as JSON, in order)
// and every counter are the same.
func TestPacketBatchSameAsPacket(t *testing.T) {
	paths, err := filepath.Glob("../testdata/captures/*.pcap*")
	if err != nil || len(paths) < 10 {
		t.Fatalf("test captures: %v (%d)", err, len(paths))
	}
	var frames []Frame
	for i, path := range paths {
		c, err := capture.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var f capture.Frame
		for {
			if err := c.Next(&f); err != nil {
				if err != io.EOF {
					t.Fatalf("%s: %v", path, err)
				}
				break
			}
			// One scope per file, as replay does; the files follow each other in time.
			frames = append(frames, Frame{flow.LinkType(f.LinkType), append([]byte(nil), f.Data...), f.Timestamp.Add(time.Duration(i) * time.Hour), uint64(i+1) << 32})
		}
		c.Close()
	}
	run := func(batch int) ([]byte, Stats) {
		c := &collect{}
		e := newEngine(c)
		if batch == 1 {
			for _, f := range frames {
				e.Packet(f.Link, f.Data, f.TS, f.Scope)
			}
		} else {
			for fs := frames; len(fs) > 0; {
				n := min(batch, len(fs))
				e.PacketBatch(fs[:n])
				fs = fs[n:]
			}
		}
		e.Flush()
		b, err := json.Marshal(c.events)
		if err != nil {
			t.Fatal(err)
		}
		return b, e.Stats()
	}
	want, wantStats := run(1)
	if len(want) < 1000 || wantStats.AlertsTotal() < 10 {
		t.Fatalf("the captures gave %d alerts (%d bytes of JSON): expected many", wantStats.AlertsTotal(), len(want))
	}
	for _, batch := range []int{16, 3, 40} {
		got, gotStats := run(batch)
		if string(got) != string(want) {
			t.Errorf("batch %d: alerts differ:\n%s\nwant\n%s", batch, got, want)
		}
		if !reflect.DeepEqual(gotStats, wantStats) {
			t.Errorf("batch %d: stats differ:\n%+v\nwant\n%+v", batch, gotStats, wantStats)
		}
	}
}

// The batch path does not allocate either, on the packets TestHotPathNoAlloc uses.
func TestPacketBatchNoAlloc(t *testing.T) {
	e := newEngine(&collect{})
	x := newSession(t, client, poolEP)
	x.client(xmrigLogin, 1500)
	feed(e, x.frames)
	ack := tcpFrame(t, client, poolEP, x.cseq, x.sseq, false, true, false, nil)
	more := tcpFrame(t, client, poolEP, x.cseq, x.sseq, false, true, false, []byte(`{"id":2,"method":"submit"}`+"\n"))
	y := newSession(t, endpoint{"10.0.0.3", 40001}, endpoint{"10.9.9.7", 8080})
	feed(e, y.frames)
	ts := epoch.Add(time.Second)
	fs := []Frame{{flow.LinkEthernet, ack, ts, 1}, {flow.LinkEthernet, more, ts, 1}, {flow.LinkEthernet, y.frames[2], ts, 1}}
	if n := testing.AllocsPerRun(1000, func() { e.PacketBatch(fs) }); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}
