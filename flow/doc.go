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
// IP fragments are reassembled (Defrag), not just counted: a container with
// CAP_NET_RAW can send Stratum in IPv4 or IPv6 fragments, or run TCP with DF off
// through a small-MTU hop, and the bytes then exist whole only in the receiving
// kernel. Decode marks a fragment (Packet.Fragment, FirstFragment decoding its L4
// header when it holds one, LaterFragment not) and points Packet.IP at its IP
// packet; the caller passes every fragment to Defrag.Add and decodes the datagram
// it returns as a raw IP packet, so whole datagrams and reassembled ones meet the
// same pipeline. What an attacker can pin is bounded: a memory cap charged for
// buffers and per-datagram overhead (the oldest incomplete datagrams are dropped
// to stay under it), a per-datagram timeout in packet time, and a cap on
// fragments per datagram, each counted. Overlapping fragments keep the FIRST copy
// of each byte (Suricata's "first" policy, as the TCP streams below) and
// differing overlaps are counted: Linux, which runs the containers we watch,
// discards any datagram with overlapping fragments (since 4.19; RFC 5722 for
// IPv6), so no overlap trick reaches a socket there, and the count is the signal.
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
//
// A caller that parses a message-framed protocol (DNS over TCP) switches the flow to
// framed streams (Table.Framed) and consumes each message once parsed
// (Stream.Consume): such a stream goes on past StreamDepth for the life of the
// connection, holding at most Config.MessageDepth unconsumed bytes.
package flow
