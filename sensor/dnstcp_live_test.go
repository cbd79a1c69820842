package sensor

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// A pool's addresses answered over TCP in small segments (dnsmasq, MTU 540: ~500-byte
// segments; 40 records, then 4,000 on the same connection) are cached by the live sensor,
// and the connections that follow to the last address of each answer are alerted pool-ip.
func TestSensorDNSOverTCPSegments(t *testing.T) {
	netnstest.RequireRoot(t)
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("needs dnsmasq (apt-get install dnsmasq-base)")
	}
	miner, pool := netnstest.New(t, "dnsc"), netnstest.New(t, "dnss")
	_, srv := netnstest.Veth(t, miner, pool, 7)
	for _, ns := range []string{miner, pool} {
		out, _ := exec.Command("ip", "-n", ns, "-o", "link", "show", "type", "veth").Output()
		dev := strings.TrimSuffix(strings.Fields(string(out))[1], ":")
		dev, _, _ = strings.Cut(dev, "@")
		netnstest.Run(t, "ip", "-n", ns, "link", "set", dev, "mtu", "540")
		if _, err := exec.LookPath("ethtool"); err == nil {
			// Wire-sized segments rather than 64 KiB GSO packets: both are valid input,
			// the small ones are what this test is about.
			_ = exec.Command("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off").Run()
		} else {
			t.Log("no ethtool: the answer may arrive as GSO packets larger than the MTU")
		}
	}
	// The pool answers from 10.199.8.0/24, routed on the link; the last address of each
	// answer is made real so the connection to it reaches the pool side (refused there).
	netnstest.Run(t, "ip", "-n", miner, "route", "add", "10.199.8.0/24", "via", srv)
	hosts := t.TempDir() + "/hosts"
	var hb bytes.Buffer
	for i := range 40 {
		fmt.Fprintf(&hb, "10.199.8.%d pool.supportxmr.com\n", 100+i)
	}
	for i := range 4000 {
		fmt.Fprintf(&hb, "10.%d.%d.%d xmr.2miners.com\n", 200+i>>16, byte(i>>8), byte(i))
	}
	if err := os.WriteFile(hosts, hb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", pool, bin, "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--addn-hosts="+hosts, "--bind-interfaces", "--listen-address="+srv,
		"--user=root", "--pid-file=", "--log-facility=-")
	var dlog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &dlog, &dlog
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })

	cfg := Default()
	cfg.Netns = []string{miner}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)

	// One TCP connection, two queries (miekg's client: dnsmasq is the real software here).
	var last [2]string
	err = netnstest.Do(t, miner, func() error {
		var c net.Conn
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if c, err = net.DialTimeout("tcp", srv+":53", time.Second); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("dnsmasq: %v: %s", err, dlog.String())
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		co := &mdns.Conn{Conn: c}
		for i, name := range []string{"pool.supportxmr.com.", "xmr.2miners.com."} {
			if err := co.WriteMsg(new(mdns.Msg).SetQuestion(name, mdns.TypeA)); err != nil {
				return err
			}
			r, err := co.ReadMsg()
			if err != nil {
				return err
			}
			if want := []int{40, 4000}[i]; len(r.Answer) != want {
				return fmt.Errorf("%s: %d answers, want %d", name, len(r.Answer), want)
			}
			last[i] = r.Answer[len(r.Answer)-1].(*mdns.A).A.String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	netnstest.Run(t, "ip", "-n", pool, "addr", "add", last[0]+"/32", "dev", "lo")
	netnstest.Run(t, "ip", "-n", pool, "addr", "add", last[1]+"/32", "dev", "lo")
	netnstest.Run(t, "ip", "-n", miner, "route", "add", last[1]+"/32", "via", srv)
	for _, a := range last {
		_ = netnstest.Do(t, miner, func() error {
			c, err := net.DialTimeout("tcp", a+":3333", 2*time.Second)
			if err == nil {
				c.Close()
			}
			return nil
		})
	}
	want := []string{
		`"dest_port":53,"proto":"TCP"`,
		`"dest_ip":"` + last[0] + `","dest_port":3333`,
		`"dest_ip":"` + last[1] + `","dest_port":3333`,
	}
	netnstest.Eventually(t, 5*time.Second, "pool-dns and two pool-ip alerts", func() bool {
		got := out.String()
		for _, w := range want {
			if !strings.Contains(got, w) {
				return false
			}
		}
		return true
	})
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(l, `"dest_port":3333`) && (!strings.Contains(l, `"detector":"pool-ip"`) || !strings.Contains(l, `.com"`)) {
			t.Errorf("not a named pool-ip alert: %s", l)
		}
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, w := range []string{`minerguard_dns_tcp_incomplete_total{source="netns"} 0`, `minerguard_protocol_errors_total{protocol="dns",source="netns"} 0`} {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}
