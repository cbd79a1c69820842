#!/usr/bin/env bash
# Scenario 2: XMRig-dialect CryptoNote login/job/submit/keepalived, clear and in TLS.
source "$(dirname "$0")/lib.sh"
cd "$NODE_DIR"

# Clear-text on 3333: hand-written XMRig 6.21 driver -> hand-written pool.
lab_up
run_bg "$NS_P" node cryptonote-pool.js "$POOL_IP" 3333
wait_port "$NS_P" "$POOL_IP" 3333
cap_start "$CAP_DIR/mining-xmrig-login-3333.pcap"
in_miner node xmrig-driver.js "$POOL_IP" 3333
cap_stop
lab_down

# Pool replies for the TLS runs, timed from the moment the TLS connection is up
# (openssl s_server forwards its stdin to the client).
pool_lines() {
  until ip netns exec "$NS_P" ss -Htn state established "sport = :443" | grep -q .; do sleep 0.05; done
  sleep 0.6
  echo '{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"8f2a6b1e-4d3c","job":{"blob":"1010a0e4d5a006c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2000000007d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d05","job_id":"J1","target":"b88d0600","algo":"rx/0","height":3150001,"seed_hash":"a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3"},"extensions":["algo","nicehash","connect","tls","keepalive"],"status":"OK"}}'
  sleep 0.4
  echo '{"jsonrpc":"2.0","method":"job","params":{"blob":"1010a0e4d5a006c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2000000007d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d05","job_id":"J2","target":"b88d0600","algo":"rx/0","height":3150002,"seed_hash":"a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3a1f3"}}'
  sleep 0.3
  echo '{"id":2,"jsonrpc":"2.0","error":null,"result":{"status":"OK"}}'
  sleep 0.4
  echo '{"id":3,"jsonrpc":"2.0","error":null,"result":{"status":"OK"}}'
  sleep 0.2
  echo '{"id":4,"jsonrpc":"2.0","error":null,"result":{"status":"KEEPALIVED"}}'
  sleep 2
}

TMPD=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=pool.supportxmr.com" -keyout "$TMPD/key.pem" -out "$TMPD/cert.pem" 2>/dev/null

tls_run() { # OUT [s_client SNI args...]
  local out=$1; shift
  lab_up
  pool_lines | ip netns exec "$NS_P" timeout 20 openssl s_server -quiet -accept "$POOL_IP:443" \
    -cert "$TMPD/cert.pem" -key "$TMPD/key.pem" -naccept 1 >/dev/null 2>&1 &
  BG_PIDS+=($!)
  wait_port "$NS_P" "$POOL_IP" 443
  cap_start "$out"
  # XMRig links OpenSSL and sends no ALPN; SNI only when the pool sets "sni": true.
  node xmrig-driver.js x 0 --lines | in_miner openssl s_client -quiet -connect "$POOL_IP:443" "$@" >/dev/null 2>&1 || true
  cap_stop
  lab_down
}
tls_run "$CAP_DIR/mining-xmrig-tls-nosni-443.pcap" -noservername
tls_run "$CAP_DIR/mining-xmrig-tls-sni-supportxmr-443.pcap" -servername pool.supportxmr.com
rm -rf "$TMPD"
