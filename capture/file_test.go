package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func writePcap(t testing.TB, n int) []byte {
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		d := bytes.Repeat([]byte{byte(i)}, 60)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Second), CaptureLength: 60, Length: 60}, d)
	}
	return b.Bytes()
}

func readAll(t testing.TB, path string) ([]Frame, error) {
	c, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []Frame
	for {
		var f Frame
		err := c.Next(&f)
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		f.Data = append([]byte(nil), f.Data...)
		out = append(out, f)
	}
}

func TestPcapPlainAndGzip(t *testing.T) {
	dir := t.TempDir()
	raw := writePcap(t, 5)
	plain := filepath.Join(dir, "a.pcap")
	os.WriteFile(plain, raw, 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	gzp := filepath.Join(dir, "a.pcap.gz")
	os.WriteFile(gzp, gz.Bytes(), 0o644)
	for _, p := range []string{plain, gzp} {
		fr, err := readAll(t, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(fr) != 5 || fr[4].Data[0] != 4 || !fr[4].Timestamp.Equal(t0.Add(4*time.Second)) || fr[0].LinkType != 1 {
			t.Fatalf("%s: got %d frames, last %+v", p, len(fr), fr[len(fr)-1])
		}
	}
}

func TestPcapngInterfaces(t *testing.T) {
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&b, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 65535})
	if err != nil {
		t.Fatal(err)
	}
	w.WritePacket(gopacket.CaptureInfo{Timestamp: t0, CaptureLength: 3, Length: 3, InterfaceIndex: 0}, []byte{1, 2, 3})
	w.WritePacket(gopacket.CaptureInfo{Timestamp: t0, CaptureLength: 2, Length: 9, InterfaceIndex: id}, []byte{0x45, 0})
	w.Flush()
	p := filepath.Join(t.TempDir(), "x.pcapng")
	os.WriteFile(p, b.Bytes(), 0o644)
	fr, err := readAll(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(fr) != 2 || fr[0].LinkType != 1 || fr[1].LinkType != 101 || fr[1].Interface != 1 || fr[1].WireLen != 9 {
		t.Fatalf("frames: %+v", fr)
	}
}

// TestBadFiles is docs/testing.md M2: each bad file gets a one-line reason, and a truncated tail
// still yields every packet before it.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := writePcap(t, 4)
	files := map[string][]byte{
		"empty.pcap":    {},
		"magic.pcap":    []byte("GIF89a not a capture"),
		"header.pcap":   good[:10],
		"tail.pcap":     good[:len(good)-7],
		"hdronly.pcap":  append(append([]byte(nil), good...), 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0),
		"badgz.pcap.gz": {0x1f, 0x8b, 0, 0},
		"snaplen.pcap":  snaplenViolation(t),
		"text.pcapng":   append([]byte{0x0a, 0x0d, 0x0d, 0x0a}, []byte("garbage garbage garbage")...),
	}
	for name, body := range files {
		os.WriteFile(filepath.Join(dir, name), body, 0o644)
	}
	want := map[string]string{
		"empty.pcap":    "empty file",
		"magic.pcap":    "not a pcap or pcapng file",
		"header.pcap":   "pcap header",
		"tail.pcap":     "truncated after 3 packets",
		"hdronly.pcap":  "truncated after 4 packets", // pcapgo calls this a clean end
		"badgz.pcap.gz": "gzip",
		"snaplen.pcap":  "truncated after 2 packets",
		"text.pcapng":   "pcapng header",
	}
	for name, w := range want {
		fr, err := readAll(t, filepath.Join(dir, name))
		if err == nil || !strings.Contains(err.Error(), w) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want %q", name, err, w)
		}
		if name == "tail.pcap" {
			var te *TruncatedError
			if !errors.As(err, &te) || len(fr) != 3 || te.Packets != 3 {
				t.Errorf("tail: %d frames before the damage, err %v", len(fr), err)
			}
		}
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "nope.pcap")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing: %v", err)
	}
	if os.Geteuid() != 0 {
		p := filepath.Join(dir, "secret.pcap")
		os.WriteFile(p, good, 0o000)
		if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("unreadable: %v", err)
		}
	}
}

func snaplenViolation(t *testing.T) []byte {
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	w.WriteFileHeader(64, layers.LinkTypeEthernet)
	w.WritePacket(gopacket.CaptureInfo{Timestamp: t0, CaptureLength: 10, Length: 10}, make([]byte, 10))
	// Like tcpdump, records longer than a small declared snaplen are read up to 256 KiB; a
	// record claiming 16 MiB is refused instead of allocated.
	b.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xe8, 3, 0, 0, 0xe8, 3, 0, 0})
	b.Write(make([]byte, 1000))
	b.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1})
	return b.Bytes()
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.pcap", "a.pcap", "c.txt"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	got, err := Expand([]string{filepath.Join(dir, "*.pcap"), "-"})
	if err != nil || len(got) != 3 || filepath.Base(got[0]) != "a.pcap" || got[2] != "-" {
		t.Fatalf("Expand = %v, %v", got, err)
	}
	if _, err := Expand([]string{filepath.Join(dir, "*.none")}); err == nil {
		t.Fatal("empty glob accepted")
	}
}

// FuzzFile reads arbitrary bytes as a capture: errors are fine, panics are not.
func FuzzFile(f *testing.F) {
	f.Add(writePcap(f, 2))
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f")
		os.WriteFile(p, b, 0o644)
		c, err := Open(p)
		if err != nil {
			return
		}
		defer c.Close()
		var fr Frame
		for i := 0; i < 10000; i++ {
			if c.Next(&fr) != nil {
				return
			}
		}
	})
}

// TestPcapBigEndian reads a big-endian nanosecond pcap (as written on a big-endian host):
// the record header fields are read in the file's byte order.
func TestPcapBigEndian(t *testing.T) {
	var b bytes.Buffer
	be := func(v uint32) { b.Write([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) }
	be(0xa1b23c4d)                          // nanosecond magic, big-endian
	b.Write([]byte{0, 2, 0, 4, 0, 0, 0, 0}) // version 2.4, thiszone
	be(0)                                   // sigfigs
	be(65535)                               // snaplen
	be(1)                                   // Ethernet
	for i := 0; i < 3; i++ {
		be(uint32(t0.Unix()) + uint32(i))
		be(123456789)
		be(60)
		be(1514)
		b.Write(bytes.Repeat([]byte{byte(i)}, 60))
	}
	path := filepath.Join(t.TempDir(), "be.pcap")
	os.WriteFile(path, b.Bytes(), 0o644)
	fr, err := readAll(t, path)
	if err != nil {
		t.Fatal(err)
	}
	want := t0.Add(2*time.Second + 123456789)
	if len(fr) != 3 || len(fr[2].Data) != 60 || fr[2].Data[0] != 2 || fr[2].WireLen != 1514 || !fr[2].Timestamp.Equal(want) {
		t.Fatalf("got %d frames, last %+v, want ts %v", len(fr), fr[len(fr)-1], want)
	}
}

// NextBatch hands out the same frames as Next, and every frame of a batch stays intact until
// the next call, across read-buffer refills (records of varying size over several MiB), in a
// gzip file, and up to the same error in a truncated one.
func TestNextBatchSameAsNext(t *testing.T) {
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6000; i++ {
		n := 60 + i*37%1400
		d := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, n/2)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(d), Length: len(d) + i%3}, d)
	}
	raw := b.Bytes()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	dir := t.TempDir()
	files := map[string][]byte{"plain.pcap": raw, "plain.pcap.gz": gz.Bytes(), "cut.pcap": raw[:len(raw)-300]}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want, wantErr := readAll(t, path)
		c, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var got []Frame
		var fs [16]Frame
		batches, full := 0, 0
		for {
			n, err := c.NextBatch(fs[:])
			if err != nil {
				if err != io.EOF {
					gotErr := err.Error()
					if wantErr == nil || gotErr != wantErr.Error() {
						t.Errorf("%s: error %v, Next gave %v", name, err, wantErr)
					}
				} else if wantErr != nil {
					t.Errorf("%s: clean end, Next gave %v", name, wantErr)
				}
				break
			}
			if n < 1 || n > len(fs) {
				t.Fatalf("%s: batch of %d", name, n)
			}
			batches++
			if n == len(fs) {
				full++
			}
			// Copied only now: a frame overwritten by a later one of its batch would show.
			for _, f := range fs[:n] {
				f.Data = append([]byte(nil), f.Data...)
				got = append(got, f)
			}
		}
		c.Close()
		if len(got) != len(want) {
			t.Fatalf("%s: %d frames by batch, %d by Next", name, len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if !bytes.Equal(g.Data, w.Data) || !g.Timestamp.Equal(w.Timestamp) || g.WireLen != w.WireLen || g.LinkType != w.LinkType {
				t.Fatalf("%s: frame %d differs: %d bytes at %v (wire %d), want %d at %v (wire %d)", name, i, len(g.Data), g.Timestamp, g.WireLen, len(w.Data), w.Timestamp, w.WireLen)
			}
		}
		if c.Packets() != int64(len(want)) {
			t.Errorf("%s: Packets() = %d, want %d", name, c.Packets(), len(want))
		}
		// Mostly whole batches from a plain file: the look-ahead is there, not one frame at a
		// time. (gzip fills the buffer a flate block at a time, so batches end more often.)
		if name == "plain.pcap" && full < batches*3/4 {
			t.Errorf("%s: %d of %d batches full", name, full, batches)
		}
	}
}
