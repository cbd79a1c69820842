package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/netnstest"
	"github.com/minerguard/minerguard/internal/version"
)

// A mistyped --netns is not healthy: the log says so (JSON lines with --log.format json) and
// /readyz fails naming it, until a namespace of that name appears and is captured. The
// startup line says the version, mode, listen address and what is watched; SIGTERM ends with
// a "stopped" line.
func TestSensorMissingNetnsNotReady(t *testing.T) {
	netnstest.RequireRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	name := "mg-late-" + hex.EncodeToString(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd, _, errb := startSensorProcess(t, "--log.format", "json", "--netns", name, "--web.listen-address", addr,
		"--state-dir", t.TempDir())
	logLine := func(msg string) map[string]any {
		for _, l := range strings.Split(errb.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
				return m
			}
		}
		return nil
	}
	netnstest.Eventually(t, 10*time.Second, "the startup line", func() bool { return logLine("minerguard sensor started") != nil })
	st := logLine("minerguard sensor started")
	if st["version"] != version.Get().Version || st["mode"] != "monitor" || st["listen"] != addr || st["netns"] != name || st["level"] != "INFO" {
		t.Errorf("startup line: %v", st)
	}
	// The error line may follow the startup line by a moment (seen under load).
	const missing = "a namespace asked for is not captured; /readyz fails until it is"
	netnstest.Eventually(t, 10*time.Second, "the error line for the missing namespace", func() bool { return logLine(missing) != nil })
	if e := logLine(missing); e == nil || e["level"] != "ERROR" ||
		!strings.Contains(e["reason"].(string), name) {
		t.Errorf("no error line for the missing namespace: %v\n%s", e, errb.String())
	}
	readyz := func() (int, string) {
		c := http.Client{Timeout: 2 * time.Second}
		r, err := c.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer r.Body.Close()
		body, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(body)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "netns "+name+": not found") {
		t.Errorf("readyz with the namespace missing: %d %q", code, body)
	}
	// It appears: captured within the watcher's scan, and ready.
	netnstest.Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	netnstest.Eventually(t, 10*time.Second, "readyz 200 once the namespace exists", func() bool { c, _ := readyz(); return c == http.StatusOK })

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit 15 s after SIGTERM")
	}
	if logLine("minerguard sensor stopped") == nil {
		t.Errorf("no stopped line:\n%s", errb.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("log line not JSON: %q", l)
		}
	}
}
