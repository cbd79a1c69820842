package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Frame is one captured packet. Data is only valid until the next call to Next.
type Frame struct {
	Data      []byte
	Timestamp time.Time
	LinkType  uint16 // pcap LINKTYPE_* of the interface the frame was captured on
	Interface int    // pcapng interface index (0 for pcap); a scope for per-interface state
	WireLen   int
}

// FormatError says why a file is not a capture this package can read.
type FormatError struct {
	Path, Reason string
}

func (e *FormatError) Error() string { return e.Path + ": " + e.Reason }

// TruncatedError reports a capture that ends inside a record: everything before Offset was read.
type TruncatedError struct {
	Path    string
	Packets int64 // complete packets read before the damage
	Offset  int64 // bytes of the (decompressed) pcap file consumed by them; -1 when unknown (pcapng)
	Err     error
}

func (e *TruncatedError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("%s: truncated after %d packets: %v", e.Path, e.Packets, e.Err)
	}
	return fmt.Sprintf("%s: truncated after %d packets at byte %d: %v", e.Path, e.Packets, e.Offset, e.Err)
}

func (e *TruncatedError) Unwrap() error { return e.Err }

// File reads one capture file.
type File struct {
	path    string
	f       *os.File
	size    int64
	raw     *countingReader // bytes taken from the file, for progress
	content *bufio.Reader   // capture data, decompressed; pcapgo reads it directly
	pcap    *pcapgo.Reader
	// bigEndian: pcap only, the record headers' byte order (a bool, not a binary.ByteOrder,
	// so that nextPcap's reads inline).
	bigEndian bool
	nanos     int64
	maxCap    int
	pending   int // bytes of the last record still to be discarded from content
	ng        *pcapgo.NgReader
	link      uint16
	packets   atomic.Int64
	good      int64 // content offset after the last complete packet (pcap: exact; pcapng: start of the record)
	ahead     int64 // content offset up to which NextBatch prefetched (readAhead)
}

// Open opens a capture file; "-" reads standard input. It checks the format up front so a
// file that is not a capture gets a one-line reason.
func Open(path string) (*File, error) {
	c := &File{path: path}
	regular := false // read with raw read(2) calls (rawread.go)
	if path == "-" {
		c.path = "stdin"
		c.f = os.Stdin
	} else {
		st, err := os.Stat(path)
		if err != nil {
			return nil, &FormatError{path, reason(err)}
		}
		if st.IsDir() {
			return nil, &FormatError{path, "is a directory, not a capture file"}
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, &FormatError{path, reason(err)}
		}
		c.f, c.size, regular = f, st.Size(), st.Mode().IsRegular()
	}
	c.raw = &countingReader{r: c.f}
	if regular {
		c.raw.r = rawFile{c.f.Fd()} // the mode from the Stat above: no second one
	}
	var r io.Reader = bufio.NewReaderSize(c.raw, 1<<20)
	br := r.(*bufio.Reader)
	magic, err := br.Peek(4)
	if len(magic) == 0 {
		c.Close()
		return nil, &FormatError{c.path, "empty file"}
	}
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, zerr := gzip.NewReader(br)
		if zerr != nil {
			c.Close()
			return nil, &FormatError{c.path, "gzip: " + zerr.Error()}
		}
		br = bufio.NewReaderSize(zr, 1<<20)
		magic, err = br.Peek(4)
	}
	if len(magic) < 4 {
		c.Close()
		return nil, &FormatError{c.path, fmt.Sprintf("too short for a capture header (%d bytes): %v", len(magic), err)}
	}
	// pcapgo wraps its input in a bufio.Reader, which returns a *bufio.Reader as it is: so
	// handing it br avoids a second buffer and a second copy of every byte.
	c.content = br
	switch binary.BigEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		pr, err := pcapgo.NewReader(c.content)
		if err != nil {
			c.Close()
			return nil, &FormatError{c.path, "pcap header: " + err.Error()}
		}
		c.pcap, c.link = pr, uint16(pr.LinkType())
		// Record headers in the file's byte order; the sub-second field is µs or ns.
		switch binary.BigEndian.Uint32(magic) {
		case 0xa1b2c3d4:
			c.bigEndian, c.nanos = true, 1000
		case 0xd4c3b2a1:
			c.bigEndian, c.nanos = false, 1000
		case 0xa1b23c4d:
			c.bigEndian, c.nanos = true, 1
		default:
			c.bigEndian, c.nanos = false, 1
		}
		// Like tcpdump and pcapgo, read records longer than a small declared snaplen up to
		// libpcap's maximum; a record must fit in the read buffer to be peeked.
		c.maxCap = min(max(int(pr.Snaplen()), pcapMaxFrame), c.content.Size()-16)
	case 0x0a0d0d0a:
		nr, err := pcapgo.NewNgReader(c.content, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			c.Close()
			return nil, &FormatError{c.path, "pcapng header: " + err.Error()}
		}
		c.ng = nr
	default:
		c.Close()
		return nil, &FormatError{c.path, fmt.Sprintf("not a pcap or pcapng file (magic %x)", magic)}
	}
	c.good = 24
	if c.ng != nil {
		c.good = -1
	}
	return c, nil
}

func reason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied (run as a user that can read it)"
	}
	return err.Error()
}

// Path is the name the file was opened under ("stdin" for "-").
func (c *File) Path() string { return c.path }

// Progress returns the bytes consumed from the file and its size (0 when unknown, e.g. stdin).
func (c *File) Progress() (done, size int64) { return c.raw.n.Load(), c.size }

// Packets returns how many complete packets were read.
func (c *File) Packets() int64 { return c.packets.Load() }

// Next reads the next frame into f. It returns io.EOF at a clean end and a *TruncatedError or
// *FormatError when the rest of the file cannot be read.
func (c *File) Next(f *Frame) error {
	var (
		data []byte
		err  error
	)
	if c.pcap != nil {
		data, err = c.nextPcap(f)
	} else {
		var ci gopacketCI
		data, ci, err = c.ng.ZeroCopyReadPacketData()
		if err == nil {
			f.Timestamp, f.WireLen, f.Interface = ci.Timestamp, ci.Length, ci.InterfaceIndex
			f.LinkType = c.ngLink(ci)
		}
	}
	if err != nil {
		if err == io.EOF {
			return io.EOF
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &TruncatedError{Path: c.path, Packets: c.packets.Load(), Offset: c.good, Err: io.ErrUnexpectedEOF}
		}
		return &TruncatedError{Path: c.path, Packets: c.packets.Load(), Offset: c.good, Err: err}
	}
	f.Data = data
	c.packets.Add(1)
	if c.pcap != nil {
		c.good += 16 + int64(len(data))
	}
	return nil
}

func (c *File) ngLink(ci gopacketCI) uint16 {
	// WantMixedLinkType puts the record's link type here: no per-packet copy of the
	// interface description.
	if len(ci.AncillaryData) > 0 {
		if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			return uint16(lt)
		}
	}
	iface, err := c.ng.Interface(ci.InterfaceIndex)
	if err != nil {
		return 0
	}
	return uint16(iface.LinkType)
}

// Close releases the file.
func (c *File) Close() error {
	if c.f != nil && c.f != os.Stdin {
		return c.f.Close()
	}
	return nil
}

// countingReader counts bytes read; atomically, because Progress may be called from another
// goroutine than the one reading (Prefetcher).
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Expand turns command-line arguments into file names: globs are expanded (sorted), "-" is
// kept, and a pattern that matches nothing is an error rather than a silent no-op.
func Expand(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if a == "-" {
			out = append(out, a)
			continue
		}
		m, err := filepath.Glob(a)
		if err != nil {
			return nil, fmt.Errorf("bad pattern %q: %w", a, err)
		}
		if len(m) == 0 {
			if _, err := os.Stat(a); err == nil {
				m = []string{a}
			} else {
				return nil, &FormatError{a, "no such file"}
			}
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}
