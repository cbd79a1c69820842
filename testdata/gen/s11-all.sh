#!/usr/bin/env bash
# Runs every scenario of s11-behaviour.sh (as root), then sorts the captures into the train
# and held-out split of testdata/behaviour/README.md. Miners run two at a time (each XMRig or
# cpuminer hashes on a core); the benign services beside them. ~8 minutes.
set -u
G="$(cd "$(dirname "$0")" && pwd)"
B="$G/../behaviour"
S=${SECS:-100}
TRAIN="xmrig-d100-j10 xmrig-d1000-j30 xmrig-d300-j60 xmrig-d150-j15 xmrig-d400-j25 cpuminer-d2-j30
  mqtt-a mqtt-c mqtt-aa mqtt-cc redis-a https-poll-a-5 https-poll-c-3 h2-stream-a h2-stream-c mqtt-shadow-a mqtt-shadow-c"
HELDOUT="xmrig-d50-j20 xmrig-d3000-j45 xmrig-d200-j90 xmrig-d600-j40 xmrig-d80-j35 cpuminer-d1-j20 cpuminer-d4-j45
  mqtt-b mqtt-bb mqtt-dd redis-b https-poll-b-12 https-poll-d-8 https-poll-e-20 h2-stream-b h2-stream-d mqtt-shadow-b mqtt-shadow-d
  ssh-idle-a ssh-idle-b ssh-tail-a ssh-tail-b https-connect-a-5 https-connect-b-15"
run_list() { local i=$1; shift; for n in "$@"; do bash "$G/s11-behaviour.sh" "$n" "$i" "$S"; i=$((i + 1)); done; }
miners() { for n in $TRAIN $HELDOUT; do case $n in xmrig-*|cpuminer-*) echo "$n";; esac; done; }
benign() { for n in $TRAIN $HELDOUT; do case $n in xmrig-*|cpuminer-*) ;; *) echo "$n";; esac; done; }
mapfile -t M < <(miners); mapfile -t N < <(benign)
run_list 10 "${M[@]:0:6}" & run_list 20 "${M[@]:6}" &
run_list 30 "${N[@]:0:6}" & run_list 40 "${N[@]:6:6}" & run_list 50 "${N[@]:12}" &
wait
mkdir -p "$B/train" "$B/heldout"
for n in $TRAIN; do mv "$B/$n.pcap" "$B/train/"; done
for n in $HELDOUT; do mv "$B/$n.pcap" "$B/heldout/"; done
