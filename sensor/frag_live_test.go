package sensor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/capture"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/internal/netnstest"
	"golang.org/x/sys/unix"
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

// A workload with CAP_NET_RAW writes its own fragments: a TCP segment carrying npm
// stratum-client's subscribe and authorize, cut into 3 IPv4 fragments sent last-first
// through a raw socket, plus a second copy of the middle fragment, inside the authorize line,
// with different bytes (an overlap trick). The sensor on the pool side keeps the first copy
// (had it kept the second, the line would not parse), counts the overlap, and alerts. No
// handshake: the flow is picked up mid-stream, so the first line (subscribe) is skipped as a
// possibly partial one and the alert is on authorize.
func TestSensorRawFragmentsOverlap(t *testing.T) {
	netnstest.RequireRoot(t)
	p := clientPayloads(t, "../testdata/captures/mining-stratum-client-3333.pcap")
	msg := slices.Concat(p[0], p[1])
	l := netnstest.NewRouted(t, 32)
	cfg := Default()
	cfg.Netns = []string{l.Pool}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)

	src := net.ParseIP("10.199.32.2").To4() // the workload's address (NewRouted: .2 on its link)
	dst := net.ParseIP(l.PoolIP).To4()
	seg := make([]byte, 20, 20+len(msg))
	binary.BigEndian.PutUint16(seg[0:], 40404)
	binary.BigEndian.PutUint16(seg[2:], 3333)
	binary.BigEndian.PutUint32(seg[4:], 1000)
	seg[12], seg[13] = 5<<4, 0x18 // PSH|ACK: picked up mid-stream, as after a lost SYN
	binary.BigEndian.PutUint16(seg[14:], 512)
	seg = append(seg, msg...)
	frag := func(off int, data []byte, more bool) []byte {
		h := make([]byte, 20, 20+len(data))
		h[0], h[8], h[9] = 0x45, 64, 6
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(data)))
		binary.BigEndian.PutUint16(h[4:], 0x4242)
		fo := uint16(off / 8)
		if more {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:], fo)
		copy(h[12:], src)
		copy(h[16:], dst)
		return append(h, data...)
	}
	evil := bytes.Repeat([]byte{'X'}, 32)
	frags := [][]byte{
		frag(128, seg[128:], false),
		frag(96, seg[96:128], true),
		frag(96, evil, true), // the same bytes of the authorize line again, differently
		frag(0, seg[:96], true),
	}
	err := netnstest.Do(t, l.Work, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: [4]byte(dst)}
		for _, f := range frags {
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var scrape string
	defer func() {
		if t.Failed() {
			t.Logf("alerts: %s\n%s", out.String(), grepLines(scrape, "minerguard_defrag")+"\n"+grepLines(scrape, "minerguard_ip_fragments")+"\n"+grepLines(scrape, "minerguard_packets_total"))
		}
	}()
	netnstest.Eventually(t, 5*time.Second, "a stratum alert", func() bool {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		scrape = rec.Body.String()
		return strings.Contains(out.String(), `"detector":"stratum"`) && strings.Contains(out.String(), `"method":"mining.authorize"`)
	})
	netnstest.Eventually(t, 3*time.Second, "the overlap counted", func() bool {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		scrape = rec.Body.String()
		return strings.Contains(scrape, `minerguard_defrag_overlaps_total{data="different",source="netns"} 1`) &&
			strings.Contains(scrape, `minerguard_defrag_reassembled_total{source="netns"} 1`)
	})
}
