package sensor

import (
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// clientPayloads returns the client→server TCP payloads of port 3333 in a committed
// capture, in order: the bytes real miner software sent.
func clientPayloads(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	var fr capture.Frame
	var p flow.Packet
	for {
		if err := f.Next(&fr); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if flow.Decode(flow.LinkType(fr.LinkType), fr.Data, &p) == flow.OK && p.Proto == flow.ProtoTCP && p.DstPort == 3333 && len(p.Payload) > 0 {
			out = append(out, append([]byte(nil), p.Payload...))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no client payload in %s", path)
	}
	return out
}

// devOf returns the interface of namespace ns that holds address ip.
func devOf(t *testing.T, ns, ip string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-o", "addr", "show", "to", ip+"/32").Output()
	if err != nil || len(strings.Fields(string(out))) < 2 {
		t.Fatalf("no interface with %s in %s: %v %s", ip, ns, err, out)
	}
	return strings.Fields(string(out))[1]
}

// Stratum that exists whole only in the receiving kernel: the miner's namespace runs TCP
// without DF (net.ipv4.ip_no_pmtu_disc=1, as any container may set in its own netns) and
// the node routes it over a 96-byte-MTU link, so the node's kernel fragments every segment.
// A sensor capturing the pool side sees only fragments, reassembles them and alerts. The
// payload is npm stratum-client 1.1.0's, taken from mining-stratum-client-3333.pcap.
func TestSensorStratumInIPFragments(t *testing.T) {
	netnstest.RequireRoot(t)
	msgs := clientPayloads(t, "../testdata/captures/mining-stratum-client-3333.pcap")
	l := netnstest.NewRouted(t, 30)
	gwP := "10.199.31.1"
	netnstest.Run(t, "ip", "netns", "exec", l.Work, "sysctl", "-qw", "net.ipv4.ip_no_pmtu_disc=1")
	for _, ns := range []struct{ name, ip string }{{l.Node, gwP}, {l.Pool, l.PoolIP}} {
		netnstest.Run(t, "ip", "-n", ns.name, "link", "set", devOf(t, ns.name, ns.ip), "mtu", "96")
	}
	// The pool still advertises a 1,400-byte MSS, so the miner's segments are larger than
	// the small link and the node must fragment them.
	netnstest.Run(t, "ip", "-n", l.Pool, "route", "replace", "default", "via", gwP, "advmss", "1400")
	srv := netnstest.ServeLines(t, l.Pool, l.PoolIP+":3333", `{"id":1,"result":true,"error":null}`)

	cfg := Default()
	cfg.Netns = []string{l.Pool}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)

	var sent int
	err := netnstest.Do(t, l.Work, func() error {
		c, err := net.DialTimeout("tcp", l.PoolIP+":3333", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 256)
		for _, m := range msgs {
			if _, err := c.Write(m); err != nil {
				return err
			}
			sent += len(m)
			if _, err := c.Read(buf); err != nil {
				return fmt.Errorf("reply: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 5*time.Second, "the pool to receive every byte", func() bool { return srv.Received.Load() == int64(sent) })
	netnstest.Eventually(t, 5*time.Second, "a stratum alert", func() bool {
		return strings.Contains(out.String(), `"detector":"stratum"`)
	})
	if !strings.Contains(out.String(), `"dest_ip":"`+l.PoolIP+`","dest_port":3333`) {
		t.Fatalf("alert: %s", out.String())
	}
	value := func(scrape, metric string) int {
		m := regexp.MustCompile(regexp.QuoteMeta(metric) + `\{source="netns"\} (\d+)`).FindStringSubmatch(scrape)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	var scrape string
	netnstest.Eventually(t, 3*time.Second, "reassembly counted", func() bool {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		scrape = rec.Body.String()
		return value(scrape, "minerguard_defrag_reassembled_total") >= len(msgs)
	})
	frags, done := value(scrape, "minerguard_ip_fragments_total"), value(scrape, "minerguard_defrag_reassembled_total")
	if frags < 2*done {
		t.Errorf("%d fragments for %d datagrams: the segments were not fragmented", frags, done)
	}
	t.Logf("%d messages (%d bytes) arrived as %d fragments, %d datagrams reassembled", len(msgs), sent, frags, done)
}
