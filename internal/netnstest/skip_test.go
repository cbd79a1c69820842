package netnstest

import (
	"testing"
)

type recTB struct {
	testing.TB
	fatal, skip string
}

func (r *recTB) Helper()                   {}
func (r *recTB) Fatalf(f string, a ...any) { r.fatal = f }
func (r *recTB) Skipf(f string, a ...any)  { r.skip = f }

// Locally a test that cannot run skips; in CI (RequireReal set) it fails.
func TestSkipReal(t *testing.T) {
	if testing.Short() {
		t.Skip("SkipReal always skips under -short")
	}
	t.Setenv(RequireReal, "")
	r := &recTB{TB: t}
	SkipReal(r, "needs %s", "iperf3")
	if r.skip == "" || r.fatal != "" {
		t.Errorf("without %s: skip %q fatal %q", RequireReal, r.skip, r.fatal)
	}
	t.Setenv(RequireReal, "1")
	r = &recTB{TB: t}
	SkipReal(r, "needs %s", "iperf3")
	if r.fatal == "" {
		t.Errorf("with %s=1 it did not fail", RequireReal)
	}
}
