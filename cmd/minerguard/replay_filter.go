package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minerguard/minerguard/flow"
	"golang.org/x/net/bpf"
)

// bpfFilter is a capture filter expression in pcap-filter(7) syntax, as the trailing
// expression of tcpdump -r FILE EXPR or suricata -r FILE EXPR. No pure-Go compiler of the
// syntax was usable (github.com/packetcap/go-pcap's filter package compiled "tcp and not port
// 3333", "ip" and portrange to programs that disagree with libpcap on the bundled captures),
// so libpcap compiles it, through tcpdump -ddd, once for each link type the captures use, and
// golang.org/x/net/bpf's VM runs the program on every frame: the same semantics as tcpdump,
// with a static binary.
type bpfFilter struct {
	expr    string
	vms     map[flow.LinkType]*bpf.VM
	Dropped uint64 // frames the filter refused
}

// dltNames are libpcap's names (tcpdump -y) of the link types capture files can have.
var dltNames = map[flow.LinkType]string{
	flow.LinkNull: "NULL", flow.LinkEthernet: "EN10MB", flow.LinkRaw: "RAW", flow.LinkRawDLT12: "RAW",
	flow.LinkRawDLT14: "RAW", flow.LinkLoop: "LOOP", flow.LinkSLL: "LINUX_SLL", flow.LinkIPv4: "IPV4",
	flow.LinkIPv6: "IPV6", flow.LinkSLL2: "LINUX_SLL2",
}

// newBPFFilter compiles expr for Ethernet, so that a bad expression is refused before any
// capture is read; other link types are compiled when a frame of theirs comes.
func newBPFFilter(expr string) (*bpfFilter, error) {
	f := &bpfFilter{expr: expr, vms: map[flow.LinkType]*bpf.VM{}}
	vm, err := compileBPF(expr, flow.LinkEthernet)
	if err != nil {
		return nil, err
	}
	f.vms[flow.LinkEthernet] = vm
	return f, nil
}

// Keep reports whether the filter passes the frame; an error says the expression cannot
// apply to the frame's link type (ether host on a raw IP capture).
func (f *bpfFilter) Keep(link flow.LinkType, data []byte) (bool, error) {
	vm := f.vms[link]
	if vm == nil {
		var err error
		if vm, err = compileBPF(f.expr, link); err != nil {
			return false, err
		}
		f.vms[link] = vm
	}
	n, err := vm.Run(data)
	if err != nil || n == 0 {
		f.Dropped++
		return false, nil
	}
	return true, nil
}

// compileBPF runs tcpdump -ddd -y DLT EXPR and loads the program it prints.
func compileBPF(expr string, link flow.LinkType) (*bpf.VM, error) {
	dlt, ok := dltNames[link]
	if !ok {
		return nil, fmt.Errorf("filter %q: link type %d has no libpcap name to compile it for", expr, link)
	}
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, fmt.Errorf("filter %q: tcpdump compiles filter expressions and is not installed (apt-get install tcpdump): %w", expr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tcpdump, "-ddd", "-y", dlt, expr)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "tcpdump: "))
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("filter %q (%s): %s", expr, dlt, msg)
	}
	raw, err := parseDDD(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("filter %q (%s): reading tcpdump -ddd: %w", expr, dlt, err)
	}
	ins, all := bpf.Disassemble(raw)
	if !all {
		return nil, fmt.Errorf("filter %q (%s): the program has instructions the BPF VM does not run", expr, dlt)
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		return nil, fmt.Errorf("filter %q (%s): %w", expr, dlt, err)
	}
	return vm, nil
}

// parseDDD reads tcpdump -ddd's output: the instruction count, then "code jt jf k" lines.
func parseDDD(s string) ([]bpf.RawInstruction, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n != len(lines)-1 || n == 0 {
		return nil, fmt.Errorf("want a count and %d instructions, got %q", n, s)
	}
	out := make([]bpf.RawInstruction, 0, n)
	for _, l := range lines[1:] {
		var v [4]uint64
		fs := strings.Fields(l)
		if len(fs) != 4 {
			return nil, fmt.Errorf("instruction %q", l)
		}
		for i, x := range fs {
			if v[i], err = strconv.ParseUint(x, 10, 32); err != nil {
				return nil, fmt.Errorf("instruction %q: %w", l, err)
			}
		}
		if v[1] > 255 || v[2] > 255 || v[0] > 0xffff {
			return nil, fmt.Errorf("instruction %q", l)
		}
		out = append(out, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	return out, nil
}

// splitFilter separates replay's arguments into inputs and a trailing filter expression: the
// arguments after "--" (dash: cobra's ArgsLenAtDash, -1 when none), else those from the first
// one that is neither "-", an existing path nor a glob that matches. A word that looks like a
// path (a "/" or a capture extension, no blank) is never taken for the expression: it is a
// missing file.
func splitFilter(args []string, dash int) (files []string, expr string) {
	if dash >= 0 {
		return args[:dash], strings.Join(args[dash:], " ")
	}
	for i, a := range args {
		if a == "-" {
			continue
		}
		if _, err := os.Stat(a); err == nil {
			continue
		}
		if m, _ := filepath.Glob(a); len(m) > 0 {
			continue
		}
		if i == 0 || !strings.ContainsAny(a, " \t") && (strings.Contains(a, "/") || hasCaptureExt(a)) {
			// A missing file, reported as one (the expression needs a file before it).
			continue
		}
		return args[:i], strings.Join(args[i:], " ")
	}
	return args, ""
}
