// Command minerguard finds crypto-miners by their network traffic: `replay` runs the detection
// pipeline on capture files, `intel check` looks a name or address up in the pool intel.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/minerguard/minerguard/internal/version"
	"github.com/spf13/cobra"
)

// Exit codes: 0 ran, 1 found something with --fail-on alert, 2 error.
const (
	exitFound = 1
	exitError = 2
)

// exitErr carries an exit code through cobra.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the CLI with args and returns the exit code; tests call it in-process.
func execute(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "minerguard",
		Short:         "Find and stop crypto-miners by their network traffic",
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n") // --version prints what `version` prints
	root.AddCommand(replayCmd(), sensorCmd(), intelCmd(), profilesCmd(), blocksCmd(), versionCmd(), signaturesCmd())
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		code := exitError
		var ee *exitErr
		if errors.As(err, &ee) {
			code = ee.code
		}
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "minerguard:", msg)
		}
		return code
	}
	return 0
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, revision, Go version and platform (as --version and minerguard_build_info)",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version.Get()) },
	}
}
