package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/minerguard/minerguard/internal/structured"

	"github.com/minerguard/minerguard/sensor"
	"github.com/spf13/cobra"
)

// defaultSocket is the running sensor's control socket unless its config says otherwise.
const defaultSocket = "/var/lib/minerguard/minerguard.sock"

func blocksCmd() *cobra.Command {
	var socket, output string
	cmd := &cobra.Command{
		Use:   "blocks",
		Short: "List and clear the flows and destinations a running sensor drops (enforce mode)",
		Long: "Talks to the running sensor through its control socket. `list` shows every XDP block:\n" +
			"the workload, a flow (5-tuple) or a destination (address or prefix, port, transport; 0\n" +
			"and any for every one), the reason, when it was installed, its first drop and its drop\n" +
			"count. `clear WORKLOAD [--dest ADDRESS|PREFIX]` removes a workload's blocks, or only\n" +
			"those towards dest: relief for a false positive (the detectors still flag new flows; make\n" +
			"the workload bypass in enforcement.workloads to stop that).",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&socket, "socket", defaultSocket, "the running sensor's control socket")
	pf.StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	dial := func() (*sensor.ControlClient, error) {
		c, err := sensor.DialControl(socket)
		if err != nil {
			return nil, &exitErr{exitError, fmt.Errorf("no sensor answers on %s (--socket; control_socket in its config): %w", socket, err)}
		}
		return c, nil
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List every block",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return fail(err)
			}
			c, err := dial()
			if err != nil {
				return err
			}
			bs, err := c.Blocks()
			if err != nil {
				return fail(err)
			}
			out := cmd.OutOrStdout()
			if output != "text" {
				return fail(structured.Write(out, output, bs))
			}
			tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "WORKLOAD\tKIND\tSOURCE\tDESTINATION\tPROTO\tREASON\tINSTALLED\tFIRST DROP\tDROPS")
			for _, b := range bs {
				dest := b.Dest
				if b.Kind == "destination" {
					port := "any"
					if b.Port != 0 {
						port = fmt.Sprint(b.Port)
					}
					dest += " port " + port
				}
				first := "-"
				if !b.FirstDrop.IsZero() {
					first = b.FirstDrop.Sub(b.Installed).Round(time.Microsecond).String() + " after"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", b.Workload, b.Kind, dash(b.Src), dest, b.Proto, b.Reason,
					b.Installed.UTC().Format(time.RFC3339), first, b.Drops)
			}
			return fail(tw.Flush())
		},
	}
	var dest string
	clear := &cobra.Command{
		Use:   "clear WORKLOAD",
		Short: "Remove a workload's blocks (all, or those towards --dest)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial()
			if err != nil {
				return err
			}
			n, err := c.ClearBlocks(args[0], dest)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d blocks removed\n", args[0], n)
			return nil
		},
	}
	clear.Flags().StringVar(&dest, "dest", "", "only the blocks towards this address or prefix")
	cmd.AddCommand(list, clear)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
