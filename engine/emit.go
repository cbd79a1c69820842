package engine

import (
	"time"

	mdns "github.com/miekg/dns"
	"github.com/minerguard/minerguard/alert"
	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/flow"
)

// flowEvent is what every event of f says about the flow and about the finding fd: 5-tuple
// (src = the side that opened it), ids, counters, signature and the detector's facts.
func (e *Engine) flowEvent(f *flow.Flow[state], fd detect.Finding) alert.Event {
	return alert.Event{
		Timestamp:   e.now,
		FlowID:      e.flowID(f),
		Src:         f.Orig,
		Dest:        f.Resp,
		Proto:       f.Proto,
		AppProto:    f.App.app.String(),
		PcapCnt:     e.stats.Packets - e.base,
		ToClient:    e.dir == flow.DirReply,
		FlowStart:   time.Unix(0, f.First),
		Packets:     f.Packets,
		Bytes:       f.Bytes,
		Scope:       f.Scope,
		CommunityID: alert.CommunityID(f.Orig.Addr(), f.Orig.Port(), f.Resp.Addr(), f.Resp.Port(), f.Proto),
		SignatureID: fd.Reason.SignatureID(),
		Signature:   fd.Reason.Signature(),
		Severity:    fd.Reason.Severity(),
		MG:          alert.Minerguard{Detector: fd.Reason.String(), Pool: fd.Indicator, PoolSource: fd.Source, Capture: e.label},
	}
}

// emit builds the alert for one finding. Each alert carries its own flow's 5-tuple, oriented
// so that src is the side that opened the connection or sent the query.
func (e *Engine) emit(f *flow.Flow[state], fd detect.Finding, blocked bool) {
	s := &f.App
	d := s.det
	if d == nil {
		d = &detail{}
	}
	e.stats.Alerts[fd.Reason]++
	if e.opt.Sink == nil {
		return
	}
	ev := e.flowEvent(f, fd)
	ev.Action, ev.Category = "allowed", detect.Category
	if ev.AppProto == "" {
		// As Suricata says it: "failed" once inspection gave up on the flow, else not known yet.
		ev.AppProto = "unknown"
		if s.flags&flagDone != 0 && (s.firstLen[0] > 0 || s.firstLen[1] > 0) {
			ev.AppProto = "failed"
		}
	}
	if blocked {
		ev.Action = "blocked"
		e.stats.AlertsBlocked[fd.Reason]++
	}
	if e.opt.Workload != nil {
		// The workload that opened the flow, else the one it was opened to.
		if ev.MG.Workload = e.opt.Workload(f.Scope, f.Orig.Addr()); ev.MG.Workload == nil {
			ev.MG.Workload = e.opt.Workload(f.Scope, f.Resp.Addr())
		}
	}
	if d.tunnel != nil {
		ev.MG.Tunnel, ev.MG.Target = d.tunnel.Kind.String(), d.tunnel.Target
	}
	if d.facts.Mining {
		ev.MG.Variant = d.stratum.Variant.String()
		ev.MG.Evasion = d.stratum.Evasion
	}
	switch fd.Reason {
	case detect.ReasonStratum:
		login := d.stratum.Login
		if e.opt.RedactLogin && login != "" {
			login = "REDACTED"
		}
		ev.Stratum = &alert.Stratum{Method: d.stratum.Method, Agent: d.stratum.Agent, Login: login, Side: d.stratum.Side.String()}
	case detect.ReasonBehaviour:
		ev.MG.Behaviour = d.behaviour
	case detect.ReasonSV2Handshake:
		ev.MG.Variant = "stratum-v2"
	case detect.ReasonNotInProfile, detect.ReasonUnresolvedIP:
		st := "monitoring"
		if d.facts.Profile == detect.ProfileEnforcing {
			st = "enforcing"
		}
		ev.MG.Profile = &alert.Profile{State: st, Destination: d.facts.ProfileDest, Resolved: !d.facts.Unresolved}
		ev.MG.EncryptedDNS = encKind(f)
	case detect.ReasonPoolIP:
		if d.facts.DstName != "" && ev.MG.Pool == "" {
			ev.MG.Pool = d.facts.DstName
		}
	}
	if d.facts.DNSQuery != "" && (fd.Reason == detect.ReasonPoolDNS || s.app == appDNS) {
		ev.DNS = &alert.DNS{Query: d.facts.DNSQuery, Type: dnsType(s.dnsType)}
	}
	if d.hello != nil {
		ev.TLS = d.hello
	}
	e.opt.Sink.Alert(&ev)
}

// flowID is f's EVE flow_id (alert.FlowHash).
func (e *Engine) flowID(f *flow.Flow[state]) uint64 {
	return alert.FlowHash(e.opt.FlowSalt, f.Scope, f.Orig, f.Resp, f.Proto, time.Unix(0, f.First))
}

func dnsType(t uint16) string {
	if s, ok := mdns.TypeToString[t]; ok {
		return s
	}
	return ""
}

// record writes a finding that is a fact, not an alert (detect.Reason.Record: encrypted DNS)
// once per flow as an EVE anomaly record. The flow is not flagged, so a learning profile
// learns it (with app "dot"/"doh"), and the workload is remembered as one whose unresolved
// destinations deserve less trust (behaviour score).
func (e *Engine) record(f *flow.Flow[state], fd detect.Finding) {
	s := &f.App
	if s.flags&flagEncDNS != 0 {
		return
	}
	s.flags |= flagEncDNS
	e.stats.EncryptedDNS++
	e.encDNS.Mark(e.nameScope(f), e.now)
	if e.opt.Sink == nil {
		return
	}
	ev := e.flowEvent(f, fd)
	ev.EventType = "anomaly"
	ev.Anomaly = &alert.Anomaly{Type: "applayer", Event: "ENCRYPTED_DNS", Layer: "proto_detect", AppProto: s.app.String()}
	ev.MG.EncryptedDNS = encKind(f)
	if e.opt.Workload != nil {
		ev.MG.Workload = e.opt.Workload(f.Scope, f.Orig.Addr())
	}
	if d := s.det; d != nil && d.hello != nil {
		ev.TLS = d.hello
	}
	e.opt.Sink.Alert(&ev)
}

// encKind names the encrypted DNS f carries: "dot" on DNS over TLS's port, else "doh"; ""
// when it carries none.
func encKind(f *flow.Flow[state]) string {
	switch {
	case f.App.flags&flagEncDNS == 0:
		return ""
	case f.Resp.Port() == 853:
		return "dot"
	}
	return "doh"
}
