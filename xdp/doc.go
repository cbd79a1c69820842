// Package xdp owns minerguard's enforcement data path: the XDP program (minerguard.c,
// compiled by bpf2go; the generated bpf_bpfel.go and bpf_bpfel.o are committed so that
// building needs no clang), the maps it shares across every attachment, and the Manager
// that loads, pins, attaches, re-adopts and feeds them.
//
// Everything is pinned under Options.PinPath so that enforcement survives a sensor restart;
// a heartbeat written by Manager.Run makes the data path fail open when the sensor is gone
// for longer than the timeout, unless the workload opted into fail-closed. When BPF or XDP
// cannot be used, Open returns an error wrapping ErrUnsupported that names what is missing,
// and the sensor carries on in flag-only mode.
//
// What the sensor must do: Open once (on ErrUnsupported: warn once, stay flag-only); Run
// for the heartbeat while it lives; Attach each workload netns (Detach when it goes);
// SetMode and Block*/ClearWorkload as verdicts and policies change; FlagOnlyAll then Close
// on a graceful stop (S2). Close keeps the pins; Remove uninstalls.
//
// This package and capture/ are the only ones that switch network namespaces: an XDP link
// is created by interface index, which the kernel resolves in the calling thread's netns.
package xdp
