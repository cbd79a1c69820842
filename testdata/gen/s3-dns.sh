#!/usr/bin/env bash
# Scenario 3: DNS lookup of a pool name (answered by dnsmasq in the pool
# namespace), then Stratum to the answered IP, in one pcap.
source "$(dirname "$0")/lib.sh"
cd "$NODE_DIR"

dns_run() { # OUT NAME PORT POOLJS MINERJS
  local out=$1 name=$2 port=$3 pooljs=$4 minerjs=$5
  lab_up
  ip netns exec "$NS_P" timeout 30 dnsmasq --no-daemon --no-resolv --no-hosts --listen-address="$POOL_IP" \
    --bind-interfaces --address=/supportxmr.com/$POOL_IP --address=/2miners.com/$POOL_IP \
    --pid-file= --log-facility=/dev/null >/dev/null 2>&1 &
  BG_PIDS+=($!)
  run_bg "$NS_P" node "$pooljs" "$POOL_IP" "$port"
  wait_port "$NS_P" "$POOL_IP" "$port"
  sleep 0.5
  cap_start "$out"
  # The miner resolves the name with the system resolver (getaddrinfo via
  # /etc/netns/<ns>/resolv.conf), as a real miner does, then connects.
  in_miner node "$minerjs" "$name" "$port"
  cap_stop
  lab_down
}

mkdir -p /etc/netns/$NS_M
echo "nameserver $POOL_IP" > /etc/netns/$NS_M/resolv.conf
trap 'lab_down; rm -rf /etc/netns/'$NS_M EXIT

dns_run "$CAP_DIR/mining-dns-supportxmr-xmrig-3333.pcap" pool.supportxmr.com 3333 cryptonote-pool.js xmrig-driver.js
dns_run "$CAP_DIR/mining-dns-2miners-stratum-client-4444.pcap" xmr.2miners.com 4444 stratum-pool.js stratum-client-miner.js
