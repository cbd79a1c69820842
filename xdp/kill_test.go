package xdp

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/minerguard/minerguard/internal/netnstest"
)

// s1Child is the sensor killed by TestKill9 (S1): it enforces a destination block for the
// workload with a 3 s heartbeat timeout, says "ready", and waits to be killed.
func s1Child() {
	pin, host, wl, dst := os.Getenv("MG_S1_PIN"), os.Getenv("MG_S1_HOST"), os.Getenv("MG_S1_WL"), os.Getenv("MG_S1_DST")
	m, err := Open(Options{PinPath: pin, HostNetns: nsPath(host), HeartbeatTimeout: 3 * time.Second})
	if err == nil {
		_, err = m.Attach("wl", nsPath(wl), 0)
	}
	if err == nil {
		err = m.SetMode("wl", ModeEnforce, false)
	}
	if err == nil {
		err = m.BlockDest("wl", netip.MustParsePrefix(dst+"/32"), 0, 17, 1)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	go m.Run(context.Background())
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(2) // not killed: the parent gave up
}

// TestKill9 (S1): after kill -9 the pinned program keeps enforcing, then fails open once the
// heartbeat is older than the timeout (counted), except for a fail-closed workload; a new
// Manager re-adopts the link.
func TestKill9(t *testing.T) {
	if os.Getenv("MG_S1_CHILD") == "1" {
		s1Child()
		return
	}
	netnstest.RequireRoot(t)
	wl, host, _, ipH := pair(t, 66)
	r := make([]byte, 4)
	rand.Read(r)
	pin := "/sys/fs/bpf/minerguard-test-" + hex.EncodeToString(r)
	t.Cleanup(func() {
		if m, err := Open(Options{PinPath: pin}); err == nil {
			m.Remove()
		}
	})

	rx := netnstest.ListenUDP(t, host, ipH+":0")
	var got atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := rx.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	var tx net.Conn
	if err := netnstest.Do(t, wl, func() (err error) {
		tx, err = net.Dial("udp4", rx.LocalAddr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	// received sends n datagrams and reports how many arrived.
	received := func(n int) int64 {
		before := got.Load()
		for range n {
			tx.Write([]byte("x"))
		}
		time.Sleep(100 * time.Millisecond)
		return got.Load() - before
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MG_S1_CHILD=1", "MG_S1_PIN="+pin, "MG_S1_HOST="+host, "MG_S1_WL="+wl, "MG_S1_DST="+ipH)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q", line)
	}
	cmd.Process.Signal(os.Kill)
	cmd.Wait()
	killed := time.Now()

	if n := received(20); n != 0 {
		t.Fatalf("%d datagrams arrived right after kill -9: the pinned program should still enforce", n)
	}
	counters, err := ebpf.LoadPinnedMap(filepath.Join(pin, bpfMapMgCounters), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer counters.Close()
	failedOpen := func() (sum uint64) {
		var per []uint64
		counters.Lookup(uint32(ctrFailedOpen), &per)
		for _, v := range per {
			sum += v
		}
		return sum
	}
	time.Sleep(time.Until(killed.Add(4 * time.Second)))
	if n := received(20); n != 20 {
		t.Fatalf("%d of 20 datagrams arrived after the heartbeat timeout: want fail-open", n)
	}
	if n := failedOpen(); n < 20 {
		t.Errorf("failed_open = %d, want >= 20", n)
	}

	// Fail-closed keeps dropping with a dead sensor (set in the pinned map, as no Manager may
	// run here: opening one writes a heartbeat).
	modes, err := ebpf.LoadPinnedMap(filepath.Join(pin, bpfMapMgModes), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer modes.Close()
	if err := modes.Update(WorkloadID("wl"), &bpfMgMode{Mode: uint32(ModeEnforce), FailClosed: 1}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if n := received(20); n != 0 {
		t.Errorf("%d datagrams arrived for a fail-closed workload with a dead sensor", n)
	}

	// Restart: the link is re-adopted.
	m, err := Open(Options{PinPath: pin, HostNetns: nsPath(host)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st := m.Stats(); st.Attached != 1 {
		t.Errorf("Attached after restart = %d, want 1", st.Attached)
	}
	a, err := m.Attach("wl", nsPath(wl), 0)
	if err != nil || len(a.Links) != 1 || !a.Links[0].Readopted {
		t.Errorf("Attach after restart = %+v, %v: want the pinned link re-adopted", a, err)
	}
}
