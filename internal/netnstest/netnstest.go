// Package netnstest owns the test fixtures that need a real kernel: named network
// namespaces joined by veth pairs, and running code inside them. Everything it creates is
// removed by t.Cleanup, even when the test fails. Addresses are in 10.199.0.0/16 and exist
// only inside the namespaces a test made.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireReal is the environment variable CI sets (.ci/run): a test of real traffic, real
// software or the real kernel that cannot run there fails instead of skipping, so CI cannot
// pass on the unit tests alone.
const RequireReal = "MINERGUARD_REQUIRE_REAL"

// SkipReal skips t, a test needing the real system, for the reason given; with RequireReal
// set it fails t instead. With -short (make test-short) it always skips.
func SkipReal(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireReal) != "" && !testing.Short() {
		t.Fatalf("cannot run here, and %s=1 requires it: "+format, append([]any{RequireReal}, args...)...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips t unless it runs as root with ip(8) available (SkipReal), and in -short
// mode (make test-short is the quick first try).
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("a real-kernel test: not in -short")
	}
	if os.Geteuid() != 0 {
		SkipReal(t, "needs root: creates network namespaces and veth pairs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		SkipReal(t, "needs ip(8) from iproute2")
	}
}

// Run runs a command and fails the test with its output on error.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// New creates a named network namespace (mg-<prefix>-<random>) with lo up, removed at cleanup.
func New(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	name := "mg-" + prefix + "-" + hex.EncodeToString(b)
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// Veth joins namespaces a and b with a veth pair addressed 10.199.<n>.1/24 (a) and
// 10.199.<n>.2/24 (b), and returns the two addresses.
func Veth(t testing.TB, a, b string, n int) (ipA, ipB string) {
	t.Helper()
	ra := make([]byte, 2)
	rand.Read(ra)
	ifa, ifb := "mga"+hex.EncodeToString(ra), "mgb"+hex.EncodeToString(ra)
	Run(t, "ip", "link", "add", ifa, "netns", a, "type", "veth", "peer", "name", ifb, "netns", b)
	ipA, ipB = fmt.Sprintf("10.199.%d.1", n), fmt.Sprintf("10.199.%d.2", n)
	Run(t, "ip", "-n", a, "addr", "add", ipA+"/24", "dev", ifa)
	Run(t, "ip", "-n", b, "addr", "add", ipB+"/24", "dev", ifb)
	Run(t, "ip", "-n", a, "link", "set", ifa, "up")
	Run(t, "ip", "-n", b, "link", "set", ifb, "up")
	return ipA, ipB
}

// Do runs fn on an OS thread switched into namespace name. Sockets fn creates belong to that
// namespace and stay there after the thread switches back. If switching back fails, the
// thread is left locked so that it exits with its goroutine instead of serving others in the
// wrong namespace.
func Do(t testing.TB, name string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leaving %s: %w", name, err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
