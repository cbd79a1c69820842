#!/usr/bin/env bash
# Side-by-side throughput benchmark: minerguard replay vs Suricata 7 with the
# ET Open coin-miner rules, timed in the same run on the same capture.
# See bench/README.md. Knobs (environment):
#   BENCH_QUICK=1        one timed run per tool instead of best of 3
#   BENCH_PCAP=FILE      capture to use (default bench/out/mixed.pcap, generated if missing)
#   BENCH_PACKETS=N      packets to generate (default 2000000)
#   BENCH_SEED=S         generator seed (default 1)
#   BENCH_GO_PKGS="..."  packages for the Go micro-benchmarks (default ./flow/ ./engine/)
#   MINERGUARD_SHARED    the shared/ directory (default ../shared from the repo root)
# Exits non-zero only when the benchmark itself cannot run (no Suricata, no
# capture); a minerguard that does not build or run yet is reported and skipped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SHARED=${MINERGUARD_SHARED:-$ROOT/../shared}
RULES_DIR=$SHARED/bench
SURI_YAML=$RULES_DIR/suricata-bench.yaml
SURI_RULES=$RULES_DIR/et-open-coinminer.rules
OUT=bench/out
PCAP=${BENCH_PCAP:-$OUT/mixed.pcap}
PACKETS=${BENCH_PACKETS:-2000000}
SEED=${BENCH_SEED:-1}
GO_PKGS=${BENCH_GO_PKGS:-./flow/ ./engine/}
RUNS=3
[[ ${BENCH_QUICK:-0} == 1 ]] && RUNS=1

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

mkdir -p "$OUT"
[[ -f $SURI_YAML && -f $SURI_RULES ]] || die "missing $SURI_YAML or $SURI_RULES (set MINERGUARD_SHARED)"

# --- Suricata 7 from bookworm-backports, installed when missing -------------
install_suricata() {
	local sudo=""
	[[ $(id -u) == 0 ]] || sudo=sudo
	if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		local uri
		uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
		[[ -n $uri ]] || uri=http://deb.debian.org/debian
		say "adding bookworm-backports ($uri) to apt sources"
		printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" |
			$sudo tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
	fi
	$sudo apt-get update
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports suricata
}
if ! command -v suricata >/dev/null; then
	say "suricata not found: installing from bookworm-backports"
	install_suricata || die "installing suricata failed"
fi
SURI_VERSION=$(suricata -V 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p')
[[ $SURI_VERSION == 7.* ]] || say "warning: Suricata $SURI_VERSION, the reference numbers are for 7.0.x"

# --- minerguard --------------------------------------------------------------
MG_OK=1
say "building bin/minerguard"
if ! go build -o bin/minerguard ./cmd/minerguard 2>"$OUT/minerguard-build.log"; then
	MG_OK=0
	say "minerguard did not build (not implemented yet?); continuing with Suricata only:"
	tail -n 5 "$OUT/minerguard-build.log" | sed 's/^/    /' >&2
fi

WALK_OK=1
go build -o "$OUT/walk" ./bench/walk 2>>"$OUT/minerguard-build.log" || WALK_OK=0

# --- capture -----------------------------------------------------------------
SUMMARY=$PCAP.summary
# A default capture generated with another size is regenerated.
if [[ -z ${BENCH_PCAP:-} && -s $SUMMARY && -s $PCAP ]] && ! grep -q "[: ]packets=$PACKETS " "$SUMMARY"; then
	say "$PCAP was generated with another packet count; regenerating"
	rm -f "$PCAP"
fi
if [[ ! -s $PCAP ]]; then
	say "generating $PCAP ($PACKETS packets, seed $SEED)"
	go build -o "$OUT/gen" ./bench/gen
	# Write under a temporary name so an interrupted run never leaves a short capture behind.
	"$OUT/gen" -o "$PCAP.tmp" -packets "$PACKETS" -seed "$SEED" 2>"$SUMMARY" || die "generator failed: $(cat "$SUMMARY")"
	mv "$PCAP.tmp" "$PCAP"
	touch "$SUMMARY"
	cat "$SUMMARY" >&2
fi
NPKTS="" NBYTES=""
if [[ -s $SUMMARY && ! $PCAP -nt $SUMMARY ]]; then # the summary describes this file
	NPKTS=$(sed -n 's/.*[: ]packets=\([0-9]*\).*/\1/p' "$SUMMARY")
	NBYTES=$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' "$SUMMARY")
fi
if [[ -z $NPKTS ]] && command -v capinfos >/dev/null; then
	IFS=, read -r _ NPKTS NBYTES < <(capinfos -T -m -r -c -d "$PCAP")
fi
[[ -n $NPKTS && -n $NBYTES ]] || die "cannot count packets in $PCAP (no generator summary, no capinfos)"
say "capture: $PCAP, $NPKTS packets, $NBYTES bytes"

# Read the file once so every tool is timed from the page cache, not the disk.
cat "$PCAP" >/dev/null

# --- timing ------------------------------------------------------------------
# best_of NAME DIR CMD...: runs CMD RUNS times in a fresh DIR (stdout to
# DIR/stdout, stderr to DIR/stderr) and records the best wall time in
# SECS[NAME] and the least CPU time (user + sys, from bash's time) in
# CPU[NAME]; a failing run records FAIL[NAME] with its exit code. CPU time is
# what to compare on a shared machine: other jobs stretch the wall time of a
# run, much less the CPU it uses.
declare -A SECS CPU FAIL
best_of() {
	local name=$1 dir=$2 t0 t1 dt rc real user sys cpu
	shift 2
	for ((i = 1; i <= RUNS; i++)); do
		rm -rf "$dir" && mkdir -p "$dir"
		t0=$(date +%s.%N)
		rc=0
		{ TIMEFORMAT='%R %U %S'; time "$@" >"$dir/stdout" 2>"$dir/stderr"; } 2>"$dir/times" || rc=$?
		t1=$(date +%s.%N)
		if ((rc != 0)); then
			FAIL[$name]=$rc
			return 0
		fi
		dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
		if [[ -z ${SECS[$name]:-} ]] || awk -v a="$dt" -v b="${SECS[$name]}" 'BEGIN {exit !(a < b)}'; then
			SECS[$name]=$dt
		fi
		read -r real user sys <"$dir/times"
		cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.3f", u + s}')
		if [[ -z ${CPU[$name]:-} ]] || awk -v a="$cpu" -v b="${CPU[$name]}" 'BEGIN {exit !(a < b)}'; then
			CPU[$name]=$cpu
		fi
		say "$name run $i/$RUNS: ${dt}s wall, ${cpu}s CPU"
	done
}

count_alerts() { # EVE JSON file → number of alert events
	[[ -f $1 ]] || { echo 0; return; }
	grep -c '"event_type": *"alert"' "$1" || true
}

declare -A ALERTS
ROWS=()

ROWS+=("Suricata 7 + ET coin-miner (62 rules)")
best_of "${ROWS[-1]}" "$OUT/suricata-et" \
	suricata -c "$SURI_YAML" -k none --runmode single -r "$PCAP" -S "$SURI_RULES" -l "$OUT/suricata-et"
ALERTS[${ROWS[-1]}]=$(count_alerts "$OUT/suricata-et/eve.json")

ROWS+=("Suricata 7, detection disabled")
best_of "${ROWS[-1]}" "$OUT/suricata-nodetect" \
	suricata -c "$SURI_YAML" -k none --runmode single -r "$PCAP" --disable-detection -l "$OUT/suricata-nodetect"
ALERTS[${ROWS[-1]}]="-"

# The yardstick: reading the file record by record and nothing else (classic pcap only).
WALK="raw pcap record walk (bench/walk)"
PGWALK=""
if ((WALK_OK)) && [[ $(head -c 4 "$PCAP" | od -An -tx1 | tr -d ' ') =~ ^(d4c3b2a1|a1b2c3d4|4d3cb2a1|a1b23c4d)$ ]]; then
	ROWS+=("$WALK")
	best_of "$WALK" "$OUT/walk-run" "$OUT/walk" "$PCAP"
	ALERTS[$WALK]="-"
	# gopacket's pcap reader over the same file: the walk issue 12 was measured with.
	PGWALK="pcapgo record walk (walk -pcapgo)"
	ROWS+=("$PGWALK")
	best_of "$PGWALK" "$OUT/walk-pcapgo" "$OUT/walk" -pcapgo "$PCAP"
	ALERTS[$PGWALK]="-"
	# The same walk through a memory map (no copy; why replay does not map: bench/README).
	ROWS+=("record walk through mmap (walk -mmap)")
	best_of "${ROWS[-1]}" "$OUT/walk-mmap" "$OUT/walk" -mmap "$PCAP"
	ALERTS[${ROWS[-1]}]="-"
fi
# The floor: replay's own reader, decoder and flow table, no detector (bench/walk/floor.go).
FLOOR="floor: read+decode+flow table (walk -floor)"
if ((WALK_OK)); then
	ROWS+=("$FLOOR")
	best_of "$FLOOR" "$OUT/walk-floor" env GOMAXPROCS=1 "$OUT/walk" -floor "$PCAP"
	ALERTS[$FLOOR]="-"
fi

MG1="minerguard replay (GOMAXPROCS=1)"
if ((MG_OK)); then
	ROWS+=("$MG1")
	best_of "$MG1" "$OUT/minerguard-1" env GOMAXPROCS=1 bin/minerguard replay -o json "$PCAP"
	ALERTS[$MG1]=$(count_alerts "$OUT/minerguard-1/stdout")
	ROWS+=("minerguard replay (all cores)")
	best_of "${ROWS[-1]}" "$OUT/minerguard-n" bin/minerguard replay -o json "$PCAP"
	ALERTS[${ROWS[-1]}]=$(count_alerts "$OUT/minerguard-n/stdout")
fi

# Start-up cost, to tell per-packet work from fixed cost: the same commands on
# a 1,000-packet capture (rule loading dominates Suricata's).
TINY=$OUT/tiny.pcap
[[ -s $TINY ]] || { go build -o "$OUT/gen" ./bench/gen && "$OUT/gen" -o "$TINY" -packets 1000 -seed "$SEED" 2>/dev/null; }
best_of "start-up: suricata+ET" "$OUT/startup-suricata" \
	suricata -c "$SURI_YAML" -k none --runmode single -r "$TINY" -S "$SURI_RULES" -l "$OUT/startup-suricata"
if ((MG_OK)); then
	best_of "start-up: minerguard" "$OUT/startup-minerguard" env GOMAXPROCS=1 bin/minerguard replay -o json "$TINY"
fi

# --- report ------------------------------------------------------------------
echo
echo "Capture: $PCAP — $NPKTS packets, $NBYTES bytes; wall time incl. start-up, best of $RUNS; $(nproc) CPUs"
echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-46s %9s %9s %12s %9s %8s\n' tool seconds CPU-s packets/s Gbit/s alerts
for r in "${ROWS[@]}"; do
	if [[ -n ${FAIL[$r]:-} ]]; then
		printf '%-46s %s\n' "$r" "FAILED (exit ${FAIL[$r]}), see stderr under $OUT/"
		continue
	fi
	awk -v n="$r" -v s="${SECS[$r]}" -v c="${CPU[$r]}" -v p="$NPKTS" -v b="$NBYTES" -v a="${ALERTS[$r]}" \
		'BEGIN {printf "%-46s %9.2f %9.2f %12.0f %9.3f %8s\n", n, s, c, p / s, b * 8 / s / 1e9, a}'
done
for r in "start-up: suricata+ET" "start-up: minerguard"; do
	if [[ -n ${FAIL[$r]:-} ]]; then
		printf '%-46s %s\n' "$r" "FAILED (exit ${FAIL[$r]})"
	elif [[ -n ${SECS[$r]:-} ]]; then
		printf '%-46s %9.2f   (same command on a 1,000-packet capture)\n' "$r" "${SECS[$r]}"
	fi
done
SET="${ROWS[0]}"
if ((!MG_OK)); then
	echo "minerguard: not measured (did not build; see $OUT/minerguard-build.log)"
elif [[ -n ${FAIL[$MG1]:-} ]]; then
	echo "minerguard: replay failed (exit ${FAIL[$MG1]}):"
	tail -n 5 "$OUT/minerguard-1/stderr" | sed 's/^/    /'
elif [[ -z ${FAIL[$SET]:-} ]]; then
	awk -v m="${SECS[$MG1]}" -v s="${SECS[$SET]}" -v mc="${CPU[$MG1]}" -v sc="${CPU[$SET]}" \
		'BEGIN {printf "minerguard/Suricata+ET throughput ratio (single core): %.2fx wall, %.2fx CPU (issue 12 goal: >= 10x)\n", s / m, sc / mc}'
fi
if ((MG_OK)) && [[ -z ${FAIL[$MG1]:-} && -n ${SECS[$WALK]:-} && -z ${FAIL[$WALK]:-} ]]; then
	awk -v m="${SECS[$MG1]}" -v w="${SECS[$WALK]}" -v mc="${CPU[$MG1]}" -v wc="${CPU[$WALK]}" \
		'BEGIN {printf "minerguard (single core) time / raw record walk time: %.2fx wall, %.2fx CPU (issue 12 goal: <= 2x)\n", m / w, mc / wc}'
	if [[ -n $PGWALK && -n ${SECS[$PGWALK]:-} && -z ${FAIL[$PGWALK]:-} ]]; then
		awk -v m="${SECS[$MG1]}" -v w="${SECS[$PGWALK]}" -v mc="${CPU[$MG1]}" -v wc="${CPU[$PGWALK]}" \
			'BEGIN {printf "minerguard (single core) time / pcapgo record walk time: %.2fx wall, %.2fx CPU (context: gopacket pcapgo reader, 1 MiB buffer)\n", m / w, mc / wc}'
	fi
	MGN="minerguard replay (all cores)"
	if [[ -n ${SECS[$MGN]:-} && -z ${FAIL[$MGN]:-} && -z ${FAIL[$SET]:-} ]]; then
		awk -v m="${SECS[$MGN]}" -v w="${SECS[$WALK]}" -v s="${SECS[$SET]}" -v mc="${CPU[$MGN]}" -v wc="${CPU[$WALK]}" -v sc="${CPU[$SET]}" \
			'BEGIN {printf "minerguard (all cores, as users run it): %.2fx Suricata+ET single wall, %.2fx its CPU; %.2fx the walk wall, %.2fx CPU\n", s / m, sc / mc, m / w, mc / wc}'
	fi
	if [[ -n ${SECS[$FLOOR]:-} && -z ${FAIL[$FLOOR]:-} ]]; then
		awk -v f="${SECS[$FLOOR]}" -v w="${SECS[$WALK]}" -v fc="${CPU[$FLOOR]}" -v wc="${CPU[$WALK]}" -v m="${SECS[$MG1]}" -v mc="${CPU[$MG1]}" \
			'BEGIN {printf "floor (no detection) / raw record walk: %.2fx wall, %.2fx CPU; minerguard / floor: %.2fx wall, %.2fx CPU\n", f / w, fc / wc, m / f, mc / fc}'
	fi
fi

# --- Go micro-benchmarks -----------------------------------------------------
echo
echo "Go benchmarks (allocs/op) for: $GO_PKGS"
for p in $GO_PKGS; do
	if [[ ! -d $p ]] || ! ls "$p"/*_test.go >/dev/null 2>&1; then
		echo "  $p: no tests, skipped"
		continue
	fi
	if go test -run '^$' -bench . -benchmem "$p" >"$OUT/gobench.log" 2>&1; then
		grep 'allocs/op' "$OUT/gobench.log" | sed 's/^/  /' || echo "  $p: no benchmarks"
	else
		echo "  $p: go test failed:"
		tail -n 5 "$OUT/gobench.log" | sed 's/^/    /'
	fi
done
