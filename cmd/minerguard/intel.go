package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/minerguard/minerguard/intel"
	"github.com/spf13/cobra"
)

func intelCmd() *cobra.Command {
	var lists []string
	cmd := &cobra.Command{Use: "intel", Short: "Inspect the pool intelligence"}
	check := &cobra.Command{
		Use:   "check NAME|IP[:PORT]...",
		Short: "Say whether names or addresses are listed, and by which source",
		Long: "Looks each argument up in the built-in list plus --intel files. Names match by suffix\n" +
			"(a listed pool.example matches eu.pool.example). Nothing is resolved. Exit 1 when any\n" +
			"argument is listed.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := loadIntel(lists)
			if err != nil {
				return &exitErr{exitError, err}
			}
			found := false
			for _, a := range args {
				e, ok := lookup(set, a)
				if ok {
					found = true
					fmt.Fprintf(cmd.OutOrStdout(), "%s\tlisted\t%s\t%s (%s)\n", a, e.Kind, e.Value, e.Source)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\tnot listed\n", a)
				}
			}
			if found {
				return &exitErr{exitFound, nil}
			}
			return nil
		},
	}
	check.Flags().StringArrayVar(&lists, "intel", nil, "extra intel list (text or YAML); repeatable")
	cmd.AddCommand(check)
	return cmd
}

func lookup(set *intel.Set, a string) (intel.Entry, bool) {
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return set.Addr(ap.Addr(), ap.Port())
	}
	if ip, err := netip.ParseAddr(a); err == nil {
		return set.Addr(ip, 0)
	}
	return set.Domain(strings.TrimSuffix(strings.ToLower(a), "."))
}

func loadIntel(lists []string) (*intel.Set, error) {
	set := intel.Builtin()
	if len(lists) == 0 {
		return set, nil
	}
	s, err := set.With(lists...)
	if err != nil {
		return nil, fmt.Errorf("loading intel: %w", err)
	}
	return s, nil
}
