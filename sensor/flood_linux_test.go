//go:build linux

package sensor

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/minerguard/minerguard/internal/floodgen"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// floodEnv reads an integer knob of the flood test (bench-flood sets the full figures).
func floodEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// xmrigLogin is the first message of the recorded XMRig session: real client bytes.
func xmrigLogin(t *testing.T) string {
	sess, err := floodgen.ReadSession("../testdata/captures/mining-xmrig-login-3333.pcap")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sess {
		if p.FromCli && len(p.Payload) > 0 {
			return string(p.Payload)
		}
	}
	t.Fatal("no client payload in the XMRig capture")
	return ""
}

// injectFlood opens rate new TCP flows a second from inside netns ns for d (SYN + 27 bytes of
// HTTP each, from src to dst, written with an AF_PACKET socket on the namespace's veth, as a
// flood tool would; the peer drops them, the frames are addressed to no one). It returns the
// flows sent; both the count and the time are bounded.
func injectFlood(t *testing.T, ns string, src, dst netip.Addr, rate int, d time.Duration) int {
	t.Helper()
	var fd, ifindex int
	var mac net.HardwareAddr
	err := netnstest.Do(t, ns, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, ifc := range ifs {
			if ifc.Flags&net.FlagLoopback == 0 {
				ifindex, mac = ifc.Index, ifc.HardwareAddr
			}
		}
		if ifindex == 0 {
			return fmt.Errorf("no veth in %s", ns)
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0) // protocol 0: send only
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	frame := func(tcp *layers.TCP, payload []byte) []byte {
		b, err := floodgen.TCPPacket(src, dst, tcp, payload)
		if err != nil {
			t.Fatal(err)
		}
		copy(b[0:6], []byte{0x02, 0, 0, 0, 0x0f, 0x0d}) // nobody's MAC: the peer drops it
		copy(b[6:12], mac)
		return b
	}
	syn := frame(&layers.TCP{DstPort: 80, Seq: 1, SYN: true, Window: 64240}, nil)
	data := frame(&layers.TCP{DstPort: 80, Seq: 2, ACK: true, PSH: true, Window: 64240}, []byte(floodgen.Payload))
	sa := &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(unix.ETH_P_IP)}
	ip := src.As4()
	const tick = 10 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	total := rate * int(d/time.Second)
	start := time.Now()
	sent := 0
	for sent < total && time.Since(start) < d+2*time.Second {
		for range perTick {
			k := sent
			dport := uint16(80 + k/60000)
			for _, fr := range [][]byte{syn, data} {
				binary.BigEndian.PutUint16(fr[14+20+2:], dport)
				floodgen.PatchFlow(fr, ip, uint16(2000+k%60000))
				if err := unix.Sendto(fd, fr, 0, sa); err != nil && err != unix.ENOBUFS {
					t.Fatalf("inject: %v", err)
				}
			}
			sent++
		}
		if next := start.Add(time.Duration(sent/perTick) * tick); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
	}
	return sent
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// alertAt waits for a stratum alert from src and returns when it was seen.
func alertAt(t *testing.T, out *syncBuf, src string, seen int, within time.Duration) time.Time {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var a struct {
				SrcIP string `json:"src_ip"`
				Alert struct {
					MG struct {
						Detector string `json:"detector"`
					} `json:"context"`
				} `json:"alert"`
			}
			if json.Unmarshal([]byte(l), &a) == nil && a.SrcIP == src && a.Alert.MG.Detector == "stratum" {
				n++
			}
		}
		if n > seen {
			return time.Now()
		}
	}
	t.Fatalf("no stratum alert from %s within %v:\n%s", src, within, out.String())
	return time.Time{}
}

// Issue 14 live, on the real kernel: workload B floods new flows while workload A mines, and
// then A floods its own namespace and mines. A's Stratum login (XMRig's own bytes) is
// alerted both times, and the flood's flows were each looked at. The latencies are logged
// (bench-flood prints them with the full figures: MG_FLOOD_RATE flows/s for
// MG_FLOOD_SECONDS); the test asserts the outcome, not a wall-clock limit.
func TestSensorCrossWorkloadFlood(t *testing.T) {
	netnstest.RequireRoot(t)
	rate, secs := floodEnv("MG_FLOOD_RATE", 10000), floodEnv("MG_FLOOD_SECONDS", 3)
	if raceEnabled {
		// Under the race detector the engine is about ten times slower: at the full rate the
		// rings overflow and drop the miner's one message, which is issue 17's overload, not
		// this test's question.
		rate /= 10
	}
	a, b, pool := netnstest.New(t, "wa"), netnstest.New(t, "wb"), netnstest.New(t, "pool")
	aIP, poolA := netnstest.Veth(t, a, pool, 140)
	bIP, poolB := netnstest.Veth(t, b, pool, 141)
	serve(t, pool, poolA+":3333")
	login := xmrigLogin(t)

	cfg := Default()
	cfg.Netns = []string{a, b}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	d := time.Duration(secs) * time.Second

	// B floods; A's miner connects a third of the way in.
	done := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		done <- injectFlood(t, b, netip.MustParseAddr(bIP), netip.MustParseAddr(poolB), rate, d)
	}()
	time.Sleep(d / 3)
	t0 := time.Now()
	talk(t, a, poolA+":3333", login)
	lat1 := alertAt(t, out, aIP, 0, 10*time.Second).Sub(t0)
	sentB := <-done

	// A floods its own namespace, then mines at once.
	sentA := injectFlood(t, a, netip.MustParseAddr(aIP), netip.MustParseAddr(poolA), rate, d/2)
	t1 := time.Now()
	talk(t, a, poolA+":3333", login)
	lat2 := alertAt(t, out, aIP, 1, 10*time.Second).Sub(t1)

	var m string
	metric := func(name string) float64 {
		r := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(m)
		if r == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(r[1], 64)
		return v
	}
	// total sums a metric over its workload series (ring counters are per workload).
	total := func(name string) float64 {
		v := 0.0
		for _, r := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(?:\{[^}]*\})? (\S+)$`).FindAllStringSubmatch(m, -1) {
			f, _ := strconv.ParseFloat(r[1], 64)
			v += f
		}
		return v
	}
	// A flood flow is lost to the sensor only if the ring dropped both its packets, and goes
	// unlooked-at only if it dropped the data segment: the counts are checked net of drops.
	flows := float64(sentA + sentB)
	var created, drops float64
	netnstest.Eventually(t, 10*time.Second, "the flood's flows counted", func() bool {
		m = scrape(t, s)
		created, drops = metric(`minerguard_flows_created_total{source="netns"}`), total(`minerguard_ring_packets_dropped_total`)
		return created+drops >= flows
	})
	slotless := metric(`minerguard_inspect_slotless_total{source="netns"}`)
	if slotless+drops < created || slotless < flows/2 {
		t.Errorf("%v slotless looks for %v flows created (%v flood flows, %v ring drops): their first payloads were not looked at", slotless, created, flows, drops)
	}
	if n := strings.Count(out.String(), `"detector":"stratum"`); n != 2 {
		t.Errorf("%d stratum alerts, want A's 2:\n%s", n, out.String())
	}
	t.Logf("FLOOD-LIVE cross-workload: B sent %d flows in %v (%d/s target); A alerted %v after its first Stratum message", sentB, d, rate, lat1.Round(time.Millisecond))
	t.Logf("FLOOD-LIVE own-namespace: A sent %d flows in %v, then mined; alerted %v after its first Stratum message", sentA, d/2, lat2.Round(time.Millisecond))
	t.Logf("FLOOD-LIVE counters: flows_created %v, inspect_slotless %v, inspect_deferred %v, reclaimed age %v fair %v, ring drops %v of %v packets",
		metric(`minerguard_flows_created_total{source="netns"}`), slotless, metric(`minerguard_inspect_deferred_total{source="netns"}`),
		metric(`minerguard_inspect_reclaimed_total{reason="age",source="netns"}`), metric(`minerguard_inspect_reclaimed_total{reason="fair_share",source="netns"}`),
		total(`minerguard_ring_packets_dropped_total`), total(`minerguard_ring_packets_total`))
}
