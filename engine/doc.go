// Package engine owns the per-packet pipeline shared by replay and the live sensor:
// decode → flow table → protocol detectors (Stratum family, DNS, TLS, proxy preambles) →
// detect verdict → alert. It is single-goroutine by design (one engine per capture source) and
// allocation-free for packets of flows that are already classified or carry no payload.
//
// Per flow it inspects at most the first StreamDepth bytes of each direction and stops once
// every detector has decided, after which the flow is counted, not inspected.
package engine
