#!/usr/bin/env bash
# Benign corpus: must raise no alert.
source "$(dirname "$0")/lib.sh"
cd "$NODE_DIR"
TMPD=$(mktemp -d)
trap 'lab_down; rm -rf "$TMPD" /etc/netns/'$NS_M EXIT

# Ethereum JSON-RPC: ethers 6 -> ganache 7 on 8545.
lab_up
ip netns exec "$NS_P" timeout 60 node node_modules/.bin/ganache --host "$POOL_IP" --port 8545 --quiet --wallet.deterministic \
  --miner.instamine eager >/dev/null 2>&1 &
BG_PIDS+=($!)
wait_port "$NS_P" "$POOL_IP" 8545
cap_start "$CAP_DIR/benign-ethereum-jsonrpc-ganache-8545.pcap"
in_miner node eth-rpc-client.js "http://$POOL_IP:8545"
cap_stop
lab_down

# LSP: hand-written client -> socat TCP -> vscode-json-languageserver --stdio.
lab_up
ip netns exec "$NS_P" timeout 30 socat TCP-LISTEN:2087,bind="$POOL_IP",reuseaddr \
  EXEC:"node $NODE_DIR/node_modules/vscode-json-languageserver/out/node/jsonServerMain.js --stdio" &
BG_PIDS+=($!)
wait_port "$NS_P" "$POOL_IP" 2087
cap_start "$CAP_DIR/benign-lsp-json-languageserver-2087.pcap"
in_miner node lsp-client.js "$POOL_IP" 2087
cap_stop
lab_down

# Electrum-like line JSON on 50001 and a Bitcoin-Core-style JSON-RPC (not mining) on 8332.
lab_up
run_bg "$NS_P" node linechat.js server "$POOL_IP" 50001 "$GEN_DIR/dialogs/electrum-like.json"
run_bg "$NS_P" node getwork-server.js "$POOL_IP" 8332 bitcoind
wait_port "$NS_P" "$POOL_IP" 50001
wait_port "$NS_P" "$POOL_IP" 8332
cap_start "$CAP_DIR/benign-electrum-and-bitcoind-rpc.pcap"
in_miner node linechat.js client "$POOL_IP" 50001 "$GEN_DIR/dialogs/electrum-like.json"
for m in getblockchaininfo getnetworkinfo getbalance; do
  in_miner curl -sS -u rpcuser:rpcpass -H 'Content-Type: text/plain;' \
    --data-binary "{\"jsonrpc\": \"1.0\", \"id\": \"curltest\", \"method\": \"$m\", \"params\": []}" "http://$POOL_IP:8332/" >/dev/null
done
cap_stop
lab_down

# Ordinary HTTP API and ordinary TLS with SNI api.example.com (curl -> openssl s_server -www).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=api.example.com" -keyout "$TMPD/key.pem" -out "$TMPD/cert.pem" 2>/dev/null
lab_up
ip netns exec "$NS_P" timeout 30 openssl s_server -www -accept "$POOL_IP:443" -cert "$TMPD/cert.pem" -key "$TMPD/key.pem" >/dev/null 2>&1 &
BG_PIDS+=($!)
run_bg "$NS_P" python3 -m http.server 80 --bind "$POOL_IP" --directory "$GEN_DIR/dialogs"
wait_port "$NS_P" "$POOL_IP" 443
wait_port "$NS_P" "$POOL_IP" 80
cap_start "$CAP_DIR/benign-https-sni-and-http-api.pcap"
in_miner curl -sS -k --resolve "api.example.com:443:$POOL_IP" https://api.example.com/v1/status -o /dev/null
in_miner curl -sS -H 'Accept: application/json' "http://$POOL_IP/electrum-like.json" -o /dev/null
cap_stop
lab_down

# DNS for ordinary names via dnsmasq.
mkdir -p /etc/netns/$NS_M
echo "nameserver $POOL_IP" > /etc/netns/$NS_M/resolv.conf
lab_up
ip netns exec "$NS_P" timeout 30 dnsmasq --no-daemon --no-resolv --no-hosts --listen-address="$POOL_IP" \
  --bind-interfaces --address=/example.org/$POOL_IP --address=/debian.org/$POOL_IP --address=/github.com/$POOL_IP \
  --pid-file= --log-facility=/dev/null >/dev/null 2>&1 &
BG_PIDS+=($!)
sleep 1
cap_start "$CAP_DIR/benign-dns-ordinary-names.pcap"
for n in www.example.org deb.debian.org api.github.com; do in_miner getent ahostsv4 "$n" >/dev/null || true; sleep 0.3; done
cap_stop
lab_down
