package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/minerguard/minerguard/xdp"
)

// TestMain lets a test start this binary as the real minerguard (MINERGUARD_EXEC_MAIN=1), so
// a sensor can be killed with SIGKILL like a deployed one.
func TestMain(m *testing.M) {
	if os.Getenv("MINERGUARD_EXEC_MAIN") == "1" {
		os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startSensorProcess runs `minerguard sensor args...` as a child process.
func startSensorProcess(t *testing.T, args ...string) (*exec.Cmd, *lockedBuf, *lockedBuf) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"sensor"}, args...)...)
	cmd.Env = append(os.Environ(), "MINERGUARD_EXEC_MAIN=1")
	out, errb := &lockedBuf{}, &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out, errb
}

// S1: a sensor killed with SIGKILL while enforcing leaves its pinned XDP state dropping the
// blocked flow until the heartbeat times out, then the data path fails open; a restarted
// sensor re-adopts the pinned program and maps (one program on the interface, the old blocks
// enforced again). S2 follows: SIGTERM hands the workload back to flag-only.
func TestS1KillDashNine(t *testing.T) {
	netnstest.RequireRoot(t)
	lab := netnstest.NewRouted(t, 81)
	node, work, pool, poolIP := lab.Node, lab.Work, lab.Pool, lab.PoolIP
	b := make([]byte, 4)
	rand.Read(b)
	pin := "/sys/fs/bpf/minerguard-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if m, err := xdp.Open(xdp.Options{PinPath: pin}); err == nil {
			m.Remove()
		}
		os.RemoveAll(pin)
	})

	srv := netnstest.ServeLines(t, pool, poolIP+":3333", `{"id":1,"jsonrpc":"2.0","result":true}`)
	got := &srv.Received

	const timeout = 3 * time.Second
	state := t.TempDir()
	args := []string{"--netns", work, "--mode", "enforce", "--enforcement.pin-path", pin,
		"--enforcement.heartbeat-timeout", timeout.String(), "--enforcement.host-netns", "/var/run/netns/" + node,
		"--state-dir", state, "--web.listen-address", "127.0.0.1:0", "--enforcement.stale-flow-block", "2s"}
	cmd, out, logs := startSensorProcess(t, args...)
	netnstest.Eventually(t, 10*time.Second, "XDP attached", func() bool { return strings.Contains(logs.String(), "msg=enforcing") })

	var conn net.Conn
	if err := netnstest.Do(t, work, func() (err error) { conn, err = net.DialTimeout("tcp", poolIP+":3333", 5*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(`{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44w","pass":"x","agent":"XMRig/6.21.0"}}` + "\n"))
	netnstest.Eventually(t, 5*time.Second, "a blocked alert", func() bool { return strings.Contains(out.String(), `"action":"blocked"`) })
	time.Sleep(100 * time.Millisecond)
	before := got.Load()

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	// The client keeps mining; its bytes stay dropped while the pinned state is fresh.
	conn.Write([]byte(`{"id":2,"jsonrpc":"2.0","method":"submit","params":{"nonce":"00"}}` + "\n"))
	time.Sleep(timeout / 2)
	if n := got.Load() - before; n != 0 {
		t.Fatalf("%d bytes reached the pool %v after SIGKILL (heartbeat timeout %v): pinned state did not keep dropping", n, time.Since(killed), timeout)
	}
	// After the timeout the data path fails open: a retransmission gets through.
	netnstest.Eventually(t, timeout+10*time.Second, "fail-open after the heartbeat timeout", func() bool { return got.Load() > before })
	if open := time.Since(killed); open < timeout/2 {
		t.Fatalf("failed open after %v, before the %v heartbeat timeout", open, timeout)
	}

	// Restart: the pinned link and maps are re-adopted, not attached twice; the destination
	// block of the earlier verdict is enforced again, so a reconnect to the pool is dropped.
	cmd2, _, logs2 := startSensorProcess(t, args...)
	netnstest.Eventually(t, 10*time.Second, "re-adopted", func() bool { return strings.Contains(logs2.String(), "readopted=true") })
	progs, err := exec.Command("ip", "-n", node, "-d", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(progs), "prog/xdp"); n != 1 {
		t.Fatalf("%d XDP programs attached in the node after restart, want 1:\n%s", n, progs)
	}
	if err := netnstest.Do(t, work, func() error {
		c, err := net.DialTimeout("tcp", poolIP+":3333", 700*time.Millisecond)
		if err == nil {
			c.Close()
			return fmt.Errorf("a new connection to the blocked pool succeeded after the restart")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The killed sensor's flow block outlived its flow's owner: the restarted sensor removes
	// it once no packet has hit it for stale-flow-block (the destination block stays: the
	// reconnect above was dropped).
	netnstest.Eventually(t, 10*time.Second, "the stale flow block pruned", func() bool {
		return strings.Contains(logs2.String(), `msg="removed stale flow blocks" count=1`)
	})

	// `minerguard blocks` sees what is left through the restarted sensor's control socket
	// (the destination block, named by its workload) and clears it: the pool is reachable.
	sock := filepath.Join(state, "minerguard.sock")
	out2, errs, code := run(t, "blocks", "--socket", sock, "list", "-o", "json")
	var bl []struct{ Workload, Kind, Dest, Reason string }
	if err := json.Unmarshal([]byte(out2), &bl); code != 0 || err != nil || len(bl) != 1 ||
		bl[0] != (struct{ Workload, Kind, Dest, Reason string }{"netns/" + work, "destination", poolIP + "/32", "stratum"}) {
		t.Fatalf("blocks list: exit %d %s: %q (%v)", code, errs, out2, err)
	}
	if txt, _, _ := run(t, "blocks", "--socket", sock, "list"); !strings.Contains(squash(txt), "netns/"+work+" destination - "+poolIP+"/32 port 3333 TCP stratum") {
		t.Errorf("blocks list as text:\n%s", txt)
	}
	if out2, errs, code = run(t, "blocks", "--socket", sock, "clear", "netns/"+work, "--dest", poolIP); code != 0 || !strings.Contains(out2, "1 blocks removed") {
		t.Fatalf("blocks clear: exit %d %s: %q", code, errs, out2)
	}
	// reach dials the pool from the workload, then sends line on the connection if not empty.
	reach := func(line string) error {
		return netnstest.Do(t, work, func() error {
			c, err := net.DialTimeout("tcp", poolIP+":3333", 3*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			if line != "" {
				_, err = c.Write([]byte(line))
			}
			return err
		})
	}
	if err := reach(""); err != nil {
		t.Fatalf("the pool is unreachable after its block was cleared: %v", err)
	}
	// A miner that logs in again is blocked again.
	if err := reach(`{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44w","pass":"x","agent":"XMRig/6.21.0"}}` + "\n"); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 5*time.Second, "the pool blocked again", func() bool {
		txt, _, _ := run(t, "blocks", "--socket", sock, "list")
		return strings.Contains(squash(txt), poolIP+"/32 port 3333 TCP stratum")
	})

	// S2: SIGTERM switches the workload to flag-only before exit.
	cmd2.Process.Signal(syscall.SIGTERM)
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, logs2.String())
	}
	m, err := xdp.Open(xdp.Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if mode, _, err := m.GetMode("netns/" + work); err != nil || mode != xdp.ModeFlagOnly {
		t.Fatalf("after SIGTERM: mode %v (%v), want flag-only", mode, err)
	}
	if err := reach(""); err != nil {
		t.Fatalf("flag-only after a graceful stop, yet the pool is unreachable: %v", err)
	}
}
