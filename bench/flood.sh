#!/usr/bin/env bash
# Flood figures of issue 14 (make bench-flood): can a flood of flows blind minerguard, and does
# replay memory stay within the reassembly budgets (streams, and IP fragments)? Prints the
# machine, then one line per figure. Knobs (environment):
#   FLOOD_FLOWS="1000000 100000"  replay flood sizes (flows spread over 10 s, 6 XMRig sessions)
#   FLOOD_RATE=10000 FLOOD_SECONDS=10   live flood (root only; skipped otherwise)
# Every step is bounded by timeout(1). The machine is shared and noisy: compare figures from
# the same run, not across runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=bench/out
mkdir -p "$OUT"
FLOWS=${FLOOD_FLOWS:-1000000 100000}
RATE=${FLOOD_RATE:-10000}
SECONDS_LIVE=${FLOOD_SECONDS:-10}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
go build -o "$OUT/minerguard" ./cmd/minerguard
go build -o "$OUT/gen" ./bench/gen

# metric NAME FILE: a sample's value from a --metrics-file.
metric() { awk -v n="$1" '$1 == n { print $2 }' "$2"; }

# rss: peak resident set of the command /usr/bin/time -v ran, in MiB.
rss() { awk -F: '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }

for n in $FLOWS; do
	pcap=$OUT/flood-$n.pcap
	[[ -f $pcap ]] || timeout 300 "$OUT/gen" -o "$pcap" -flood "$n" -flood-sessions 6 2>/dev/null
	timeout 600 /usr/bin/time -v "$OUT/minerguard" replay -q -o json --metrics-file "$OUT/flood-$n.prom" "$pcap" \
		>"$OUT/flood-$n.json" 2>"$OUT/flood-$n.time"
	alerted=$(grep '"detector":"stratum"' "$OUT/flood-$n.json" | grep -o '"src_ip":"10\.77\.1\.[0-9]*"' | sort -u | wc -l)
	p=$OUT/flood-$n.prom
	printf 'replay flood %7d flows/10 s + 6 Stratum sessions: %d/6 alerted, peak RSS %s MiB, %s s, slotless looks %s, deferred %s, reclaimed age %s\n' \
		"$n" "$alerted" "$(rss "$OUT/flood-$n.time")" \
		"$(awk -F': ' '/Elapsed/ { print $2 }' "$OUT/flood-$n.time")" \
		"$(metric 'minerguard_inspect_slotless_total{source="replay"}' "$p")" \
		"$(metric 'minerguard_inspect_deferred_total{source="replay"}' "$p")" \
		"$(metric 'minerguard_inspect_reclaimed_total{reason="age",source="replay"}' "$p")"
done

# 10 k flows × 100 KiB without a newline, generated straight into replay's stdin.
timeout 600 bash -c "'$OUT/gen' -o - -nonewline 10000 2>/dev/null | /usr/bin/time -v '$OUT/minerguard' replay -q -o json --metrics-file '$OUT/nonewline.prom' - >/dev/null 2>'$OUT/nonewline.time'"
printf 'replay 10 k flows × 100 KiB, no newline: peak RSS %s MiB (reassembly budget 256 MiB), budget refusals %s\n' \
	"$(rss "$OUT/nonewline.time")" "$(metric 'minerguard_reassembly_budget_exhausted_total{source="replay"}' "$OUT/nonewline.prom")"

# The same with the defrag memcap (16 MiB, apart from the stream budget) full as well: after the
# flows, 200 k IPv4 datagrams that never complete (one 1 KiB fragment each, from their own
# source and ID), so the memcap evicts the oldest all along while every stream stays open.
timeout 600 bash -c "'$OUT/gen' -o - -nonewline 10000 -fragments 200000 2>/dev/null | /usr/bin/time -v '$OUT/minerguard' replay -q -o json --metrics-file '$OUT/nonewline-frags.prom' - >/dev/null 2>'$OUT/nonewline-frags.time'"
printf 'replay 10 k flows × 100 KiB + 200 k incomplete IP datagrams: peak RSS %s MiB (stream budget 256 MiB + defrag memcap 16 MiB), defrag memcap drops %s, charged at the end %s MiB\n' \
	"$(rss "$OUT/nonewline-frags.time")" "$(metric 'minerguard_defrag_dropped_total{reason="memcap",source="replay"}' "$OUT/nonewline-frags.prom")" \
	"$(metric 'minerguard_defrag_bytes{source="replay"}' "$OUT/nonewline-frags.prom" | awk '{ printf "%.1f", $1 / 1048576 }')"

if [[ $(id -u) == 0 ]]; then
	MG_FLOOD_RATE=$RATE MG_FLOOD_SECONDS=$SECONDS_LIVE timeout 300 \
		go test -count=1 -run '^TestSensorCrossWorkloadFlood$' -v ./sensor/ 2>&1 | grep -E 'flood_linux_test.go|FAIL|^ok ' | sed 's/^ *flood_linux_test.go:[0-9]*: //' || true
else
	echo "live flood: skipped (needs root for namespaces and AF_PACKET)"
fi
