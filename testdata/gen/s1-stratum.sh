#!/usr/bin/env bash
# Scenario 1: Stratum v1 between real npm libraries, on 3333 and on 443.
source "$(dirname "$0")/lib.sh"
cd "$NODE_DIR"

# stratum-client 1.1.0 (miner) -> stratum 0.2.4 Server (pool) on 3333.
lab_up
run_bg "$NS_P" node stratum-pool.js "$POOL_IP" 3333
wait_port "$NS_P" "$POOL_IP" 3333
cap_start "$CAP_DIR/mining-stratum-client-3333.pcap"
in_miner node stratum-client-miner.js "$POOL_IP" 3333
cap_stop
lab_down

# stratum 0.2.4 Client (miner, agent cgminer/4.10.0) -> stratum 0.2.4 Server on 443.
lab_up
run_bg "$NS_P" node stratum-pool.js "$POOL_IP" 443
wait_port "$NS_P" "$POOL_IP" 443
cap_start "$CAP_DIR/mining-stratum-lib-443.pcap"
in_miner node stratum-lib-miner.js "$POOL_IP" 443
cap_stop
lab_down
