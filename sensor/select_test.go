package sensor

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// workloads.select captures only the matching workloads.
func TestSensorSelectByWorkload(t *testing.T) {
	netnstest.RequireRoot(t)
	a, b := netnstest.New(t, "sela"), netnstest.New(t, "selb")
	cfg := Default()
	cfg.Web.ListenAddress = "127.0.0.1:0"
	cfg.Workloads.Select = []string{"netns/" + a[:len("mg-sela-")] + "*"}
	s := startSensor(t, cfg, &syncBuf{})
	if !s.watching(inode(t, "/var/run/netns/"+a)) || s.watching(inode(t, "/var/run/netns/"+b)) {
		t.Fatalf("selection %v: a captured %v, b captured %v", cfg.Workloads.Select,
			s.watching(inode(t, "/var/run/netns/"+a)), s.watching(inode(t, "/var/run/netns/"+b)))
	}
}

// capture.interfaces captures a host interface; its alerts name host/<interface>.
func TestSensorHostInterface(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.New(t, "hostif")
	host := fmt.Sprintf("mgh%d", os.Getpid()%100000)
	netnstest.Run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", host).Run() })
	netnstest.Run(t, "ip", "link", "set", host, "up")
	netnstest.Run(t, "ip", "-n", ns, "addr", "add", "10.199.20.2/24", "dev", "eth0")
	netnstest.Run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	hostMAC, err := net.InterfaceByName(host)
	if err != nil {
		t.Fatal(err)
	}
	// The host side has no address: a static neighbour makes the namespace send to it anyway.
	netnstest.Run(t, "ip", "-n", ns, "neigh", "add", "10.199.20.1", "lladdr", hostMAC.HardwareAddr.String(), "dev", "eth0")

	cfg := Default()
	cfg.Netns = []string{"none-" + ns} // no namespace: only the interface
	cfg.Capture.Interfaces = []string{host}
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	startSensor(t, cfg, out)
	q := new(mdns.Msg)
	q.SetQuestion("pool.supportxmr.com.", mdns.TypeA)
	msg, _ := q.Pack()
	if err := netnstest.Do(t, ns, func() error {
		c, err := net.Dial("udp", "10.199.20.1:53")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(msg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(out.String(), "\n") {
			break
		}
	}
	if o := out.String(); !strings.Contains(o, `"detector":"pool-dns"`) || !strings.Contains(o, `"identity":"host/`+host+`"`) {
		t.Fatalf("alerts:\n%s", o)
	}
}
