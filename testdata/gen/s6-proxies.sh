#!/usr/bin/env bash
# Scenario 6: Stratum through a real SOCKS5 server (Dante) and a real HTTP
# CONNECT proxy (tinyproxy), both driven by a real client (ncat), and a
# CoinHive-style web miner over WebSocket to the real coin-hive-stratum relay.
source "$(dirname "$0")/lib.sh"
cd "$NODE_DIR"
PROXY_IP=10.77.0.3
TMPD=$(mktemp -d)
trap 'lab_down; rm -rf "$TMPD"' EXIT

# SOCKS5 (Dante danted) on 10.77.0.3:1080 -> CryptoNote pool 10.77.0.2:3333.
cat > "$TMPD/danted.conf" <<CONF
logoutput: /dev/null
internal: $PROXY_IP port = 1080
external: mgt-p0
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }
socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }
CONF
lab_up "$PROXY_IP"
run_bg "$NS_P" node cryptonote-pool.js "$POOL_IP" 3333
run_bg "$NS_P" danted -f "$TMPD/danted.conf" -N 1 -p "$TMPD/danted.pid"
wait_port "$NS_P" "$POOL_IP" 3333
wait_port "$NS_P" "$PROXY_IP" 1080
cap_start "$CAP_DIR/mining-socks5-xmrig-1080.pcap"
node xmrig-driver.js x 0 --lines | in_miner ncat --proxy "$PROXY_IP:1080" --proxy-type socks5 "$POOL_IP" 3333 >/dev/null || true
cap_stop
[ -f "$TMPD/danted.pid" ] && kill "$(cat "$TMPD/danted.pid")" 2>/dev/null || true
lab_down

# HTTP CONNECT (tinyproxy) on 10.77.0.3:8888 -> Stratum v1 pool 10.77.0.2:3333.
cat > "$TMPD/tinyproxy.conf" <<CONF
Port 8888
Listen $PROXY_IP
Timeout 30
MaxClients 5
Allow 10.77.0.0/24
LogLevel Critical
PidFile "$TMPD/tinyproxy.pid"
CONF
lab_up "$PROXY_IP"
run_bg "$NS_P" node stratum-pool.js "$POOL_IP" 3333
run_bg "$NS_P" tinyproxy -d -c "$TMPD/tinyproxy.conf"
wait_port "$NS_P" "$POOL_IP" 3333
wait_port "$NS_P" "$PROXY_IP" 8888
cap_start "$CAP_DIR/mining-http-connect-stratum-8888.pcap"
node linechat.js lines - - "$GEN_DIR/dialogs/stratum-v1-cgminer.json" | in_miner ncat --proxy "$PROXY_IP:8888" --proxy-type http "$POOL_IP" 3333 >/dev/null || true
cap_stop
lab_down

# Web miner: ws client (miner ns) -> coin-hive-stratum relay (pool ns, 8892).
lab_up
run_bg "$NS_P" node cryptonote-pool.js 127.0.0.1 3333
run_bg "$NS_P" node webminer-proxy.js "$POOL_IP" 8892 127.0.0.1 3333
wait_port "$NS_P" "$POOL_IP" 8892
cap_start "$CAP_DIR/mining-webminer-ws-8892.pcap"
in_miner node webminer-client.js "ws://$POOL_IP:8892/"
cap_stop
lab_down

# Same relay inside the miner's namespace, captured with "-i any" (Linux SLL2):
# the WebSocket leg on lo and the relay's own CryptoNote login to the pool on the veth.
lab_up
run_bg "$NS_P" node cryptonote-pool.js "$POOL_IP" 3333
run_bg "$NS_M" node webminer-proxy.js 127.0.0.1 8892 "$POOL_IP" 3333
wait_port "$NS_P" "$POOL_IP" 3333
wait_port "$NS_M" 127.0.0.1 8892
out="$CAP_DIR/mining-webminer-relay-any-sll2.pcap"
rm -f "$out"
ip netns exec "$NS_M" timeout 60 tcpdump -i any -s 0 -U --immediate-mode -n -w "$out" 2>/tmp/mgt-tcpdump.err &
TCPDUMP_PID=$!
sleep 1
in_miner node webminer-client.js "ws://127.0.0.1:8892/"
cap_stop
lab_down
