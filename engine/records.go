package engine

import (
	"encoding/binary"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/protocols/dns"
)

// Recorder receives the Suricata-style records written beside alerts (Options.Records): flow,
// dns and tls events, which are not findings. Like Sink it is called synchronously and must
// not block; the event is valid only during the call.
type Recorder interface {
	Record(e *alert.Event)
}

// RecordTypes is a set of record types (Options.RecordTypes).
type RecordTypes uint8

// Record types.
const (
	RecordFlow RecordTypes = 1 << iota // a flow record when a flow ends (sampled: Options.FlowSample)
	RecordDNS                          // a dns record for each query and response of a pool lookup
	RecordTLS                          // a tls record for each ClientHello parsed (SNI, JA4, ALPN)
)

// RecordTypesOf picks the engine's records out of EVE type names (eve.types, replay's
// --eve-types); the others (alert, stats) are written by the caller.
func RecordTypesOf(names []string) RecordTypes {
	var t RecordTypes
	for _, x := range names {
		switch x {
		case "flow":
			t |= RecordFlow
		case "dns":
			t |= RecordDNS
		case "tls":
			t |= RecordTLS
		}
	}
	return t
}

// flagDNSLogged marks a flow whose lookup is pool-relevant: its DNS messages are recorded.
// The top bit, so that flags added to state's list do not collide with it.
const flagDNSLogged uint8 = 1 << 7

func (e *Engine) recording(t RecordTypes) bool {
	return e.opt.Records != nil && e.opt.RecordTypes&t != 0
}

// recordEvent fills the engine's record event (reused: a Recorder gets it for the duration
// of the call) with what every record of f says: 5-tuple (src = the side that opened it),
// ids and counters.
func (e *Engine) recordEvent(f *flow.Flow[state], typ string, id uint64) *alert.Event {
	ev := &e.rec
	*ev = alert.Event{
		EventType:   typ,
		Timestamp:   e.now,
		FlowID:      id,
		Src:         f.Orig,
		Dest:        f.Resp,
		Proto:       f.Proto,
		PcapCnt:     e.stats.Packets - e.base,
		FlowStart:   time.Unix(0, f.First),
		Packets:     f.Packets,
		Bytes:       f.Bytes,
		Scope:       f.Scope,
		CommunityID: alert.CommunityID(f.Orig.Addr(), f.Orig.Port(), f.Resp.Addr(), f.Resp.Port(), f.Proto),
		MG:          alert.Minerguard{Capture: e.label},
	}
	return ev
}

// recordFlow writes f's flow record as it leaves the table, for one flow in FlowSample (by
// flow_id, so the choice is unbiased and the same on a replay) and for every flow that
// alerted. A flow left out costs its hash only; a record, its Community ID string.
func (e *Engine) recordFlow(f *flow.Flow[state], why flow.EvictReason) {
	id := e.flowID(f)
	if n := uint64(e.opt.FlowSample); n > 1 && f.App.alerted == 0 && id%n != 0 {
		e.stats.FlowRecordsSampledOut++
		return
	}
	e.stats.FlowRecords++
	ev := e.recordEvent(f, "flow", id)
	// A flow may end after its capture file did (replay): no file is named rather than the
	// wrong one.
	ev.MG.Capture = ""
	ev.AppProto = f.App.app.String()
	if ev.AppProto == "" && f.App.flags&flagDone != 0 && (f.App.firstLen[0] > 0 || f.App.firstLen[1] > 0) {
		ev.AppProto = "failed"
	}
	fe := alert.FlowEnd{End: time.Unix(0, f.Last), State: "new", Reason: "timeout", Alerted: f.App.alerted != 0}
	switch {
	case f.Proto == 6 && (f.State == flow.StateClosed || f.State == flow.StateClosing):
		fe.State = "closed"
	case f.State != flow.StateNew || (f.Packets[0] > 0 && f.Packets[1] > 0):
		// A datagram flow is closed by the engine once answered: established, as Suricata
		// says of UDP flows with traffic both ways.
		fe.State = "established"
	}
	switch why {
	case flow.EvictCap, flow.EvictReuse:
		fe.Reason = "forced"
	case flow.EvictFlush:
		fe.Reason = "shutdown"
	}
	ev.FlowEnd = fe
	e.opt.Records.Record(ev)
}

// recordDNS writes a dns record of message m (raw: b), sent in direction dir of f, once f's
// lookup is known to be pool-relevant (it raised pool-dns): the query, its retries and the
// answers that say which addresses the pool has.
func (e *Engine) recordDNS(f *flow.Flow[state], dir flow.Dir, m *dns.Message, b []byte) {
	s := &f.App
	if s.flags&flagDNSLogged == 0 {
		if !s.alerted.Has(detect.ReasonPoolDNS) {
			return
		}
		s.flags |= flagDNSLogged
	}
	ev := e.recordEvent(f, "dns", e.flowID(f))
	if dir == flow.DirReply {
		ev.Src, ev.Dest = f.Resp, f.Orig
	}
	d := &alert.DNS{ID: m.ID, Response: m.Response, Flags: binary.BigEndian.Uint16(b[2:4])}
	if len(m.Questions) > 0 {
		d.Query, d.Type = m.Questions[0].Name, dnsType(m.Questions[0].Type)
	}
	if m.Response {
		d.Rcode = mdns.RcodeToString[m.Rcode]
		if d.Rcode == "" {
			d.Rcode = "UNKNOWN"
		}
		for _, a := range m.Answers {
			x := alert.DNSAnswer{Name: a.Name, Type: dnsType(a.Type), TTL: a.TTL, Data: a.Target}
			if a.Addr.IsValid() {
				x.Data = a.Addr.String()
			}
			if x.Type == "" {
				x.Type = "TYPE" + itoa(a.Type)
			}
			d.Answers = append(d.Answers, x)
		}
	}
	ev.DNS = d
	e.stats.DNSRecords++
	e.opt.Records.Record(ev)
}

// recordTLS writes a tls record of f's ClientHello.
func (e *Engine) recordTLS(f *flow.Flow[state], h *alert.TLS) {
	ev := e.recordEvent(f, "tls", e.flowID(f))
	ev.TLS = h
	e.stats.TLSRecords++
	e.opt.Records.Record(ev)
}

func itoa(v uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		if v /= 10; v == 0 {
			break
		}
	}
	return string(b[i:])
}
