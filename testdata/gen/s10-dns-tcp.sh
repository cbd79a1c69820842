#!/usr/bin/env bash
# Scenario 10: DNS over TCP answers that span many segments. dnsmasq in the pool namespace
# answers pool.supportxmr.com with 40 addresses and xmr.2miners.com with 4,000, both asked
# by dig +tcp +keepopen on ONE connection (two messages each way), with the veth MTU at 540
# so every TCP segment carries at most 500 bytes. Then the miner opens a TCP connection to
# the last address of each answer (refused: no listener; the SYN is what pool-ip judges).
source "$(dirname "$0")/lib.sh"

HOSTS=$(mktemp)
trap 'lab_down; rm -f "$HOSTS"' EXIT
for i in $(seq 100 139); do echo "10.77.0.$i pool.supportxmr.com"; done >"$HOSTS"
for i in $(seq 0 3999); do echo "10.78.$((i >> 8)).$((i & 255)) xmr.2miners.com"; done >>"$HOSTS"

lab_up $(for i in $(seq 100 139); do echo 10.77.0.$i; done)
ip -n "$NS_M" link set mgt-m0 mtu 540
ip -n "$NS_P" link set mgt-p0 mtu 540
# Wire-sized segments: no TSO/GSO on the sender, no GRO on the captured side (ethtool).
ip netns exec "$NS_P" ethtool -K mgt-p0 tso off gso off gro off >/dev/null
ip netns exec "$NS_M" ethtool -K mgt-m0 tso off gso off gro off >/dev/null
ip -n "$NS_M" route add 10.78.0.0/16 dev mgt-m0
ip netns exec "$NS_P" timeout 30 dnsmasq --no-daemon --no-resolv --no-hosts --addn-hosts="$HOSTS" \
  --listen-address="$POOL_IP" --bind-interfaces --pid-file= --log-facility=/dev/null >/dev/null 2>&1 &
BG_PIDS+=($!)
wait_port "$NS_P" "$POOL_IP" 53
cap_start "$CAP_DIR/mining-dns-tcp-40-and-4000-records-500-byte-segments.pcap"
out=$(in_miner dig +tcp +keepopen +tries=1 +time=5 @"$POOL_IP" pool.supportxmr.com A xmr.2miners.com A)
last1=$(awk '$1=="pool.supportxmr.com." && $4=="A" {a=$5} END {print a}' <<<"$out")
last2=$(awk '$1=="xmr.2miners.com." && $4=="A" {a=$5} END {print a}' <<<"$out")
n1=$(grep -c '^pool.supportxmr.com.*IN	A' <<<"$out" || true)
n2=$(grep -c '^xmr.2miners.com.*IN	A' <<<"$out" || true)
echo "dig: $n1 and $n2 A records; last $last1 and $last2" >&2
ip -n "$NS_P" addr add "$last2/32" dev mgt-p0
for a in "$last1" "$last2"; do
  in_miner bash -c "exec 3<>/dev/tcp/$a/3333" 2>/dev/null || true
done
cap_stop
