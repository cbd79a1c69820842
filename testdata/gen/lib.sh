# Shared helpers for the capture generators: a two-namespace lab joined by a
# veth pair, so captured traffic never leaves this machine.
# Addresses: miner side 10.77.0.1, pool side 10.77.0.2 (+ extra aliases).
set -euo pipefail

GEN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CAP_DIR="$(cd "$GEN_DIR/../captures" && pwd)"
NODE_DIR="$GEN_DIR/node"
NS_M=mgt-miner
NS_P=mgt-pool
MINER_IP=10.77.0.1
POOL_IP=10.77.0.2
TCPDUMP_PID=""
BG_PIDS=()

lab_down() {
  local p
  for p in "${BG_PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  BG_PIDS=()
  # Wait for killed servers before removing namespaces.
  sleep 0.3
  ip netns del "$NS_M" 2>/dev/null || true
  ip netns del "$NS_P" 2>/dev/null || true
}

lab_up() {
  lab_down
  ip netns add "$NS_M"
  ip netns add "$NS_P"
  ip link add mgt-m0 netns "$NS_M" type veth peer name mgt-p0 netns "$NS_P"
  ip -n "$NS_M" addr add "$MINER_IP/24" dev mgt-m0
  ip -n "$NS_P" addr add "$POOL_IP/24" dev mgt-p0
  local a
  for a in "$@"; do ip -n "$NS_P" addr add "$a/24" dev mgt-p0; done
  # No IPv6 in the lab: keeps router/neighbour solicitations out of the pcaps.
  ip netns exec "$NS_M" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip netns exec "$NS_P" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip netns exec "$NS_M" sysctl -qw net.ipv6.conf.mgt-m0.disable_ipv6=1
  ip netns exec "$NS_P" sysctl -qw net.ipv6.conf.mgt-p0.disable_ipv6=1
  ip -n "$NS_M" link set lo up
  ip -n "$NS_P" link set lo up
  ip -n "$NS_M" link set mgt-m0 up
  ip -n "$NS_P" link set mgt-p0 up
  # Disable offloads so the capture shows wire-sized segments.
  ip netns exec "$NS_M" sh -c 'command -v ethtool >/dev/null && ethtool -K mgt-m0 tso off gso off gro off >/dev/null 2>&1 || true'
  sleep 0.5
}
trap lab_down EXIT

# run_bg NS CMD...: start a long-running server inside NS.
run_bg() {
  local ns=$1; shift
  ip netns exec "$ns" timeout 60 "$@" &
  BG_PIDS+=($!)
}

# cap_start FILE [extra tcpdump args]: capture on the miner's veth.
cap_start() {
  local out=$1; shift
  rm -f "$out"
  ip netns exec "$NS_M" timeout 120 tcpdump -i mgt-m0 -s 0 -U --immediate-mode -n -w "$out" "$@" 2>/tmp/mgt-tcpdump.err &
  TCPDUMP_PID=$!
  local i
  for i in $(seq 50); do
    grep -q listening /tmp/mgt-tcpdump.err 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.2
}

cap_stop() {
  # Let the last FIN/ACKs arrive; --immediate-mode avoids libpcap's ring-block
  # delay, which otherwise drops the tail of a capture stopped with SIGINT.
  sleep 1
  kill -INT "$TCPDUMP_PID" 2>/dev/null || true
  wait "$TCPDUMP_PID" 2>/dev/null || true
  TCPDUMP_PID=""
}

# wait_port NS IP PORT: wait until a TCP listener is up in NS.
wait_port() {
  local i
  for i in $(seq 100); do
    # ss, not a probe connection, so no extra flow lands in the capture.
    ip netns exec "$1" ss -Hltn "sport = :$3" | grep -q . && return 0
    sleep 0.1
  done
  echo "port $2:$3 never opened" >&2
  return 1
}

in_miner() { ip netns exec "$NS_M" timeout 30 "$@"; }
