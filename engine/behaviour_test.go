package engine

import (
	stdtls "crypto/tls"
	"io"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/detect/behaviour"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/intel"
)

// goHello is a real ClientHello from Go's TLS client, with a server name and no ALPN.
func goHello(t *testing.T) string {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		c := stdtls.Client(a, &stdtls.Config{ServerName: "edge.telemetry-cdn.example.org", InsecureSkipVerify: true})
		c.Handshake() // fails when b closes; only its first flight is read
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return string(hdr) + string(body)
}

func tlsRec(typ byte, n int) string {
	return string([]byte{typ, 3, 3, byte(n >> 8), byte(n)}) + strings.Repeat("\x00", n)
}

type timed struct {
	at    time.Duration
	frame []byte
}

// poolSession is a pool-shaped TLS session: handshake, login and its job, jobs pushed every
// 10 s, a submit and its answer every 12 s, up to 38 s after the session's start.
func poolSession(t *testing.T, cport uint16) []timed { return poolSessionVia(t, cport, "") }

// poolSessionVia is poolSession through a SOCKS5 proxy to host when host is not "".
func poolSessionVia(t *testing.T, cport uint16, host string) []timed {
	type ev struct {
		at     time.Duration
		client bool
		data   string
	}
	var pre []ev
	if host != "" {
		pre = []ev{{0, true, "\x05\x01\x00"}, {0, false, "\x05\x00"},
			{0, true, "\x05\x01\x00\x03" + string([]byte{byte(len(host))}) + host + "\x01\xbb"},
			{0, false, "\x05\x00\x00\x01\x0a\x00\x00\x08\x01\xbb"}}
	}
	evs := []ev{
		{time.Millisecond, true, goHello(t)},
		{2 * time.Millisecond, false, tlsRec(22, 90) + tlsRec(20, 1) + tlsRec(23, 800)},
		{3 * time.Millisecond, true, tlsRec(20, 1) + tlsRec(23, 53)}, // Finished: the session starts
		{4 * time.Millisecond, true, tlsRec(23, 400)},
		{30 * time.Millisecond, false, tlsRec(23, 600)},
	}
	for s := 10; s < 40; s += 10 {
		evs = append(evs, ev{time.Duration(s) * time.Second, false, tlsRec(23, 372)})
	}
	for s := 12; s < 40; s += 12 {
		evs = append(evs, ev{time.Duration(s) * time.Second, true, tlsRec(23, 216)},
			ev{time.Duration(s)*time.Second + 20*time.Millisecond, false, tlsRec(23, 80)})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	evs = append(pre, evs...)
	x := newSession(t, endpoint{"10.0.0.2", cport}, endpoint{"10.9.9.9", 443})
	var out []timed
	for _, fr := range x.frames {
		out = append(out, timed{0, fr})
	}
	for _, e := range evs {
		n := len(x.frames)
		if e.client {
			x.client(e.data, 1500)
		} else {
			x.server(e.data)
		}
		for _, fr := range x.frames[n:] {
			out = append(out, timed{e.at, fr})
		}
	}
	return out
}

func behaviourEngine(c *collect, m *behaviour.Model) *Engine {
	return New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c, Behaviour: m})
}

// The behaviour detector's wiring: a TLS flow is watched without an inspection slot and is
// not done while watched; a quiet flow is scored by Tick at its checkpoint, and the alert
// carries the score and the features.
func TestBehaviourWatchAndTick(t *testing.T) {
	always := &behaviour.Model{Version: "test-always", B: 10, Threshold: 0.5}
	c := &collect{}
	e := behaviourEngine(c, always)
	for _, tf := range poolSession(t, 40001) {
		e.Packet(flow.LinkEthernet, tf.frame, epoch.Add(tf.at), 1)
	}
	st := e.Stats()
	if st.BehaviourWatched != 1 || st.Watching != 1 || st.Inspecting != 0 || len(c.events) != 0 {
		t.Fatalf("before the checkpoint: watched %d watching %d inspecting %d alerts %d", st.BehaviourWatched, st.Watching, st.Inspecting, len(c.events))
	}
	start := epoch.Add(3 * time.Millisecond) // the client's Finished
	e.Tick(start.Add(behaviour.Checkpoint - time.Second))
	if len(c.events) != 0 {
		t.Fatal("scored before its checkpoint")
	}
	at := start.Add(behaviour.Checkpoint + 500*time.Millisecond)
	e.Tick(at)
	if len(c.events) != 1 {
		t.Fatalf("want one behaviour alert at the checkpoint, got %v", detectors(c))
	}
	ev := c.events[0]
	b := ev.MG.Behaviour
	if ev.MG.Detector != "behaviour" || ev.SignatureID != 9400011 || ev.Severity != 3 || !ev.Timestamp.Equal(at) || b == nil ||
		b.Model != "test-always" || b.Features["push_per_min"] <= 0 || b.Features["req_per_min"] <= 0 || b.Features["no_alpn"] != 1 {
		t.Fatalf("alert %+v behaviour %+v", ev, b)
	}
	if st := e.Stats(); st.Watching != 0 || st.BehaviourScored != 1 {
		t.Fatalf("after: watching %d scored %d", st.Watching, st.BehaviourScored)
	}
}

// A benign verdict alerts nothing; a flow past the stream depth is bulk and never scored; a
// flow that ends while watched gives its tracker back.
func TestBehaviourNoAlertBulkAndEnd(t *testing.T) {
	never := &behaviour.Model{Version: "test-never", B: -10, Threshold: 0.5}
	c := &collect{}
	e := behaviourEngine(c, never)
	for _, tf := range poolSession(t, 40002) {
		e.Packet(flow.LinkEthernet, tf.frame, epoch.Add(tf.at), 1)
	}
	e.Tick(epoch.Add(time.Minute))
	if st := e.Stats(); len(c.events) != 0 || st.BehaviourScored != 1 || st.Watching != 0 {
		t.Fatalf("benign: alerts %v scored %d watching %d", detectors(c), st.BehaviourScored, st.Watching)
	}

	e = behaviourEngine(c, &behaviour.Model{B: 10, Threshold: 0.5})
	x := newSession(t, endpoint{"10.0.0.2", 40003}, endpoint{"10.9.9.8", 443})
	x.client(goHello(t), 1500)
	x.server(tlsRec(22, 90))
	x.client(tlsRec(23, 53), 1500)
	for i := 0; i < 6; i++ {
		x.server(tlsRec(23, 16000)) // 96 KB down: past the 64 KiB depth
	}
	feed(e, x.frames)
	if st := e.Stats(); st.BehaviourBulk != 1 || st.Watching != 0 {
		t.Fatalf("bulk: %d, watching %d", st.BehaviourBulk, st.Watching)
	}
	e.Tick(epoch.Add(time.Hour))
	if len(c.events) != 0 {
		t.Fatalf("bulk flow alerted: %v", detectors(c))
	}

	x = newSession(t, endpoint{"10.0.0.2", 40004}, endpoint{"10.9.9.7", 443})
	x.client(goHello(t), 1500)
	feed(e, x.frames)
	if e.Stats().Watching != 1 {
		t.Fatal("not watched")
	}
	e.Flush()
	if st := e.Stats(); st.Watching != 0 || e.beh.inUse != 0 || len(e.watched) != 0 {
		t.Fatalf("after the flow ended: watching %d in use %d list %d", st.Watching, e.beh.inUse, len(e.watched))
	}
}

// Issue 15 item 4: through a SOCKS5 proxy, the name the client asked for is the destination's
// name, and the behaviour detector reads the tunnelled TLS records (after the preamble).
func TestBehaviourThroughSOCKS5(t *testing.T) {
	c := &collect{}
	e := behaviourEngine(c, &behaviour.Model{Version: "test-always", B: 10, Threshold: 0.5})
	for _, tf := range poolSessionVia(t, 40005, "edge.telemetry-cdn.example.org") {
		e.Packet(flow.LinkEthernet, tf.frame, epoch.Add(tf.at), 1)
	}
	e.Tick(epoch.Add(time.Minute))
	if len(c.events) != 1 || c.events[0].MG.Detector != "behaviour" || c.events[0].MG.Tunnel != "socks5" ||
		c.events[0].MG.Target != "edge.telemetry-cdn.example.org:443" || c.events[0].TLS == nil || c.events[0].TLS.SNI == "" {
		t.Fatalf("want a behaviour alert on the tunnelled session: %+v", c.events)
	}
	if b := c.events[0].MG.Behaviour; b.Features["push_per_min"] <= 0 || b.Features["req_per_min"] <= 0 {
		t.Fatalf("the tunnelled records were not read: %+v", b.Features)
	}
}

// The behaviour detector flags, never drops, unless the operator opted in
// (detect.Detector.SetDropAlso, the sensor's enforcement.drop_signatures): then enforce mode
// asks the enforcer to drop the flow, and the alert says so.
func TestBehaviourDropOptIn(t *testing.T) {
	always := &behaviour.Model{Version: "test-always", B: 10, Threshold: 0.5}
	for _, optIn := range []bool{false, true} {
		c := &collect{}
		enf := &fakeEnforcer{ok: true}
		d := detect.New(intel.Builtin(), detect.ModeEnforce)
		if optIn {
			d.SetDropAlso(detect.Reasons(0).With(detect.ReasonBehaviour))
		}
		e := New(Options{Detector: d, Sink: c, Behaviour: always, Enforcer: enf})
		for _, tf := range poolSession(t, 40006) {
			e.Packet(flow.LinkEthernet, tf.frame, epoch.Add(tf.at), 1)
		}
		e.Tick(epoch.Add(time.Minute))
		if len(c.events) != 1 || c.events[0].MG.Detector != "behaviour" {
			t.Fatalf("opt-in %v: %v", optIn, detectors(c))
		}
		want := "allowed"
		if optIn {
			want = "blocked"
		}
		if got := c.events[0].Action; got != want || (len(enf.blocked) == 1) != optIn {
			t.Fatalf("opt-in %v: action %q, blocks %+v", optIn, got, enf.blocked)
		}
		if optIn && !enf.blocked[0].Reasons.Has(detect.ReasonBehaviour) {
			t.Fatalf("block reasons %b", enf.blocked[0].Reasons)
		}
	}
}
