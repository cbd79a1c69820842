package sensor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/profile"
)

// The control socket: a running sensor holds its profile state exclusively (bbolt), so
// `minerguard profiles` reads and changes the profiles through this unix socket instead.
// HTTP on a root-only socket (0600 in the 0700 state directory): nothing on the network can
// approve or reset a profile.
const (
	ctlProfiles = "/v1/profiles"         // GET: every profile (export JSON); POST: import one export
	ctlApprove  = "/v1/profiles/approve" // POST ?workload=W&to=monitoring|enforcing
	ctlReset    = "/v1/profiles/reset"   // POST ?workload=W

	maxImportBytes = 256 << 20
)

// ControlSocket is the control socket's path: control_socket, else minerguard.sock beside the
// profile state.
func (c *Config) ControlSocket() string {
	if c.ControlSocketPath != "" {
		return c.ControlSocketPath
	}
	return filepath.Join(filepath.Dir(c.ProfileState()), "minerguard.sock")
}

// listenControl opens the control socket. A file left by a sensor that died is replaced; the
// profile state's lock, taken before, says no other sensor uses this directory.
func listenControl(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another minerguard answers on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w (set control_socket, or state_dir to a writable directory)", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return ln, nil
}

// controlHandler serves the profile commands against the live book. Every change is
// committed before the answer, so an answered approve is on disk.
func (s *Sensor) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ctlProfiles, func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if err := profile.Encode(&buf, s.book.Profiles(), "json"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(buf.Bytes())
	})
	mux.HandleFunc("POST "+ctlProfiles, func(w http.ResponseWriter, r *http.Request) {
		ps, err := profile.Decode(http.MaxBytesReader(w, r.Body, maxImportBytes))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// All or nothing: every profile is checked against the live caps before any is put.
		check := profile.NewMemory(s.book.Config())
		for _, p := range ps {
			if err := check.Put(p); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		for _, p := range ps {
			old, _ := s.book.Get(p.Workload)
			if err := s.book.Put(p); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			s.profileMoved(p.Workload, old.State, p.State)
		}
		s.commitAnswer(w, fmt.Sprintf("imported %d profiles", len(ps)))
	})
	mux.HandleFunc("POST "+ctlApprove, func(w http.ResponseWriter, r *http.Request) {
		wl := r.URL.Query().Get("workload")
		to, err := profile.ParseState(r.URL.Query().Get("to"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		old, _ := s.book.Get(wl)
		if err := s.book.Approve(wl, to, time.Now()); err != nil {
			controlError(w, err)
			return
		}
		s.log.Info("profile state changed", "workload", wl, "from", old.State, "to", to, "reason", "approved")
		s.profileMoved(wl, old.State, to)
		s.commitAnswer(w, to.String())
	})
	mux.HandleFunc("POST "+ctlReset, func(w http.ResponseWriter, r *http.Request) {
		wl := r.URL.Query().Get("workload")
		old, _ := s.book.Get(wl)
		if err := s.book.Reset(wl, time.Now()); err != nil {
			controlError(w, err)
			return
		}
		s.log.Info("profile state changed", "workload", wl, "from", old.State, "to", profile.Learning, "reason", "reset")
		s.profileMoved(wl, old.State, profile.Learning)
		s.commitAnswer(w, profile.Learning.String())
	})
	return mux
}

func controlError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	if errors.Is(err, profile.ErrNoProfile) {
		code = http.StatusNotFound
	}
	http.Error(w, err.Error(), code)
}

func (s *Sensor) commitAnswer(w http.ResponseWriter, msg string) {
	if err := s.book.Commit(); err != nil {
		http.Error(w, "changed in the running sensor but not committed (retried): "+err.Error(), http.StatusInternalServerError)
		return
	}
	io.WriteString(w, msg+"\n")
}

// profileReasons are the verdicts a profile stands behind: their blocks go when the profile
// stops enforcing (relearning, or moved back to monitoring). A miner's blocks stay.
var profileReasons = []uint32{uint32(detect.ReasonNotInProfile), uint32(detect.ReasonUnresolvedIP)}

// profileMoved lets go of a workload's profile blocks once its profile no longer enforces.
func (s *Sensor) profileMoved(workload string, from, to profile.State) {
	if s.enf == nil || to == profile.Enforcing || (from != profile.Enforcing && to != profile.Learning) {
		return
	}
	if err := s.enf.m.ClearWorkload(workload, profileReasons...); err != nil {
		s.log.Warn("removing the profile blocks of a workload", "workload", workload, "err", err)
	}
}

// ControlClient talks to a running sensor's control socket.
type ControlClient struct {
	c *http.Client
}

// DialControl connects to the control socket at path; an error means no sensor answers there
// (none runs, or one died and left the file).
func DialControl(path string) (*ControlClient, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, err
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &ControlClient{c: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

func (c *ControlClient) do(method, path string, q url.Values, body io.Reader) ([]byte, error) {
	u := "http://minerguard" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("running sensor: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxImportBytes))
	if err != nil {
		return nil, fmt.Errorf("running sensor: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(b))
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("running sensor: %s: %w", msg, profile.ErrNoProfile)
		}
		return nil, fmt.Errorf("running sensor: %s", msg)
	}
	return b, nil
}

// Profiles returns every profile as the running sensor holds it now.
func (c *ControlClient) Profiles() ([]profile.Profile, error) {
	b, err := c.do("GET", ctlProfiles, nil, nil)
	if err != nil {
		return nil, err
	}
	return profile.Decode(bytes.NewReader(b))
}

// Approve moves a workload's profile to monitoring or enforcing.
func (c *ControlClient) Approve(workload string, to profile.State) error {
	_, err := c.do("POST", ctlApprove, url.Values{"workload": {workload}, "to": {to.String()}}, nil)
	return err
}

// Reset sends a workload's profile back to learning.
func (c *ControlClient) Reset(workload string) error {
	_, err := c.do("POST", ctlReset, url.Values{"workload": {workload}}, nil)
	return err
}

// Import replaces the given workloads' profiles, all or none.
func (c *ControlClient) Import(ps []profile.Profile) error {
	var buf bytes.Buffer
	if err := profile.Encode(&buf, ps, "json"); err != nil {
		return err
	}
	_, err := c.do("POST", ctlProfiles, nil, &buf)
	return err
}
