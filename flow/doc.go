// Package flow owns the packet hot path between capture and the protocol
// detectors: allocation-free L2–L4 decoding (Decode), a packed
// direction-independent 5-tuple hash scoped by network namespace (flowHash), a
// bounded flow table that expires and evicts by packet time (Table), and
// per-direction in-order reassembly of the first StreamDepth bytes of each
// TCP direction (Stream).
//
// # Decoding
//
// Decode understands Ethernet (with any stack of up to MaxVLANs
// 802.1Q/802.1ad tags), Linux cooked captures (SLL, SLL2), raw IP, and BSD/
// OpenBSD loopback, then IPv4 (options skipped) or IPv6 (extension headers
// walked, chain bounded), then TCP or UDP. It never allocates and never
// panics; every outcome is a Status whose String is a metric label value.
// Frames shorter than the IP length (capture snaplen) still decode, with
// Packet.Snapped set; frames shorter than their own headers are
// ErrTruncated.
//
// IP fragments are counted, not reassembled. The traffic we look for does
// not fragment in practice: Stratum and TLS run over TCP, whose stacks set
// DF and use path-MTU discovery, and DNS over fragmented UDP is rare (and
// modern resolvers avoid it by capping EDNS buffer sizes). Reassembly would
// add per-packet state that an attacker can pin (overlapping-fragment
// tricks, never-completed trains) for no detection gain. So a first
// fragment decodes with its ports (Packet.Fragment == FirstFragment) and a
// later fragment carries no L4 header (LaterFragment); callers count later
// fragments and do not feed them to the table.
//
// # Flows and streams
//
// A Table maps a 5-tuple and scope to a Flow[T], where T is the caller's per-flow detector
// state. The table never holds more than Config.MaxFlows flows: at the cap
// it evicts the least recently seen flow, passing over flows the caller has
// Flagged. Flows expire by packet time (the time passed to Packet and
// Expire), so replaying a capture is deterministic and independent of the
// wall clock.
//
// For TCP, each direction's payload is reassembled into a contiguous prefix
// of at most Config.StreamDepth bytes (Stream.Data). Retransmissions are
// ignored, overlapping data keeps the first copy (Suricata's default
// policy; differing overlaps are counted), out-of-order data is queued up to
// Config.MaxOOOPerDir bytes, and a hole that will never be filled (the peer
// acknowledged past it, or the queue overflowed) is skipped and reported
// through Stream.Gap/Resync so line-oriented parsers resynchronise at the
// next newline. Buffers come from size-classed free lists bounded by
// Config.MaxReassemblyTotal, so the steady state allocates nothing. Once the
// caller sets Flow.Bypass, the flow is only counted and its buffers are
// released.
package flow
