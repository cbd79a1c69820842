package behaviour

import (
	"testing"
	"time"
)

func rec(typ byte, n int) []byte {
	b := make([]byte, 5+n)
	b[0], b[1], b[2], b[3], b[4] = typ, 3, 3, byte(n>>8), byte(n)
	return b
}

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// A session: handshake, the client's first app record starts it; a request after idle and its
// answer; a push after idle; records split over segments, headers split too; a retransmission.
func TestTrackerWalk(t *testing.T) {
	var f Flow
	hello := rec(recHandshake, 300)
	f.Sync(Up, 1000, hello)
	seq := [2]uint32{1000 + uint32(len(hello)), 5000}
	send := func(d int, b []byte, at time.Duration) {
		f.Feed(d, seq[d], b, t0.Add(at))
		seq[d] += uint32(len(b))
	}
	send(Down, append(rec(recHandshake, 100), rec(recAppData, 800)...), 0)
	send(Up, rec(recAppData, 53), 10*time.Millisecond) // the client's Finished: the session starts
	login := rec(recAppData, 400)
	send(Up, login[:3], 20*time.Millisecond) // a header split over two segments
	send(Up, login[3:], 21*time.Millisecond)
	f.Feed(Up, seq[Up]-uint32(len(login)), login, t0.Add(22*time.Millisecond)) // retransmitted: ignored
	send(Down, rec(recAppData, 600), 40*time.Millisecond)
	send(Down, rec(recAppData, 372), 5*time.Second) // a job pushed after idle
	sub := rec(recAppData, 216)
	send(Up, sub[:100], 9*time.Second) // a submit after idle, in two segments
	send(Up, sub[100:], 9*time.Second+time.Millisecond)
	send(Down, rec(recAppData, 80), 9*time.Second+20*time.Millisecond) // its answer
	if f.Lost {
		t.Fatal("lost the walk")
	}
	if f.n[Up] != 2 || f.n[Down] != 3 || f.pushes != 1 || f.reqs != 1 || f.answ != 1 {
		t.Fatalf("counts: up %d down %d pushes %d reqs %d answers %d", f.n[Up], f.n[Down], f.pushes, f.reqs, f.answ)
	}
	if f.pushB != 372 || f.reqB != 216 || f.answB != 80 || f.bytes[Up] != 400+216 {
		t.Fatalf("bytes: push %d req %d answer %d up %d", f.pushB, f.reqB, f.answB, f.bytes[Up])
	}
	if f.Due(t0.Add(30*time.Second)) || !f.Due(t0.Add(Checkpoint+time.Second)) {
		t.Fatal("checkpoint")
	}
	x := f.Features(t0.Add(Checkpoint), Context{NoALPN: true})
	if x[0] <= 0 || x[3] <= 0 || x[10] != 1 {
		t.Fatalf("features %v", x)
	}
}

func TestTrackerLosesOnHoleAndGarbage(t *testing.T) {
	var f Flow
	f.Sync(Up, 100, rec(recHandshake, 10))
	f.Feed(Up, 100+15+50, rec(recAppData, 10), t0) // 50 bytes never seen
	if !f.Lost {
		t.Fatal("a hole must lose the walk")
	}
	var g Flow
	g.Feed(Down, 1, []byte("HTTP/1.1 200 OK\r\n"), t0)
	if !g.Lost {
		t.Fatal("a non-TLS header must lose the walk")
	}
}

// Whatever the bytes, the tracker neither panics nor grows: its state is a fixed struct.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{23, 3, 3, 0, 5, 1, 2, 3, 4, 5, 23, 3}, uint32(7), uint8(0))
	f.Add([]byte("GET / HTTP/1.1\r\n"), uint32(0), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, seq uint32, d uint8) {
		var fl Flow
		dd := int(d & 1)
		fl.Sync(dd, seq, b[:len(b)/2])
		fl.Feed(dd, seq+uint32(len(b)/2), b[len(b)/2:], t0)
		fl.Feed(1-dd, seq, b, t0.Add(2*time.Second))
		_ = fl.Features(t0.Add(time.Minute), Context{})
	})
}

func TestRecentBounded(t *testing.T) {
	r := NewRecent(3)
	for i := uint64(0); i < 10; i++ {
		r.Mark(i, t0.Add(time.Duration(i)*time.Second))
	}
	if r.Len() != 3 || r.Evicted != 7 || !r.Used(9, t0.Add(time.Minute)) || r.Used(0, t0.Add(time.Minute)) {
		t.Fatalf("len %d evicted %d", r.Len(), r.Evicted)
	}
	if r.Used(9, t0.Add(2*RecentFor)) {
		t.Fatal("a use of encrypted DNS taints for RecentFor only")
	}
}

// The hot path: feeding a segment allocates nothing.
func BenchmarkFeed(b *testing.B) {
	seg := append(rec(recAppData, 200), rec(recAppData, 300)...)
	var f Flow
	f.Sync(Up, 0, rec(recHandshake, 10))
	seq := uint32(15)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f.Feed(Up, seq, seg, t0.Add(time.Duration(i)*time.Millisecond))
		seq += uint32(len(seg))
	}
}
