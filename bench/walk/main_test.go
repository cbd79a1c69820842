package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestWalk counts the records and wire bytes of a pcapgo-written file, and reports a cut one.
func TestWalk(t *testing.T) {
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	var want int64
	for i := range 100 {
		d := make([]byte, 60+i)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(d), Length: len(d) + 4}, d)
		want += int64(len(d) + 4)
	}
	path := filepath.Join(t.TempDir(), "a.pcap")
	os.WriteFile(path, b.Bytes(), 0o644)
	n, wire, err := walk(path)
	if err != nil || n != 100 || wire != want {
		t.Fatalf("walk = %d packets, %d bytes, %v; want 100, %d", n, wire, err, want)
	}
	os.WriteFile(path, b.Bytes()[:b.Len()-3], 0o644)
	if n, _, err := walk(path); err == nil || n != 99 {
		t.Fatalf("cut file: %d packets, %v", n, err)
	}
}

// TestFloorAndMapped: the floor and the mapped walk read the same records as the walk (the
// floor through replay's reader, so over a real capture with TCP and UDP flows), and a cut
// file is an error for both.
func TestFloorAndMapped(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "captures", "mining-dns-2miners-stratum-client-4444.pcap")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("bundled capture missing: %v", err)
	}
	n, wire, err := walk(path)
	if err != nil || n == 0 {
		t.Fatalf("walk: %d packets, %v", n, err)
	}
	for name, run := range map[string]func(string) (int64, int64, error){"floor": floor, "mmap": walkMapped, "pcapgo": walkPcapgo} {
		m, w, err := run(path)
		if err != nil || m != n || w != wire {
			t.Errorf("%s = %d packets, %d bytes, %v; walk read %d, %d", name, m, w, err, n, wire)
		}
		b, _ := os.ReadFile(path)
		cut := filepath.Join(t.TempDir(), "cut.pcap")
		os.WriteFile(cut, b[:len(b)-3], 0o644)
		if m, _, err := run(cut); err == nil || m != n-1 {
			t.Errorf("%s of a cut file: %d packets, %v; want %d and an error", name, m, err, n-1)
		}
	}
}
