// Package alert owns what minerguard tells people: EVE-compatible JSON lines (Suricata's alert
// schema, so existing SIEM pipelines take them unchanged, with minerguard's extras in a
// "minerguard" object) and a readable text table for terminals.
package alert
