package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/version"
)

// --version and `version` say the same thing, with the platform.
func TestVersionFlagAndCommandAgree(t *testing.T) {
	flag, _, c1 := run(t, "--version")
	cmd, _, c2 := run(t, "version")
	if c1 != 0 || c2 != 0 || flag != cmd || flag != version.Get().String()+"\n" ||
		!strings.Contains(flag, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("--version %q (exit %d), version %q (exit %d)", flag, c1, cmd, c2)
	}
}

// The Makefile's LDFLAGS stamp a real build: the binary says the version and revision it was
// given, by --version and by `version`.
func TestMakefileStampsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ld, err := exec.CommandContext(ctx, "make", "-s", "--no-print-directory", "-C", "../..", "ldflags",
		"VERSION=v9.9.9-stamp", "REVISION=0123456789abcdef").Output()
	if err != nil {
		t.Fatalf("make ldflags: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "minerguard")
	if b, err := exec.CommandContext(ctx, "go", "build", "-ldflags", strings.TrimSpace(string(ld)), "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, arg := range []string{"--version", "version"} {
		out, err := exec.CommandContext(ctx, bin, arg).Output()
		if err != nil || !strings.HasPrefix(string(out), "minerguard v9.9.9-stamp (revision 0123456789abcdef, go") {
			t.Errorf("%s: %q %v", arg, out, err)
		}
	}
}
