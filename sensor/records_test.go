package sensor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/minerguard/minerguard/internal/evetest"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// runSensor starts a sensor on cfg writing to out; the returned stop ends it and waits, so a
// test can read what the end of the flows wrote.
func runSensor(t *testing.T, cfg Config, out io.Writer) (*Sensor, func()) {
	t.Helper()
	cfg.StateDir = t.TempDir()
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not stop")
		}
	}
	t.Cleanup(stop)
	netnstest.Eventually(t, 5*time.Second, "sensor ready", s.Ready)
	return s, stop
}

// serveDNS answers every A query in namespace ns at addr with answer.
func serveDNS(t *testing.T, ns, addr, answer string) {
	pc := netnstest.ListenUDP(t, ns, addr)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q mdns.Msg
			if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
				continue
			}
			r := new(mdns.Msg)
			r.SetReply(&q)
			r.Answer = append(r.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP(answer)})
			b, _ := r.Pack()
			pc.WriteTo(b, from)
		}
	}()
}

// lookup sends one A query for name from namespace ns to server and waits for the answer.
func lookup(t *testing.T, ns, server, name string) {
	var c net.Conn
	if err := netnstest.Do(t, ns, func() (err error) { c, err = net.DialTimeout("udp", server, 5*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	b, _ := m.Pack()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
}

// hello sends a TLS ClientHello naming sni from namespace ns to addr (the server is not TLS:
// the handshake fails after the hello, which is all the sensor reads).
func hello(t *testing.T, ns, addr, sni string) {
	var c net.Conn
	if err := netnstest.Do(t, ns, func() (err error) { c, err = net.DialTimeout("tcp", addr, 5*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	tc := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	tc.Handshake() // fails: the server answers a line, not a ServerHello
	tc.Close()
}

// eve.types [alert, flow, dns, tls] on the live sensor: a pool lookup, a Stratum login and a
// TLS hello to the pool give their dns, tls and flow records beside the alerts, each stamped
// with host and in_iface (flow records ended by the shutdown's flush too), every line valid EVE;
// the metrics count them.
func TestSensorRecords(t *testing.T) {
	netnstest.RequireRoot(t)
	miner, pool := netnstest.New(t, "rmine"), netnstest.New(t, "rpool")
	_, poolIP := netnstest.Veth(t, miner, pool, 23)
	serve(t, pool, poolIP+":3333")
	serve(t, pool, poolIP+":443")
	serveDNS(t, pool, poolIP+":53", poolIP)
	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.EVE.Types = []string{"alert", "flow", "dns", "tls"}
	out := &syncBuf{}
	s, stop := runSensor(t, cfg, out)
	lookup(t, miner, poolIP+":53", "pool.supportxmr.com")
	talk(t, miner, poolIP+":3333", login)
	hello(t, miner, poolIP+":443", "pool.supportxmr.com")
	netnstest.Eventually(t, 5*time.Second, "dns and tls records", func() bool {
		o := out.String()
		return strings.Count(o, `"event_type":"dns"`) == 2 && strings.Contains(o, `"event_type":"tls"`)
	})
	m := s.live().Records
	stop() // the flows end: their flow records are written
	text := out.String()
	evetest.Lines(t, "sensor records", []byte(text))

	type line struct {
		EventType string `json:"event_type"`
		FlowID    uint64 `json:"flow_id"`
		Host      string `json:"host"`
		InIface   string `json:"in_iface"`
		DestPort  int    `json:"dest_port"`
		Flow      struct {
			Alerted bool   `json:"alerted"`
			Reason  string `json:"reason"`
			Pkts    uint64 `json:"pkts_toserver"`
		} `json:"flow"`
		DNS struct {
			Type    string              `json:"type"`
			RRName  string              `json:"rrname"`
			Grouped map[string][]string `json:"grouped"`
		} `json:"dns"`
		TLS struct {
			SNI string `json:"sni"`
			JA4 string `json:"ja4"`
		} `json:"tls"`
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines = append(lines, x)
	}
	alerted := map[uint64]bool{}
	flows := map[int]line{}
	var dns []line
	var tlsRec *line
	for i, x := range lines {
		switch x.EventType {
		case "alert":
			alerted[x.FlowID] = true
		case "flow":
			flows[x.DestPort] = x
		case "dns":
			dns = append(dns, x)
		case "tls":
			tlsRec = &lines[i]
		}
		// Flow records too: those written at shutdown come after the rings closed.
		if x.Host != nodeName() || !strings.HasPrefix(x.InIface, "mga") {
			t.Errorf("%s line without host or in_iface: %+v", x.EventType, x)
		}
	}
	if len(dns) != 2 || dns[0].DNS.Type != "query" || dns[1].DNS.Type != "answer" || dns[1].DNS.RRName != "pool.supportxmr.com" ||
		!slices.Contains(dns[1].DNS.Grouped["A"], poolIP) {
		t.Errorf("dns records: %+v", dns)
	}
	if tlsRec == nil || tlsRec.TLS.SNI != "pool.supportxmr.com" || tlsRec.TLS.JA4 == "" {
		t.Errorf("tls record: %+v", tlsRec)
	}
	for _, port := range []int{53, 3333, 443} {
		f, ok := flows[port]
		if !ok || f.Flow.Pkts == 0 || f.Flow.Reason == "" || f.Flow.Alerted != alerted[f.FlowID] || !f.Flow.Alerted {
			t.Errorf("flow record of the flow to port %d: %+v (found %v)", port, f, ok)
		}
	}
	if m["dns"].Written != 2 || m["tls"].Written != 1 {
		t.Errorf("record counters: %+v", m)
	}
}

// The live sensor's records are capped: with eve.records_rate 0.1 (a burst of one), one flow
// record of many is written and the rest are counted as rate limited.
func TestSensorRecordsCapped(t *testing.T) {
	netnstest.RequireRoot(t)
	miner, pool := netnstest.New(t, "cmine"), netnstest.New(t, "cpool")
	_, poolIP := netnstest.Veth(t, miner, pool, 24)
	serve(t, pool, poolIP+":8545")
	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.EVE.Types, cfg.EVE.RecordsRate = []string{"alert", "flow"}, 0.1
	out := &syncBuf{}
	s, stop := runSensor(t, cfg, out)
	const conns = 8
	for range conns {
		talk(t, miner, poolIP+":8545", `{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}`+"\n")
	}
	netnstest.Eventually(t, 5*time.Second, "the connections captured", func() bool { return s.pipe.Stats().Flow.Created >= conns })
	stop()
	evetest.Lines(t, "capped", []byte(out.String()))
	m := s.live().Records["flow"]
	ended := s.pipe.Stats().FlowRecords
	if n := uint64(strings.Count(out.String(), `"event_type":"flow"`)); n != 1 || m.Written != 1 || m.RateLimited < conns-1 ||
		m.Written+m.RateLimited+m.QueueFull != ended {
		t.Errorf("%d flow records written, counters %+v, %d flows ended", n, m, ended)
	}
}

// A closed ring's interface is remembered for the flows that end after it, and forgotten once
// no flow of it can still be live, so namespace churn does not grow the map.
func TestDepartedIfaces(t *testing.T) {
	s := &Sensor{rings: map[uint64]*watched{7: {iface: "mgalive"}}, departed: map[uint64]departed{}}
	t0 := time.Now()
	s.departLocked(1, "mgaold", t0)
	s.departLocked(2, "mganew", t0.Add(departedFor))
	if s.ifaceOf(7) != "mgalive" || s.ifaceOf(1) != "mgaold" || s.ifaceOf(2) != "mganew" || s.ifaceOf(3) != "" {
		t.Fatalf("ifaceOf: %q %q %q %q", s.ifaceOf(7), s.ifaceOf(1), s.ifaceOf(2), s.ifaceOf(3))
	}
	s.departLocked(3, "mgalater", t0.Add(departedFor+time.Second))
	if _, ok := s.departed[1]; ok || len(s.departed) != 2 {
		t.Errorf("after %v the first departure stays: %v", departedFor, s.departed)
	}
}
