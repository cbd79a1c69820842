package alert

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/minerguard/minerguard/internal/evetest"
)

// The record layouts validate in their edge shapes too: an answer without answers (NXDOMAIN),
// answer types without a grouped form, a ClientHello without SNI, a flow without its end.
func TestRecordShapes(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	base := Event{Timestamp: t0, FlowID: 42, Src: netip.MustParseAddrPort("10.0.0.1:5353"),
		Dest: netip.MustParseAddrPort("10.0.0.53:53"), Proto: 17, FlowStart: t0, CommunityID: "1:x", Host: "node-1", InIface: "eth0"}
	evs := []Event{}
	add := func(f func(e *Event)) {
		e := base
		f(&e)
		evs = append(evs, e)
	}
	add(func(e *Event) {
		e.EventType = "dns"
		e.DNS = &DNS{Query: "pool.example", Type: "A", ID: 7, Flags: 0x0100}
	})
	add(func(e *Event) {
		e.EventType = "dns"
		e.DNS = &DNS{Query: "gone.example", Type: "AAAA", ID: 7, Response: true, Flags: 0x8183, Rcode: "NXDOMAIN"}
	})
	add(func(e *Event) {
		e.EventType = "dns"
		e.DNS = &DNS{Query: "pool.example", Type: "A", Response: true, Flags: 0x8580, Rcode: "NOERROR", Answers: []DNSAnswer{
			{Name: "pool.example", Type: "CNAME", TTL: 60, Data: "edge.example"},
			{Name: "edge.example", Type: "A", TTL: 60, Data: "10.0.0.9"},
			{Name: "edge.example", Type: "SOA", TTL: 60},
			{Name: "edge.example", Type: "TYPE65", TTL: 60},
		}}
	})
	add(func(e *Event) {
		e.EventType, e.Proto, e.TLS = "tls", 6, &TLS{JA4: "t13d0000_000000000000_000000000000"}
	})
	add(func(e *Event) {
		e.EventType, e.Proto, e.TLS = "tls", 6, &TLS{SNI: "pool.example", JA4: "t13d", ALPN: []string{"h2"}}
	})
	add(func(e *Event) { e.EventType, e.Packets, e.Bytes = "flow", [2]uint64{3, 2}, [2]uint64{300, 200} })
	add(func(e *Event) {
		e.EventType, e.AppProto = "flow", "failed"
		e.FlowEnd = FlowEnd{End: t0.Add(90 * time.Second), State: "closed", Reason: "shutdown", Alerted: true}
	})
	var b bytes.Buffer
	w := NewJSONWriter(&b)
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if n := evetest.Lines(t, "records", b.Bytes()); n != len(evs) {
		t.Fatalf("%d lines, want %d", n, len(evs))
	}
	out := b.String()
	for _, want := range []string{
		`"dns":{"version":2,"type":"query","id":7,"opcode":0,"rrname":"pool.example","rrtype":"A","tx_id":0}`,
		`"type":"answer","id":7,"flags":"8183","qr":true,"rd":true,"ra":true,"opcode":0,"rrname":"gone.example","rrtype":"AAAA","tx_id":0,"rcode":"NXDOMAIN"}`,
		`"grouped":{"A":["10.0.0.9"],"CNAME":["edge.example"]}`,
		`{"rrname":"edge.example","rrtype":"SOA","ttl":60}`,
		`"flow":{"pkts_toserver":0,"pkts_toclient":0,"bytes_toserver":0,"bytes_toclient":0,"start":"2026-12-07T12:00:00.000000+0000","end":"2026-12-07T12:01:30.000000+0000","age":90,"state":"closed","reason":"shutdown","alerted":true}`,
		`"host":"node-1","in_iface":"eth0"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	if err := w.Write(&Event{EventType: "dns"}); err == nil {
		t.Error("a dns record without DNS was written")
	}
}
