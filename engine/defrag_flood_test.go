package engine

import (
	"io"
	"runtime"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/internal/floodgen"
)

// Issue 14's memory budget, IP fragments: a flood of IPv4 datagrams that never complete (the
// frames bench-flood replays, streamed from floodgen) stays within the defrag memcap. The
// charge never passes it, the oldest datagrams are evicted and counted, and the live heap
// after a collection grows by the memcap plus the trackers, not with the flood.
func TestDefragFloodWithinMemcap(t *testing.T) {
	const n, memcap, perDatagram = 40000, 16 << 20, 1024 + 512 // a 1 KiB buffer + tracker charge
	pr, pw := io.Pipe()
	go func() {
		_, err := floodgen.NoNewlineFragments(pw, 0, 0, floodgen.Fragments{Datagrams: n, Bytes: 1024})
		pw.CloseWithError(err)
	}()
	r, err := pcapgo.NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(&collect{})
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	var frames int
	var peak int64
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e.Packet(flow.LinkEthernet, data, ci.Timestamp, 1)
		if frames++; frames%1000 == 0 {
			peak = max(peak, e.Stats().Defrag.Bytes)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	st := e.Stats().Defrag
	peak = max(peak, st.Bytes)
	growth := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	t.Logf("%d fragments: charged peak %d KiB, in progress %d, memcap drops %d, live heap growth %d KiB",
		frames, peak>>10, st.Datagrams, st.Memcap, growth>>10)
	if frames != n || st.Fragments != n {
		t.Fatalf("%d frames read, %d fragments taken; want %d", frames, st.Fragments, n)
	}
	if peak > memcap {
		t.Errorf("charged %d bytes, memcap %d", peak, memcap)
	}
	// Every datagram beyond what the memcap holds was evicted and counted.
	if held := memcap / perDatagram; st.Datagrams > held || st.Memcap < uint64(n-held) || uint64(st.Datagrams)+st.Memcap != n {
		t.Errorf("in progress %d, memcap drops %d; want at most %d held and the rest of %d dropped", st.Datagrams, st.Memcap, held, n)
	}
	// The trackers (and their map) are charged 512 bytes each for a smaller real size, so the
	// live heap may not pass the memcap by more than a small slack.
	if growth > memcap+4<<20 {
		t.Errorf("live heap grew %d KiB for a %d KiB memcap", growth>>10, memcap>>10)
	}
}
