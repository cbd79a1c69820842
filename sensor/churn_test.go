package sensor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
)

// docs/testing.md N1: namespaces created and deleted while the sensor runs. Each is captured
// within 2 s, its traffic is attributed to it and no other, and after deletion its ring is
// closed and nothing of ours holds the namespace (an open fd would keep it alive).
func TestSensorNamespaceChurn(t *testing.T) {
	netnstest.RequireRoot(t)
	const n = 3
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("mg-churn%d-%d", i, os.Getpid())
	}
	cfg := Default()
	cfg.Netns = names
	cfg.Web.ListenAddress = "127.0.0.1:0"
	out := &syncBuf{}
	s := startSensor(t, cfg, out)
	for i, name := range names {
		netnstest.Run(t, "ip", "netns", "add", name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		netnstest.Run(t, "ip", "-n", name, "link", "set", "lo", "up")
		pool := netnstest.New(t, fmt.Sprintf("cp%d", i))
		_, poolIP := netnstest.Veth(t, name, pool, 10+i)
		serve(t, pool, poolIP+":3333")
		ino := inode(t, "/var/run/netns/"+name)
		start := time.Now()
		for !s.watching(ino) {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("%s not captured within 2 s", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s captured after %v", name, time.Since(start).Round(time.Millisecond))
		talk(t, name, poolIP+":3333", login)
	}
	// Every alert names the namespace its 5-tuple belongs to.
	want := map[string]string{} // src ip -> workload
	for i, name := range names {
		want[fmt.Sprintf("10.199.%d.1", 10+i)] = "netns/" + name
	}
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if lines = strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) >= n && lines[0] != "" {
			break
		}
	}
	if len(lines) != n {
		t.Fatalf("%d alerts, want %d:\n%s", len(lines), n, out.String())
	}
	for _, l := range lines {
		var a struct {
			Src   string `json:"src_ip"`
			Alert struct {
				MG struct {
					Workload struct{ Identity string } `json:"workload"`
				} `json:"context"`
			} `json:"alert"`
		}
		json.Unmarshal([]byte(l), &a)
		if want[a.Src] != a.Alert.MG.Workload.Identity {
			t.Errorf("alert from %s attributed to %q, want %q", a.Src, a.Alert.MG.Workload.Identity, want[a.Src])
		}
	}
	// Each workload has its own detection and capture series while it lives...
	hasSeries := func(w string) (det, capt bool) {
		l := s.live()
		for d, v := range l.Detections {
			det = det || (d.Workload == w && d.Detector == "stratum" && v == 1)
		}
		c, ok := l.Capture[w]
		return det, ok && c.Packets > 0
	}
	netnstest.Eventually(t, 3*time.Second, "per-workload series", func() bool {
		for _, name := range names {
			if d, c := hasSeries("netns/" + name); !d || !c {
				return false
			}
		}
		return true
	})
	// Delete them: rings closed, no fd of ours on any of them.
	inodes := map[uint64]string{}
	for _, name := range names {
		inodes[inode(t, "/var/run/netns/"+name)] = name
		netnstest.Run(t, "ip", "netns", "del", name)
	}
	for ino, name := range inodes {
		start := time.Now()
		for s.watching(ino) {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s still captured 3 s after deletion", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// ...and its series go with it.
		if d, c := hasSeries("netns/" + name); d || c {
			t.Errorf("%s deleted, its series stay (detections %v, capture %v)", name, d, c)
		}
		fds, _ := filepath.Glob("/proc/self/fd/*")
		for _, fd := range fds {
			if l, _ := os.Readlink(fd); l == fmt.Sprintf("net:[%d]", ino) {
				t.Errorf("fd %s still holds deleted netns %s", fd, name)
			}
		}
	}
}

func inode(t *testing.T, path string) uint64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return statIno(st)
}
