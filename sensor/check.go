package sensor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/minerguard/minerguard/workload"
	"golang.org/x/sys/unix"
)

// Check runs, without starting, every check a start runs: Validate, then what the start would
// find on this machine. The files it reads (intel lists, the static workload map) are readable
// and well-formed; the places it writes (alert output, profile state, control socket) can be
// written; proc_root, the host interfaces and enforcement.host_netns exist. It opens no
// namespace, binds no port and writes nothing. Every problem is reported (Problems), each with
// its key, its value and what to do.
func (c *Config) Check() error {
	var ps Problems
	if err := c.Validate(); err != nil {
		if !errors.As(err, &ps) {
			return err
		}
	}
	bad := func(key, format string, args ...any) {
		ps = append(ps, &ValueError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for _, f := range c.Intel.Files {
		if f == "" {
			continue // Validate said so
		}
		if _, err := loadIntel([]string{f}); err != nil {
			bad("intel.files", "%s: %v (fix the file or remove it from the list)", f, err)
		}
	}
	if c.Workloads.Static != "" {
		if _, err := workload.LoadStatic(c.Workloads.Static); err != nil {
			bad("workloads.static", "%s: %v (fix the file or unset the key)", c.Workloads.Static, err)
		}
	}
	if fi, err := os.Stat(c.ProcRoot); c.ProcRoot != "" && (err != nil || !fi.IsDir()) {
		bad("proc_root", "%s: not a directory (%v): want /proc, or the host's /proc mounted into the container", c.ProcRoot, err)
	}
	for _, i := range c.Capture.Interfaces {
		if _, err := net.InterfaceByName(i); err != nil {
			bad("capture.interfaces", "%s: %v (see ip link in the sensor's network namespace)", i, err)
		}
	}
	if c.Alerts.Output != "-" && c.Alerts.Output != "" {
		if err := writable(c.Alerts.Output, false); err != nil {
			bad("alerts.output", "%s: %v", c.Alerts.Output, err)
		}
	}
	if c.Profiles.Enabled && (c.Profiles.State != "" || c.StateDir != "") {
		key := "state_dir"
		if c.Profiles.State != "" {
			key = "profiles.state"
		}
		if err := writable(c.ProfileState(), true); err != nil {
			bad(key, "%s: %v (set state_dir or profiles.state to a writable directory)", c.ProfileState(), err)
		}
	}
	if c.Profiles.Enabled && c.Profiles.Backend == "kubernetes" {
		if _, err := kubeConfig(c.Profiles.Kubeconfig); err != nil {
			key := "profiles.kubeconfig"
			bad(key, "%v", err)
		}
	}
	if c.ControlSocketPath != "" {
		if err := writable(c.ControlSocketPath, true); err != nil {
			bad("control_socket", "%s: %v", c.ControlSocketPath, err)
		}
	}
	if c.Mode == "enforce" && c.Enforcement.HostNetns != "" {
		if _, err := os.Stat(c.Enforcement.HostNetns); err != nil {
			bad("enforcement.host_netns", "%s: %v (want a netns path such as /proc/1/ns/net, or unset for the sensor's own)", c.Enforcement.HostNetns, err)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// writable says whether the start could create or append to the file at p: an existing file
// must be writable, else its directory (created by the start when mkdir is set: then the
// nearest existing parent must be writable).
func writable(p string, mkdir bool) error {
	if fi, err := os.Stat(p); err == nil {
		if fi.IsDir() {
			return errors.New("is a directory, want a file")
		}
		if err := unix.Access(p, unix.W_OK); err != nil {
			return fmt.Errorf("not writable: %w", err)
		}
		return nil
	}
	dir := filepath.Dir(p)
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("directory %s is not writable: %w", dir, err)
			}
			return nil
		}
		if !mkdir || !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		dir = parent
	}
}
