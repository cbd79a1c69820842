// Package engine owns the per-packet pipeline shared by replay and the live sensor:
// decode → flow table → protocol detectors (Stratum family, DNS, TLS, proxy preambles) →
// detect verdict → alert. It is single-goroutine by design (one engine per capture source) and
// allocation-free for packets of flows that are already classified or carry no payload.
//
// Per flow it inspects at most the first StreamDepth bytes of each direction and stops once
// every detector has decided, after which the flow is counted, not inspected (finish is the
// one place a flow becomes done). That moment is told to Options.Offloader (the live sensor's
// kernel bypass), so the capture below stops copying the flow up.
//
// Inspection cannot be flooded away: every payload of an undecided flow is parsed. Parser
// state kept between packets (a slot, Options.MaxInspecting of them) only saves re-parsing; a
// flow without one is parsed from its stored bytes (the whole stream up to 4 KiB, so a
// message split over segments is seen whole; past that from the last line boundary) and then
// takes a slot or stays deferred until its next payload. Slots are shared fairly per scope
// (netns live; capture interface, or workload with a workload map, in replay), and a slot
// held by a flow that sent nothing decisive within ReclaimAfter or ReclaimLooks segments goes
// to the next flow that needs one. All of it is counted (Stats.Inspect*).
//
// DNS over TCP is the exception to the depth: its messages are read one by one for the
// connection's life (framed streams, see flow.Table.Framed), and a message that never
// completes is counted. IP fragments are reassembled (flow.Defrag) before decoding goes on,
// so a datagram sent only in fragments is inspected like any other.
//
// Replay feeds packets in batches (PacketBatch): the engine decodes and hashes a batch and
// prefetches the flow table's index entries and flows before running each packet in order,
// so a lookup's cache misses overlap with the other packets'; what it reports is what Packet
// one by one reports.
package engine
