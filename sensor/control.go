package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/xdp"
)

// The control socket: a running sensor holds its profile state exclusively (bbolt) and its
// XDP maps, so `minerguard profiles` and `minerguard blocks` read and change them through
// this unix socket.
// HTTP on a root-only socket (0600 in the 0700 state directory): nothing on the network can
// approve or reset a profile.
const (
	ctlProfiles = "/v1/profiles"         // GET: every profile (export JSON); POST: import one export
	ctlApprove  = "/v1/profiles/approve" // POST ?workload=W&to=monitoring|enforcing
	ctlReset    = "/v1/profiles/reset"   // POST ?workload=W
	ctlBlocks   = "/v1/blocks"           // GET: every XDP block
	ctlClear    = "/v1/blocks/clear"     // POST ?workload=W[&dest=ADDRESS|PREFIX]
)

// maxImportBytes bounds an import's body and an answer read by the client; a larger import is
// refused with 413 (a variable so the test can lower it).
var maxImportBytes int64 = 256 << 20

// ControlSocket is the control socket's path: control_socket, else minerguard.sock beside the
// profile state; "" when there is no state directory to put it in.
func (c *Config) ControlSocket() string {
	if c.ControlSocketPath != "" {
		return c.ControlSocketPath
	}
	if c.Profiles.State == "" && c.StateDir == "" {
		return ""
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
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
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
	s.blockHandlers(mux)
	if s.book == nil {
		mux.HandleFunc(ctlProfiles+"/", profilesOff)
		mux.HandleFunc(ctlProfiles, profilesOff)
		return mux
	}
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
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("import larger than %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
			return
		}
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
			old, _ := s.book.State(p.Workload)
			if err := s.book.Put(p); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			s.profileMoved(p.Workload, old, p.State)
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
		old, _ := s.book.State(wl)
		if err := s.book.Approve(wl, to, time.Now()); err != nil {
			controlError(w, err)
			return
		}
		s.log.Info("profile state changed", "workload", wl, "from", old, "to", to, "reason", "approved")
		s.profileMoved(wl, old, to)
		s.commitAnswer(w, to.String())
	})
	mux.HandleFunc("POST "+ctlReset, func(w http.ResponseWriter, r *http.Request) {
		wl := r.URL.Query().Get("workload")
		old, _ := s.book.State(wl)
		if err := s.book.Reset(wl, time.Now()); err != nil {
			controlError(w, err)
			return
		}
		s.log.Info("profile state changed", "workload", wl, "from", old, "to", profile.Learning, "reason", "reset")
		s.profileMoved(wl, old, profile.Learning)
		s.commitAnswer(w, profile.Learning.String())
	})
	return mux
}

func profilesOff(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "profiles are disabled in this sensor (profiles.enabled: false)", http.StatusConflict)
}

// BlockInfo is one XDP block as the control socket lists it.
type BlockInfo struct {
	Workload  string    `json:"workload" yaml:"workload"`
	Kind      string    `json:"kind" yaml:"kind"` // flow or destination
	Src       string    `json:"src,omitempty" yaml:"src,omitempty"`
	Dest      string    `json:"dest" yaml:"dest"`                     // flow: address:port; destination: prefix
	Port      uint16    `json:"port,omitempty" yaml:"port,omitempty"` // destination: 0 for every port
	Proto     string    `json:"proto" yaml:"proto"`                   // TCP, UDP, or any
	Reason    string    `json:"reason" yaml:"reason"`
	Installed time.Time `json:"installed" yaml:"installed"`
	FirstDrop time.Time `json:"first_drop,omitzero" yaml:"first_drop,omitempty"`
	Drops     uint64    `json:"drops" yaml:"drops"`
}

func (s *Sensor) blockHandlers(mux *http.ServeMux) {
	off := func(w http.ResponseWriter) bool {
		if s.enf == nil {
			http.Error(w, fmt.Sprintf("this sensor does not enforce (mode %s): there are no blocks", s.mode), http.StatusConflict)
			return true
		}
		return false
	}
	mux.HandleFunc("GET "+ctlBlocks, func(w http.ResponseWriter, r *http.Request) {
		if off(w) {
			return
		}
		es, err := s.enf.m.Blocks()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out := make([]BlockInfo, 0, len(es))
		for _, e := range es {
			b := BlockInfo{Workload: s.enf.nameOf(e.WorkloadID), Kind: "destination", Dest: e.Prefix.String(), Port: e.Port,
				Proto: "any", Reason: detect.Reason(e.Reason).String(), Installed: xdp.Wall(e.InstalledNs),
				FirstDrop: xdp.Wall(e.FirstDropNs), Drops: e.Drops}
			if e.Proto != 0 {
				b.Proto = alert.ProtoName(e.Proto)
			}
			if e.Flow {
				b.Kind, b.Src, b.Dest, b.Port = "flow", e.Src.String(), e.Dst.String(), 0
			}
			out = append(out, b)
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Workload != out[j].Workload {
				return out[i].Workload < out[j].Workload
			}
			return out[i].Installed.Before(out[j].Installed)
		})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST "+ctlClear, func(w http.ResponseWriter, r *http.Request) {
		if off(w) {
			return
		}
		wl := r.URL.Query().Get("workload")
		if wl == "" {
			http.Error(w, "workload: missing", http.StatusBadRequest)
			return
		}
		id := xdp.WorkloadID(wl)
		if h, ok := strings.CutPrefix(wl, "id:"); ok {
			v, err := strconv.ParseUint(h, 16, 64)
			if err != nil {
				http.Error(w, "workload "+wl+": want a name or id:HEX", http.StatusBadRequest)
				return
			}
			id = v
		}
		match := func(xdp.Entry) bool { return true }
		if d := r.URL.Query().Get("dest"); d != "" {
			pfx, err := netip.ParsePrefix(d)
			if err != nil {
				a, aerr := netip.ParseAddr(d)
				if aerr != nil {
					http.Error(w, "dest "+d+": want an address or a prefix", http.StatusBadRequest)
					return
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			pfx = pfx.Masked()
			match = func(e xdp.Entry) bool {
				if e.Flow {
					return pfx.Contains(e.Dst.Addr())
				}
				return pfx.Overlaps(e.Prefix)
			}
		}
		n, err := s.enf.m.Clear(id, match)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.log.Info("blocks cleared through the control socket", "workload", wl, "dest", r.URL.Query().Get("dest"), "count", n)
		fmt.Fprintf(w, "%d\n", n)
	})
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

// Blocks lists the running sensor's XDP blocks.
func (c *ControlClient) Blocks() ([]BlockInfo, error) {
	b, err := c.do("GET", ctlBlocks, nil, nil)
	if err != nil {
		return nil, err
	}
	var out []BlockInfo
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("running sensor: %w", err)
	}
	return out, nil
}

// ClearBlocks removes a workload's blocks, only those towards dest when it is not empty (an
// address or prefix), and returns how many went.
func (c *ControlClient) ClearBlocks(workload, dest string) (int, error) {
	q := url.Values{"workload": {workload}}
	if dest != "" {
		q.Set("dest", dest)
	}
	b, err := c.do("POST", ctlClear, q, nil)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
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
