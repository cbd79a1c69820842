#!/usr/bin/env bash
# Scenario 7: evasions: \u escapes and odd spacing (real npm stratum 0.2.4 pool);
# 1-byte segments (linechat pool, since the npm stratum Server parses each TCP
# chunk as whole lines); capture started mid-session (npm stratum pool).
source "$(dirname "$0")/lib.sh"
cd "$NODE_DIR"

pool_up() { # PORT
  lab_up
  run_bg "$NS_P" node stratum-pool.js "$POOL_IP" "$1"
  wait_port "$NS_P" "$POOL_IP" "$1"
}

pool_up 3333
cap_start "$CAP_DIR/mining-evasion-escapes-spacing-3333.pcap"
in_miner node linechat.js client "$POOL_IP" 3333 "$GEN_DIR/dialogs/evasion-escapes.json"
cap_stop
lab_down

lab_up
run_bg "$NS_P" node linechat.js server "$POOL_IP" 3334 "$GEN_DIR/dialogs/evasion-bytewise.json"
wait_port "$NS_P" "$POOL_IP" 3334
cap_start "$CAP_DIR/mining-evasion-1byte-segments-3334.pcap"
in_miner node linechat.js client "$POOL_IP" 3334 "$GEN_DIR/dialogs/evasion-bytewise.json" --bytewise
cap_stop
lab_down

# Session starts first; tcpdump starts 1.2 s later (after subscribe/authorize/notify).
pool_up 5555
in_miner node linechat.js client "$POOL_IP" 5555 "$GEN_DIR/dialogs/midstream.json" &
CLIENT=$!
sleep 1.2
cap_start "$CAP_DIR/mining-evasion-midstream-5555.pcap"
wait "$CLIENT"
cap_stop
lab_down
