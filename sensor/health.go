package sensor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/minerguard/minerguard/internal/version"
)

// named reports whether the config asked for namespace name by name (not through "all").
func (s *Sensor) named(name string) bool {
	return name != "" && slices.Contains(s.cfg.Netns, name)
}

// Readiness is nil when the sensor captures everything it was asked to, else the reason it
// does not: still starting, or a namespace named in the config (--netns) that is not there or
// could not be opened. /readyz answers it; it turns nil by itself when such a namespace
// appears and is captured.
func (s *Sensor) Readiness() error {
	if !s.ready.Load() {
		return errors.New("the namespaces have not been scanned yet")
	}
	if m := s.missing(); len(m) > 0 {
		return errors.New(strings.Join(m, "; "))
	}
	return nil
}

// missing lists the namespaces named in the config that are not being captured, with why.
func (s *Sensor) missing() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	have := s.watchedNames()
	for _, n := range s.cfg.Netns {
		if n == "all" || slices.Contains(have, n) {
			continue
		}
		why := s.failed[n]
		if why == "" {
			why = "not found under /var/run/netns"
		}
		out = append(out, fmt.Sprintf("netns %s: %s", n, why))
	}
	return out
}

// watchedNames are the names of the captured namespaces; s.mu held.
func (s *Sensor) watchedNames() []string {
	out := make([]string, 0, len(s.rings))
	for _, w := range s.rings {
		if w.ns.Name != "" {
			out = append(out, w.ns.Name)
		}
	}
	return out
}

// logStarted is the one line that says what this sensor is and what it watches.
func (s *Sensor) logStarted(listen string) {
	v := version.Get()
	s.mu.RLock()
	n := len(s.rings)
	s.mu.RUnlock()
	profiles := "off"
	if s.book != nil {
		profiles = s.cfg.ProfileState()
	}
	s.log.Info("minerguard sensor started", "version", v.Version, "revision", v.Revision, "mode", s.mode,
		"listen", listen, "netns", strings.Join(s.cfg.Netns, ","), "namespaces_captured", n,
		"interfaces", strings.Join(s.cfg.Capture.Interfaces, ","), "workloads", strings.Join(s.cfg.Workloads.Select, ","),
		"alerts", s.cfg.Alerts.Output, "profiles", profiles, "node", s.node)
	for _, m := range s.missing() {
		s.log.Error("a namespace asked for is not captured; /readyz fails until it is", "reason", m)
	}
}
