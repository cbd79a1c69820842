package engine

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/intel"
	"github.com/minerguard/minerguard/profile"
)

// flooder sends undecided flows (SYN, then one data segment) from 10.1.x.x in one scope.
type flooder struct {
	syn, data []byte
	n         int
}

func newFlooder(t testing.TB, payload string) *flooder {
	return &flooder{
		syn:  tcpFrame(t, endpoint{"10.1.0.0", 1}, endpoint{"10.2.0.1", 80}, 1, 0, true, false, false, nil),
		data: tcpFrame(t, endpoint{"10.1.0.0", 1}, endpoint{"10.2.0.1", 80}, 2, 0, false, true, false, []byte(payload)),
	}
}

// send opens k more flows in scope at ts.
func (fl *flooder) send(e *Engine, k int, ts time.Time, scope uint64) {
	for range k {
		ip := uint32(10<<24|1<<16) + uint32(fl.n>>14)
		port := uint16(1024 + fl.n&0x3fff)
		fl.n++
		setSrc(fl.syn, ip, port)
		setSrc(fl.data, ip, port)
		e.Packet(flow.LinkEthernet, fl.syn, ts, scope)
		e.Packet(flow.LinkEthernet, fl.data, ts, scope)
	}
}

func stratumAlerts(c *collect) int {
	n := 0
	for _, ev := range c.events {
		if ev.MG.Detector == "stratum" {
			n++
		}
	}
	return n
}

// Every slot held by fresh undecided flows: new flows are still looked at (their first
// payload, and every later one), deferred and counted, never skipped. A miner whose login
// arrives in 7-byte segments meanwhile is found by the retries, and so is a deferred flood
// flow that turns out to be a miner.
func TestInspectSlotsUnderFlood(t *testing.T) {
	c := &collect{}
	e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: c, MaxInspecting: 100})
	fl := newFlooder(t, "{")
	fl.send(e, 150, epoch, 1)
	st := e.Stats()
	if st.Inspecting != 100 || st.InspectDeferred != 50 || st.InspectSlotless != 150 {
		t.Fatalf("inspecting %d, deferred %d, slotless %d; want 100, 50, 150", st.Inspecting, st.InspectDeferred, st.InspectSlotless)
	}
	x := newSession(t, client, poolEP)
	x.client(xmrigLogin, 7)
	for _, f := range x.frames {
		e.Packet(flow.LinkEthernet, f, epoch, 1) // no slot ages: none can be reclaimed
	}
	if stratumAlerts(c) != 1 {
		t.Fatalf("segmented miner during the flood: %d stratum alerts", stratumAlerts(c))
	}
	// The last flood flow was deferred after its "{": the rest of a login follows.
	rest := tcpFrame(t, endpoint{"10.1.0.0", 1024 + 149}, endpoint{"10.2.0.1", 80}, 3, 0, false, true, false, []byte(xmrigLogin[1:]))
	e.Packet(flow.LinkEthernet, rest, epoch, 1)
	if stratumAlerts(c) != 2 {
		t.Fatalf("deferred flood flow that logs in: %d stratum alerts", stratumAlerts(c))
	}
	st = e.Stats()
	if st.InspectReclaimed != [NumReclaimReasons]uint64{} || st.Inspecting != 100 {
		t.Errorf("reclaimed %v, inspecting %d: nothing was old enough to reclaim", st.InspectReclaimed, st.Inspecting)
	}
}

// One scope's flood cannot hold another scope's share: the second scope's undecided flows
// take slots from the flooding scope (fair_share), up to an equal share; a slot held past
// ReclaimAfter, or through ReclaimLooks undecided segments, goes to any new flow.
func TestInspectFairShareAndReclaim(t *testing.T) {
	c := &collect{}
	e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: c, MaxInspecting: 100})
	fl := newFlooder(t, "{")
	fl.send(e, 100, epoch, 1)
	fl.send(e, 60, epoch, 2)
	st := e.Stats()
	if st.InspectReclaimed[ReclaimFair] != 50 || st.InspectDeferred != 10 || e.insp.byKey[1] != 50 || e.insp.byKey[2] != 50 {
		t.Fatalf("fair share: reclaimed %v, deferred %d, slots %v; want 50 fair, 10 deferred, 50/50",
			st.InspectReclaimed, st.InspectDeferred, e.insp.byKey)
	}
	// Scope 1 cannot take its slots back while they are fresh ...
	fl.send(e, 1, epoch, 1)
	if st := e.Stats(); st.InspectDeferred != 11 || st.InspectReclaimed[ReclaimFair] != 50 {
		t.Fatalf("scope at its share took a slot: %+v", st.InspectReclaimed)
	}
	// ... but any flow takes a slot undecided for ReclaimAfter.
	fl.send(e, 1, epoch.Add(ReclaimAfter), 1)
	if st := e.Stats(); st.InspectReclaimed[ReclaimAge] != 1 {
		t.Fatalf("age: reclaimed %v", st.InspectReclaimed)
	}

	// A flow that holds its slot while sending ReclaimLooks segments of nothing decisive.
	e = New(Options{Detector: newEngine(nil).opt.Detector, Sink: c, MaxInspecting: 1})
	x := newSession(t, client, endpoint{"10.2.0.9", 80})
	x.client("{", 10)
	for range ReclaimLooks {
		x.client(" ", 10)
	}
	feedAt(e, epoch, x.frames) // 1 ms apart: far from ReclaimAfter
	fl = newFlooder(t, "{")
	fl.send(e, 1, epoch.Add(100*time.Millisecond), 1)
	if st := e.Stats(); st.InspectReclaimed[ReclaimSegments] != 1 || st.InspectDeferred != 0 {
		t.Fatalf("segments: reclaimed %v, deferred %d", st.InspectReclaimed, st.InspectDeferred)
	}
	// The flow that lost its slot is deferred, not done: its login is still found.
	x.client(strings.TrimPrefix(xmrigLogin, "{"), 1500)
	e.Packet(flow.LinkEthernet, x.frames[len(x.frames)-1], epoch.Add(200*time.Millisecond), 1)
	if stratumAlerts(c) != 1 {
		t.Fatalf("reclaimed flow's login: %d stratum alerts", stratumAlerts(c))
	}
}

// Under a flood that overflows both the slots and the flow table, the destination detectors
// and the profiles keep working: a pool lookup (pool-dns), a connection to the answered
// address and to a listed pool address (pool-ip), a Stratum login (stratum), and a learned
// workload's out-of-profile destination (egress-not-in-profile).
func TestDetectorsUnderFlood(t *testing.T) {
	book := profile.NewMemory(profile.Config{Promote: profile.Learning})
	c := &collect{}
	e := New(Options{
		Flow:     flow.Config{MaxFlows: 16384},
		Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c,
		Workload: oneWorkload, Profiles: book, MaxInspecting: 512,
	})
	feedAt(e, epoch, lookupAndGet(t, "api.example.com", "10.1.1.1", 443, 40001, 1))
	e.Flush()
	if err := book.Approve("shop/web", profile.Monitoring, epoch.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.events = nil
	fl := newFlooder(t, "GET / HTTP/1.1\r\nHost: x\r\n") // 27 bytes, as in issue 14
	ts := epoch.Add(time.Hour)
	const flows, batches = 40000, 40
	pool := firstBuiltinAddr(t)
	for b := range batches {
		fl.send(e, flows/batches, ts, 1)
		if b == batches/2 {
			// In the middle of the flood, one of each.
			var fs [][]byte
			fs = append(fs, minerFrames(t, 42000, 21)...) // pool-dns, pool-ip by answer, stratum
			fs = append(fs, tcpFrame(t, endpoint{"10.0.0.2", 42100}, endpoint{pool.Addr().String(), pool.Port()}, 1, 0, true, false, false, nil))
			fs = append(fs, tcpFrame(t, endpoint{"10.0.0.2", 42101}, endpoint{"10.7.7.7", 8443}, 1, 0, true, false, false, nil))
			for _, f := range fs {
				e.Packet(flow.LinkEthernet, f, ts, 1)
			}
		}
		ts = ts.Add(25 * time.Millisecond)
	}
	e.Flush()
	got := map[string]bool{}
	for _, ev := range c.events {
		got[ev.MG.Detector+" "+ev.Dest.Addr().String()] = true
	}
	for _, want := range []string{"pool-dns 10.0.0.53", "pool-ip 10.9.9.9", "stratum 10.9.9.9", "pool-ip " + pool.Addr().String(), "egress-not-in-profile 10.7.7.7"} {
		if !got[want] {
			t.Errorf("%s not alerted under the flood; got %v", want, got)
		}
	}
	st := e.Stats()
	if st.Flow.Created < flows || st.Flow.Evicted.Cap == 0 || st.InspectSlotless < flows || st.InspectDeferred == 0 || st.InspectReclaimed[ReclaimAge] == 0 {
		t.Errorf("the flood did not load the engine: created %d, cap evictions %d, slotless %d, deferred %d, reclaimed %v",
			st.Flow.Created, st.Flow.Evicted.Cap, st.InspectSlotless, st.InspectDeferred, st.InspectReclaimed)
	}
	if st.Inspecting > 512 {
		t.Errorf("%d slots held, cap 512", st.Inspecting)
	}
}

// A deferred flow's retries (a slotless look at each new payload) do not allocate.
func TestDeferredRetryNoAlloc(t *testing.T) {
	e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: &collect{}, MaxInspecting: 1})
	holder := newSession(t, endpoint{"10.0.0.3", 40001}, endpoint{"10.9.9.7", 8080})
	holder.client("{", 10)
	feed(e, holder.frames)
	x := newSession(t, client, endpoint{"10.2.0.9", 80})
	x.client("{", 10)
	const runs = 100
	for range runs + 1 {
		x.client(`"a":1,`, 10) // JSON that never ends: undecided
	}
	feed(e, x.frames[:4])
	if st := e.Stats(); st.InspectDeferred != 1 {
		t.Fatalf("deferred %d, want 1", st.InspectDeferred)
	}
	next := 4
	if n := testing.AllocsPerRun(runs, func() {
		e.Packet(flow.LinkEthernet, x.frames[next], epoch, 1)
		next++
	}); n != 0 {
		t.Fatalf("%v allocations per retry", n)
	}
	if st := e.Stats(); st.InspectDeferred != runs+2 || st.InspectSlotless != runs+3 {
		t.Errorf("deferred %d, slotless %d: every payload must be looked at", st.InspectDeferred, st.InspectSlotless)
	}
}

// A deferred flow past relookFull resumes at its last complete line: a login after 6 KiB of
// undecided JSON lines, arriving in 100-byte segments, is still found.
func TestDeferredResumeAtLine(t *testing.T) {
	c := &collect{}
	e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: c, MaxInspecting: 1})
	holder := newSession(t, endpoint{"10.0.0.3", 40001}, endpoint{"10.9.9.7", 8080})
	holder.client("{", 10)
	feed(e, holder.frames)
	x := newSession(t, client, endpoint{"10.2.0.9", 80})
	var lines strings.Builder
	for i := range 3 {
		lines.WriteString(`{"id":` + string(rune('1'+i)) + `,"result":"` + strings.Repeat("x", 2000) + `"}` + "\n")
	}
	x.client(lines.String()+xmrigLogin, 100) // the login spans segments
	for _, f := range x.frames {
		e.Packet(flow.LinkEthernet, f, epoch, 1) // the holder never ages: x stays deferred
	}
	if stratumAlerts(c) != 1 {
		t.Fatalf("login after 6 KiB in a deferred flow: %d stratum alerts (deferred %d)", stratumAlerts(c), e.Stats().InspectDeferred)
	}
	if e.Stats().InspectDeferred < 6 {
		t.Errorf("deferred %d: the flow was not kept slotless", e.Stats().InspectDeferred)
	}
}

// In replay with a workload map, the fair share is per workload (Options.NameScope), not per
// capture interface: one workload's flood on the shared interface cannot hold another's share.
func TestInspectFairSharePerWorkload(t *testing.T) {
	byWorkload := func(scope uint64, client netip.Addr) uint64 {
		if netip.MustParsePrefix("10.0.0.0/24").Contains(client) {
			return 200
		}
		return 100
	}
	c := &collect{}
	e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: c, MaxInspecting: 10, NameScope: byWorkload})
	newFlooder(t, "{").send(e, 20, epoch, 1)
	x := newSession(t, client, endpoint{"10.2.0.9", 80})
	x.client("{", 10)
	feed(e, x.frames)
	if st := e.Stats(); st.InspectReclaimed[ReclaimFair] != 1 || e.insp.byKey[200] != 1 || e.insp.byKey[100] != 9 {
		t.Fatalf("reclaimed %v, slots %v: the second workload did not get its share", st.InspectReclaimed, e.insp.byKey)
	}
}

// Random traffic through a tiny slot pool (flows constantly deferred, reclaimed, retried,
// with holes, reordering and tunnels' preambles among the payloads): nothing panics, the pool
// never exceeds its cap, and its per-scope counts add up.
func TestSlotChurnRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"{", `"id":1,`, "\n", xmrigLogin[:40], xmrigLogin[40:], "GET / HTTP/1.1\r\n", "\r\n", "\x05\x01\x00", "\x16\x03\x01\x00\x10", "CONNECT a:1 HTTP/1.1\r\n\r\n", strings.Repeat("x", 3000), " "}
	var deferred, reclaimed uint64
	for round := range 20 {
		e := New(Options{Detector: newEngine(nil).opt.Detector, Sink: &collect{}, MaxInspecting: 1 + round%3})
		var frames [][]byte
		for i := range 30 {
			x := newSession(t, endpoint{"10.0.0." + strconv.Itoa(2+i%5), uint16(40000 + i)}, endpoint{"10.2.0.9", uint16(80 + rng.IntN(3))})
			for range 1 + rng.IntN(8) {
				p := pieces[rng.IntN(len(pieces))]
				if rng.IntN(2) == 0 {
					x.client(p, 1+rng.IntN(600))
				} else {
					x.server(p)
				}
			}
			frames = append(frames, x.frames...)
		}
		rng.Shuffle(len(frames)/4, func(i, j int) { frames[4*i], frames[4*j] = frames[4*j], frames[4*i] })
		for i, f := range frames {
			if rng.IntN(20) == 0 {
				continue // a hole
			}
			e.Packet(flow.LinkEthernet, f, epoch.Add(time.Duration(i)*time.Duration(rng.IntN(40))*time.Millisecond), uint64(1+i%2))
			sum := 0
			for _, n := range e.insp.byKey {
				sum += n
			}
			if e.insp.inUse > e.insp.max || sum != e.insp.inUse {
				t.Fatalf("round %d: %d slots in use (cap %d), per-scope counts sum to %d", round, e.insp.inUse, e.insp.max, sum)
			}
		}
		e.Flush()
		st := e.Stats()
		if st.Inspecting != 0 {
			t.Fatalf("round %d: %d slots held after the flush", round, st.Inspecting)
		}
		deferred += st.InspectDeferred
		for _, n := range st.InspectReclaimed {
			reclaimed += n
		}
	}
	if deferred == 0 || reclaimed == 0 {
		t.Errorf("the churn did not churn: %d deferred, %d reclaimed", deferred, reclaimed)
	}
	t.Logf("%d deferred, %d reclaimed", deferred, reclaimed)
}
