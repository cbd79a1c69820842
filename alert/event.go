package alert

import (
	"net/netip"
	"time"
)

// Event is one alert: one reason on one flow. Field names follow Suricata's EVE schema.
// An event whose EventType is "anomaly" is a record, not an alert: a fact about the workload
// (encrypted DNS in use) written as an EVE anomaly line, which SIEM rules on alerts ignore.
type Event struct {
	// EventType is "" or "alert"; "anomaly" for a record (then Anomaly is set, the alert
	// fields are not written); "flow", "dns" or "tls" for the Suricata-style records written
	// beside alerts (eve.types; records.go): FlowEnd, DNS or TLS says what they are about.
	EventType   string
	Anomaly     *Anomaly
	Timestamp   time.Time
	FlowID      uint64         // FlowHash: stable for the flow, distinct across sensors and runs
	Src, Dest   netip.AddrPort // Src opened the connection or sent the query
	Proto       uint8
	AppProto    string // "failed" when inspection ended without one, "unknown" before it ended
	CommunityID string

	Host      string // the sensor's name (live)
	InIface   string // the capture interface (live)
	PcapCnt   uint64 // the number of the packet that raised it, from 1 in its capture file (replay) or since start (live)
	ToClient  bool   // that packet went from the responder to the initiator
	FlowStart time.Time
	Packets   [2]uint64 // the flow's packets so far: to the server (from Src), to the client
	Bytes     [2]uint64 // the same in wire bytes
	Scope     uint64    // the engine scope of the flow (live: netns inode), for the sink to stamp InIface

	// FlowEnd is how the flow of a flow record ended (a value: the engine reuses one Event
	// for its records, and a queue copies it).
	FlowEnd FlowEnd

	// Stats, when set, makes this a stats record rather than an alert (Queue.Record); only
	// Timestamp and Host are read besides it.
	Stats *Stats

	Action      string // "allowed" (flagged) or "blocked" (dropped)
	SignatureID int
	Signature   string
	Category    string
	Severity    int

	DNS     *DNS
	TLS     *TLS
	Stratum *Stratum
	MG      Minerguard
}

// Anomaly is an EVE anomaly record (Suricata's anomaly object: type, event, layer, app_proto).
type Anomaly struct {
	Type     string `json:"type"`  // "applayer"
	Event    string `json:"event"` // e.g. "ENCRYPTED_DNS"
	Layer    string `json:"layer"` // "proto_detect"
	AppProto string `json:"app_proto,omitempty"`
}

// DNS describes the lookup an alert is about; a dns record also has the message's id and,
// for a response, its flags, rcode and answers.
type DNS struct {
	Query    string
	Type     string
	ID       uint16
	Response bool
	Flags    uint16 // the header's flags word (QR, opcode, AA, TC, RD, RA, Z, rcode)
	Rcode    string // NOERROR, NXDOMAIN, ... (responses)
	Answers  []DNSAnswer
}

// DNSAnswer is one record of a response's answer section.
type DNSAnswer struct {
	Name string
	Type string
	TTL  uint32
	Data string // the address (A, AAAA) or target (CNAME); empty for other types
}

// FlowEnd is what a flow record says beyond the flow's counters: how it ended.
type FlowEnd struct {
	End     time.Time // its last packet
	State   string    // Suricata's flow.state: new, established or closed
	Reason  string    // Suricata's flow.reason: timeout, forced (evicted for room) or shutdown (end of capture)
	Alerted bool
}

// TLS describes the ClientHello of the flow.
type TLS struct {
	SNI  string   `json:"sni,omitempty"`
	JA4  string   `json:"ja4,omitempty"`
	ALPN []string `json:"client_alpns,omitempty"` // Suricata 8's name
}

// Stratum describes the mining message that was recognised.
type Stratum struct {
	Method string `json:"method"`
	Agent  string `json:"agent,omitempty"`
	Login  string `json:"login,omitempty"`
	Side   string `json:"side"` // which side sent it: "client" or "pool"
}

// Minerguard holds what EVE has no field for.
type Minerguard struct {
	Detector   string    `json:"detector"`
	Variant    string    `json:"variant,omitempty"`
	Pool       string    `json:"pool,omitempty"`        // the pool name or address that matched
	PoolSource string    `json:"pool_source,omitempty"` // the intel list it came from
	Tunnel     string    `json:"tunnel,omitempty"`      // socks5, http-connect, websocket
	Target     string    `json:"tunnel_target,omitempty"`
	Evasion    string    `json:"evasion,omitempty"`
	Workload   *Workload `json:"workload,omitempty"`
	Profile    *Profile  `json:"profile,omitempty"` // egress-not-in-profile, unresolved-ip
	// EncryptedDNS names the encrypted DNS the flow carries ("dot", "doh"): on the record, and
	// on a profile violation of such a flow (a workload that never used it starts to).
	EncryptedDNS string     `json:"encrypted_dns,omitempty"`
	Behaviour    *Behaviour `json:"behaviour,omitempty"` // the behaviour detector's score and features
	Capture      string     `json:"-"`                   // replay: file the flow came from (EVE pcap_filename)
}

// Profile says how a flow stood against its workload's learned egress profile.
type Profile struct {
	State       string `json:"state"`       // monitoring or enforcing
	Destination string `json:"destination"` // name:port/proto when a name is known, else address:port/proto
	Resolved    bool   `json:"resolved"`    // a DNS answer or server name named the address
}

// Behaviour is what the behaviour detector measured on an encrypted or unknown TCP flow: the
// score, the threshold it passed, and the features it was computed from, so an analyst can
// see why without the model.
type Behaviour struct {
	Score     float64            `json:"score"`
	Threshold float64            `json:"threshold"`
	Model     string             `json:"model"`    // model version
	Features  map[string]float64 `json:"features"` // name → value, as fed to the model
}

// Workload is who the flow belongs to: the identity a profile and a rate limit attach to,
// with the attributes of the instance that was seen.
type Workload struct {
	Identity  string `json:"identity"`
	Kind      string `json:"kind,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Container string `json:"container,omitempty"`
	// ContainerName is the container's name in its pod spec (or Docker's name).
	ContainerName string `json:"container_name,omitempty"`
	Image         string `json:"image,omitempty"`
	Node          string `json:"node,omitempty"`
	Netns         string `json:"netns,omitempty"`
	// Source says which resolver named the workload: cri, docker, kube-env and cgroup (from
	// /proc), netns, static; absent when nothing did (the netns/ino: fallback).
	Source string `json:"source,omitempty"`
}

// ProtoName is the EVE spelling of an IP protocol number.
func ProtoName(p uint8) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 1:
		return "ICMP"
	case 58:
		return "IPv6-ICMP"
	}
	return "IP"
}

// Stats is a periodic EVE stats record (event_type stats, eve.types): the sensor's counters
// since it started, under Suricata's names so dashboards built for its stats read them.
type Stats struct {
	Uptime                       int64 // seconds
	KernelPackets, KernelDrops   uint64
	Packets, Bytes, Invalid      uint64
	FlowsTotal, FlowsActive      uint64
	Alerts, Suppressed           uint64
	DNSMessages, TLSClientHellos uint64
}
