package floodgen

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

const miner = "../../testdata/captures/mining-xmrig-login-3333.pcap"

// readBack checks every frame of a capture (time order, TCP checksums valid after patching)
// and returns how many there were, how many carried a client login, and the newlines in
// the payloads.
func readBack(t *testing.T, b []byte) (frames, logins, newlines int) {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return frames, logins, newlines
		}
		if err != nil {
			t.Fatal(err)
		}
		frames++
		if ci.Timestamp.Before(last) {
			t.Fatalf("frame %d goes back in time", frames)
		}
		last = ci.Timestamp
		p := gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			t.Fatalf("frame %d is not TCP/IPv4", frames)
		}
		want := tcp.Checksum
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp, gopacket.Payload(tcp.Payload)); err != nil {
			t.Fatal(err)
		}
		if got := gopacket.NewPacket(buf.Bytes(), layers.LayerTypeTCP, gopacket.Default).Layer(layers.LayerTypeTCP).(*layers.TCP).Checksum; got != want {
			t.Fatalf("frame %d: TCP checksum %#x, want %#x", frames, want, got)
		}
		newlines += bytes.Count(tcp.Payload, []byte("\n"))
		if bytes.Contains(tcp.Payload, []byte(`"method":"login"`)) {
			logins++
		}
	}
}

func TestWrite(t *testing.T) {
	sess, err := ReadSession(miner)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	s, err := Write(&b, Options{Flows: 1000, Span: time.Second, Sessions: 3, Miner: miner})
	if err != nil {
		t.Fatal(err)
	}
	frames, logins, _ := readBack(t, b.Bytes())
	if want := 2*1000 + 3*len(sess); s.Packets != want || frames != want || s.Flows != 1000 || len(s.SessionClients) != 3 || logins != 3 {
		t.Fatalf("summary %+v, %d frames, %d logins; want %d frames, 3 logins", s, frames, logins, want)
	}
}

func TestNoNewline(t *testing.T) {
	var b bytes.Buffer
	s, err := NoNewline(&b, 10, 10000)
	if err != nil {
		t.Fatal(err)
	}
	frames, _, newlines := readBack(t, b.Bytes())
	if want := 10 + 10*7; s.Packets != want || frames != want || newlines != 0 {
		t.Fatalf("summary %+v, %d frames, want %d and no newline", s, frames, want)
	}
}

func TestNoNewlineFragments(t *testing.T) {
	var b bytes.Buffer
	s, err := NoNewlineFragments(&b, 2, 3000, Fragments{Datagrams: 70000, Bytes: 1000, Offset: 8})
	if err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[[6]byte]bool{}
	var tcp, frames int
	var last time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames++
		if !ci.Timestamp.After(last) {
			t.Fatalf("frame %d does not move time forward", frames)
		}
		last = ci.Timestamp
		p := gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil {
			t.Fatalf("frame %d is not IPv4", frames)
		}
		if ip.Flags&layers.IPv4MoreFragments == 0 {
			tcp++
			continue
		}
		if ip.FragOffset != 1 || len(ip.Payload) != 1000 || ip.Protocol != layers.IPProtocolUDP {
			t.Fatalf("fragment %d: offset %d, %d bytes, protocol %v", frames, ip.FragOffset, len(ip.Payload), ip.Protocol)
		}
		// The header checksum of a valid header sums to 0xffff.
		if fold(sum16(data[14:34], 0)) != 0xffff {
			t.Fatalf("fragment %d: bad IP header checksum", frames)
		}
		var k [6]byte
		copy(k[:], ip.SrcIP.To4())
		k[4], k[5] = byte(ip.Id>>8), byte(ip.Id)
		keys[k] = true
	}
	if want := 2 + 2*3 + 70000; s.Packets != want || frames != want || tcp != 2+2*3 || len(keys) != 70000 {
		t.Fatalf("summary %+v, %d frames, %d TCP, %d distinct datagrams; want %d frames, 70000 datagrams", s, frames, tcp, len(keys), want)
	}
	if _, err := NoNewlineFragments(&b, 0, 0, Fragments{Datagrams: 1, Bytes: 1001}); err == nil {
		t.Fatal("a fragment size not a multiple of 8 was accepted")
	}
}
