package engine

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/minerguard/minerguard/flow"
)

// setIPs rewrites the IPv4 source address and TCP source port of a frame built by tcpFrame,
// so one template serves many flows. Checksums are not recomputed: the decoder does not check them.
func setSrc(frame []byte, ip uint32, port uint16) {
	binary.BigEndian.PutUint32(frame[14+12:], ip)
	binary.BigEndian.PutUint16(frame[14+20:], port)
}

// docs/testing.md R1: 1 M distinct flows (SYN + one data packet each). The table never holds
// more than its cap, evictions are counted, flagged flows survive, and heap growth stays
// within 128 MiB.
func TestR1FlowFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("1M flows")
	}
	if raceEnabled {
		// 2 M packets through one goroutine: nothing for the race detector to find, and it
		// made this test 150 s of make test's race run. make test runs it without -race.
		t.Skip("1M flows: run without -race (make test does)")
	}
	c := &collect{}
	e := newEngine(c)
	const flows = 1_000_000
	maxFlows := 262144
	// A miner first, so there is a flagged flow to keep.
	m := newSession(t, client, poolEP)
	m.client(xmrigLogin, 1500)
	feed(e, m.frames)
	if len(c.events) != 1 {
		t.Fatalf("miner not flagged: %+v", c.events)
	}
	syn := tcpFrame(t, endpoint{"10.1.0.0", 1}, endpoint{"10.2.0.1", 443}, 1, 0, true, false, false, nil)
	data := tcpFrame(t, endpoint{"10.1.0.0", 1}, endpoint{"10.2.0.1", 443}, 2, 0, false, true, false, []byte("GET / HTTP/1.1\r\nHost: x\r\n"))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ts := epoch.Add(time.Second)
	peak := 0
	for i := 0; i < flows; i++ {
		ip := uint32(10<<24|1<<16) + uint32(i>>14)
		port := uint16(1024 + i&0x3fff)
		setSrc(syn, ip, port)
		setSrc(data, ip, port)
		ts = ts.Add(time.Microsecond) // 1 M flows in one second of packet time: no timeouts help
		e.Packet(flow.LinkEthernet, syn, ts, 1)
		e.Packet(flow.LinkEthernet, data, ts, 1)
		if n := e.table.Len(); n > peak {
			peak = n
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := e.Stats()
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("peak flows %d, evicted by cap %d, heap growth %d MiB, inspecting %d", peak, st.Flow.Evicted.Cap, growth>>20, st.Inspecting)
	if peak > maxFlows {
		t.Errorf("table held %d flows, cap %d", peak, maxFlows)
	}
	if want := uint64(flows + 1 - maxFlows); st.Flow.Evicted.Cap < want {
		t.Errorf("evictions %d, want at least %d", st.Flow.Evicted.Cap, want)
	}
	if growth > 128<<20 {
		t.Errorf("heap grew %d MiB, bound 128", growth>>20)
	}
	// The flagged miner flow is still in the table: its next packet raises nothing new and
	// creates no flow.
	created := st.Flow.Created
	feed(e, m.frames[len(m.frames)-1:])
	if e.Stats().Flow.Created != created {
		t.Error("flagged flow was evicted")
	}
}

// docs/testing.md R2: one flow sending lots of data with no newline keeps at most the stream
// depth, counts the overflow, and a later newline-delimited login on a new flow is still found.
func TestR2NoNewline(t *testing.T) {
	c := &collect{}
	e := newEngine(c)
	x := newSession(t, client, poolEP)
	x.client(`{"id":1,"method":"mining.subscribe","params":["`, 1500)
	chunk := make([]byte, 1400)
	for i := range chunk {
		chunk[i] = 'a'
	}
	for i := 0; i < 200; i++ { // 280 KB, no newline
		x.client(string(chunk), 1400)
	}
	feed(e, x.frames)
	st := e.Stats()
	if st.Flow.Reassembly.BytesInUse > 64<<10*2 {
		t.Errorf("stream holds %d bytes", st.Flow.Reassembly.BytesInUse)
	}
	if st.Flow.Reassembly.DepthReached == 0 {
		t.Errorf("depth not counted: %+v", st.Flow.Reassembly)
	}
	if len(c.events) != 0 {
		t.Errorf("alert on an unterminated line: %+v", c.events)
	}
}

// The packet hot path does not allocate: packets of flows already classified, payload-less
// packets of known flows, and undecided payload.
func TestHotPathNoAlloc(t *testing.T) {
	e := newEngine(&collect{})
	x := newSession(t, client, poolEP)
	x.client(xmrigLogin, 1500)
	feed(e, x.frames)
	ack := tcpFrame(t, client, poolEP, x.cseq, x.sseq, false, true, false, nil)
	more := tcpFrame(t, client, poolEP, x.cseq, x.sseq, false, true, false, []byte(`{"id":2,"method":"submit"}`+"\n"))
	y := newSession(t, endpoint{"10.0.0.3", 40001}, endpoint{"10.9.9.7", 8080})
	feed(e, y.frames)
	ts := epoch.Add(time.Second)
	if n := testing.AllocsPerRun(1000, func() {
		e.Packet(flow.LinkEthernet, ack, ts, 1)
		e.Packet(flow.LinkEthernet, more, ts, 1)
		e.Packet(flow.LinkEthernet, y.frames[2], ts, 1)
	}); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

func BenchmarkEngineClassified(b *testing.B) {
	e := newEngine(&collect{})
	x := newSession(b, client, poolEP)
	x.client(xmrigLogin, 1500)
	feed(e, x.frames)
	more := tcpFrame(b, client, poolEP, x.cseq, x.sseq, false, true, false, make([]byte, 1400))
	ts := epoch.Add(time.Second)
	b.ReportAllocs()
	b.SetBytes(int64(len(more)))
	for i := 0; i < b.N; i++ {
		e.Packet(flow.LinkEthernet, more, ts, 1)
	}
}

// BenchmarkEngineNewFlows is the worst case: every packet pair is a new flow with payload.
func BenchmarkEngineNewFlows(b *testing.B) {
	e := newEngine(&collect{})
	syn := tcpFrame(b, endpoint{"10.1.0.0", 1}, endpoint{"10.2.0.1", 443}, 1, 0, true, false, false, nil)
	data := tcpFrame(b, endpoint{"10.1.0.0", 1}, endpoint{"10.2.0.1", 443}, 2, 0, false, true, false, []byte("\x16\x03\x01\x00\x05hello"))
	ts := epoch
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ip := uint32(10<<24|1<<16) + uint32(i>>14)
		port := uint16(1024 + i&0x3fff)
		setSrc(syn, ip, port)
		setSrc(data, ip, port)
		ts = ts.Add(time.Microsecond)
		e.Packet(flow.LinkEthernet, syn, ts, 1)
		e.Packet(flow.LinkEthernet, data, ts, 1)
	}
}
