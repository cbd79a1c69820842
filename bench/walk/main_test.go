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
