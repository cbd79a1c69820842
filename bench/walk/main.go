// Command walk is the yardstick of `make bench`: it reads a classic pcap file record by
// record (a buffered read and the 16-byte record header, nothing else) and prints the packet
// and byte counts. Replay cannot be faster than this walk over the same file; issue 12 asks
// for replay within 2× of it.
//
// `walk -floor FILE` is the second yardstick: the least any replay that reports per flow must
// do, replay's own reader, decoder and flow table with no detector, no reassembly and no
// output (floor.go). `walk -mmap FILE` walks the records through a memory map instead of
// read(2) (mmap.go): the measured reason replay does not map its input. `walk -pcapgo FILE`
// walks it with gopacket's pcap reader (pcapgo.go): the yardstick issue 12 was measured with.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/minerguard/minerguard/capture"
)

func main() {
	mode := ""
	if len(os.Args) == 3 {
		mode = os.Args[1]
	}
	if len(os.Args) != 2 && (mode != "-floor" && mode != "-mmap" && mode != "-pcapgo") {
		fmt.Fprintln(os.Stderr, "usage: walk [-floor|-mmap|-pcapgo] FILE.pcap")
		os.Exit(2)
	}
	run := walk
	switch mode {
	case "-floor":
		run = floor
	case "-mmap":
		run = walkMapped
	case "-pcapgo":
		run = walkPcapgo
	}
	packets, bytes, err := run(os.Args[len(os.Args)-1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "walk:", err)
		os.Exit(1)
	}
	fmt.Printf("packets=%d bytes=%d\n", packets, bytes)
}

func walk(path string) (packets, wire int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	// The buffer and the reads replay reads through (raw read(2) calls: capture.FileReader).
	r := bufio.NewReaderSize(capture.FileReader(f), 1<<20)
	h, err := r.Peek(24)
	if err != nil {
		return 0, 0, fmt.Errorf("pcap header: %w", err)
	}
	order, err := byteOrder(h)
	if err != nil {
		return 0, 0, err
	}
	r.Discard(24)
	for {
		h, err := r.Peek(16)
		if len(h) == 0 && err == io.EOF {
			return packets, wire, nil
		}
		if len(h) < 16 {
			return packets, wire, fmt.Errorf("truncated record header after %d packets", packets)
		}
		incl, orig := int(order.Uint32(h[8:12])), int64(order.Uint32(h[12:16]))
		rec, _ := r.Peek(16 + incl)
		if len(rec) < 16+incl {
			return packets, wire, fmt.Errorf("truncated record after %d packets", packets)
		}
		packets++
		wire += orig
		r.Discard(16 + incl)
	}
}

// byteOrder is the record headers' byte order given a classic pcap file's first bytes.
func byteOrder(h []byte) (binary.ByteOrder, error) {
	switch binary.BigEndian.Uint32(h) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		return binary.BigEndian, nil
	case 0xd4c3b2a1, 0x4d3cb2a1:
		return binary.LittleEndian, nil
	}
	return nil, fmt.Errorf("not a classic pcap file (magic %x)", h[:4])
}
