package engine

import (
	"github.com/minerguard/minerguard/flow"
	"github.com/minerguard/minerguard/protocols/dns"
)

// Proto indexes per-protocol decode error counters.
type Proto uint8

const (
	ProtoDNS Proto = iota
	ProtoWebSocket
	numProtos
)

func (p Proto) String() string {
	switch p {
	case ProtoDNS:
		return "dns"
	case ProtoWebSocket:
		return "websocket"
	}
	return "unknown"
}

// NumProtos is the number of Proto values.
const NumProtos = int(numProtos)

// Stats are the engine's counters. Plain integers: an engine is single-goroutine and the
// metrics package reads a copy at scrape time.
type Stats struct {
	Packets, Bytes   uint64
	Decode           [256]uint64 // by flow.Status
	Fragments        uint64      // later IP fragments (not reassembled)
	DecodeErrors     [numProtos]uint64
	DNSMessages      uint64
	TLSHellos        uint64
	Tunnels          uint64
	WSBufferFull     uint64 // WebSocket directions whose unwrapped messages reached maxWSBuffer
	StratumOverflows uint64 // lines over stratum.MaxLine skipped
	Bypassed         uint64 // flows whose inspection finished early
	OtherProto       uint64 // IP packets that are neither TCP nor UDP (ICMP, ...)
	InspectExhausted uint64 // flows not inspected because MaxInspecting flows already were
	InspectStolen    uint64 // undecided flows whose inspection was ended to make room
	Inspecting       int    // flows under inspection now
	FlowsEnded       uint64
	FlaggedFlows     uint64
	Alerts           [16]uint64 // by detect.Reason
	AlertsBlocked    [16]uint64 // of those, on flows the enforcer is dropping

	ProfileChecks     uint64 // flows whose destination was checked against a profile
	ProfileViolations uint64 // of those, outside a monitored or enforced profile
	ProfileEarly      uint64 // of those, unnamed TCP flows judged at their first packet (enforcing, no name could match)
	ProfileLearned    uint64 // flows taught to a learning profile
	ProfilePoisoned   uint64 // flagged flows whose destination was kept out of a learning profile
	Blocked           uint64 // flows the enforcer is dropping
	BlockFailed       uint64 // drop verdicts the enforcer could not put in place (flagged only)

	Flow     flow.Stats
	DNSCache dns.CacheStats
}

// DecodeErrorsTotal is the number of malformed packets.
func (s *Stats) DecodeErrorsTotal() uint64 {
	var n uint64
	for st, c := range s.Decode {
		if flow.Status(st).Malformed() {
			n += c
		}
	}
	return n
}

// AlertsTotal sums alerts over reasons.
func (s *Stats) AlertsTotal() uint64 {
	var n uint64
	for _, c := range s.Alerts {
		n += c
	}
	return n
}
