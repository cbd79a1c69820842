package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/intel"
	"github.com/minerguard/minerguard/profile"
)

// dotFrames is a DNS-over-TLS connection from the workload to resolver:853 (a ClientHello
// prefix is enough: the port decides).
func dotFrames(t *testing.T, resolver string, cport uint16) [][]byte {
	x := newSession(t, endpoint{"10.0.0.2", cport}, endpoint{resolver, 853})
	x.client("\x16\x03\x01\x00\x05hello", 1500)
	x.server("\x16\x03\x03\x00\x05hello")
	return x.frames
}

// Issue 15 item 3: encrypted DNS is a record and a learnable profile entry, never an alert by
// itself; a workload that starts to use it (a resolver its profile never saw) is a violation.
func TestEncryptedDNSIsARecord(t *testing.T) {
	book := profile.NewMemory(profile.Config{Promote: profile.Learning})
	c := &collect{}
	e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c, Workload: oneWorkload, Profiles: book})

	feedAt(e, epoch, dotFrames(t, "10.5.5.5", 40001))
	e.Flush()
	if len(c.events) != 1 || c.events[0].EventType != "anomaly" || c.events[0].Anomaly == nil ||
		c.events[0].Anomaly.Event != "ENCRYPTED_DNS" || c.events[0].MG.EncryptedDNS != "dot" ||
		c.events[0].MG.Workload == nil || c.events[0].MG.Workload.Identity != "shop/web" {
		t.Fatalf("want one encrypted-DNS record for shop/web, got %+v", c.events)
	}
	if st := e.Stats(); st.EncryptedDNS != 1 || st.AlertsTotal() != 0 || st.FlaggedFlows != 0 {
		t.Fatalf("stats: encrypted DNS %d, alerts %d, flagged %d; want 1, 0, 0", st.EncryptedDNS, st.AlertsTotal(), st.FlaggedFlows)
	}
	if !e.encDNS.Used(1, epoch.Add(time.Minute)) {
		t.Error("the workload's use of encrypted DNS was not remembered for the behaviour score")
	}
	p, ok := book.Get("shop/web")
	if !ok || len(p.Entries) != 1 || p.Entries[0].String() != "10.5.5.5:853/tcp" || p.Entries[0].App != "dot" {
		t.Fatalf("the resolver is not learned as encrypted DNS: %+v", p.Entries)
	}

	if err := book.Approve("shop/web", profile.Monitoring, epoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.events = nil
	later := epoch.Add(2 * time.Hour)
	feedAt(e, later, dotFrames(t, "10.5.5.5", 41001)) // the learned resolver: a record again, nothing more
	e.Flush()
	if len(c.events) != 1 || c.events[0].EventType != "anomaly" {
		t.Fatalf("learned encrypted DNS: want only the record, got %v", detectors(c))
	}
	c.events = nil
	feedAt(e, later.Add(time.Minute), dotFrames(t, "10.6.6.6", 41002)) // a resolver it never used
	e.Flush()
	got := strings.Join(detectors(c), ",")
	if got != "doh 10.6.6.6:853,egress-not-in-profile 10.6.6.6:853,unresolved-ip 10.6.6.6:853" {
		t.Fatalf("new encrypted DNS: got %s", got)
	}
	for _, ev := range c.events {
		if ev.MG.EncryptedDNS != "dot" {
			t.Errorf("%s: encrypted_dns %q, want dot", ev.MG.Detector, ev.MG.EncryptedDNS)
		}
		if (ev.MG.Detector == "doh") != (ev.EventType == "anomaly") {
			t.Errorf("%s: event type %q", ev.MG.Detector, ev.EventType)
		}
	}
}
