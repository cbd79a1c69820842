#!/usr/bin/env bash
# Scenario 11 (issue 15): long-lived TLS sessions for the behaviour detector, from real
# software in throw-away namespaces: XMRig 6.26 with "tls": true, "sni": true to port 443 of a
# name on no list (hosts file, no DNS) through stunnel4 in front of a small pool
# (behaviour/pool.py), at several difficulties and job intervals; benign long-lived TLS:
# mosquitto (MQTT over TLS, keepalive, QoS 1 telemetry and pushed publications), Redis over
# TLS (PING loop, pub/sub), HTTPS polling on one keep-alive connection, HTTP/2 server streams
# with PINGs (node http2). Each run is its own namespace pair, bounded by timeout, and writes
# testdata/behaviour/<name>.pcap (OUT_DIR=DIR: DIR/<name>.pcap).
# xmrig-socks5-d<D>-j<J> is the same XMRig through a SOCKS5 proxy (microsocks) whose request
# names the host: the proxy resolves it in the server namespace, the client namespace has no
# hosts entry and no DNS.
# xmrig-connect-d<D>-j<J> is the same XMRig through an HTTP CONNECT proxy (tinyproxy): XMRig has
# no HTTP-proxy option, so proxychains4 (proxy_dns) runs it and asks the proxy for the name, which
# the proxy resolves in the server namespace. https-connect-<x>-<S> is the benign counterpart: curl
# polling an HTTPS API every S s through the same proxy on one keep-alive tunnel.
#   usage: s11-behaviour.sh NAME IDX SECONDS   (NAME picks the scenario; IDX 1..200 picks 10.78.IDX.0/24)
set -euo pipefail
GEN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${OUT_DIR:-$GEN_DIR/../behaviour}"
mkdir -p "$OUT_DIR"
NAME=$1 IDX=$2 SECS=${3:-100}
C=h8b$IDX-c S=h8b$IDX-s CIP=10.78.$IDX.1 SIP=10.78.$IDX.2
HOST=edge-$IDX.telemetry-cdn.example.org
T=$(mktemp -d)
PIDS=()
down() {
  [ -n "${DEBUG:-}" ] && tail -n 5 "$T"/*.log >&2 # DEBUG=1: show the servers' logs
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  sleep 0.3
  ip netns del "$C" 2>/dev/null || true; ip netns del "$S" 2>/dev/null || true
  rm -rf "/etc/netns/$C" "/etc/netns/$S" "$T"
}
trap down EXIT
ip netns del "$C" 2>/dev/null || true; ip netns del "$S" 2>/dev/null || true
ip netns add "$C"; ip netns add "$S"
ip link add h8v$IDX netns "$C" type veth peer name h8w$IDX netns "$S"
ip -n "$C" addr add $CIP/24 dev h8v$IDX; ip -n "$S" addr add $SIP/24 dev h8w$IDX
for n in $C $S; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip -n $n link set lo up; done
ip -n "$C" link set h8v$IDX up; ip -n "$S" link set h8w$IDX up
ip netns exec "$C" sh -c "command -v ethtool >/dev/null && ethtool -K h8v$IDX tso off gso off gro off >/dev/null 2>&1 || true"
# The client resolves the server by a hosts file: no DNS on the wire.
mkdir -p "/etc/netns/$C"; printf '127.0.0.1 localhost\n%s %s\n' "$SIP" "$HOST" > "/etc/netns/$C/hosts"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=$HOST" \
  -addext "subjectAltName=DNS:$HOST" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
cat "$T/cert.pem" "$T/key.pem" > "$T/both.pem"
bg() { local ns=$1; shift; ip netns exec "$ns" timeout $((SECS + 60)) "$@" >"$T/bg.$RANDOM.log" 2>&1 & PIDS+=($!); }
waitport() { for _ in $(seq 100); do ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0; sleep 0.1; done; echo "port $2 not up" >&2; return 1; }
stunnel_to() { # PORT_BACKEND: TLS on SIP:443 → 127.0.0.1:PORT_BACKEND
  printf 'foreground = yes\npid =\n[p]\naccept = %s:443\nconnect = 127.0.0.1:%s\ncert = %s\nkey = %s\n' "$SIP" "$1" "$T/cert.pem" "$T/key.pem" > "$T/stunnel.conf"
  bg "$S" stunnel4 "$T/stunnel.conf"; waitport "$S" 443
}
https_api() { # an HTTPS JSON API on SIP:443 (https-poll-*, https-connect-*)
  cat > "$T/srv.py" <<'P'
import http.server, ssl, sys, json, random, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        b = json.dumps({"status": "ok", "items": [random.randint(0, 9999) for _ in range(random.randint(1, 30))], "ts": time.time()}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer((sys.argv[1], 443), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = c.wrap_socket(s.socket, server_side=True); s.serve_forever()
P
  bg "$S" python3 "$T/srv.py" "$SIP" "$T/cert.pem" "$T/key.pem"; waitport "$S" 443
}
connect_proxy() { # tinyproxy on SIP:8888 (CONNECT to 443 only); the name resolves at the proxy only
  printf '127.0.0.1 localhost\n' > "/etc/netns/$C/hosts"
  mkdir -p "/etc/netns/$S"; printf '127.0.0.1 localhost\n%s %s\n' "$SIP" "$HOST" > "/etc/netns/$S/hosts"
  printf 'Port 8888\nListen %s\nTimeout 600\nMaxClients 10\nAllow %s\nConnectPort 443\nLogLevel Info\nPidFile "%s"\n' "$SIP" "$CIP" "$T/tinyproxy.pid" > "$T/tinyproxy.conf"
  bg "$S" tinyproxy -d -c "$T/tinyproxy.conf"; waitport "$S" 8888
}
# The backstop timeout leaves room for a slow start (servers, keys) on a loaded machine: the
# capture is stopped explicitly once the scenario ends.
ip netns exec "$C" timeout $((SECS + 60)) tcpdump -i h8v$IDX -s 0 -U -w "$OUT_DIR/$NAME.pcap" 'tcp' >/dev/null 2>&1 & TD=$!
sleep 1
case "$NAME" in
xmrig-socks5-*)
  # The proxy, not the client, resolves the name (XMRig hands it the host): the hosts entry
  # moves to the server namespace, where microsocks listens on SIP:1080.
  diff=$(sed -E 's/.*-d([0-9]+).*/\1/' <<<"$NAME"); every=$(sed -E 's/.*-j([0-9]+).*/\1/' <<<"$NAME")
  printf '127.0.0.1 localhost\n' > "/etc/netns/$C/hosts"
  mkdir -p "/etc/netns/$S"; printf '127.0.0.1 localhost\n%s %s\n' "$SIP" "$HOST" > "/etc/netns/$S/hosts"
  bg "$S" python3 "$GEN_DIR/behaviour/pool.py" 127.0.0.1 3333 --diff "$diff" --job-every "$every"
  waitport "$S" 3333; stunnel_to 3333
  bg "$S" microsocks -i "$SIP" -p 1080; waitport "$S" 1080
  cat > "$T/xmrig.json" <<J
{"autosave": false, "donate-level": 0, "print-time": 10, "randomx": {"mode": "light"},
 "cpu": {"enabled": true, "huge-pages": false, "max-threads-hint": 10, "priority": 0},
 "pools": [{"url": "$HOST:443", "user": "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A", "pass": "x", "tls": true, "sni": true, "keepalive": true, "socks5": "$SIP:1080"}]}
J
  ip netns exec "$C" timeout "$SECS" /work/shared/miners/xmrig -c "$T/xmrig.json" -t 1 --no-color > "$T/xmrig.log" 2>&1 || true
  grep -E "accepted|new job|error|proxy" "$T/xmrig.log" | tail -4 >&2 || true ;;
xmrig-connect-*)
  # proxychains4 hooks XMRig's getaddrinfo (proxy_dns: a placeholder address, no DNS on the wire)
  # and connect, and opens the tunnel with "CONNECT <name>:443"; XMRig then speaks TLS (SNI
  # that name) inside it as it would to the pool.
  diff=$(sed -E 's/.*-d([0-9]+).*/\1/' <<<"$NAME"); every=$(sed -E 's/.*-j([0-9]+).*/\1/' <<<"$NAME")
  connect_proxy
  bg "$S" python3 "$GEN_DIR/behaviour/pool.py" 127.0.0.1 3333 --diff "$diff" --job-every "$every"
  waitport "$S" 3333; stunnel_to 3333
  printf 'strict_chain\nproxy_dns\nremote_dns_subnet 224\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\nhttp %s 8888\n' "$SIP" > "$T/proxychains.conf"
  cat > "$T/xmrig.json" <<J
{"autosave": false, "donate-level": 0, "print-time": 10, "randomx": {"mode": "light"},
 "cpu": {"enabled": true, "huge-pages": false, "max-threads-hint": 10, "priority": 0},
 "pools": [{"url": "$HOST:443", "user": "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A", "pass": "x", "tls": true, "sni": true, "keepalive": true}]}
J
  ip netns exec "$C" timeout "$SECS" proxychains4 -q -f "$T/proxychains.conf" /work/shared/miners/xmrig -c "$T/xmrig.json" -t 1 --no-color > "$T/xmrig.log" 2>&1 || true
  grep -E "accepted|new job|error|proxy" "$T/xmrig.log" | tail -4 >&2 || true ;;
https-connect-*)
  # curl's own CONNECT (-x): one tunnel, reused for every request of the URL range, paced by --rate.
  https_api; connect_proxy
  every=$(sed -E 's/.*-([0-9]+)$/\1/' <<<"$NAME")
  ip netns exec "$C" timeout "$SECS" curl -sS -x "http://$SIP:8888" --cacert "$T/cert.pem" --rate "$((3600 / every))/h" \
    -H "Authorization: Bearer tok$RANDOM$RANDOM" -o /dev/null "https://$HOST/api/v1/status?page=[1-$(((SECS - 4) / every))]" || true ;;
xmrig-*)
  # xmrig-d<DIFF>-j<JOB_EVERY>[-...]
  diff=$(sed -E 's/.*-d([0-9]+).*/\1/' <<<"$NAME"); every=$(sed -E 's/.*-j([0-9]+).*/\1/' <<<"$NAME")
  bg "$S" python3 "$GEN_DIR/behaviour/pool.py" 127.0.0.1 3333 --diff "$diff" --job-every "$every"
  waitport "$S" 3333; stunnel_to 3333
  cat > "$T/xmrig.json" <<J
{"autosave": false, "donate-level": 0, "print-time": 10, "randomx": {"mode": "light"},
 "cpu": {"enabled": true, "huge-pages": false, "max-threads-hint": 10, "priority": 0},
 "pools": [{"url": "$HOST:443", "user": "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A", "pass": "x", "tls": true, "sni": true, "keepalive": true}]}
J
  ip netns exec "$C" timeout "$SECS" /work/shared/miners/xmrig -c "$T/xmrig.json" -t 1 --no-color > "$T/xmrig.log" 2>&1 || true
  grep -E "accepted|new job|error" "$T/xmrig.log" | tail -3 >&2 || true ;;
mqtt-shadow-*)
  # A device shadow: the broker pushes a desired-state document of a few hundred bytes every
  # 8-25 s, the device reports its state (QoS 1) every 10-20 s: the benign look-alike of a
  # pool's job pushes and a miner's submits.
  printf 'user root\nlistener 443 %s\ncertfile %s\nkeyfile %s\nallow_anonymous true\nlistener 1883 127.0.0.1\n' "$SIP" "$T/cert.pem" "$T/key.pem" > "$T/m.conf"
  bg "$S" mosquitto -c "$T/m.conf"; waitport "$S" 443
  bg "$S" bash -c 'while :; do sleep $((8 + RANDOM % 18)); mosquitto_pub -h 127.0.0.1 -q 1 -t "\$aws/things/dev/shadow/update/delta" -m "{\"version\":$RANDOM,\"timestamp\":$(date +%s),\"state\":{\"fw\":{\"url\":\"https://updates.example.org/fw/$(head -c 24 /dev/urandom | xxd -p)\",\"sha256\":\"$(head -c 32 /dev/urandom | xxd -p -c 64)\"},\"interval\":$((RANDOM % 60)),\"led\":\"on\"},\"metadata\":{\"fw\":{\"timestamp\":$(date +%s)}}}"; done'
  bg "$C" mosquitto_sub -h "$HOST" -p 443 --cafile "$T/cert.pem" -k 60 -q 1 -t '$aws/things/dev/shadow/update/delta' -i shadow-sub-$IDX
  ip netns exec "$C" timeout "$SECS" bash -c "while :; do sleep \$((10 + RANDOM % 11)); echo \"{\\\"state\\\":{\\\"reported\\\":{\\\"temp\\\":\$((RANDOM % 40)),\\\"uptime\\\":\$SECONDS,\\\"fw\\\":\\\"\$(head -c 32 /dev/urandom | xxd -p -c 64)\\\"}},\\\"clientToken\\\":\\\"\$RANDOM\$RANDOM\\\"}\"; done | mosquitto_pub -h $HOST -p 443 --cafile $T/cert.pem -k 60 -q 1 -t 'dev/reported' -l" || true ;;
mqtt-*)
  printf 'user root\nlistener 443 %s\ncertfile %s\nkeyfile %s\nallow_anonymous true\nlistener 1883 127.0.0.1\n' "$SIP" "$T/cert.pem" "$T/key.pem" > "$T/m.conf"
  bg "$S" mosquitto -c "$T/m.conf"; waitport "$S" 443
  # The broker side pushes a reading every few seconds to the subscriber (server push after idle).
  bg "$S" bash -c 'while :; do mosquitto_pub -h 127.0.0.1 -q 1 -t cmd/fw -m "{\"v\":$RANDOM,\"ts\":$(date +%s)}"; sleep $((3 + RANDOM % 9)); done'
  bg "$C" mosquitto_sub -h "$HOST" -p 443 --cafile "$T/cert.pem" -k 30 -q 1 -t 'cmd/#' -i dev-$IDX
  # The device publishes telemetry with QoS 1 (acked) on one long-lived connection.
  ip netns exec "$C" timeout "$SECS" bash -c "while :; do echo \"{\\\"temp\\\":\$((RANDOM % 40)),\\\"hum\\\":\$((RANDOM % 100)),\\\"id\\\":\\\"dev-$IDX\\\"}\"; sleep \$((2 + RANDOM % 6)); done | mosquitto_pub -h $HOST -p 443 --cafile $T/cert.pem -k 20 -q 1 -t tele/dev-$IDX -l" || true ;;
cpuminer-*)
  # cpuminer-multi (sha256d, Stratum v1) through a stunnel client in the miner's namespace:
  # cpuminer-d<DIFF_MILLI>-j<JOB_EVERY>
  diff=$(sed -E 's/.*-d([0-9]+).*/\1/' <<<"$NAME"); every=$(sed -E 's/.*-j([0-9]+).*/\1/' <<<"$NAME")
  bg "$S" python3 "$GEN_DIR/behaviour/pool_v1.py" 127.0.0.1 3333 --diff "$(awk "BEGIN{print $diff/1000}")" --job-every "$every"
  waitport "$S" 3333; stunnel_to 3333
  printf 'foreground = yes\npid =\n[c]\nclient = yes\naccept = 127.0.0.1:3334\nconnect = %s:443\nsni = %s\nverifyChain = yes\nCAfile = %s\ncheckHost = %s\n' "$HOST" "$HOST" "$T/cert.pem" "$HOST" > "$T/stc.conf"
  bg "$C" stunnel4 "$T/stc.conf"; waitport "$C" 3334
  ip netns exec "$C" timeout "$SECS" /work/shared/miners/cpuminer -a sha256d -o stratum+tcp://127.0.0.1:3334 -u worker1 -p x -t 1 > "$T/cpuminer.log" 2>&1 || true
  grep -E "accepted|error" "$T/cpuminer.log" | tail -2 >&2 || true ;;
redis-*)
  bg "$S" redis-server --port 0 --tls-port 443 --bind "$SIP" 127.0.0.1 --tls-cert-file "$T/cert.pem" --tls-key-file "$T/key.pem" --tls-auth-clients no --save "" --appendonly no --protected-mode no
  waitport "$S" 443
  bg "$S" bash -c "sleep 2; while :; do redis-cli -h 127.0.0.1 --tls --insecure -p 443 PUBLISH events \"{\\\"order\\\":\$RANDOM,\\\"state\\\":\\\"paid\\\"}\" >/dev/null; sleep \$((2 + RANDOM % 8)); done"
  bg "$C" redis-cli -h "$HOST" -p 443 --tls --cacert "$T/cert.pem" SUBSCRIBE events
  ip netns exec "$C" timeout "$SECS" redis-cli -h "$HOST" -p 443 --tls --cacert "$T/cert.pem" -r 1000 -i 3 INCR hits >/dev/null 2>&1 || true ;;
https-poll-*)
  cat > "$T/cli.py" <<'P'
import http.client, ssl, sys, time, random
c = ssl.create_default_context(cafile=sys.argv[2])
h = http.client.HTTPSConnection(sys.argv[1], 443, context=c)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    h.request("GET", "/api/v1/status?since=%d" % int(time.time()), headers={"Authorization": "Bearer tok%06d" % random.randint(0, 999999)}); h.getresponse().read()
    time.sleep(float(sys.argv[4]) * random.uniform(0.8, 1.2))
P
  https_api
  every=$(sed -E 's/.*-([0-9]+)$/\1/' <<<"$NAME")
  ip netns exec "$C" timeout "$SECS" python3 "$T/cli.py" "$HOST" "$T/cert.pem" "$((SECS - 2))" "$every" || true ;;
h2-stream-*)
  cat > "$T/h2.js" <<'P'
const http2 = require('http2'), fs = require('fs');
const [mode, host, cert, key, secs] = process.argv.slice(2);
if (mode === 'server') {
  const s = http2.createSecureServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)});
  s.on('stream', (st) => { st.respond({':status': 200, 'content-type': 'application/grpc'});
    const t = () => { if (st.closed) return; st.write(Buffer.alloc(20 + Math.floor(Math.random() * 200), 7)); setTimeout(t, 2000 + Math.random() * 8000); }; t(); });
  s.listen(443, host);
} else {
  const c = http2.connect('https://' + host, {ca: fs.readFileSync(cert)});
  const st = c.request({':path': '/watch.v1.Watch/Events', ':method': 'POST', 'content-type': 'application/grpc'});
  st.on('data', () => {}); st.write(Buffer.alloc(40, 1));
  setInterval(() => c.ping(() => {}), 10000);
  setInterval(() => { const r = c.request({':path': '/health.v1.Health/Check', ':method': 'POST', 'content-type': 'application/grpc'}); r.on('data', () => {}); r.end(Buffer.alloc(5, 0)); }, 15000);
  setTimeout(() => process.exit(0), secs * 1000);
}
P
  bg "$S" node "$T/h2.js" server "$SIP" "$T/cert.pem" "$T/key.pem"; waitport "$S" 443
  ip netns exec "$C" timeout "$SECS" node "$T/h2.js" client "$HOST" "$T/cert.pem" x "$((SECS - 2))" || true ;;
ssh-*)
  # OpenSSH on 443 (a name on no list): ssh-idle-<x> is an idle interactive session held by
  # ServerAliveInterval 15 s (keepalive requests both ways); ssh-tail-<x> follows a log that
  # grows by a line every 2-9 s (server output after silence, like a job push).
  ssh-keygen -q -t ed25519 -N '' -f "$T/host" && ssh-keygen -q -t ed25519 -N '' -f "$T/user"
  cp "$T/user.pub" "$T/authorized_keys"; mkdir -p /run/sshd
  printf 'Port 443\nListenAddress %s\nHostKey %s\nAuthorizedKeysFile %s\nPermitRootLogin yes\nStrictModes no\nUsePAM no\nPidFile none\nClientAliveInterval 20\n' "$SIP" "$T/host" "$T/authorized_keys" > "$T/sshd.conf"
  bg "$S" /usr/sbin/sshd -D -e -f "$T/sshd.conf"; waitport "$S" 443
  sshc=(ssh -T -i "$T/user" -p 443 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ServerAliveInterval=15 -o BatchMode=yes "root@$HOST")
  case "$NAME" in
  ssh-idle-*) ip netns exec "$C" timeout "$SECS" "${sshc[@]}" "sleep $SECS" >/dev/null 2>&1 || true ;;
  *) ip netns exec "$C" timeout "$SECS" "${sshc[@]}" "while :; do echo \"\$(date -Is) GET /api/v1/items/\$RANDOM 200 \$RANDOM\"; sleep \$((2 + RANDOM % 8)); done" >/dev/null 2>&1 || true ;;
  esac ;;
*) echo "unknown scenario $NAME" >&2; exit 2 ;;
esac
sleep 1; kill $TD 2>/dev/null || true; wait $TD 2>/dev/null || true
ls -l "$OUT_DIR/$NAME.pcap" >&2
