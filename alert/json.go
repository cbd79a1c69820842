package alert

import (
	"bufio"
	"encoding/json"
	"io"
)

// eve is the wire layout of an alert line.
type eve struct {
	Timestamp   string      `json:"timestamp"`
	FlowID      uint64      `json:"flow_id"`
	EventType   string      `json:"event_type"`
	SrcIP       string      `json:"src_ip"`
	SrcPort     uint16      `json:"src_port"`
	DestIP      string      `json:"dest_ip"`
	DestPort    uint16      `json:"dest_port"`
	Proto       string      `json:"proto"`
	AppProto    string      `json:"app_proto,omitempty"`
	CommunityID string      `json:"community_id"`
	Alert       eveAlert    `json:"alert"`
	DNS         *DNS        `json:"dns,omitempty"`
	TLS         *TLS        `json:"tls,omitempty"`
	Stratum     *Stratum    `json:"stratum,omitempty"`
	MG          *Minerguard `json:"minerguard"`
}

type eveAlert struct {
	Action      string `json:"action"`
	GID         int    `json:"gid"`
	SignatureID int    `json:"signature_id"`
	Rev         int    `json:"rev"`
	Signature   string `json:"signature"`
	Category    string `json:"category"`
	Severity    int    `json:"severity"`
}

// JSONWriter writes one EVE JSON line per event.
type JSONWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewJSONWriter writes to w; call Flush when done.
func NewJSONWriter(w io.Writer) *JSONWriter {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONWriter{w: bw, enc: enc}
}

// Write encodes e as one line.
func (j *JSONWriter) Write(e *Event) error {
	mg := e.MG
	return j.enc.Encode(eve{
		// Suricata's timestamp layout, with the offset spelled +0000.
		Timestamp:   e.Timestamp.UTC().Format("2006-01-02T15:04:05.000000-0700"),
		FlowID:      e.FlowID,
		EventType:   "alert",
		SrcIP:       e.Src.Addr().Unmap().String(),
		SrcPort:     e.Src.Port(),
		DestIP:      e.Dest.Addr().Unmap().String(),
		DestPort:    e.Dest.Port(),
		Proto:       ProtoName(e.Proto),
		AppProto:    e.AppProto,
		CommunityID: e.CommunityID,
		Alert: eveAlert{Action: e.Action, GID: 1, SignatureID: e.SignatureID, Rev: 1,
			Signature: e.Signature, Category: e.Category, Severity: e.Severity},
		DNS: e.DNS, TLS: e.TLS, Stratum: e.Stratum, MG: &mg,
	})
}

// Flush writes buffered lines out.
func (j *JSONWriter) Flush() error { return j.w.Flush() }
