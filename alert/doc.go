// Package alert owns what minerguard tells people: EVE JSON lines that validate against
// Suricata's EVE schema (so existing SIEM pipelines take them unchanged; minerguard's extras
// are in alert.context, its MITRE mapping in alert.metadata) and a readable text table for
// terminals.
package alert
