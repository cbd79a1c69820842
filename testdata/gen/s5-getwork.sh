#!/usr/bin/env bash
# Scenario 5: getwork and getblocktemplate over HTTP, client = curl with
# cgminer/bfgminer-style headers, server = small node http endpoint.
source "$(dirname "$0")/lib.sh"
cd "$NODE_DIR"

lab_up
run_bg "$NS_P" node getwork-server.js "$POOL_IP" 8332
wait_port "$NS_P" "$POOL_IP" 8332
cap_start "$CAP_DIR/mining-getwork-http-8332.pcap"
# cgminer's getwork poll: empty params, then a submit with the solved data.
in_miner curl -sS -u rig1:x -H 'User-Agent: cgminer/2.11.4' -H 'X-Mining-Extensions: longpoll midstate rollntime submitold' \
  -H 'Content-Type: application/json' --data-binary '{"method": "getwork", "params": [], "id":0}' "http://$POOL_IP:8332/" >/dev/null
sleep 0.3
in_miner curl -sS -u rig1:x -H 'User-Agent: cgminer/2.11.4' -H 'X-Mining-Extensions: longpoll midstate rollntime submitold' \
  -H 'Content-Type: application/json' --data-binary '{"method": "getwork", "params": ["00000001c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c49d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d4e8f2a1b1a0c2b3d9a3c01f0000000800000000000000000000000000000000000000000000000000000000000000000000000000000000080020000"], "id":1}' "http://$POOL_IP:8332/" >/dev/null
cap_stop
lab_down

lab_up
run_bg "$NS_P" node getwork-server.js "$POOL_IP" 80
wait_port "$NS_P" "$POOL_IP" 80
cap_start "$CAP_DIR/mining-getblocktemplate-http-80.pcap"
# BIP 22/23 getblocktemplate as bfgminer sends it, on port 80.
in_miner curl -sS -u rig1:x -H 'User-Agent: bfgminer/5.5.0' -H 'X-Mining-Extensions: longpoll midstate rollntime submitold' \
  -H 'X-Mining-Hashrate: 4500000000' -H 'Content-Type: application/json' \
  --data-binary '{"id": 0, "method": "getblocktemplate", "params": [{"capabilities": ["coinbasetxn", "workid", "coinbase/append", "longpoll"], "maxversion": 4, "rules": ["segwit"]}]}' "http://$POOL_IP/" >/dev/null
sleep 0.3
in_miner curl -sS -u rig1:x -H 'User-Agent: bfgminer/5.5.0' -H 'Content-Type: application/json' \
  --data-binary '{"id": 1, "method": "submitblock", "params": ["20000000a054287...00"]}' "http://$POOL_IP/" -o /dev/null -w "submitblock %{http_code}\n"
cap_stop
lab_down
