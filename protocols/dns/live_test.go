package dns

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// recUDP and recTCP keep a copy of every byte the miekg client reads, so
// tests parse exactly what the server put on the wire. recUDP must stay a
// net.PacketConn, or miekg would switch to TCP framing.
type recUDP struct {
	*net.UDPConn
	got [][]byte
}

func (c *recUDP) Read(p []byte) (int, error) {
	n, err := c.UDPConn.Read(p)
	c.got = append(c.got, bytes.Clone(p[:n]))
	return n, err
}

type recTCP struct {
	*net.TCPConn
	got []byte
}

func (c *recTCP) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.got = append(c.got, p[:n]...)
	return n, err
}

// exchange sends q over network ("udp" or "tcp") and returns the raw
// response bytes (for TCP, the stream including length prefixes) and miekg's
// own decoding of it.
func exchange(t *testing.T, network, addr string, q *mdns.Msg) ([]byte, *mdns.Msg) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	co := &mdns.Conn{UDPSize: 65535}
	var raw func() []byte
	switch cc := c.(type) {
	case *net.UDPConn:
		r := &recUDP{UDPConn: cc}
		co.Conn, raw = r, func() []byte { return r.got[len(r.got)-1] }
	case *net.TCPConn:
		r := &recTCP{TCPConn: cc}
		co.Conn, raw = r, func() []byte { return r.got }
	}
	if err := co.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	resp, err := co.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	return raw(), resp
}

// startDnsmasq runs Debian's dnsmasq on a private loopback address with a
// pool name, a CNAME to it and a wildcard --address, and returns host:port.
func startDnsmasq(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (apt-get install dnsmasq-base)")
	}
	const ip = "127.0.0.77"
	// Find a port free for both UDP and TCP.
	var port string
	for range 20 {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Skipf("cannot bind %s: %v", ip, err)
		}
		_, port, _ = net.SplitHostPort(pc.LocalAddr().String())
		ln, err := net.Listen("tcp", ip+":"+port)
		pc.Close()
		if err == nil {
			ln.Close()
			break
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address="+ip, "--port="+port,
		"--user=root", "--pid-file=", "--log-facility=-",
		"--address=/pool.example/1.2.3.4",
		"--host-record=eu.minepool.example,5.6.7.8,2001:db8::8",
		"--cname=xmr.minepool.example,eu.minepool.example",
		"--cname=alias.minepool.example,xmr.minepool.example",
	)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting dnsmasq: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort(ip, port)
	c := mdns.Client{Timeout: 200 * time.Millisecond}
	q := new(mdns.Msg).SetQuestion("pool.example.", mdns.TypeA)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, _, err := c.Exchange(q, addr); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not answer on %s: %s", addr, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDnsmasq(t *testing.T) {
	addr := startDnsmasq(t)

	t.Run("udp-address", func(t *testing.T) {
		q := new(mdns.Msg).SetQuestion("POOL.example.", mdns.TypeA) // case must not matter
		raw, resp := exchange(t, "udp", addr, q)
		m, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != q.Id || m.ID != resp.Id || !m.Response || m.Rcode != 0 {
			t.Errorf("header: %+v, query id %d", m, q.Id)
		}
		want := []AddrName{{Addr: netip.MustParseAddr("1.2.3.4"), Name: "pool.example", TTL: m.Answers[0].TTL}}
		if got := m.AddrNames(); !slices.EqualFunc(got, want, eqAddrName) {
			t.Errorf("AddrNames = %+v, want %+v", got, want)
		}
		// A subdomain is covered by --address=/pool.example/ too.
		raw, _ = exchange(t, "udp", addr, new(mdns.Msg).SetQuestion("eu.pool.example.", mdns.TypeA))
		m, _ = Parse(raw)
		if got := m.AddrNames(); len(got) != 1 || got[0].Name != "eu.pool.example" {
			t.Errorf("subdomain AddrNames = %+v", got)
		}
	})

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network+"-cname-chain-edns", func(t *testing.T) {
			q := new(mdns.Msg).SetQuestion("alias.minepool.example.", mdns.TypeA)
			q.SetEdns0(4096, false)
			raw, resp := exchange(t, network, addr, q)
			if network == "tcp" {
				var msgs [][]byte
				next := SplitTCP(raw, 0, func(m []byte) { msgs = append(msgs, bytes.Clone(m)) })
				if next != len(raw) || len(msgs) != 1 {
					t.Fatalf("SplitTCP: next %d of %d, %d messages", next, len(raw), len(msgs))
				}
				raw = msgs[0]
			}
			if resp.IsEdns0() == nil {
				t.Errorf("dnsmasq response has no OPT record")
			}
			m, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Answers) != len(resp.Answer) || len(m.Answers) != 3 {
				t.Fatalf("answers %+v, miekg saw %v", m.Answers, resp.Answer)
			}
			got := m.AddrNames()
			if len(got) != 1 {
				t.Fatalf("AddrNames = %+v", got)
			}
			want := AddrName{
				Addr:   netip.MustParseAddr("5.6.7.8"),
				Name:   "alias.minepool.example",
				CNAMEs: []string{"xmr.minepool.example", "eu.minepool.example"},
				TTL:    minTTL(m.Answers),
			}
			if !eqAddrName(got[0], want) {
				t.Errorf("AddrNames[0] = %+v, want %+v", got[0], want)
			}
		})
	}

	t.Run("aaaa", func(t *testing.T) {
		raw, _ := exchange(t, "udp", addr, new(mdns.Msg).SetQuestion("xmr.minepool.example.", mdns.TypeAAAA))
		m, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		got := m.AddrNames()
		if len(got) != 1 || got[0].Addr != netip.MustParseAddr("2001:db8::8") || got[0].Name != "xmr.minepool.example" {
			t.Errorf("AddrNames = %+v", got)
		}
	})

	t.Run("nxdomain", func(t *testing.T) {
		raw, resp := exchange(t, "udp", addr, new(mdns.Msg).SetQuestion("missing.minepool.example.", mdns.TypeA))
		m, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if m.Rcode != resp.Rcode || m.Rcode == 0 || m.AddrNames() != nil {
			t.Errorf("rcode %d (miekg %d), AddrNames %v", m.Rcode, resp.Rcode, m.AddrNames())
		}
	})

	t.Run("query", func(t *testing.T) {
		q := new(mdns.Msg).SetQuestion("Pool.Example.", mdns.TypeAAAA)
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		want := []Question{{Name: "pool.example", Type: mdns.TypeAAAA}}
		if m.Response || !slices.Equal(m.Questions, want) {
			t.Errorf("query parsed as %+v", m)
		}
	})
}

func minTTL(as []Answer) uint32 {
	m := ^uint32(0)
	for _, a := range as {
		m = min(m, a.TTL)
	}
	return m
}

func eqAddrName(a, b AddrName) bool {
	return a.Addr == b.Addr && a.Name == b.Name && a.TTL == b.TTL && slices.Equal(a.CNAMEs, b.CNAMEs)
}

// TestManyAddressesOverTCP is docs/testing.md R4: a real TCP DNS exchange
// answering one name with 4,000 A records. All are decoded, and the cache
// keeps at most 1,000 per name, the newest.
func TestManyAddressesOverTCP(t *testing.T) {
	const n = 4000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{Listener: ln, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		resp := new(mdns.Msg).SetReply(r)
		resp.Compress = true
		for i := range n {
			resp.Answer = append(resp.Answer, &mdns.A{
				Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 300},
				A:   net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)),
			})
		}
		_ = w.WriteMsg(resp)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	raw, _ := exchange(t, "tcp", ln.Addr().String(), new(mdns.Msg).SetQuestion("big.pool.example.", mdns.TypeA))
	if len(raw) < n*16 {
		t.Fatalf("stream is only %d bytes", len(raw))
	}
	// Feed the stream as it might arrive: in 1460-byte segments.
	var msgs []Message
	next := 0
	for end := 0; end < len(raw); {
		end = min(end+1460, len(raw))
		next = SplitTCP(raw[:end], next, func(b []byte) {
			m, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
		})
	}
	if next != len(raw) || len(msgs) != 1 {
		t.Fatalf("SplitTCP consumed %d/%d bytes, %d messages", next, len(raw), len(msgs))
	}
	ans := msgs[0].AddrNames()
	if len(ans) != n {
		t.Fatalf("%d address answers, want %d", len(ans), n)
	}

	c := NewCache(0, 0, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	for _, a := range ans {
		c.Add(7, a.Addr, a.Name, a.TTL, now)
	}
	st := c.Stats()
	if st.Entries != DefaultMaxPerName || st.PerNameCapHits != n-DefaultMaxPerName || st.Evictions != 0 {
		t.Errorf("stats %+v, want %d entries and %d cap hits", st, DefaultMaxPerName, n-DefaultMaxPerName)
	}
	kept := 0
	for i, a := range ans {
		name, ok := c.Lookup(7, a.Addr, now)
		if ok {
			kept++
			if name != "big.pool.example" {
				t.Fatalf("name %q", name)
			}
		}
		if newest := i >= n-DefaultMaxPerName; ok != newest {
			t.Fatalf("answer %d (%v): cached=%v, want %v", i, a.Addr, ok, newest)
		}
	}
	if kept != DefaultMaxPerName {
		t.Errorf("kept %d", kept)
	}
}
