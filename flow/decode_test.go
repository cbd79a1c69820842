package flow

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}

// Frames were built field by field (Ethernet 02:..:01 -> 02:..:02,
// 10.0.0.1:40000 -> 10.0.0.2:3333 TCP seq 1000 ack 2000 PSH|ACK "hi" unless
// noted); the layout of each is given in its name.
var decodeTests = []struct {
	name   string
	link   LinkType
	hex    string
	status Status
	want   Packet // compared on the fields set; WireLen is checked separately
}{
	{
		name: "eth_v4_tcp", link: LinkEthernet,
		hex:    "02000000000202000000000108004500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "eth_v4_tcp_padded_syn", link: LinkEthernet,
		hex:    "02000000000202000000000108004500002812344000400600000a0000010a0000029c400d0500000001000000005002ffff00000000000000000000",
		status: OK,
		want: Packet{Src: a4("10.0.0.1"), Dst: a4("10.0.0.2"), Proto: 6, SrcPort: 40000, DstPort: 3333,
			TCPFlags: TCPSyn, Seq: 1, Payload: []byte{}},
	},
	{
		name: "eth_v4_udp", link: LinkEthernet,
		hex:    "02000000000202000000000108004500001f12344000401100000a0000010a00000214e90035000b0000646e73",
		status: OK,
		want:   Packet{Src: a4("10.0.0.1"), Dst: a4("10.0.0.2"), Proto: 17, SrcPort: 5353, DstPort: 53, Payload: []byte("dns")},
	},
	{
		name: "qinq_88a8_8100", link: LinkEthernet,
		hex:    "02000000000202000000000188a80064810000c808004500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: with(v4tcp(), func(p *Packet) { p.VLANs = 2 }),
	},
	{
		name: "sll", link: LinkSLL,
		hex:    "000000010006020000000001000008004500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "sll2_v6", link: LinkSLL2,
		hex:    "86dd000000000002000100060200000000010000600000000016064020010db800000000000000000000000120010db80000000000000000000000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v6tcp(),
	},
	{
		name: "null_little_endian", link: LinkNull,
		hex:    "020000004500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "null_big_endian", link: LinkNull,
		hex:    "000000024500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "null_darwin_inet6_le_udp", link: LinkNull,
		hex:    "1e000000600000000009114020010db800000000000000000000000120010db8000000000000000000000002000100020009000078",
		status: OK,
		want:   Packet{Src: a6("2001:db8::1"), Dst: a6("2001:db8::2"), Proto: 17, SrcPort: 1, DstPort: 2, Payload: []byte("x")},
	},
	{
		name: "loop_v4", link: LinkLoop,
		hex:    "000000024500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "raw_v4", link: LinkRaw,
		hex:    "4500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "dlt_raw_12_v4", link: LinkRawDLT12,
		hex:    "4500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "linktype_ipv4", link: LinkIPv4,
		hex:    "4500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "raw_v6", link: LinkRaw,
		hex:    "600000000016064020010db800000000000000000000000120010db80000000000000000000000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v6tcp(),
	},
	{
		name: "linktype_ipv6", link: LinkIPv6,
		hex:    "600000000016064020010db800000000000000000000000120010db80000000000000000000000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v6tcp(),
	},
	{
		// hop-by-hop -> destination options -> routing -> fragment (first, M=1) -> TCP
		name: "v6_ext_chain_first_fragment", link: LinkRaw,
		hex:    "600000000036004020010db800000000000000000000000120010db80000000000000000000000023c000104000000002b000104000000002c0000000000000006000001000000099c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: with(v6tcp(), func(p *Packet) { p.Fragment = FirstFragment }),
	},
	{
		name: "v6_later_fragment", link: LinkRaw,
		hex:    "60000000000d2c4020010db800000000000000000000000120010db800000000000000000000000206000500000000096c61746572",
		status: OK,
		want:   Packet{Src: a6("2001:db8::1"), Dst: a6("2001:db8::2"), Proto: 6, Fragment: LaterFragment},
	},
	{
		name: "v4_first_fragment", link: LinkEthernet,
		hex:    "02000000000202000000000108004500002a12342000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: with(v4tcp(), func(p *Packet) { p.Fragment = FirstFragment }),
	},
	{
		name: "v4_later_fragment", link: LinkEthernet,
		hex:    "02000000000202000000000108004500001d12340010400600000a0000010a0000026d6f72652d64617461",
		status: OK,
		want:   Packet{Src: a4("10.0.0.1"), Dst: a4("10.0.0.2"), Proto: 6, Fragment: LaterFragment},
	},
	{
		name: "v4_options_udp", link: LinkRaw,
		hex:    "4600002112344000401100000a0000010a00000201010100000100020009000078",
		status: OK,
		want:   Packet{Src: a4("10.0.0.1"), Dst: a4("10.0.0.2"), Proto: 17, SrcPort: 1, DstPort: 2, Payload: []byte("x")},
	},
	{
		name: "snapped", link: LinkRaw, // total length 1400, 42 bytes captured
		hex:    "4500057812344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: with(v4tcp(), func(p *Packet) { p.Snapped = true }),
	},
	{
		name: "tso_total_length_zero", link: LinkRaw,
		hex:    "4500000012344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: OK, want: v4tcp(),
	},
	{
		name: "arp", link: LinkEthernet,
		hex:    "020000000002020000000001080600000000000000000000000000000000000000000000000000000000",
		status: Unsupported,
	},
	{
		name: "icmp", link: LinkRaw,
		hex:    "4500001c12344000400100000a0000010a0000020800000000010001",
		status: Unsupported, want: Packet{Src: a4("10.0.0.1"), Dst: a4("10.0.0.2"), Proto: 1},
	},
	{
		name: "null_unknown_af", link: LinkNull, hex: "07000000aabbccdd", status: Unsupported,
	},
	// M1: malformed.
	{name: "zero_length_eth", link: LinkEthernet, hex: "", status: ErrTruncated},
	{name: "zero_length_raw", link: LinkRaw, hex: "", status: ErrTruncated},
	{name: "zero_length_null", link: LinkNull, hex: "", status: ErrTruncated},
	{name: "zero_length_sll", link: LinkSLL, hex: "", status: ErrTruncated},
	{name: "zero_length_sll2", link: LinkSLL2, hex: "", status: ErrTruncated},
	{name: "zero_length_ipv6", link: LinkIPv6, hex: "", status: ErrTruncated},
	{name: "unknown_linktype", link: 9999, hex: "4500", status: ErrBadLink},
	{
		name: "ihl_lt_5", link: LinkEthernet,
		hex:    "02000000000202000000000108004400002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: ErrBadIPHeader,
	},
	{
		name: "tcp_data_offset_past_end", link: LinkRaw,
		hex:    "4500002812344000400600000a0000010a000002000100020000000000000000f010ffff00000000",
		status: ErrBadTCPHeader,
	},
	{
		name: "tcp_data_offset_lt_5", link: LinkRaw,
		hex:    "4500002812344000400600000a0000010a0000020001000200000000000000004010ffff00000000",
		status: ErrBadTCPHeader,
	},
	{
		name: "ip_total_length_lt_header", link: LinkRaw,
		hex:    "4500001312344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869",
		status: ErrBadIPHeader,
	},
	{
		name: "ipv6_ext_past_end", link: LinkRaw,
		hex:    "600000000008004020010db800000000000000000000000120010db800000000000000000000000206c8000000000000",
		status: ErrBadIPv6Ext,
	},
	{
		name: "udp_length_lt_8", link: LinkRaw,
		hex:    "4500001e12344000401100000a0000010a00000200010002000400007878",
		status: ErrBadUDPHeader,
	},
	{
		name: "ethertype_ipv4_carrying_ipv6", link: LinkEthernet,
		hex:    "0200000000020200000000010800600000000016064020010db800000000000000000000000120010db80000000000000000000000029c400d05000003e8000007d05018ffff000000006869",
		status: ErrBadIPHeader,
	},
	{
		name: "raw_bad_version", link: LinkRaw, hex: "5500002a", status: ErrBadIPHeader,
	},
	{
		name: "tcp_header_cut", link: LinkRaw, // IPv4 says TCP, 4 bytes of it present
		hex:    "4500001812344000400600000a0000010a0000029c400d05",
		status: ErrTruncated,
	},
	{
		name: "vlan_tag_cut", link: LinkEthernet, hex: "0200000000020200000000018100006", status: ErrTruncated,
	},
	{
		name: "null_garbage_af", link: LinkLoop, hex: "12345678", status: ErrBadLink,
	},
}

func a4(s string) netip.Addr { return netip.MustParseAddr(s) }
func a6(s string) netip.Addr { return netip.MustParseAddr(s) }

func v4tcp() Packet {
	return Packet{Src: a4("10.0.0.1"), Dst: a4("10.0.0.2"), Proto: 6, SrcPort: 40000, DstPort: 3333,
		TCPFlags: TCPPsh | TCPAck, Seq: 1000, Ack: 2000, Payload: []byte("hi")}
}

func v6tcp() Packet {
	p := v4tcp()
	p.Src, p.Dst = a6("2001:db8::1"), a6("2001:db8::2")
	return p
}

func with(p Packet, f func(*Packet)) Packet { f(&p); return p }

func TestDecode(t *testing.T) {
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			var data []byte
			if tt.hex != "" {
				h := tt.hex
				if len(h)%2 == 1 {
					h = h[:len(h)-1] // odd-length literal: a frame cut mid-byte
				}
				data = mustHex(t, h)
			}
			var p Packet
			st := Decode(tt.link, data, &p)
			if st != tt.status {
				t.Fatalf("status = %v, want %v", st, tt.status)
			}
			if p.WireLen != len(data) {
				t.Errorf("WireLen = %d, want %d", p.WireLen, len(data))
			}
			if st.Malformed() {
				return
			}
			got := p
			got.WireLen = 0
			if got.Src != tt.want.Src || got.Dst != tt.want.Dst || got.Proto != tt.want.Proto ||
				got.SrcPort != tt.want.SrcPort || got.DstPort != tt.want.DstPort ||
				got.TCPFlags != tt.want.TCPFlags || got.Seq != tt.want.Seq || got.Ack != tt.want.Ack ||
				got.VLANs != tt.want.VLANs || got.Fragment != tt.want.Fragment || got.Snapped != tt.want.Snapped ||
				string(got.Payload) != string(tt.want.Payload) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeTrimsEthernetPadding(t *testing.T) {
	// A 1-byte TCP payload in a minimum-size (60-byte) Ethernet frame.
	frame := mustHex(t, "02000000000202000000000108004500002912344000400600000a0000010a0000029c400d05000003e8000007d05018ffff0000000041")
	frame = append(frame, make([]byte, 60-len(frame))...)
	var p Packet
	if st := Decode(LinkEthernet, frame, &p); st != OK {
		t.Fatalf("status = %v", st)
	}
	if string(p.Payload) != "A" {
		t.Errorf("payload = %q, want %q", p.Payload, "A")
	}
}

func TestDecodeQinQDepth(t *testing.T) {
	ip := mustHex(t, "4500002a12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff000000006869")
	build := func(n int) []byte {
		b := mustHex(t, "020000000002020000000001")
		for i := 0; i < n; i++ {
			tpid := []byte{0x81, 0x00}
			if i%2 == 0 {
				tpid = []byte{0x88, 0xa8}
			}
			b = append(b, tpid...)
			b = append(b, 0x00, byte(i))
		}
		b = append(b, 0x08, 0x00)
		return append(b, ip...)
	}
	var p Packet
	if st := Decode(LinkEthernet, build(MaxVLANs), &p); st != OK || p.VLANs != MaxVLANs || p.DstPort != 3333 {
		t.Errorf("%d tags: status %v VLANs %d port %d", MaxVLANs, st, p.VLANs, p.DstPort)
	}
	if st := Decode(LinkEthernet, build(MaxVLANs+1), &p); st != ErrBadLink {
		t.Errorf("%d tags: status %v, want %v", MaxVLANs+1, st, ErrBadLink)
	}
}

func TestDecodeIPv6ExtChainBounded(t *testing.T) {
	// 9 destination-options headers: one more than maxIPv6Ext.
	var ext []byte
	for i := 0; i < maxIPv6Ext+1; i++ {
		ext = append(ext, 60, 0, 1, 4, 0, 0, 0, 0)
	}
	ext[len(ext)-8] = 59 // last one: no next header
	hdr := mustHex(t, "6000000000003c4020010db800000000000000000000000120010db8000000000000000000000002")
	hdr[4], hdr[5] = byte(len(ext)>>8), byte(len(ext))
	var p Packet
	if st := Decode(LinkRaw, append(hdr, ext...), &p); st != ErrBadIPv6Ext {
		t.Errorf("status = %v, want %v", st, ErrBadIPv6Ext)
	}
}

// TestDecode64KiB covers the largest IP packets: a full 65535-byte IPv4
// packet and an IPv6 packet with the maximum payload length, plus a
// 64 KiB+ GSO frame whose IPv4 total length is 0.
func TestDecode64KiB(t *testing.T) {
	v4 := make([]byte, 14+65535)
	copy(v4, mustHex(t, "0200000000020200000000010800"+"4500ffff12344000400600000a0000010a0000029c400d05000003e8000007d05018ffff00000000"))
	var p Packet
	if st := Decode(LinkEthernet, v4, &p); st != OK || len(p.Payload) != 65535-40 || p.Snapped {
		t.Errorf("v4 64KiB: status %v payload %d snapped %v", st, len(p.Payload), p.Snapped)
	}
	v6 := make([]byte, 40+65535)
	copy(v6, mustHex(t, "60000000ffff064020010db800000000000000000000000120010db80000000000000000000000029c400d05000003e8000007d05018ffff00000000"))
	if st := Decode(LinkRaw, v6, &p); st != OK || len(p.Payload) != 65535-20 {
		t.Errorf("v6 64KiB: status %v payload %d", st, len(p.Payload))
	}
	gso := make([]byte, 100000)
	copy(gso, mustHex(t, "4500000012344000400600000a0000010a0000029c400d05000003e8000007d05018ffff00000000"))
	if st := Decode(LinkRaw, gso, &p); st != OK || len(p.Payload) != 100000-40 {
		t.Errorf("gso: status %v payload %d", st, len(p.Payload))
	}
}

func TestStatusString(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Statuses() {
		n := s.String()
		if n == "" || n == "unknown" || seen[n] {
			t.Errorf("status %d has name %q (duplicate or missing)", s, n)
		}
		seen[n] = true
	}
	if Status(200).String() != "unknown" {
		t.Errorf("out-of-range status name = %q", Status(200).String())
	}
	if OK.Malformed() || Unsupported.Malformed() || !ErrTruncated.Malformed() || !ErrBadUDPHeader.Malformed() {
		t.Error("Malformed() boundaries wrong")
	}
}

func TestDecodeAllocs(t *testing.T) {
	frames := make([][]byte, 0, len(decodeTests))
	links := make([]LinkType, 0, len(decodeTests))
	for _, tt := range decodeTests {
		h := tt.hex
		if len(h)%2 == 1 {
			h = h[:len(h)-1]
		}
		frames = append(frames, mustHex(t, h))
		links = append(links, tt.link)
	}
	var p Packet
	allocs := testing.AllocsPerRun(100, func() {
		for i, f := range frames {
			Decode(links[i], f, &p)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocated %v times per run, want 0", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		h := tt.hex
		if len(h)%2 == 1 {
			h = h[:len(h)-1]
		}
		b, _ := hex.DecodeString(h)
		f.Add(uint16(tt.link), b)
	}
	f.Fuzz(func(t *testing.T, link uint16, data []byte) {
		var p Packet
		st := Decode(LinkType(link), data, &p)
		if st >= numStatus {
			t.Fatalf("status %d out of range", st)
		}
		if p.WireLen != len(data) {
			t.Fatalf("WireLen %d != %d", p.WireLen, len(data))
		}
		if len(p.Payload) > len(data) {
			t.Fatalf("payload longer than frame")
		}
		if st == OK && p.Fragment != LaterFragment && p.Proto != ProtoTCP && p.Proto != ProtoUDP {
			t.Fatalf("OK with proto %d", p.Proto)
		}
		if st == OK && (!p.Src.IsValid() || !p.Dst.IsValid()) {
			t.Fatalf("OK without addresses")
		}
		// The payload must alias the frame's tail region, never another buffer.
		if len(p.Payload) > 0 && &p.Payload[len(p.Payload)-1] != &data[len(data)-1] {
			inFrame := false
			for i := range data {
				if &data[i] == &p.Payload[0] {
					inFrame = true
					break
				}
			}
			if !inFrame {
				t.Fatalf("payload does not alias the frame")
			}
		}
	})
}
