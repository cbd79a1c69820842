package alert

import (
	"bufio"
	"encoding/json"
	"io"
)

// eveTime is Suricata's timestamp layout, with the offset spelled +0000.
const eveTime = "2006-01-02T15:04:05.000000-0700"

// eveHead is the start every EVE line of a flow shares (alert, anomaly), in the schema's order.
type eveHead struct {
	Timestamp    string `json:"timestamp"`
	FlowID       uint64 `json:"flow_id"`
	PcapCnt      uint64 `json:"pcap_cnt,omitempty"`
	EventType    string `json:"event_type"`
	Host         string `json:"host,omitempty"`
	InIface      string `json:"in_iface,omitempty"`
	PcapFilename string `json:"pcap_filename,omitempty"`
	SrcIP        string `json:"src_ip"`
	SrcPort      uint16 `json:"src_port"`
	DestIP       string `json:"dest_ip"`
	DestPort     uint16 `json:"dest_port"`
	Proto        string `json:"proto"`
}

func head(e *Event, eventType string) eveHead {
	return eveHead{Timestamp: e.Timestamp.UTC().Format(eveTime), FlowID: e.FlowID, PcapCnt: e.PcapCnt,
		EventType: eventType, Host: e.Host, InIface: e.InIface, PcapFilename: e.MG.Capture,
		SrcIP: e.Src.Addr().Unmap().String(), SrcPort: e.Src.Port(), DestIP: e.Dest.Addr().Unmap().String(),
		DestPort: e.Dest.Port(), Proto: ProtoName(e.Proto)}
}

// eve is the wire layout of an alert line. Every key is one Suricata's EVE schema
// (etc/schema.json, testdata/eve) allows at its place: the schema refuses unknown keys at the
// top level and in alert, dns, tls and flow, so minerguard's own fields live in alert.context
// (free-form) and alert.metadata (string arrays, as rule metadata).
type eve struct {
	eveHead
	Direction   string   `json:"direction"`
	AppProto    string   `json:"app_proto"`
	CommunityID string   `json:"community_id"`
	Alert       eveAlert `json:"alert"`
	DNS         *eveDNS  `json:"dns,omitempty"`
	TLS         *TLS     `json:"tls,omitempty"`
	Flow        *eveFlow `json:"flow,omitempty"`
}

type eveAlert struct {
	Action      string      `json:"action"`
	GID         int         `json:"gid"`
	SignatureID int         `json:"signature_id"`
	Rev         int         `json:"rev"`
	Signature   string      `json:"signature"`
	Category    string      `json:"category"`
	Severity    int         `json:"severity"`
	Metadata    eveMetadata `json:"metadata"`
	Context     eveContext  `json:"context"`
}

// eveMetadata is what a rule's metadata keyword would carry: the MITRE ATT&CK mapping in the
// key names ET Open's rules use, so SIEM content written for them applies.
type eveMetadata struct {
	TacticID          []string `json:"mitre_tactic_id"`
	TacticName        []string `json:"mitre_tactic_name"`
	TechniqueID       []string `json:"mitre_technique_id"`
	TechniqueName     []string `json:"mitre_technique_name"`
	SignatureSeverity []string `json:"signature_severity"`
}

// Every minerguard signature is about Resource Hijacking (Impact).
var (
	tacticID      = []string{"TA0040"}
	tacticName    = []string{"Impact"}
	techniqueID   = []string{"T1496"}
	techniqueName = []string{"Resource_Hijacking"}
	sevNames      = [...][]string{{"Informational"}, {"Major"}, {"Minor"}, {"Informational"}}
)

// eveContext is minerguard's own view of the alert: the Minerguard fields, flattened, and
// the Stratum message.
type eveContext struct {
	*Minerguard
	Stratum *Stratum `json:"stratum,omitempty"`
}

// eveDNS is the lookup as Suricata 8 logs it in an alert (version 3, queries[]), with
// Suricata 7's query[] beside it so that rules written for either find rrname.
type eveDNS struct {
	Version int        `json:"version"`
	Type    string     `json:"type"`
	Queries []eveQuery `json:"queries"`
	Query   []eveQuery `json:"query"`
}

type eveQuery struct {
	Type   string `json:"type,omitempty"`
	RRName string `json:"rrname"`
	RRType string `json:"rrtype,omitempty"`
}

// eveFlow is the flow so far, when the alert was raised.
type eveFlow struct {
	PktsToServer  uint64 `json:"pkts_toserver"`
	PktsToClient  uint64 `json:"pkts_toclient"`
	BytesToServer uint64 `json:"bytes_toserver"`
	BytesToClient uint64 `json:"bytes_toclient"`
	Start         string `json:"start"`
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

// eveStats is the wire layout of a stats record: the subset of Suricata's stats object
// minerguard has counters for.
type eveStats struct {
	Timestamp string `json:"timestamp"`
	EventType string `json:"event_type"`
	Host      string `json:"host,omitempty"`
	Stats     struct {
		Uptime  int64 `json:"uptime"`
		Capture struct {
			KernelPackets uint64 `json:"kernel_packets"`
			KernelDrops   uint64 `json:"kernel_drops"`
		} `json:"capture"`
		Decoder struct {
			Pkts    uint64 `json:"pkts"`
			Bytes   uint64 `json:"bytes"`
			Invalid uint64 `json:"invalid"`
		} `json:"decoder"`
		Flow struct {
			Total  uint64 `json:"total"`
			Active uint64 `json:"active"`
		} `json:"flow"`
		AppLayer struct {
			Flow struct {
				DNSUDP uint64 `json:"dns_udp"`
				TLS    uint64 `json:"tls"`
			} `json:"flow"`
		} `json:"app_layer"`
		Detect struct {
			Alert      uint64 `json:"alert"`
			Suppressed uint64 `json:"alerts_suppressed"`
		} `json:"detect"`
	} `json:"stats"`
}

func (j *JSONWriter) writeStats(e *Event) error {
	s := e.Stats
	var l eveStats
	l.Timestamp, l.EventType, l.Host = e.Timestamp.UTC().Format(eveTime), "stats", e.Host
	l.Stats.Uptime = s.Uptime
	l.Stats.Capture.KernelPackets, l.Stats.Capture.KernelDrops = s.KernelPackets, s.KernelDrops
	l.Stats.Decoder.Pkts, l.Stats.Decoder.Bytes, l.Stats.Decoder.Invalid = s.Packets, s.Bytes, s.Invalid
	l.Stats.Flow.Total, l.Stats.Flow.Active = s.FlowsTotal, s.FlowsActive
	l.Stats.AppLayer.Flow.DNSUDP, l.Stats.AppLayer.Flow.TLS = s.DNSMessages, s.TLSClientHellos
	l.Stats.Detect.Alert, l.Stats.Detect.Suppressed = s.Alerts, s.Suppressed
	return j.enc.Encode(&l)
}

// eveAnomaly is the wire layout of a record (Event.EventType "anomaly"): Suricata's anomaly
// event, keys as its schema allows them (so no minerguard object: the workload is counted by
// the sensor's metrics, and in_iface/host say where).
type eveAnomaly struct {
	eveHead
	AppProto    string   `json:"app_proto"`
	CommunityID string   `json:"community_id"`
	Anomaly     *Anomaly `json:"anomaly"`
	TLS         *TLS     `json:"tls,omitempty"`
}

func (j *JSONWriter) writeAnomaly(e *Event) error {
	l := eveAnomaly{eveHead: head(e, "anomaly"), AppProto: e.AppProto, CommunityID: e.CommunityID,
		Anomaly: e.Anomaly, TLS: e.TLS}
	if l.AppProto == "" {
		l.AppProto = "unknown"
	}
	return j.enc.Encode(&l)
}

// Write encodes e as one line.
func (j *JSONWriter) Write(e *Event) error {
	if e.Stats != nil {
		return j.writeStats(e)
	}
	switch e.EventType {
	case "anomaly":
		return j.writeAnomaly(e)
	case "flow":
		return j.writeFlow(e)
	case "dns":
		return j.writeDNS(e)
	case "tls":
		return j.writeTLS(e)
	}
	mg := e.MG
	l := eve{
		eveHead:     head(e, "alert"),
		Direction:   "to_server",
		AppProto:    e.AppProto,
		CommunityID: e.CommunityID,
		Alert: eveAlert{Action: e.Action, GID: 1, SignatureID: e.SignatureID, Rev: 1,
			Signature: e.Signature, Category: e.Category, Severity: e.Severity,
			Metadata: eveMetadata{TacticID: tacticID, TacticName: tacticName, TechniqueID: techniqueID,
				TechniqueName: techniqueName, SignatureSeverity: sevNames[min(max(e.Severity, 0), 3)]},
			Context: eveContext{Minerguard: &mg, Stratum: e.Stratum}},
		TLS: e.TLS,
	}
	if e.ToClient {
		l.Direction = "to_client"
	}
	if l.AppProto == "" {
		l.AppProto = "unknown"
	}
	if d := e.DNS; d != nil {
		l.DNS = &eveDNS{Version: 3, Type: "request",
			Queries: []eveQuery{{RRName: d.Query, RRType: d.Type}},
			Query:   []eveQuery{{Type: "query", RRName: d.Query, RRType: d.Type}}}
	}
	if !e.FlowStart.IsZero() {
		l.Flow = &eveFlow{PktsToServer: e.Packets[0], PktsToClient: e.Packets[1],
			BytesToServer: e.Bytes[0], BytesToClient: e.Bytes[1], Start: e.FlowStart.UTC().Format(eveTime)}
	}
	return j.enc.Encode(&l)
}

// Flush writes buffered lines out.
func (j *JSONWriter) Flush() error { return j.w.Flush() }
