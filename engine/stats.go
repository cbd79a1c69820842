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

// ReclaimReason says why an undecided flow's inspection slot was taken back for another flow.
// The flow is deferred, not dropped: it is looked at again at its next payload.
type ReclaimReason uint8

const (
	ReclaimAge      ReclaimReason = iota // held ReclaimAfter without a decision
	ReclaimSegments                      // ReclaimLooks payload segments inspected without a decision
	ReclaimFair                          // its scope held more than its share while another scope's flow needed one
	numReclaimReasons
)

// NumReclaimReasons is the number of ReclaimReason values.
const NumReclaimReasons = int(numReclaimReasons)

func (r ReclaimReason) String() string {
	switch r {
	case ReclaimAge:
		return "age"
	case ReclaimSegments:
		return "segments"
	case ReclaimFair:
		return "fair_share"
	}
	return "unknown"
}

// Stats are the engine's counters. Plain integers: an engine is single-goroutine and the
// metrics package reads a copy at scrape time.
type Stats struct {
	Packets, Bytes   uint64
	Decode           [256]uint64 // by flow.Status
	Fragments        uint64      // IP fragments, all taken to reassembly (Defrag counts what became of them)
	FragmentsSnapped uint64      // of those, cut short by the capture's snap length: not reassembled
	DecodeErrors     [numProtos]uint64
	DNSMessages      uint64
	DNSIncomplete    uint64 // DNS-over-TCP messages begun and never read whole (flow ended, window passed, hole)
	TLSHellos        uint64
	Tunnels          uint64
	WSBufferFull     uint64 // WebSocket directions whose unwrapped messages reached maxWSBuffer
	StratumOverflows uint64 // lines over stratum.MaxLine skipped
	Bypassed         uint64 // flows whose inspection finished early
	OtherProto       uint64 // IP packets that are neither TCP nor UDP (ICMP, ...)
	// Inspection slots (Options.MaxInspecting). No flow goes uninspected for lack of one: a
	// flow without a slot is looked at from its stored bytes (InspectSlotless) and, when that
	// does not decide it, deferred to its next payload.
	InspectSlotless  uint64                    // payload inspections run without a slot (first looks and retries)
	InspectDeferred  uint64                    // undecided flows left without a slot until their next payload
	InspectReclaimed [NumReclaimReasons]uint64 // slots taken back from undecided flows, by ReclaimReason
	Inspecting       int                       // flows holding a slot now
	FlowsEnded       uint64
	FlaggedFlows     uint64
	EncryptedDNS     uint64     // flows recorded as carrying encrypted DNS (DoT, DoH): records, not alerts
	BehaviourWatched uint64     // TLS flows the behaviour detector started to watch
	BehaviourNoSlot  uint64     // TLS flows not watched because MaxBehaviour flows already were
	BehaviourScored  uint64     // watched flows scored at the checkpoint
	BehaviourLost    uint64     // watched flows whose record walk was lost (a hole, a non-TLS header, a snapped frame)
	BehaviourBulk    uint64     // watched flows that passed the stream depth before the checkpoint: bulk, not scored
	Watching         int        // flows the behaviour detector watches now
	Alerts           [16]uint64 // by detect.Reason
	AlertsBlocked    [16]uint64 // of those, on flows the enforcer is dropping

	// Records written beside alerts (Options.Records): flow records, the flows whose record
	// FlowSample left out, dns and tls records.
	FlowRecords, FlowRecordsSampledOut, DNSRecords, TLSRecords uint64

	ProfileChecks     uint64 // flows whose destination was checked against a profile
	ProfileViolations uint64 // of those, outside a monitored or enforced profile
	ProfileEarly      uint64 // of those, unnamed TCP flows judged at their first packet (enforcing, no name could match)
	ProfileLearned    uint64 // flows taught to a learning profile
	ProfilePoisoned   uint64 // flagged flows whose destination was kept out of a learning profile
	Blocked           uint64 // flows the enforcer is dropping
	BlockFailed       uint64 // drop verdicts the enforcer could not put in place (flagged only)

	Flow     flow.Stats
	DNSCache dns.CacheStats
	Defrag   flow.DefragStats
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
