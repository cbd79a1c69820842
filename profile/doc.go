// Package profile owns the learned per-workload egress profiles: which destinations
// (domain name when known, else address or prefix; port; transport) each workload talks to,
// the learning → monitoring → enforcing lifecycle, guards against poisoning (detector-flagged
// destinations, a deny list, a minimum replica count), crash-safe persistence in bbolt, and
// export/import as YAML/JSON and as Kubernetes NetworkPolicy / CiliumNetworkPolicy.
//
// A Book holds every profile. Check is the per-flow question ("is this destination in the
// workload's profile?") and does not allocate when the profile exists. Learn records
// observations while a profile is learning; Tick ends learning windows; Commit writes all
// changes since the last Commit in one fsynced bbolt transaction, so after a crash the Book
// reopens exactly as last committed (docs/testing.md L3).
//
// Time is always passed in (packet time in replay, wall time live); the package never reads
// the clock for lifecycle decisions.
package profile
