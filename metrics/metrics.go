// Package metrics owns minerguard's Prometheus exposition. It is the only package that imports
// client_golang: collectors read a snapshot of the engine's counters at scrape time (like
// node_exporter's collectors), so the packet path never touches a metric. Labels are bounded:
// detector, decode status, protocol, reason; never addresses, ports or names. The live
// sensor's workload labels are capped by the sensor (metrics.Live).
package metrics

import (
	"io"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/engine"
	"github.com/minerguard/minerguard/flow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Source gives the counters to expose; source names where they come from ("replay", "netns").
type Source func() (stats engine.Stats, source string)

type collector struct {
	src Source

	packets, bytes, decodeErrs, skipped, fragments, protoErrs *prometheus.Desc
	flowsActive, flowsCreated, evictions, detections          *prometheus.Desc
	reasmGaps, reasmOverlapMismatch, reasmDepth, reasmBudget  *prometheus.Desc
	reasmBytes, stratumOverflows, dnsCacheEntries, bypassed   *prometheus.Desc
	inspectSlotless, inspectDeferred, inspectReclaimed        *prometheus.Desc
	inspecting, wsFull                                        *prometheus.Desc
	profChecks, profLearned, profPoisoned, blocked, blockFail *prometheus.Desc
	dnsIncomplete                                             *prometheus.Desc
	defragDone, defragDropped, defragOverlaps, defragBytes    *prometheus.Desc
	defragPending, fragSnapped                                *prometheus.Desc
	encDNS, behFlows, behWatching                             *prometheus.Desc
}

func newCollector(src Source) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("minerguard_"+name, help, labels, nil)
	}
	return &collector{
		src:                  src,
		packets:              d("packets_total", "Packets read.", "source"),
		bytes:                d("bytes_total", "Bytes of packets read.", "source"),
		decodeErrs:           d("decode_errors_total", "Packets or messages that failed to decode, by reason or protocol.", "source", "protocol", "reason"),
		skipped:              d("packets_skipped_total", "Valid packets that are not TCP or UDP over IP (ARP, ICMP, ...).", "source"),
		fragments:            d("ip_fragments_total", "IP fragments seen; every one goes to reassembly.", "source"),
		fragSnapped:          d("ip_fragments_snapped_total", "IP fragments cut short by the capture's snap length, not reassembled.", "source"),
		defragDone:           d("defrag_reassembled_total", "IP datagrams reassembled from their fragments and inspected.", "source"),
		defragDropped:        d("defrag_dropped_total", "IP datagrams in reassembly given up, by reason: timeout, memcap (oldest dropped to stay within flow.defrag_memcap), too_many (fragments), invalid.", "source", "reason"),
		defragOverlaps:       d("defrag_overlaps_total", "IP fragments overlapping bytes already held, by whether the bytes differed (the first copy is kept).", "source", "data"),
		defragBytes:          d("defrag_bytes", "Memory charged against the fragment reassembly memcap.", "source"),
		defragPending:        d("defrag_datagrams", "IP datagrams waiting for fragments.", "source"),
		protoErrs:            d("protocol_errors_total", "Application messages that failed to decode.", "source", "protocol"),
		flowsActive:          d("flows_active", "Flows in the flow table.", "source"),
		flowsCreated:         d("flows_created_total", "Flows created.", "source"),
		evictions:            d("flow_evictions_total", "Flows removed from the table, by reason.", "source", "reason"),
		detections:           d("detections_total", "Alerts raised, by detector and action.", "source", "detector", "action"),
		reasmGaps:            d("reassembly_gaps_total", "Holes in TCP streams that were skipped.", "source"),
		reasmOverlapMismatch: d("reassembly_overlap_mismatches_total", "Overlapping TCP segments whose bytes differed.", "source"),
		reasmDepth:           d("reassembly_depth_reached_total", "Stream directions that reached the inspection depth.", "source"),
		reasmBudget:          d("reassembly_budget_exhausted_total", "Segments not stored because the global reassembly budget was used up.", "source"),
		reasmBytes:           d("reassembly_bytes", "Bytes of stream buffers in use.", "source"),
		stratumOverflows:     d("stratum_line_overflows_total", "Lines longer than the 64 KiB line cap that were skipped.", "source"),
		dnsCacheEntries:      d("dns_cache_entries", "Answered addresses kept for name attribution.", "source"),
		bypassed:             d("flows_bypassed_total", "Flows whose inspection finished before their end (classified or decided).", "source"),
		inspectSlotless:      d("inspect_slotless_total", "Payload inspections run without an inspection slot (a flow's first bytes, or a deferred flow's retry).", "source"),
		inspectDeferred:      d("inspect_deferred_total", "Undecided flows left without an inspection slot until their next payload.", "source"),
		inspectReclaimed:     d("inspect_reclaimed_total", "Inspection slots taken back from undecided flows (which are deferred, not dropped), by reason.", "source", "reason"),
		inspecting:           d("flows_inspecting", "Flows holding an inspection slot now.", "source"),
		wsFull:               d("websocket_buffer_full_total", "WebSocket tunnel directions whose unwrapped messages reached the 64 KiB cap; later messages are not read.", "source"),
		profChecks:           d("profile_checks_total", "Flows whose destination was checked against their workload's profile, by result.", "source", "result"),
		profLearned:          d("profile_learned_flows_total", "Flows taught to a learning profile.", "source"),
		profPoisoned:         d("profile_poisoned_total", "Flagged flows whose destination was kept out of a learning profile.", "source"),
		blocked:              d("flows_blocked_total", "Flows whose drop verdict was put into the data path.", "source"),
		behFlows:             d("behaviour_flows_total", "TLS flows the behaviour detector watched (watched), scored at its checkpoint (scored), let go unscored because their record walk was lost (lost) or they passed the stream depth (bulk), or could not watch (no_slot).", "source", "result"),
		behWatching:          d("flows_behaviour_watching", "Flows the behaviour detector watches now.", "source"),
		encDNS:               d("encrypted_dns_flows_total", "Flows carrying encrypted DNS (DoT, DoH to a listed resolver), recorded as anomaly events, not alerts.", "source"),
		blockFail:            d("block_failures_total", "Drop verdicts the data path could not take (the flow was flagged only).", "source"),
		dnsIncomplete:        d("dns_tcp_incomplete_total", "DNS-over-TCP messages begun and never read whole (connection ended, window passed, or a capture hole lost the framing).", "source"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s, src := c.src()
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{src}, l...)...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{src}, l...)...)
	}
	counter(c.packets, s.Packets)
	counter(c.bytes, s.Bytes)
	for _, st := range flow.Statuses() {
		if st.Malformed() {
			counter(c.decodeErrs, s.Decode[st], "packet", st.String())
		}
	}
	for p := engine.Proto(0); int(p) < engine.NumProtos; p++ {
		counter(c.protoErrs, s.DecodeErrors[p], p.String())
	}
	counter(c.skipped, s.Decode[flow.Unsupported])
	counter(c.fragments, s.Fragments)
	gauge(c.flowsActive, float64(s.Flow.Active))
	counter(c.flowsCreated, s.Flow.Created)
	counter(c.evictions, s.Flow.Evicted.Timeout, "timeout")
	counter(c.evictions, s.Flow.Evicted.Cap, "cap")
	counter(c.evictions, s.Flow.Evicted.Flush, "flush")
	counter(c.evictions, s.Flow.Evicted.Reuse, "reuse")
	for r := detect.ReasonStratum; r.String() != "unknown" && c.detections != nil; r++ {
		counter(c.detections, s.Alerts[r]-s.AlertsBlocked[r], r.String(), "flag")
		counter(c.detections, s.AlertsBlocked[r], r.String(), "drop")
	}
	counter(c.reasmGaps, s.Flow.Reassembly.Gaps)
	counter(c.reasmOverlapMismatch, s.Flow.Reassembly.OverlapMismatch)
	counter(c.reasmDepth, s.Flow.Reassembly.DepthReached)
	counter(c.reasmBudget, s.Flow.Reassembly.BudgetExhausted)
	gauge(c.reasmBytes, float64(s.Flow.Reassembly.BytesInUse))
	counter(c.stratumOverflows, s.StratumOverflows)
	gauge(c.dnsCacheEntries, float64(s.DNSCache.Entries))
	counter(c.bypassed, s.Bypassed)
	counter(c.inspectSlotless, s.InspectSlotless)
	counter(c.inspectDeferred, s.InspectDeferred)
	for r := engine.ReclaimReason(0); int(r) < engine.NumReclaimReasons; r++ {
		counter(c.inspectReclaimed, s.InspectReclaimed[r], r.String())
	}
	counter(c.encDNS, s.EncryptedDNS)
	counter(c.behFlows, s.BehaviourWatched, "watched")
	counter(c.behFlows, s.BehaviourScored, "scored")
	counter(c.behFlows, s.BehaviourLost, "lost")
	counter(c.behFlows, s.BehaviourBulk, "bulk")
	counter(c.behFlows, s.BehaviourNoSlot, "no_slot")
	gauge(c.behWatching, float64(s.Watching))
	gauge(c.inspecting, float64(s.Inspecting))
	counter(c.wsFull, s.WSBufferFull)
	counter(c.profChecks, s.ProfileChecks-s.ProfileViolations, "in_profile_or_learning")
	counter(c.profChecks, s.ProfileViolations, "violation")
	counter(c.profLearned, s.ProfileLearned)
	counter(c.profPoisoned, s.ProfilePoisoned)
	counter(c.blocked, s.Blocked)
	counter(c.blockFail, s.BlockFailed)
	counter(c.dnsIncomplete, s.DNSIncomplete)
	counter(c.fragSnapped, s.FragmentsSnapped)
	counter(c.defragDone, s.Defrag.Reassembled)
	counter(c.defragDropped, s.Defrag.Timeout, "timeout")
	counter(c.defragDropped, s.Defrag.Memcap, "memcap")
	counter(c.defragDropped, s.Defrag.TooMany, "too_many")
	counter(c.defragDropped, s.Defrag.Invalid, "invalid")
	counter(c.defragOverlaps, s.Defrag.Overlaps-s.Defrag.OverlapMismatch, "same")
	counter(c.defragOverlaps, s.Defrag.OverlapMismatch, "different")
	gauge(c.defragBytes, float64(s.Defrag.Bytes))
	gauge(c.defragPending, float64(s.Defrag.Datagrams))
}

// NewRegistry returns a registry exposing src plus Go runtime and build metrics.
func NewRegistry(src Source) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(newCollector(src))
	return r
}

// WriteText writes the registry's exposition in the Prometheus text format (replay's
// --metrics-file).
func WriteText(w io.Writer, r prometheus.Gatherer) error {
	mfs, err := r.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
