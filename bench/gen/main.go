// Command gen writes the deterministic mixed capture used by the side-by-side
// throughput benchmark (bench/run.sh): Ethernet frames from many workloads in
// 10.0.0.0/8 and 2001:db8:10::/48 carrying bulk TCP, HTTPS-like TLS, HTTP and
// DNS, plus a small share of long-lived mining flows (Stratum v1, XMRig
// login/job/submit, Stratum inside TLS). The same -seed always yields the same
// bytes, so Suricata and minerguard are timed on identical input.
//
// Frames are built by hand into one reused buffer and written through a
// bufio writer: generation costs a few seconds per million packets.
//
// Usage:
//
//	go run ./bench/gen -o bench/out/mixed.pcap -packets 2000000 -seed 1
//
// With -flood N it writes instead the flood capture of issue 14 (bench-flood): N distinct TCP
// flows (SYN + 27 bytes of HTTP) spread over -flood-span, with -flood-sessions real Stratum
// sessions (the recorded XMRig session of -flood-miner, each from its own client) through it:
//
//	go run ./bench/gen -o bench/out/flood.pcap -flood 1000000 -flood-sessions 6
//
// With -nonewline N and/or -fragments M it writes N flows that send -nonewline-bytes without a
// newline (the stream budget's worst case) followed by M IPv4 datagrams that never complete
// (the defrag memcap's), to stdout with -o -.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/minerguard/minerguard/internal/floodgen"
)

func main() {
	var o options
	flag.StringVar(&o.out, "o", "mixed.pcap", "output pcap `file`")
	flag.IntVar(&o.packets, "packets", 2_000_000, "number of packets to write")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed; same seed, same bytes")
	flag.IntVar(&o.snaplen, "snaplen", 65535, "capture length cap per packet (frames longer than this are truncated)")
	flag.IntVar(&o.workloads, "workloads", 2000, "number of client workloads")
	var fo floodgen.Options
	flag.IntVar(&fo.Flows, "flood", 0, "write the flood capture with this many flows instead")
	flag.DurationVar(&fo.Span, "flood-span", 10*time.Second, "capture time the flood's flows are spread over")
	flag.IntVar(&fo.Sessions, "flood-sessions", 6, "Stratum sessions spread through the flood")
	flag.StringVar(&fo.Miner, "flood-miner", "testdata/captures/mining-xmrig-login-3333.pcap", "capture of a real miner session replayed for each Stratum session")
	var nnFlows, nnBytes int
	flag.IntVar(&nnFlows, "nonewline", 0, "write instead this many flows that each send -nonewline-bytes without a newline")
	flag.IntVar(&nnBytes, "nonewline-bytes", 100<<10, "bytes each -nonewline flow sends")
	var fr floodgen.Fragments
	flag.IntVar(&fr.Datagrams, "fragments", 0, "after the -nonewline flows (or alone), this many IPv4 datagrams that never complete (one fragment each)")
	flag.IntVar(&fr.Bytes, "fragments-bytes", 1024, "payload bytes of each -fragments fragment (multiple of 8)")
	flag.IntVar(&fr.Offset, "fragments-offset", 0, "byte offset of each -fragments fragment (multiple of 8): the reassembly buffer it needs is offset+bytes")
	flag.Parse()
	if nnFlows > 0 || fr.Datagrams > 0 {
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		if o.out != "-" {
			f, err := os.Create(o.out)
			if err != nil {
				fmt.Fprintln(os.Stderr, "gen:", err)
				os.Exit(1)
			}
			defer f.Close()
			w = bufio.NewWriterSize(f, 1<<20)
		}
		var s floodgen.Summary
		var err error
		if fr.Datagrams > 0 {
			s, err = floodgen.NoNewlineFragments(w, nnFlows, nnBytes, fr)
		} else {
			s, err = floodgen.NoNewline(w, nnFlows, nnBytes)
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "gen: nonewline flows=%d bytes_each=%d fragments=%d packets=%d\n", s.Flows, nnBytes, fr.Datagrams, s.Packets)
		return
	}
	if fo.Flows > 0 {
		if err := runFlood(o.out, fo); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	f, err := os.Create(o.out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	s, err := generate(bw, o)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.out, err)
	}
	fmt.Fprintf(os.Stderr, "gen: packets=%d bytes=%d flows=%d mining_flows=%d mining_packets=%d dns_flows=%d duration=%.1fs file=%s\n",
		s.Packets, s.Bytes, s.Flows, s.MiningFlows, s.MiningPkts, s.DNSFlows, s.Duration.Seconds(), o.out)
	return nil
}

func runFlood(out string, o floodgen.Options) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	s, err := floodgen.Write(bw, o)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	fmt.Fprintf(os.Stderr, "gen: flood flows=%d sessions=%d packets=%d span=%s file=%s\n", s.Flows, s.Sessions, s.Packets, o.Span, out)
	return nil
}

// options are the generator's knobs; the zero value of any field means its default.
type options struct {
	out       string
	packets   int
	seed      uint64
	snaplen   int
	workloads int
}
