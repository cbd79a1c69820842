// Package version says which minerguard this is, the same way everywhere it is asked
// (`minerguard --version`, `minerguard version`, the startup log line, the
// minerguard_build_info metric): the version and revision `make build` and the Dockerfile
// stamp in with -ldflags -X, else what the Go toolchain recorded, else "dev"/"unknown".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker: -X github.com/minerguard/minerguard/internal/version.version=v1.2.3
// (and .revision=<git commit>); see the Makefile's LDFLAGS.
var (
	version  string
	revision string
)

// Info identifies a build.
type Info struct {
	Version   string // v1.2.3, a git describe, or "dev"
	Revision  string // the git commit, or "unknown"
	GoVersion string
	GOOS      string
	GOARCH    string
}

// Get returns this binary's build information.
func Get() Info {
	i := Info{Version: version, Revision: revision, GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		// `go install module@v1.2.3` records the module version; a plain build says (devel).
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && i.Revision == "" {
				i.Revision = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Revision == "" {
		i.Revision = "unknown"
	}
	return i
}

// String is the one-line form both `minerguard --version` and `minerguard version` print.
func (i Info) String() string {
	return fmt.Sprintf("minerguard %s (revision %s, %s, %s/%s)", i.Version, i.Revision, i.GoVersion, i.GOOS, i.GOARCH)
}
