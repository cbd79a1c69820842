package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lab owns what a run creates: named network namespaces (removing a namespace removes the
// veths in it, and their peers) and child processes. Names carry the harness's pid
// (mgbl<pid>-...) so that parallel runs never clash and a crashed run's leftovers can be
// told from a live run's.
type lab struct {
	prefix string
	mu     sync.Mutex
	netns  []string
	procs  []*proc
}

func newLab() *lab { return &lab{prefix: fmt.Sprintf("mgbl%d-", os.Getpid())} }

var staleName = regexp.MustCompile(`^mgbl(\d+)-`)

// removeStale deletes namespaces left by harness runs whose process is gone (killed with
// SIGKILL, so their cleanup never ran).
func removeStale() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid > 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				continue // its harness is alive (or the pid was reused: leave it, it is not ours to judge)
			}
		}
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// addNetns creates namespace prefix+name with lo up and records it for cleanup.
func (l *lab) addNetns(name string) (string, error) {
	full := l.prefix + name
	if err := sh("ip", "netns", "add", full); err != nil {
		return "", err
	}
	l.mu.Lock()
	l.netns = append(l.netns, full)
	l.mu.Unlock()
	return full, sh("ip", "-n", full, "link", "set", "lo", "up")
}

// delNetns removes the namespaces in names now (the scale scenario frees its 110 before the
// next one runs).
func (l *lab) delNetns(names []string) {
	drop := map[string]bool{}
	for _, n := range names {
		exec.Command("ip", "netns", "del", n).Run()
		drop[n] = true
	}
	l.mu.Lock()
	kept := l.netns[:0]
	for _, n := range l.netns {
		if !drop[n] {
			kept = append(kept, n)
		}
	}
	l.netns = kept
	l.mu.Unlock()
}

// cleanup stops every process still running and removes every namespace. It runs on
// exit and on SIGINT/SIGTERM; it is safe to call twice.
func (l *lab) cleanup() {
	l.mu.Lock()
	procs, netns := l.procs, l.netns
	l.procs, l.netns = nil, nil
	l.mu.Unlock()
	for _, p := range procs {
		p.stop(3 * time.Second)
	}
	for _, n := range netns {
		exec.Command("ip", "netns", "del", n).Run()
	}
}

// proc is a child process in its own process group, so stopping it also stops whatever it
// started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// start runs argv (in namespace ns unless ns is ""), stdout and stderr to the files out and
// errPath ("" for /dev/null; the same path for both shares one file).
func (l *lab) start(name, ns, out, errPath string, env []string, argv ...string) (*proc, error) {
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), env...)
	stdout, err := openOut(out)
	if err != nil {
		return nil, err
	}
	defer stdout.Close() // the child has its own copy once started
	stderr := stdout
	if errPath != out {
		if stderr, err = openOut(errPath); err != nil {
			return nil, err
		}
		defer stderr.Close()
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

func openOut(path string) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// wait waits for the process to exit on its own, at most d (then it is stopped).
func (p *proc) wait(ctx context.Context, d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.stop(3 * time.Second)
		return ctx.Err()
	case <-time.After(d):
		p.stop(3 * time.Second)
		return fmt.Errorf("%s: still running after %v, stopped", p.name, d)
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	p.once.Do(func() {
		syscall.Kill(-p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			syscall.Kill(-p.pid(), syscall.SIGKILL)
			<-p.done
		}
	})
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// sh runs a command and returns its combined output in the error.
func sh(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// batch feeds lines to `ip [-n ns] -batch -`: one exec for many link operations.
func batch(ns string, lines []string) error {
	argv := []string{"ip"}
	if ns != "" {
		argv = append(argv, "-n", ns)
	}
	cmd := exec.Command("ip", append(argv[1:], "-batch", "-")...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s -batch: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	return nil
}
