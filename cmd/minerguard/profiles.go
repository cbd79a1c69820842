package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minerguard/minerguard/internal/structured"

	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/sensor"
	"github.com/spf13/cobra"
)

// defaultProfiles is where the sensor keeps its learned profiles.
const defaultProfiles = "/var/lib/minerguard/profiles.db"

type profilesFlags struct {
	path       string
	kubeconfig string // set: the cluster's WorkloadProfiles instead of a state file
	socket     string
	output     string
	timeout    time.Duration
}

func profilesCmd() *cobra.Command {
	f := &profilesFlags{}
	cmd := &cobra.Command{
		Use:   "profiles",
		Short: "Inspect, approve, reset, export and import learned egress profiles",
		Long: "Works on the profile state file (bbolt) that `replay --learn` and the sensor write. While a\n" +
			"sensor runs it holds the file: the commands then go through its control socket\n" +
			"(--socket, default minerguard.sock beside the state file), see the live profiles and\n" +
			"change them in place (an approve or reset takes effect at once and is committed before\n" +
			"the answer). A file locked by something that does not answer on the socket fails after\n" +
			"--lock-timeout naming the holder's pid, instead of waiting.",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.path, "profiles", defaultProfiles, "profile state file")
	pf.StringVar(&f.socket, "socket", "", "a running sensor's control socket (default: minerguard.sock beside --profiles)")
	pf.StringVarP(&f.output, "output", "o", "text", "output format: text, json or yaml")
	pf.DurationVar(&f.timeout, "lock-timeout", 2*time.Second, "how long to wait for the state file's lock")
	pf.StringVar(&f.kubeconfig, "kubeconfig", "", "work on the cluster's WorkloadProfiles (profiles.backend kubernetes) through this kubeconfig instead of a state file")
	cmd.AddCommand(profilesList(f), profilesShow(f), profilesDiff(f), profilesApprove(f), profilesReset(f),
		profilesExport(f), profilesImport(f))
	return cmd
}

// open opens the state: read-only for the commands that only read (they may run beside each
// other), for writing for approve, reset and import (which alone may create the file).
func (f *profilesFlags) open(write bool) (*profile.Book, error) {
	if err := f.checkOutput(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(f.path); err != nil && !(write && errors.Is(err, os.ErrNotExist)) {
		return nil, fmt.Errorf("profile state %s: %w (profiles are learned by `replay --learn --profiles` or the sensor)", f.path, errors.Unwrap(err))
	}
	open := profile.OpenReadOnly
	if write {
		open = profile.Open
	}
	b, err := open(f.path, profile.Config{}, f.timeout)
	return b, damageAdvice(err)
}

// damageAdvice says what to do about a damaged state file; the CLI never moves it (it may be
// all that is left of the profiles, and a person should decide).
func damageAdvice(err error) error {
	var de *profile.DamagedError
	if !errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("%w; left as it is: a sensor starting on it moves it aside and relearns, or move it yourself (mv %s %s.damaged) to start over", err, de.Path, de.Path)
}

func (f *profilesFlags) checkOutput() error { return checkOutput(f.output) }

// checkOutput accepts the -o formats of the commands that list state.
func checkOutput(format string) error {
	switch format {
	case "text", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output format %q (want text, json or yaml)", format)
}

// live is the control socket of a sensor running on the state, or nil when none answers.
func (f *profilesFlags) live() *sensor.ControlClient {
	path := f.socket
	if path == "" {
		path = filepath.Join(filepath.Dir(f.path), "minerguard.sock")
	}
	c, err := sensor.DialControl(path)
	if err != nil {
		return nil
	}
	return c
}

// liveBook is a snapshot of a running sensor's profiles, for the commands that only read.
func liveBook(c *sensor.ControlClient) (*profile.Book, error) {
	ps, err := c.Profiles()
	if err != nil {
		return nil, err
	}
	// The sensor enforced its own caps; the snapshot must hold whatever it sends.
	b := profile.NewMemory(profile.Config{MaxEntries: math.MaxInt32, MaxIPsPerName: math.MaxInt32, MaxProfiles: math.MaxInt32})
	for _, p := range ps {
		if err := b.Put(p); err != nil {
			return nil, fmt.Errorf("running sensor's profile: %w", err)
		}
	}
	return b, nil
}

// withBook runs fn on the opened state and closes it (committing what fn changed). The
// commands that only read see a running sensor's live profiles when one answers.
func (f *profilesFlags) withBook(write bool, fn func(*profile.Book) error) error {
	if f.kubeconfig != "" {
		if write {
			return &exitErr{exitError, errors.New("--kubeconfig: only list, show, diff, export, approve and reset work on the cluster's profiles (import into a node's state file, or kubectl apply)")}
		}
		if err := f.checkOutput(); err != nil {
			return &exitErr{exitError, err}
		}
		b, err := f.clusterBook()
		if err != nil {
			return &exitErr{exitError, err}
		}
		return fn(b)
	}
	if !write {
		if c := f.live(); c != nil {
			if err := f.checkOutput(); err != nil {
				return &exitErr{exitError, err}
			}
			b, err := liveBook(c)
			if err != nil {
				return &exitErr{exitError, err}
			}
			return fn(b)
		}
	}
	b, err := f.open(write)
	if err != nil {
		return &exitErr{exitError, err}
	}
	err = fn(b)
	if cerr := b.Close(); err == nil && cerr != nil {
		err = &exitErr{exitError, cerr}
	}
	return err
}

func fail(err error) error {
	var ee *exitErr
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &exitErr{exitError, err}
}

func get(b *profile.Book, w string) (profile.Profile, error) {
	p, ok := b.Get(w)
	if !ok {
		return p, fmt.Errorf("%s: %w", w, profile.ErrNoProfile)
	}
	return p, nil
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

type summaryOut struct {
	Workload   string `json:"workload" yaml:"workload"`
	State      string `json:"state" yaml:"state"`
	Entries    int    `json:"entries" yaml:"entries"`
	Candidates int    `json:"candidates,omitempty" yaml:"candidates,omitempty"`
	Since      string `json:"since" yaml:"since"`
	LastNew    string `json:"lastNew,omitempty" yaml:"lastNew,omitempty"`
	Image      string `json:"image,omitempty" yaml:"image,omitempty"`
}

func profilesList(f *profilesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List workloads with their state, entry count, state time and last new entry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withBook(false, func(b *profile.Book) error {
				out := cmd.OutOrStdout()
				ls := b.List()
				if f.output == "text" {
					tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
					fmt.Fprintln(tw, "WORKLOAD\tSTATE\tENTRIES\tSINCE\tLAST NEW")
					for _, s := range ls {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Workload, s.State, s.Entries, timeOrDash(s.Since), timeOrDash(s.LastNew))
					}
					return tw.Flush()
				}
				rows := make([]summaryOut, 0, len(ls))
				for _, s := range ls {
					r := summaryOut{Workload: s.Workload, State: s.State.String(), Entries: s.Entries, Candidates: s.Candidates,
						Since: timeOrDash(s.Since), Image: s.Image}
					if !s.LastNew.IsZero() {
						r.LastNew = timeOrDash(s.LastNew)
					}
					rows = append(rows, r)
				}
				return structured.Write(out, f.output, rows)
			})
		},
	}
}

func profilesShow(f *profilesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show WORKLOAD",
		Short: "Show one workload's profile (entries, recorded addresses, candidates, poisoned)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withBook(false, func(b *profile.Book) error {
				p, err := get(b, args[0])
				if err != nil {
					return fail(err)
				}
				return profile.Encode(cmd.OutOrStdout(), []profile.Profile{p}, f.output)
			})
		},
	}
}

func readProfiles(path string) ([]profile.Profile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	ps, err := profile.Decode(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}

func profilesDiff(f *profilesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "diff WORKLOAD FILE",
		Short: "Compare a workload's profile with the one in an exported file",
		Long: "FILE is a `profiles export` (YAML or JSON), e.g. the approved profile kept in version\n" +
			"control. Lines starting with + are in the state but not in FILE (learned since), lines\n" +
			"starting with - are in FILE but no longer in the state. Destinations are compared by\n" +
			"name or address, port and transport; recorded addresses are not compared. Exit 1 when\n" +
			"they differ, like diff(1).",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := readProfiles(args[1])
			if err != nil {
				return fail(err)
			}
			var old *profile.Profile
			for i := range ps {
				if ps[i].Workload == args[0] {
					old = &ps[i]
				}
			}
			if old == nil {
				return fail(fmt.Errorf("%s has no profile for %s", args[1], args[0]))
			}
			var added, removed []profile.Entry
			err = f.withBook(false, func(b *profile.Book) error {
				cur, err := get(b, args[0])
				if err != nil {
					return fail(err)
				}
				added, removed = profile.Diff(*old, cur)
				return nil
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.output == "text" {
				for _, e := range removed {
					fmt.Fprintf(out, "- %s\n", e)
				}
				for _, e := range added {
					fmt.Fprintf(out, "+ %s\n", e)
				}
			} else {
				names := func(es []profile.Entry) []string {
					s := make([]string, 0, len(es))
					for _, e := range es {
						s = append(s, e.String())
					}
					return s
				}
				v := struct {
					Workload string   `json:"workload" yaml:"workload"`
					Added    []string `json:"added" yaml:"added"`
					Removed  []string `json:"removed" yaml:"removed"`
				}{args[0], names(added), names(removed)}
				if err := structured.Write(out, f.output, v); err != nil {
					return fail(err)
				}
			}
			if len(added)+len(removed) > 0 {
				return &exitErr{exitFound, nil}
			}
			return nil
		},
	}
}

func profilesApprove(f *profilesFlags) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "approve WORKLOAD",
		Short: "End learning now: move a profile to monitoring (flag violations) or enforcing (drop them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := profile.ParseState(to)
			if err != nil {
				return fail(err)
			}
			if f.kubeconfig != "" {
				if err := f.clusterSetState(args[0], st); err != nil {
					return fail(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (cluster)\n", args[0], st)
				return nil
			}
			if c := f.live(); c != nil {
				if err := c.Approve(args[0], st); err != nil {
					return fail(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (running sensor)\n", args[0], st)
				return nil
			}
			return f.withBook(true, func(b *profile.Book) error {
				if err := b.Approve(args[0], st, time.Now()); err != nil {
					return fail(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], st)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "monitoring", "target state: monitoring or enforcing")
	return cmd
}

func profilesReset(f *profilesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reset WORKLOAD",
		Short: "Forget a profile's entries and learn again from now (poisoned destinations stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.kubeconfig != "" {
				if err := f.clusterSetState(args[0], profile.Learning); err != nil {
					return fail(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: relearn requested (cluster: the sensors clear it at their next sync)\n", args[0])
				return nil
			}
			if c := f.live(); c != nil {
				if err := c.Reset(args[0]); err != nil {
					return fail(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: learning (running sensor)\n", args[0])
				return nil
			}
			return f.withBook(true, func(b *profile.Book) error {
				if err := b.Reset(args[0], time.Now()); err != nil {
					return fail(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: learning\n", args[0])
				return nil
			})
		},
	}
}

func profilesExport(f *profilesFlags) *cobra.Command {
	var format, out, ns, name string
	var sel map[string]string
	cmd := &cobra.Command{
		Use:   "export [WORKLOAD...]",
		Short: "Export profiles (all without arguments) as YAML/JSON or as Kubernetes policies",
		Long: "--format yaml or json writes a file `import` and `diff` read. networkpolicy writes one\n" +
			"networking.k8s.io/v1 NetworkPolicy per workload (names become the addresses recorded for\n" +
			"them, with a comment naming the domain, plus DNS to kube-dns); ciliumnetworkpolicy writes a\n" +
			"cilium.io/v2 CiliumNetworkPolicy (toFQDNs for names, toCIDR for addresses, and the DNS\n" +
			"proxy rule). Namespace, name and pod selector come from a Kubernetes identity\n" +
			"(k8s/NAMESPACE/KIND/NAME → namespace NAMESPACE, name minerguard-NAME, selector\n" +
			"app.kubernetes.io/name=NAME) unless given. Policies are YAML documents separated by ---.\n" +
			"--out writes the file atomically (temporary file, fsync, rename).",
		RunE: func(cmd *cobra.Command, args []string) error {
			var ps []profile.Profile
			err := f.withBook(false, func(b *profile.Book) error {
				if len(args) == 0 {
					ps = b.Profiles()
					return nil
				}
				for _, w := range args {
					p, err := get(b, w)
					if err != nil {
						return fail(err)
					}
					ps = append(ps, p)
				}
				return nil
			})
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			switch format {
			case "yaml", "json", "text":
				if err := profile.Encode(&buf, ps, format); err != nil {
					return fail(err)
				}
			case "networkpolicy", "ciliumnetworkpolicy":
				opt := profile.PolicyOptions{Namespace: ns, Name: name, PodSelector: sel}
				if name != "" && len(ps) > 1 {
					return fail(errors.New("--name needs exactly one workload"))
				}
				for i, p := range ps {
					doc, err := profile.ExportPolicy(p, format, opt)
					if err != nil {
						return fail(err)
					}
					if i > 0 {
						buf.WriteString("---\n")
					}
					buf.Write(doc)
				}
			default:
				return fail(fmt.Errorf("unknown export format %q (want yaml, json, text, networkpolicy or ciliumnetworkpolicy)", format))
			}
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(buf.Bytes())
				return fail(err)
			}
			if err := profile.WriteFileAtomic(out, buf.Bytes()); err != nil {
				return fail(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d profiles to %s\n", len(ps), out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "yaml", "yaml, json, text, networkpolicy or ciliumnetworkpolicy")
	fl.StringVar(&out, "out", "", "write to this file (atomically) instead of stdout")
	fl.StringVar(&ns, "namespace", "", "policy namespace (default: from the Kubernetes identity)")
	fl.StringVar(&name, "name", "", "policy name (default: minerguard-NAME)")
	fl.StringToStringVar(&sel, "pod-selector", nil, "pod selector labels k=v,... (default: "+profile.SelectorLabel+"=NAME)")
	return cmd
}

func profilesImport(f *profilesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Import profiles from an export, replacing the same workloads' profiles",
		Long: "Reads a `profiles export` (YAML or JSON); every profile is checked (and the file refused\n" +
			"whole) before anything is written, in one transaction.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := readProfiles(args[0])
			if err != nil {
				return fail(err)
			}
			// Check everything in memory first so a bad profile leaves the state untouched.
			check := profile.NewMemory(profile.Config{})
			for _, p := range ps {
				if err := check.Put(p); err != nil {
					return fail(fmt.Errorf("%s: %w", args[0], err))
				}
			}
			ws := make([]string, 0, len(ps))
			for _, p := range ps {
				ws = append(ws, p.Workload)
			}
			if c := f.live(); c != nil {
				if err := c.Import(ps); err != nil {
					return fail(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "imported %d profiles into the running sensor: %s\n", len(ps), strings.Join(ws, ", "))
				return nil
			}
			return f.withBook(true, func(b *profile.Book) error {
				for _, p := range ps {
					if err := b.Put(p); err != nil {
						return fail(err)
					}
				}
				if err := b.Commit(); err != nil {
					return fail(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "imported %d profiles: %s\n", len(ps), strings.Join(ws, ", "))
				return nil
			})
		},
	}
}
