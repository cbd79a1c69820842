package profile

import (
	"fmt"
	"net/netip"
	"reflect"
	"runtime"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func named(name string, port uint16) Dest {
	return Dest{Name: name, Port: port, Proto: TCP, App: "tls"}
}

func obs(d Dest, addr string) Observation { return Observation{Dest: d, IP: ip(addr)} }

func TestCheckCreatesLearningProfile(t *testing.T) {
	b := NewMemory(Config{})
	r := b.Check("web", named("api.example", 443), ip("192.0.2.1"), t0)
	if r.Exists || r.In || r.State != Learning {
		t.Fatalf("first check: %+v, want a new learning profile", r)
	}
	r = b.Check("web", named("api.example", 443), ip("192.0.2.1"), t0.Add(time.Second))
	if !r.Exists || r.In || r.State != Learning {
		t.Fatalf("second check: %+v", r)
	}
	p, ok := b.Get("web")
	if !ok || !p.Since.Equal(t0) || p.State != Learning {
		t.Fatalf("profile %+v, %v: want learning since %v", p, ok, t0)
	}
}

// docs/testing.md L2: a CDN name whose answers rotate is one destination.
func TestL2RotatingAddresses(t *testing.T) {
	b := NewMemory(Config{})
	cdn := named("cdn.example", 443)
	b.Learn("web", obs(cdn, "198.51.100.1"), t0) // answer A
	b.Learn("web", obs(cdn, "198.51.100.2"), t0) // answer B
	b.Learn("web", obs(Dest{Port: 5432, Proto: TCP}, "10.0.0.5"), t0)
	if err := b.Approve("web", Monitoring, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d    Dest
		ip   string
		in   bool
		want string
	}{
		{cdn, "203.0.113.9", true, "cdn.example:443/tcp"},                                               // later answer C under the same name
		{Dest{Name: "CDN.example.", Port: 443, Proto: TCP}, "203.0.113.9", true, "cdn.example:443/tcp"}, // not normalised by the caller
		{Dest{Port: 443, Proto: TCP}, "198.51.100.2", true, "cdn.example:443/tcp"},                      // bare IP among the recorded
		{Dest{Port: 443, Proto: TCP}, "203.0.113.9", false, ""},                                         // bare IP never seen
		{Dest{Port: 80, Proto: TCP}, "198.51.100.2", false, ""},                                         // recorded IP, other port
		{Dest{Port: 443, Proto: UDP}, "198.51.100.2", false, ""},                                        // other transport
		{named("cdn.example", 8443), "198.51.100.1", false, ""},                                         // name on another port
		{named("other.example", 443), "198.51.100.1", false, ""},                                        // another name on a shared address
		{Dest{Port: 5432, Proto: TCP}, "10.0.0.5", true, "10.0.0.5:5432/tcp"},
		{Dest{Port: 5432, Proto: TCP}, "::ffff:10.0.0.5", true, "10.0.0.5:5432/tcp"}, // v4-mapped
		{Dest{Port: 5432, Proto: TCP}, "10.0.0.6", false, ""},
	} {
		r := b.Check("web", tc.d, ip(tc.ip), t0.Add(2*time.Hour))
		if r.In != tc.in || r.Entry != tc.want || !r.Exists || r.State != Monitoring {
			t.Errorf("Check(%v, %s) = %+v, want In=%v Entry=%q", tc.d, tc.ip, r, tc.in, tc.want)
		}
	}
}

func TestPrefixAndAnyPortEntries(t *testing.T) {
	b := NewMemory(Config{})
	err := b.Put(Profile{Workload: "db", State: Enforcing, Since: t0, Entries: []Entry{
		{Dest: Dest{Addr: netip.MustParsePrefix("10.1.0.0/16"), Port: 5432, Proto: TCP}},
		{Dest: Dest{Addr: netip.MustParsePrefix("2001:db8::/32"), Proto: UDP}},
		{Dest: Dest{Name: "api.example", Proto: TCP}, IPs: []netip.Addr{ip("192.0.2.7")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d  Dest
		ip string
		in bool
	}{
		{Dest{Port: 5432, Proto: TCP}, "10.1.200.3", true},
		{Dest{Port: 5433, Proto: TCP}, "10.1.200.3", false},
		{Dest{Port: 5432, Proto: TCP}, "10.2.0.1", false},
		{Dest{Port: 53, Proto: UDP}, "2001:db8:1::1", true}, // port 0 = any
		{Dest{Port: 53, Proto: TCP}, "2001:db8:1::1", false},
		{named("api.example", 8080), "192.0.2.1", true},
		{Dest{Port: 8080, Proto: TCP}, "192.0.2.7", true},
		{Dest{Addr: netip.MustParsePrefix("10.1.2.3/32"), Port: 5432, Proto: TCP}, "", true}, // no ip: the Dest's address
	} {
		var a netip.Addr
		if tc.ip != "" {
			a = ip(tc.ip)
		}
		if r := b.Check("db", tc.d, a, t0); r.In != tc.in || r.State != Enforcing {
			t.Errorf("Check(%v, %s) = %+v, want In=%v", tc.d, tc.ip, r, tc.in)
		}
	}
}

// docs/testing.md L1 at package level: a destination a detector flagged is never In, whether
// it was flagged before or after it was learned.
func TestL1Poison(t *testing.T) {
	pool := Dest{Name: "pool.example", Port: 3333, Proto: TCP, App: "stratum"}
	poolTLS := Dest{Name: "pool.example", Port: 443, Proto: TCP, App: "tls"}
	api := named("api.example", 443)
	for _, order := range []string{"poison-first", "learn-first"} {
		t.Run(order, func(t *testing.T) {
			b := NewMemory(Config{})
			if order == "poison-first" {
				b.Poison("w", pool, t0)
			}
			b.Learn("w", obs(pool, "203.0.113.50"), t0.Add(time.Minute))
			b.Learn("w", obs(poolTLS, "203.0.113.50"), t0.Add(time.Minute))
			b.Learn("w", obs(api, "192.0.2.1"), t0.Add(time.Minute))
			if order == "learn-first" {
				b.Poison("w", pool, t0.Add(2*time.Minute))
			}
			b.Learn("w", obs(pool, "203.0.113.50"), t0.Add(3*time.Minute)) // still running
			b.Approve("w", Monitoring, t0.Add(time.Hour))
			for _, d := range []Dest{pool, poolTLS} {
				r := b.Check("w", d, ip("203.0.113.50"), t0.Add(2*time.Hour))
				if r.In || !r.Poisoned || r.Entry != "poisoned pool.example" {
					t.Errorf("%v: %+v, want poisoned, not in", d, r)
				}
			}
			if r := b.Check("w", Dest{Port: 3333, Proto: TCP}, ip("203.0.113.50"), t0.Add(2*time.Hour)); r.In {
				t.Errorf("the pool's address without its name: %+v, want not in", r)
			}
			if r := b.Check("w", api, ip("192.0.2.1"), t0.Add(2*time.Hour)); !r.In {
				t.Errorf("benign destination lost: %+v", r)
			}
			p, _ := b.Get("w")
			if len(p.Entries) != 1 || p.Entries[0].Name != "api.example" || !reflect.DeepEqual(p.Poisoned, []string{"pool.example"}) {
				t.Errorf("profile %+v", p)
			}
			if s := b.Stats(); s.Poisoned != 1 {
				t.Errorf("Poisoned = %d, want 1", s.Poisoned)
			}
		})
	}
}

// An address flagged without a name removes the name entries learned with that address in
// this window, and a poisoned destination in a monitoring profile is masked, not removed.
func TestPoisonByAddressAndOutsideLearning(t *testing.T) {
	b := NewMemory(Config{})
	b.Learn("w", obs(named("cdn.example", 443), "203.0.113.50"), t0)
	b.Learn("w", obs(named("api.example", 443), "192.0.2.1"), t0)
	b.Poison("w", Dest{Addr: netip.MustParsePrefix("203.0.113.50/32"), Port: 443, Proto: TCP}, t0)
	p, _ := b.Get("w")
	if len(p.Entries) != 1 || p.Entries[0].Name != "api.example" {
		t.Fatalf("entries %v, want only api.example", p.Entries)
	}
	b.Learn("w", obs(named("evil.example", 443), "203.0.113.50"), t0) // a new name for the flagged address
	if p, _ := b.Get("w"); len(p.Entries) != 1 {
		t.Fatalf("learned a name resolving to a poisoned address: %v", p.Entries)
	}

	b.Approve("w", Enforcing, t0)
	b.Poison("w", named("api.example", 443), t0)
	r := b.Check("w", named("api.example", 443), ip("192.0.2.1"), t0)
	if r.In || !r.Poisoned || r.State != Enforcing {
		t.Errorf("poisoned while enforcing: %+v", r)
	}
	if p, _ := b.Get("w"); len(p.Entries) != 1 {
		t.Errorf("entry learned in an earlier window was removed: %v", p.Entries)
	}
}

func TestMinReplicas(t *testing.T) {
	b := NewMemory(Config{MinReplicas: 2})
	d := named("api.example", 443)
	o := obs(d, "192.0.2.1")
	o.Replica, o.Node = "pod-a", "n1"
	b.Learn("w", o, t0)
	b.Learn("w", o, t0) // the same replica again does not count twice
	if r := b.Check("w", d, ip("192.0.2.1"), t0); r.In {
		t.Fatalf("in after one replica: %+v", r)
	}
	p, _ := b.Get("w")
	if len(p.Entries) != 0 || len(p.Candidates) != 1 || len(p.Candidates[0].Seen) != 1 {
		t.Fatalf("profile %+v, want one candidate seen once", p)
	}
	o.Replica, o.IP = "pod-b", ip("192.0.2.2")
	b.Learn("w", o, t0.Add(time.Minute))
	r := b.Check("w", Dest{Port: 443, Proto: TCP}, ip("192.0.2.1"), t0)
	if !r.In {
		t.Fatalf("not in after two replicas: %+v", r)
	}
	p, _ = b.Get("w")
	if len(p.Candidates) != 0 || len(p.Entries) != 1 || len(p.Entries[0].IPs) != 2 || !p.LastNew.Equal(t0.Add(time.Minute)) {
		t.Fatalf("profile %+v", p)
	}
}

func TestDenyOverridesLearned(t *testing.T) {
	cfg := Config{Deny: []string{"pool.example", "203.0.113.0/24"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b := NewMemory(cfg)
	b.Learn("w", obs(named("eu.pool.example", 443), "198.51.100.1"), t0)
	b.Learn("w", obs(Dest{Port: 80, Proto: TCP}, "203.0.113.9"), t0)
	b.Learn("w", obs(named("ok.example", 443), "203.0.113.10"), t0) // a name resolving into a denied range
	if p, _ := b.Get("w"); len(p.Entries) != 0 {
		t.Fatalf("denied destinations learned: %v", p.Entries)
	}
	// A destination imported (or learned before the deny list had it) is still a violation.
	b.Put(Profile{Workload: "w", State: Enforcing, Entries: []Entry{{Dest: named("pool.example", 3333), IPs: []netip.Addr{ip("198.51.100.3")}}}})
	for _, tc := range []struct {
		d    Dest
		ip   string
		want string
	}{
		{named("pool.example", 3333), "198.51.100.3", "deny pool.example"},
		{named("eu.pool.example", 443), "198.51.100.1", "deny pool.example"},
		{Dest{Port: 3333, Proto: TCP}, "198.51.100.3", "deny pool.example"}, // matched by a denied name's address
		{Dest{Port: 80, Proto: TCP}, "203.0.113.9", "deny 203.0.113.0/24"},
	} {
		r := b.Check("w", tc.d, ip(tc.ip), t0)
		if r.In || !r.Denied || r.Entry != tc.want {
			t.Errorf("Check(%v, %s) = %+v, want denied by %q", tc.d, tc.ip, r, tc.want)
		}
	}
	// Denied even without a profile, and the suffix match is by label.
	if r := NewMemory(cfg).Check("new", named("xpool.example", 443), ip("192.0.2.1"), t0); r.Denied {
		t.Errorf("xpool.example denied by the suffix pool.example: %+v", r)
	}
	if err := (Config{Deny: []string{"not a domain!"}}).Validate(); err == nil {
		t.Error("invalid deny entry accepted")
	}
}

func TestLifecycle(t *testing.T) {
	d := named("api.example", 443)
	t.Run("window and quiet", func(t *testing.T) {
		b := NewMemory(Config{Window: 24 * time.Hour, Quiet: time.Hour})
		b.Learn("w", obs(d, "192.0.2.1"), t0)
		b.Learn("w", obs(named("late.example", 443), "192.0.2.2"), t0.Add(23*time.Hour+30*time.Minute))
		if tr := b.Tick(t0.Add(24 * time.Hour)); len(tr) != 0 {
			t.Fatalf("promoted 30 min after a new entry: %v", tr)
		}
		tr := b.Tick(t0.Add(24*time.Hour + 30*time.Minute))
		want := []Transition{{Workload: "w", From: Learning, To: Monitoring, At: t0.Add(24*time.Hour + 30*time.Minute), Reason: "window"}}
		if !reflect.DeepEqual(tr, want) {
			t.Fatalf("Tick = %+v, want %+v", tr, want)
		}
		b.Learn("w", obs(named("after.example", 443), "192.0.2.3"), t0.Add(25*time.Hour))
		if p, _ := b.Get("w"); len(p.Entries) != 2 || p.State != Monitoring {
			t.Fatalf("learned while monitoring: %+v", p)
		}
		if tr := b.Tick(t0.Add(48 * time.Hour)); len(tr) != 0 {
			t.Errorf("second transition %v", tr)
		}
	})
	t.Run("min flows", func(t *testing.T) {
		b := NewMemory(Config{MinFlows: 3, Quiet: 10 * time.Minute, Promote: Enforcing})
		for i := range 3 {
			b.Learn("w", obs(d, "192.0.2.1"), t0.Add(time.Duration(i)*time.Minute))
		}
		if tr := b.Tick(t0.Add(5 * time.Minute)); len(tr) != 0 {
			t.Fatalf("promoted inside the quiet period: %v", tr)
		}
		tr := b.Tick(t0.Add(10 * time.Minute))
		if len(tr) != 1 || tr[0].To != Enforcing || tr[0].Reason != "flows" {
			t.Fatalf("Tick = %+v, want enforcing by flows", tr)
		}
	})
	t.Run("never automatic", func(t *testing.T) {
		b := NewMemory(Config{Promote: Learning, Quiet: -1})
		b.Learn("w", obs(d, "192.0.2.1"), t0)
		if tr := b.Tick(t0.Add(1000 * time.Hour)); len(tr) != 0 {
			t.Fatalf("promoted automatically: %v", tr)
		}
		if err := b.Approve("w", Enforcing, t0.Add(1001*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if r := b.Check("w", d, ip("192.0.2.1"), t0); r.State != Enforcing || !r.In {
			t.Fatalf("after approve: %+v", r)
		}
		if err := b.Approve("w", Learning, t0); err == nil {
			t.Error("approve to learning accepted")
		}
		if err := b.Approve("nobody", Monitoring, t0); err == nil {
			t.Error("approve of a missing profile accepted")
		}
	})
	t.Run("reset", func(t *testing.T) {
		b := NewMemory(Config{})
		b.Learn("w", obs(d, "192.0.2.1"), t0)
		b.Poison("w", named("pool.example", 3333), t0)
		b.Approve("w", Monitoring, t0)
		if err := b.Reset("w", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		p, _ := b.Get("w")
		if p.State != Learning || len(p.Entries) != 0 || !p.Since.Equal(t0.Add(time.Hour)) || len(p.Poisoned) != 1 {
			t.Fatalf("after reset: %+v", p)
		}
		if r := b.Check("w", d, ip("192.0.2.1"), t0); r.In {
			t.Errorf("in after reset: %+v", r)
		}
		if err := b.Reset("nobody", t0); err == nil {
			t.Error("reset of a missing profile accepted")
		}
	})
	t.Run("image change", func(t *testing.T) {
		for _, relearn := range []bool{false, true} {
			b := NewMemory(Config{RelearnOnImageChange: relearn})
			b.SetImage("w", "web:1", t0)
			b.Learn("w", obs(d, "192.0.2.1"), t0)
			b.Approve("w", Enforcing, t0)
			b.SetImage("w", "web:1", t0.Add(time.Hour)) // unchanged
			b.SetImage("w", "web:2", t0.Add(2*time.Hour))
			tr := b.Tick(t0.Add(2 * time.Hour))
			p, _ := b.Get("w")
			if relearn {
				want := []Transition{{Workload: "w", From: Enforcing, To: Learning, At: t0.Add(2 * time.Hour), Reason: "image"}}
				if !reflect.DeepEqual(tr, want) || p.State != Learning || len(p.Entries) != 0 || p.Image != "web:2" {
					t.Errorf("relearn: transitions %+v, profile %+v", tr, p)
				}
			} else if len(tr) != 0 || p.State != Enforcing || len(p.Entries) != 1 || p.Image != "web:2" {
				t.Errorf("no relearn: transitions %+v, profile %+v", tr, p)
			}
		}
	})
}

func TestCaps(t *testing.T) {
	b := NewMemory(Config{MaxEntries: 3, MaxIPsPerName: 2, MaxProfiles: 2})
	for i := range 5 {
		b.Learn("w", obs(named(fmt.Sprintf("n%d.example", i), 443), "192.0.2.1"), t0)
	}
	for i := range 4 {
		b.Learn("w", obs(named("n0.example", 443), fmt.Sprintf("198.51.100.%d", i)), t0)
	}
	p, _ := b.Get("w")
	if len(p.Entries) != 3 || len(p.Entries[0].IPs) != 2 {
		t.Fatalf("entries %v", p.Entries)
	}
	b.Learn("v", obs(named("x.example", 443), "192.0.2.1"), t0)
	r := b.Check("third", named("x.example", 443), ip("192.0.2.1"), t0)
	if r.Exists {
		t.Errorf("third profile: %+v", r)
	}
	s := b.Stats()
	// 2 entries over the cap; 3 new addresses for n0 after 192.0.2.1 of which 2 fit... 192.0.2.1 plus
	// 198.51.100.0 fill the cap, then .1 .2 .3 are dropped.
	if s.EntriesCapped != 2 || s.IPsCapped != 3 || s.ProfilesCap != 1 || s.Profiles != 2 || s.Learning != 2 || s.Entries != 4 {
		t.Errorf("stats %+v", s)
	}
}

func TestMalformedInputsDoNotPanic(t *testing.T) {
	b := NewMemory(Config{})
	for _, d := range []Dest{
		{}, {Name: "bad name!", Port: 1, Proto: TCP}, {Name: "."}, {Addr: netip.MustParsePrefix("::ffff:10.0.0.0/104")},
	} {
		b.Learn("w", Observation{Dest: d}, t0)
		b.Check("w", d, netip.Addr{}, t0)
		b.Poison("other", d, t0)
	}
	p, _ := b.Get("w")
	if len(p.Entries) != 1 || p.Entries[0].Addr != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("entries %v, want only the unmapped 10.0.0.0/8", p.Entries)
	}
}

// bigProfile learns n names (each with two addresses) and n/4 address entries.
func bigProfile(b *Book, n int) {
	for i := range n {
		d := named(fmt.Sprintf("svc%d.example.com", i), 443)
		if i%4 == 3 {
			d = Dest{Port: 5432, Proto: TCP}
		}
		b.Learn("w", obs(d, fmt.Sprintf("10.%d.%d.1", i/256, i%256)), t0)
		if d.Name != "" {
			b.Learn("w", obs(d, fmt.Sprintf("10.%d.%d.2", i/256, i%256)), t0)
		}
	}
	if p, _ := b.Get("w"); len(p.Entries) != n {
		panic(fmt.Sprintf("bigProfile: %d entries", len(p.Entries)))
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	b := NewMemory(Config{Deny: []string{"pool.example", "203.0.113.0/24"}})
	bigProfile(b, 1000)
	hitName, hitIP, miss := named("svc10.example.com", 443), Dest{Port: 443, Proto: TCP}, named("nope.example.org", 443)
	for _, tc := range []struct {
		d  Dest
		ip netip.Addr
		in bool
	}{{hitName, ip("10.0.10.1"), true}, {hitIP, ip("10.0.10.2"), true}, {miss, ip("192.0.2.1"), false}, {hitIP, ip("192.0.2.1"), false}} {
		if r := b.Check("w", tc.d, tc.ip, t0); r.In != tc.in {
			t.Fatalf("%v: %+v", tc.d, r)
		}
		if n := testing.AllocsPerRun(100, func() { b.Check("w", tc.d, tc.ip, t0) }); n != 0 {
			t.Errorf("Check(%v) allocates %v times", tc.d, n)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	bk := NewMemory(Config{Deny: []string{"pool.example", "203.0.113.0/24"}})
	bigProfile(bk, 1000)
	for _, bc := range []struct {
		name string
		d    Dest
		ip   netip.Addr
	}{
		{"hit-name", named("svc500.example.com", 443), ip("10.1.244.1")},
		{"hit-ip", Dest{Port: 443, Proto: TCP}, ip("10.1.244.2")},
		{"miss-name", named("nope.example.org", 443), ip("192.0.2.1")},
		{"miss-ip", Dest{Port: 443, Proto: TCP}, ip("192.0.2.1")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bk.Check("w", bc.d, bc.ip, t0)
			}
		})
	}
}

// TestProfileMemory reports what a 1,000-entry profile costs in memory (see the report in the
// package's closing note); it fails only if the cost is absurd.
func TestProfileMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b := NewMemory(Config{})
	bigProfile(b, 1000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(b)
	n := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("1,000-entry profile (750 names × 2 addresses, 250 addresses): %d bytes in memory", n)
	if n > 4<<20 {
		t.Errorf("1,000-entry profile takes %d bytes", n)
	}
}

func TestState(t *testing.T) {
	b := NewMemory(Config{})
	if st, ok := b.State("w"); ok || st != 0 {
		t.Fatalf("no profile: %v %v", st, ok)
	}
	b.Learn("w", Observation{Dest: Dest{Port: 53, Proto: UDP}, IP: netip.MustParseAddr("10.0.0.53")}, time.Now())
	b.Approve("w", Enforcing, time.Now())
	if st, ok := b.State("w"); !ok || st != Enforcing {
		t.Fatalf("after approve: %v %v", st, ok)
	}
}

func TestAddEntries(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b := NewMemory(Config{MaxEntries: 3, Deny: []string{"pool.example"}})
	b.Learn("w", Observation{Dest: Dest{Name: "api.example", Port: 443, Proto: TCP}}, now)
	b.Poison("w", Dest{Name: "bad.example", Port: 3333, Proto: TCP}, now)
	es := []Entry{
		{Dest: Dest{Name: "api.example", Port: 443, Proto: TCP}, IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		{Dest: Dest{Name: "db.example", Port: 5432, Proto: TCP}, First: now.Add(-time.Hour)},
		{Dest: Dest{Name: "x.pool.example", Port: 3333, Proto: TCP}}, // denied
		{Dest: Dest{Name: "bad.example", Port: 3333, Proto: TCP}},    // poisoned here
		{Dest: Dest{Addr: netip.MustParsePrefix("198.51.100.7/32"), Port: 53, Proto: UDP}},
		{Dest: Dest{Addr: netip.MustParsePrefix("198.51.100.8/32"), Port: 53, Proto: UDP}}, // over MaxEntries
	}
	n, err := b.AddEntries("w", es, now)
	if err != nil || n != 2 {
		t.Fatalf("AddEntries = %d, %v; want 2 added", n, err)
	}
	p, _ := b.Get("w")
	if len(p.Entries) != 3 || b.Stats().EntriesCapped != 1 {
		t.Fatalf("entries %v, capped %d", p.Entries, b.Stats().EntriesCapped)
	}
	// The address recorded under the name elsewhere now matches an unnamed flow here.
	if r := b.Check("w", Dest{Port: 443, Proto: TCP}, netip.MustParseAddr("192.0.2.1"), now); !r.In {
		t.Fatalf("address of a merged name entry: %+v", r)
	}
	if r := b.Check("w", Dest{Name: "db.example", Port: 5432, Proto: TCP}, netip.Addr{}, now); !r.In || r.State != Learning {
		t.Fatalf("merged entry: %+v", r)
	}
	// A workload new to the node gets a profile holding the entries.
	if n, _ := b.AddEntries("new", es[1:2], now); n != 1 {
		t.Fatalf("new workload: %d added", n)
	}
	if e := p.Entries[2]; e.Name != "db.example" || !e.First.Equal(now.Add(-time.Hour)) {
		t.Fatalf("first seen not kept: %+v", e)
	}
}
