package alert

import (
	"fmt"
	"strings"
)

// The layouts of the Suricata-style records written beside alerts (Event.EventType flow, dns,
// tls), each key one Suricata's EVE schema allows at its place (testdata/eve).

// eveFlowRecord is a flow record, written when a flow ends: Suricata's flow event.
type eveFlowRecord struct {
	eveHead
	AppProto    string     `json:"app_proto,omitempty"`
	CommunityID string     `json:"community_id"`
	Flow        eveFlowEnd `json:"flow"`
}

type eveFlowEnd struct {
	PktsToServer  uint64 `json:"pkts_toserver"`
	PktsToClient  uint64 `json:"pkts_toclient"`
	BytesToServer uint64 `json:"bytes_toserver"`
	BytesToClient uint64 `json:"bytes_toclient"`
	Start         string `json:"start"`
	End           string `json:"end"`
	Age           int64  `json:"age"`
	State         string `json:"state,omitempty"`
	Reason        string `json:"reason,omitempty"`
	Alerted       bool   `json:"alerted"`
}

func (j *JSONWriter) writeFlow(e *Event) error {
	fe := e.FlowEnd
	if fe.End.IsZero() {
		fe.End = e.Timestamp
	}
	// As Suricata's flow event: the timestamp is the flow's start, flow.end its last packet.
	l := eveFlowRecord{eveHead: head(e, "flow"), AppProto: e.AppProto, CommunityID: e.CommunityID,
		Flow: eveFlowEnd{PktsToServer: e.Packets[0], PktsToClient: e.Packets[1], BytesToServer: e.Bytes[0],
			BytesToClient: e.Bytes[1], Start: e.FlowStart.UTC().Format(eveTime), End: fe.End.UTC().Format(eveTime),
			Age: int64(fe.End.Sub(e.FlowStart).Seconds()), State: fe.State, Reason: fe.Reason, Alerted: fe.Alerted}}
	l.Timestamp = e.FlowStart.UTC().Format(eveTime)
	l.PcapCnt = 0 // the flow's, not a packet's
	return j.enc.Encode(&l)
}

// eveDNSRecord is a dns record as Suricata 7 logs it (EVE DNS version 2): one line per query,
// one per response with its answers in detail and grouped by type.
type eveDNSRecord struct {
	eveHead
	CommunityID string   `json:"community_id"`
	DNS         eveDNSTx `json:"dns"`
}

type eveDNSTx struct {
	Version int                 `json:"version"`
	Type    string              `json:"type"` // query or answer
	ID      uint16              `json:"id"`
	Flags   string              `json:"flags,omitempty"`
	QR      bool                `json:"qr,omitempty"`
	AA      bool                `json:"aa,omitempty"`
	TC      bool                `json:"tc,omitempty"`
	RD      bool                `json:"rd,omitempty"`
	RA      bool                `json:"ra,omitempty"`
	Opcode  int                 `json:"opcode"`
	RRName  string              `json:"rrname"`
	RRType  string              `json:"rrtype,omitempty"`
	TxID    int                 `json:"tx_id"`
	Rcode   string              `json:"rcode,omitempty"`
	Answers []eveDNSAnswer      `json:"answers,omitempty"`
	Grouped map[string][]string `json:"grouped,omitempty"`
}

type eveDNSAnswer struct {
	RRName string `json:"rrname"`
	RRType string `json:"rrtype"`
	TTL    uint32 `json:"ttl"`
	RData  string `json:"rdata,omitempty"`
}

// groupable are the answer types whose grouped form is a list of strings in the schema.
var groupable = map[string]bool{"A": true, "AAAA": true, "CNAME": true, "MX": true, "NS": true, "PTR": true, "TXT": true, "NULL": true}

func (j *JSONWriter) writeDNS(e *Event) error {
	d := e.DNS
	if d == nil {
		return fmt.Errorf("dns record without DNS")
	}
	tx := eveDNSTx{Version: 2, Type: "query", ID: d.ID, RRName: d.Query, RRType: d.Type, Opcode: int(d.Flags>>11) & 0xf}
	if d.Response {
		f := d.Flags
		tx.Type, tx.Flags, tx.Rcode = "answer", fmt.Sprintf("%x", f), d.Rcode
		tx.QR, tx.AA, tx.TC, tx.RD, tx.RA = true, f&0x0400 != 0, f&0x0200 != 0, f&0x0100 != 0, f&0x0080 != 0
		for _, a := range d.Answers {
			tx.Answers = append(tx.Answers, eveDNSAnswer{RRName: a.Name, RRType: a.Type, TTL: a.TTL, RData: a.Data})
			if a.Data != "" && groupable[a.Type] {
				if tx.Grouped == nil {
					tx.Grouped = map[string][]string{}
				}
				tx.Grouped[a.Type] = append(tx.Grouped[a.Type], a.Data)
			}
		}
	}
	return j.enc.Encode(&eveDNSRecord{eveHead: head(e, "dns"), CommunityID: e.CommunityID, DNS: tx})
}

// eveTLSRecord is a tls record: what the ClientHello said (server name, JA4, ALPN).
type eveTLSRecord struct {
	eveHead
	CommunityID string `json:"community_id"`
	TLS         TLS    `json:"tls"`
}

func (j *JSONWriter) writeTLS(e *Event) error {
	if e.TLS == nil {
		return fmt.Errorf("tls record without TLS")
	}
	return j.enc.Encode(&eveTLSRecord{eveHead: head(e, "tls"), CommunityID: e.CommunityID, TLS: *e.TLS})
}

// IsRecord reports whether e is one of the records written beside alerts (flow, dns, tls):
// not a finding, not counted as an alert.
func (e *Event) IsRecord() bool {
	return e.EventType == "flow" || e.EventType == "dns" || e.EventType == "tls"
}

// RecordTypes are the record types that may be written beside alerts (eve.types, replay
// --eve-types), as Suricata's eve-log types.
var RecordTypes = []string{"alert", "flow", "dns", "tls", "stats"}

// CheckTypes reports the first type in l that is not one of RecordTypes.
func CheckTypes(l []string) error {
	for _, x := range l {
		ok := false
		for _, t := range RecordTypes {
			ok = ok || t == x
		}
		if !ok {
			return fmt.Errorf("%q: want %s", x, strings.Join(RecordTypes, ", "))
		}
	}
	return nil
}
