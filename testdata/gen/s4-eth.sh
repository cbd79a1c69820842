#!/usr/bin/env bash
# Scenario 4: EthereumStratum/1.0.0 and eth-proxy (HAND-WRITTEN from spec:
# no real Ethereum stratum client or pool is published in the reachable registries).
source "$(dirname "$0")/lib.sh"
cd "$NODE_DIR"

chat_run() { # OUT PORT DIALOG [client args]
  local out=$1 port=$2 dlg=$3; shift 3
  lab_up
  run_bg "$NS_P" node linechat.js server "$POOL_IP" "$port" "$dlg"
  wait_port "$NS_P" "$POOL_IP" "$port"
  cap_start "$out"
  in_miner node linechat.js client "$POOL_IP" "$port" "$dlg" "$@"
  cap_stop
  lab_down
}
chat_run "$CAP_DIR/mining-ethstratum-nicehash-3353.pcap" 3353 "$GEN_DIR/dialogs/ethstratum-nicehash.json"
chat_run "$CAP_DIR/mining-eth-proxy-8008.pcap" 8008 "$GEN_DIR/dialogs/eth-proxy.json"
