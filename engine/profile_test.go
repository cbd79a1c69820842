package engine

import (
	stdtls "crypto/tls"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/intel"
	"github.com/minerguard/minerguard/profile"
)

// oneWorkload names every address of 10.0.0.0/24 "shop/web"; anything else is remote.
func oneWorkload(scope uint64, a netip.Addr) *alert.Workload {
	if netip.MustParsePrefix("10.0.0.0/24").Contains(a) && a != netip.MustParseAddr("10.0.0.53") {
		return &alert.Workload{Identity: "shop/web"}
	}
	return nil
}

// phase builds the frames of one period of the workload's life: a DNS lookup of name answered
// with ip, then an HTTP request to it on port, from client port cport.
func lookupAndGet(t *testing.T, name, ip string, port, cport uint16, id uint16) [][]byte {
	resolver := endpoint{"10.0.0.53", 53}
	cl := endpoint{"10.0.0.2", 50000 + id}
	frames := [][]byte{
		udpFrame(t, cl, resolver, dnsQuery(t, name, id)),
		udpFrame(t, resolver, cl, dnsAnswer(t, name, ip, id)),
	}
	x := newSession(t, endpoint{"10.0.0.2", cport}, endpoint{ip, port})
	x.client("GET / HTTP/1.1\r\nHost: "+name+"\r\n\r\n", 1500)
	x.server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	return append(frames, x.frames...)
}

func minerFrames(t *testing.T, cport uint16, id uint16) [][]byte {
	frames := lookupAndGet(t, "pool.supportxmr.com", "10.9.9.9", 3333, cport, id)
	// Replace the HTTP session with a Stratum login.
	x := newSession(t, endpoint{"10.0.0.2", cport + 1}, endpoint{"10.9.9.9", 3333})
	x.client(xmrigLogin, 1500)
	return append(frames[:2], x.frames...)
}

func feedAt(e *Engine, start time.Time, frames [][]byte) {
	for i, f := range frames {
		e.Packet(flow.LinkEthernet, f, start.Add(time.Duration(i)*time.Millisecond), 1)
	}
}

func detectors(c *collect) []string {
	var out []string
	for _, ev := range c.events {
		out = append(out, ev.MG.Detector+" "+ev.Dest.String())
	}
	sort.Strings(out)
	return out
}

// L1 and L2 through the engine: a miner running while the workload learns is alerted and none
// of its destinations is learned; later, a name whose address rotated is not a violation, and
// the miner and an address literal are.
func TestProfileLearnThenCheck(t *testing.T) {
	book := profile.NewMemory(profile.Config{Promote: profile.Learning})
	c := &collect{}
	e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c, Workload: oneWorkload, Profiles: book})

	var learn [][]byte
	learn = append(learn, lookupAndGet(t, "api.example.com", "10.1.1.1", 443, 40001, 1)...)
	learn = append(learn, lookupAndGet(t, "cdn.example.net", "10.2.2.1", 443, 40003, 2)...)
	learn = append(learn, minerFrames(t, 40005, 3)...)
	feedAt(e, epoch, learn)
	e.Flush()
	if got := strings.Join(detectors(c), ","); !strings.Contains(got, "stratum 10.9.9.9:3333") || !strings.Contains(got, "pool-dns") {
		t.Fatalf("miner not alerted while learning: %s", got)
	}
	for _, ev := range c.events {
		if ev.MG.Detector == "egress-not-in-profile" {
			t.Fatalf("violation while learning: %+v", ev)
		}
	}
	p, ok := book.Get("shop/web")
	if !ok {
		t.Fatal("no profile")
	}
	var learned []string
	for _, en := range p.Entries {
		learned = append(learned, en.String())
	}
	got := strings.Join(learned, " ")
	for _, want := range []string{"api.example.com:443/tcp", "cdn.example.net:443/tcp", "10.0.0.53:53/udp"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s not learned: %s", want, got)
		}
	}
	if strings.Contains(got, "10.9.9.9") || strings.Contains(got, "supportxmr") || len(p.Entries) != 3 {
		t.Fatalf("learned entries %s: the miner's destinations must not be learned", got)
	}

	if err := book.Approve("shop/web", profile.Monitoring, epoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.events = nil
	later := epoch.Add(2 * time.Hour)
	var check [][]byte
	check = append(check, lookupAndGet(t, "api.example.com", "10.1.1.1", 443, 41001, 11)...)
	check = append(check, lookupAndGet(t, "cdn.example.net", "10.2.2.7", 443, 41003, 12)...) // rotated address
	feedAt(e, later, check)
	e.Flush()
	if len(c.events) != 0 {
		t.Fatalf("ordinary later traffic flagged: %v", detectors(c))
	}
	c.events = nil
	x := newSession(t, endpoint{"10.0.0.2", 41100}, endpoint{"10.7.7.7", 8443})
	x.client("\x16\x03\x01", 1500)
	feedAt(e, later.Add(time.Minute), append(minerFrames(t, 41010, 13), x.frames...))
	e.Flush()
	want := []string{
		"egress-not-in-profile 10.7.7.7:8443", "egress-not-in-profile 10.9.9.9:3333",
		"pool-dns 10.0.0.53:53", "pool-ip 10.9.9.9:3333", "stratum 10.9.9.9:3333", "unresolved-ip 10.7.7.7:8443",
	}
	if got := strings.Join(detectors(c), ","); got != strings.Join(want, ",") {
		t.Fatalf("later alerts\n got %s\nwant %s", got, strings.Join(want, ","))
	}
	for _, ev := range c.events {
		if ev.MG.Detector == "egress-not-in-profile" && ev.Dest.Port() == 3333 {
			if ev.MG.Profile == nil || ev.MG.Profile.Destination != "pool.supportxmr.com:3333/tcp" || ev.MG.Profile.State != "monitoring" {
				t.Errorf("profile object %+v", ev.MG.Profile)
			}
			if ev.MG.Workload == nil || ev.MG.Workload.Identity != "shop/web" {
				t.Errorf("workload %+v", ev.MG.Workload)
			}
		}
	}
	if st := e.Stats(); st.ProfileViolations != 2 || st.ProfilePoisoned == 0 {
		t.Errorf("stats: %d violations, %d poisoned", st.ProfileViolations, st.ProfilePoisoned)
	}
}

// fakeEnforcer records the blocks it is asked for.
type fakeEnforcer struct {
	ok       bool
	blocked  []Block
	released []Block
}

func (f *fakeEnforcer) Block(b Block) bool { f.blocked = append(f.blocked, b); return f.ok }
func (f *fakeEnforcer) Unblock(b Block)    { f.released = append(f.released, b) }

func TestEnforcerBlocksOncePerFlow(t *testing.T) {
	for _, ok := range []bool{true, false} {
		c := &collect{}
		enf := &fakeEnforcer{ok: ok}
		e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeEnforce), Sink: c, Workload: oneWorkload, Enforcer: enf})
		x := newSession(t, client, endpoint{"10.9.9.9", 443})
		x.client(xmrigLogin, 1500)
		x.client(xmrigLogin, 1500)
		feed(e, x.frames)
		e.Flush()
		if len(enf.blocked) != 1 {
			t.Fatalf("ok=%v: %d block calls, want 1", ok, len(enf.blocked))
		}
		b := enf.blocked[0]
		if b.Src.String() != "10.0.0.2:40000" || b.Dst.String() != "10.9.9.9:443" || b.Proto != 6 || !b.Reasons.Has(detect.ReasonStratum) || b.Workload != "shop/web" {
			t.Errorf("block %+v", b)
		}
		want := "allowed"
		if ok {
			want = "blocked"
		}
		for _, ev := range c.events {
			if ev.Action != want {
				t.Errorf("ok=%v: alert action %q, want %q", ok, ev.Action, want)
			}
		}
		if ok && (len(enf.released) != 1 || enf.released[0].Src != b.Src) {
			t.Errorf("flow end released %v", enf.released)
		}
		st := e.Stats()
		if ok && (st.Blocked != 1 || st.AlertsBlocked[detect.ReasonStratum] != 1) || !ok && st.BlockFailed != 1 {
			t.Errorf("ok=%v: stats blocked %d failed %d", ok, st.Blocked, st.BlockFailed)
		}
	}
	// Monitor mode never asks.
	enf := &fakeEnforcer{ok: true}
	e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: &collect{}, Workload: oneWorkload, Enforcer: enf})
	x := newSession(t, client, endpoint{"10.9.9.9", 443})
	x.client(xmrigLogin, 1500)
	feed(e, x.frames)
	if len(enf.blocked) != 0 {
		t.Errorf("monitor mode blocked %v", enf.blocked)
	}
}

// An enforcing workload's TCP flow to an address nothing named is judged at its SYN when no
// server name could still match (no name entry on that port): the block is asked for before
// any payload. A port the profile knows by name waits for the ClientHello; so does every
// flow of a monitored workload (its alert then carries the name).
func TestProfileEarlyVerdictAtSYN(t *testing.T) {
	for _, st := range []profile.State{profile.Enforcing, profile.Monitoring} {
		book := profile.NewMemory(profile.Config{})
		book.Learn("shop/web", profile.Observation{Dest: profile.Dest{Name: "api.example.com", Port: 443, Proto: profile.TCP},
			IP: netip.MustParseAddr("10.1.1.1")}, epoch)
		book.Learn("shop/web", profile.Observation{Dest: profile.Dest{Port: 5432, Proto: profile.TCP},
			IP: netip.MustParseAddr("10.5.5.5")}, epoch)
		if err := book.Approve("shop/web", st, epoch); err != nil {
			t.Fatal(err)
		}
		enf := &fakeEnforcer{ok: true}
		c := &collect{}
		e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeEnforce), Sink: c, Workload: oneWorkload,
			Profiles: book, Enforcer: enf})
		later := epoch.Add(time.Hour)
		syn := func(port uint16, cport uint16) {
			x := newSession(t, endpoint{"10.0.0.2", cport}, endpoint{"10.7.7.7", port})
			feedAt(e, later, x.frames[:1])
		}
		syn(3333, 42001) // a new port: nothing could name it
		syn(443, 42002)  // api.example.com's port: a ClientHello might
		syn(5432, 42003) // in the profile by address? no: 10.7.7.7 is not 10.5.5.5, and no name on 5432
		var at []string
		for _, b := range enf.blocked {
			at = append(at, b.Dst.String())
		}
		got := strings.Join(at, ",")
		want := "10.7.7.7:3333,10.7.7.7:5432"
		if st == profile.Monitoring {
			want = ""
		}
		if got != want {
			t.Errorf("%v: blocked at the SYN %q, want %q", st, got, want)
		}
		if st == profile.Enforcing {
			if n := e.Stats().ProfileEarly; n != 2 {
				t.Errorf("ProfileEarly = %d, want 2", n)
			}
			var reasons []string
			for _, ev := range c.events {
				if ev.Dest.Port() == 3333 {
					reasons = append(reasons, ev.MG.Detector+"/"+ev.Action)
				}
			}
			sort.Strings(reasons)
			if r := strings.Join(reasons, ","); r != "egress-not-in-profile/blocked,unresolved-ip/blocked" {
				t.Errorf("alerts of the SYN to :3333: %s", r)
			}
		}
	}
}

// With NameScope (replay of a capture holding several workloads), a workload connecting to an
// address only another workload looked up has not resolved it: its profile sees the address
// (unresolved-ip), while detection still reads every answer. Without NameScope the other
// workload's answer names it.
func TestProfileNameScopePerWorkload(t *testing.T) {
	two := func(scope uint64, a netip.Addr) *alert.Workload {
		switch a {
		case netip.MustParseAddr("10.0.0.2"):
			return &alert.Workload{Identity: "a"}
		case netip.MustParseAddr("10.0.0.3"):
			return &alert.Workload{Identity: "b"}
		}
		return nil
	}
	byHost := func(scope uint64, a netip.Addr) uint64 {
		if w := two(scope, a); w != nil {
			return scope ^ uint64(len(w.Identity))<<40 ^ uint64(w.Identity[0])
		}
		return scope
	}
	for _, scoped := range []bool{false, true} {
		book := profile.NewMemory(profile.Config{})
		book.Learn("b", profile.Observation{Dest: profile.Dest{Name: "other.example", Port: 443, Proto: profile.TCP}, IP: netip.MustParseAddr("10.3.3.3")}, epoch)
		if err := book.Approve("b", profile.Monitoring, epoch); err != nil {
			t.Fatal(err)
		}
		c := &collect{}
		o := Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c, Workload: two, Profiles: book}
		if scoped {
			o.NameScope = byHost
		}
		e := New(o)
		// a looks api.example.com up; b connects to its address by literal.
		frames := lookupAndGet(t, "api.example.com", "10.1.1.1", 443, 40001, 1)[:2]
		x := newSession(t, endpoint{"10.0.0.3", 40002}, endpoint{"10.1.1.1", 443})
		x.client("GET / HTTP/1.1\r\n\r\n", 1500)
		feedAt(e, epoch.Add(time.Hour), append(frames, x.frames...))
		e.Flush()
		var got []string
		for _, ev := range c.events {
			if ev.MG.Profile != nil {
				got = append(got, ev.MG.Detector+" "+ev.MG.Profile.Destination)
			}
		}
		sort.Strings(got)
		want := "egress-not-in-profile api.example.com:443/tcp"
		if scoped {
			want = "egress-not-in-profile 10.1.1.1:443/tcp,unresolved-ip 10.1.1.1:443/tcp"
		}
		if strings.Join(got, ",") != want {
			t.Errorf("scoped=%v: %q, want %q", scoped, got, want)
		}
	}
}

// helloFor is a real ClientHello from Go's TLS client naming sni (no ALPN).
func helloFor(t *testing.T, sni string) string {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		c := stdtls.Client(a, &stdtls.Config{ServerName: sni, InsecureSkipVerify: true})
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

// viaSOCKS5 is a TLS session through the SOCKS5 proxy 10.5.5.5:1080 to target (a name, or an
// IPv4 address) on port 443, whose ClientHello names sni.
func viaSOCKS5(t *testing.T, cport uint16, target, sni string) [][]byte {
	req := "\x05\x01\x00\x03" + string([]byte{byte(len(target))}) + target + "\x01\xbb"
	if a, err := netip.ParseAddr(target); err == nil {
		b := a.As4()
		req = "\x05\x01\x00\x01" + string(b[:]) + "\x01\xbb"
	}
	x := newSession(t, endpoint{"10.0.0.2", cport}, endpoint{"10.5.5.5", 1080})
	x.client("\x05\x01\x00", 1500)
	x.server("\x05\x00")
	x.client(req, 1500)
	x.server("\x05\x00\x00\x01\x0a\x05\x05\x05\x01\xbb")
	x.client(helloFor(t, sni), 1500)
	x.server(tlsRec(22, 90) + tlsRec(20, 1) + tlsRec(23, 800))
	return x.frames
}

// Issue 15 item 4: the target of a proxy tunnel is a profile entry of its own (the name the
// client asked the proxy for, or the server name inside when it asked for an address), learned
// beside the proxy; later, a target outside the profile is a violation naming the target, not
// the proxy, although the proxy itself is in the profile.
func TestProfileTunnelTarget(t *testing.T) {
	book := profile.NewMemory(profile.Config{Promote: profile.Learning})
	c := &collect{}
	e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c, Workload: oneWorkload, Profiles: book})
	var learn [][]byte
	learn = append(learn, viaSOCKS5(t, 42001, "api.example.com", "api.example.com")...)
	learn = append(learn, viaSOCKS5(t, 42002, "10.8.8.8", "cdn.example.net")...)
	// A miner through the same proxy while learning: its target is poisoned, not the proxy.
	learn = append(learn, viaSOCKS5(t, 42003, "xmr.2miners.com", "xmr.2miners.com")...)
	feedAt(e, epoch, learn)
	e.Flush()
	if got := strings.Join(detectors(c), ","); got != "pool-ip 10.5.5.5:1080,pool-sni 10.5.5.5:1080" {
		t.Fatalf("alerts while learning: %s", got)
	}
	c.events = nil
	p, ok := book.Get("shop/web")
	if !ok {
		t.Fatal("no profile")
	}
	var learned []string
	for _, en := range p.Entries {
		learned = append(learned, en.String())
	}
	sort.Strings(learned)
	if got := strings.Join(learned, " "); got != "10.5.5.5:1080/tcp api.example.com:443/tcp cdn.example.net:443/tcp" {
		t.Fatalf("learned %q: want the proxy and both targets (the address target by its server name)", got)
	}
	if r := book.Check("shop/web", profile.Dest{Name: "xmr.2miners.com", Port: 443, Proto: profile.TCP}, netip.Addr{}, epoch.Add(time.Minute)); r.In {
		t.Fatalf("the miner's target is in the profile: %+v", r)
	}

	if err := book.Approve("shop/web", profile.Monitoring, epoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	later := epoch.Add(2 * time.Hour)
	feedAt(e, later, append(viaSOCKS5(t, 42011, "api.example.com", "api.example.com"), viaSOCKS5(t, 42012, "10.8.8.9", "cdn.example.net")...))
	e.Flush()
	if len(c.events) != 0 {
		t.Fatalf("learned targets flagged: %v", detectors(c))
	}
	feedAt(e, later.Add(time.Minute), append(viaSOCKS5(t, 42021, "edge.telemetry-cdn.example.org", "edge.telemetry-cdn.example.org"),
		viaSOCKS5(t, 42022, "10.7.7.7", "")...))
	e.Flush()
	var got []string
	for _, ev := range c.events {
		if ev.MG.Tunnel != "socks5" {
			t.Fatalf("alert without its tunnel: %+v", ev)
		}
		if ev.MG.Detector == "tls-no-sni" { // the hello to the address has no server name
			got = append(got, ev.MG.Detector+" "+ev.MG.Target)
			continue
		}
		got = append(got, ev.MG.Detector+" "+ev.MG.Profile.Destination+" via "+ev.Dest.String())
	}
	sort.Strings(got)
	want := "egress-not-in-profile 10.7.7.7:443/tcp via 10.5.5.5:1080," +
		"egress-not-in-profile edge.telemetry-cdn.example.org:443/tcp via 10.5.5.5:1080," +
		"tls-no-sni 10.7.7.7:443,unresolved-ip 10.7.7.7:443/tcp via 10.5.5.5:1080"
	if strings.Join(got, ",") != want {
		t.Fatalf("got %q\nwant %q", strings.Join(got, ","), want)
	}
}

// The intel checks read a tunnel's inner facts: a listed pool named by the server name inside
// a tunnel to an address (pool-sni), or by the host asked of the proxy (pool-ip).
func TestTunnelInnerIntel(t *testing.T) {
	c := &collect{}
	e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c})
	feedAt(e, epoch, append(viaSOCKS5(t, 42031, "10.6.6.6", "pool.supportxmr.com"), viaSOCKS5(t, 42032, "xmr.2miners.com", "cdn.example.net")...))
	e.Flush()
	var got []string
	for _, ev := range c.events {
		got = append(got, ev.MG.Detector+" "+ev.MG.Target)
	}
	sort.Strings(got)
	if g := strings.Join(got, ","); g != "pool-ip xmr.2miners.com:443,pool-sni 10.6.6.6:443" {
		t.Fatalf("got %q", g)
	}
}

// On the real captures of XMRig (tls+sni) to a name on no list through microsocks (SOCKS5)
// and through tinyproxy (HTTP CONNECT, XMRig run under proxychains4): with the proxy in the
// workload's profile and the pool's name not, the flow is out of profile for its target, and
// the behaviour detector reads the tunnelled TLS records.
func TestProfileTunnelTargetRealCapture(t *testing.T) {
	for _, tc := range []struct {
		path, client, proxy string
		port                uint16
		host                string
	}{
		{"../testdata/captures/mining-socks5-xmrig-tls-unlisted-1080.pcap", "10.78.177.1", "10.78.177.2", 1080, "edge-177.telemetry-cdn.example.org"},
		{"../testdata/captures/mining-http-connect-xmrig-tls-unlisted-8888.pcap", "10.78.178.1", "10.78.178.2", 8888, "edge-178.telemetry-cdn.example.org"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			c0, err := capture.Open(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer c0.Close()
			book := profile.NewMemory(profile.Config{Promote: profile.Learning})
			client := netip.MustParseAddr(tc.client)
			wl := func(scope uint64, a netip.Addr) *alert.Workload {
				if a == client {
					return &alert.Workload{Identity: "ci/builder"}
				}
				return nil
			}
			proxy := netip.MustParseAddr(tc.proxy)
			book.Learn("ci/builder", profile.Observation{Dest: profile.Dest{Addr: netip.PrefixFrom(proxy, 32), Port: tc.port, Proto: profile.TCP}, IP: proxy, Replica: "a"}, epoch)
			if err := book.Approve("ci/builder", profile.Monitoring, epoch); err != nil {
				t.Fatal(err)
			}
			c := &collect{}
			e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c, Workload: wl, Profiles: book})
			var fr capture.Frame
			for {
				if err := c0.Next(&fr); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				e.Packet(flow.LinkType(fr.LinkType), fr.Data, fr.Timestamp, 1)
			}
			e.Flush()
			var got []string
			for _, ev := range c.events {
				s := ev.MG.Detector + " " + ev.MG.Target
				if ev.MG.Profile != nil {
					s += " " + ev.MG.Profile.Destination
				}
				got = append(got, s)
			}
			sort.Strings(got)
			target := tc.host + ":443"
			want := "behaviour " + target + ",egress-not-in-profile " + target + " " + target + "/tcp"
			if g := strings.Join(got, ","); g != want {
				t.Fatalf("got %q\nwant %q", g, want)
			}
		})
	}
}

// viaCONNECT is a TLS session through the HTTP proxy 10.5.5.6:3128 to host:443.
func viaCONNECT(t *testing.T, cport uint16, host string) [][]byte {
	x := newSession(t, endpoint{"10.0.0.2", cport}, endpoint{"10.5.5.6", 3128})
	x.client("CONNECT "+host+":443 HTTP/1.1\r\nHost: "+host+":443\r\n\r\n", 1500)
	x.server("HTTP/1.1 200 Connection established\r\n\r\n")
	x.client(helloFor(t, host), 1500)
	x.server(tlsRec(22, 90) + tlsRec(20, 1) + tlsRec(23, 800))
	return x.frames
}

// The same through HTTP CONNECT: a target learned through one proxy matches through another
// (the entry is the target, app aside), and a new target is out of profile with app
// http-connect.
func TestProfileTunnelTargetCONNECT(t *testing.T) {
	book := profile.NewMemory(profile.Config{Promote: profile.Learning})
	c := &collect{}
	e := New(Options{Detector: detect.New(intel.Builtin(), detect.ModeMonitor), Sink: c, Workload: oneWorkload, Profiles: book})
	feedAt(e, epoch, append(viaSOCKS5(t, 43001, "api.example.com", "api.example.com"), viaCONNECT(t, 43002, "ghcr.example.io")...))
	e.Flush()
	if err := book.Approve("shop/web", profile.Monitoring, epoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p, _ := book.Get("shop/web")
	var learned []string
	for _, en := range p.Entries {
		learned = append(learned, en.String()+" "+en.App)
	}
	sort.Strings(learned)
	if got := strings.Join(learned, ","); got != "10.5.5.5:1080/tcp ,10.5.5.6:3128/tcp ,api.example.com:443/tcp socks5,ghcr.example.io:443/tcp http-connect" {
		t.Fatalf("learned %s", got)
	}
	later := epoch.Add(2 * time.Hour)
	feedAt(e, later, append(viaCONNECT(t, 43011, "api.example.com"), viaCONNECT(t, 43012, "pastebin.example.net")...))
	e.Flush()
	if got := strings.Join(detectors(c), ","); got != "egress-not-in-profile 10.5.5.6:3128" ||
		c.events[0].MG.Profile.Destination != "pastebin.example.net:443/tcp" || c.events[0].MG.Tunnel != "http-connect" {
		t.Fatalf("got %s %+v", got, c.events)
	}
}
