#!/usr/bin/env bash
# Learned-egress-profile captures (issue 5, docs/testing.md L1/L2): a small
# "node" with three workloads (web ×2 replicas, api, worker) doing their
# ordinary jobs through real software, captured on the node's bridge.
#   baseline.pcap      ordinary traffic; cdn.assets.example answers A, then B, then A+B
#   later.pcap         ordinary traffic again, cdn answers C; worker also runs a miner
#                      (clear Stratum to a new name on :3443, TLS Stratum to a bare IP :8443)
#   later-benign.pcap  ordinary traffic a third time, cdn answers B then D; no miner
# Then workloads.txt, EXPECTED.tsv (5-tuples read back from later.pcap) and a
# check that an independent model of the profile (embedded python below)
# reports exactly those flows. Run as root: sudo bash testdata/gen/profiles.sh
# Everything runs in namespaces named mgp-* that this script creates and deletes.
set -euo pipefail

GEN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_DIR="$GEN_DIR/node"
OUT_DIR="$GEN_DIR/../profiles"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
[ -d "$NODE_DIR/node_modules" ] || npm ci --prefix "$NODE_DIR"

# Namespaces. Prefix mgp- so nothing here collides with lib.sh's mgt- lab.
NODE=mgp-node SVC=mgp-svc
WEB1=mgp-web1 WEB2=mgp-web2 API=mgp-api WORKER=mgp-worker
WORKLOAD_NS=("$WEB1" "$WEB2" "$API" "$WORKER")
declare -A NS_IP=([$WEB1]=10.88.1.11 [$WEB2]=10.88.1.12 [$API]=10.88.2.11 [$WORKER]=10.88.3.11)
declare -A NS_GW=([$WEB1]=10.88.1.1 [$WEB2]=10.88.1.1 [$API]=10.88.2.1 [$WORKER]=10.88.3.1)
declare -A NS_PORT=([$WEB1]=mgp-web1 [$WEB2]=mgp-web2 [$API]=mgp-api [$WORKER]=mgp-worker)

# Services netns addresses (10.88.9.0/24, behind the node's uplink 10.88.9.1).
DNS_IP=10.88.9.53
PG_IP=10.88.9.20           # PostgreSQL, by IP literal only (no name anywhere)
PAY_IP=10.88.9.30          # api.payments.example   https
IDP_IP=10.88.9.31          # auth.idp.example       https
QUEUE_IP=10.88.9.40        # queue.jobs.example     https
VAULT_IP=10.88.9.45        # vault.secrets.example  https, /etc/hosts of api only (SNI, no DNS)
CATALOG_IP=10.88.9.50      # catalog.internal.example http :8080
OBJECTS_IP=10.88.9.51      # objects.store.example    http :9000
LICENSE_IP=10.88.9.60      # license.vendor.example   DNS only, nothing listens
CDN_A=10.88.9.101 CDN_B=10.88.9.102 CDN_C=10.88.9.103 CDN_D=10.88.9.104
STATSD_IP=10.88.9.125      # statsd UDP :8125, by IP literal
POOL_IP=10.88.9.77         # metrics-cache.internal.example, clear Stratum :3443 (later only)
TLSPOOL_IP=10.88.9.66      # bare-IP TLS Stratum :8443, no name anywhere (later only)
SVC_IPS=($DNS_IP $PG_IP $PAY_IP $IDP_IP $QUEUE_IP $VAULT_IP $CATALOG_IP $OBJECTS_IP $LICENSE_IP
  $CDN_A $CDN_B $CDN_C $CDN_D $STATSD_IP $POOL_IP $TLSPOOL_IP)

TMPD=""
BG_PIDS=()
DNSMASQ_PID=""
TCPDUMP_PID=""

down() {
  local p ns
  [ -n "$TCPDUMP_PID" ] && kill -INT "$TCPDUMP_PID" 2>/dev/null || true
  for p in "${BG_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${BG_PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  BG_PIDS=()
  DNSMASQ_PID=""
  for ns in "${WORKLOAD_NS[@]}" "$SVC" "$NODE"; do
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  [ -n "$TMPD" ] && rm -rf "$TMPD"
  TMPD=""
}
trap down EXIT

# bg NS CMD...: a long-running server in NS (timeout is only a safety net).
bg() {
  local ns=$1; shift
  ip netns exec "$ns" timeout 900 "$@" &
  BG_PIDS+=($!)
}

wait_port() { # NS PORT [tcp|udp]
  local i flag=-Hltn
  [ "${3:-tcp}" = udp ] && flag=-Hlun
  for i in $(seq 150); do
    # ss, not a probe connection, so no extra flow lands in a capture.
    ip netns exec "$1" ss $flag "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  echo "port $2 in $1 never opened" >&2
  return 1
}

no_v6() { # NS: no IPv6 at all, so no ND/RS/MLD noise in the captures.
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

offloads_off() { # NS IF: wire-sized segments in the capture.
  ip netns exec "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || true
}

lab_up() {
  down
  TMPD=$(mktemp -d)
  chmod 755 "$TMPD"
  local ns a
  ip netns add "$NODE"; no_v6 "$NODE"
  ip netns add "$SVC"; no_v6 "$SVC"
  ip -n "$NODE" link set lo up
  ip -n "$SVC" link set lo up
  ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1

  # The node's workload bridge: one gateway address per workload subnet, so each
  # workload gets its own /24 and all their traffic crosses this one interface.
  ip -n "$NODE" link add mgp-br0 type bridge stp_state 0 forward_delay 0
  ip -n "$NODE" addr add 10.88.1.1/24 dev mgp-br0
  ip -n "$NODE" addr add 10.88.2.1/24 dev mgp-br0
  ip -n "$NODE" addr add 10.88.3.1/24 dev mgp-br0
  ip -n "$NODE" link set mgp-br0 up

  # Uplink to the services netns.
  ip link add mgp-up0 netns "$NODE" type veth peer name eth0 netns "$SVC"
  ip -n "$NODE" addr add 10.88.9.1/24 dev mgp-up0
  for a in "${SVC_IPS[@]}"; do ip -n "$SVC" addr add "$a/24" dev eth0; done
  ip -n "$NODE" link set mgp-up0 up
  ip -n "$SVC" link set eth0 up
  ip -n "$SVC" route add default via 10.88.9.1
  offloads_off "$NODE" mgp-up0; offloads_off "$SVC" eth0

  for ns in "${WORKLOAD_NS[@]}"; do
    ip netns add "$ns"; no_v6 "$ns"
    ip -n "$ns" link set lo up
    ip link add eth0 netns "$ns" type veth peer name "${NS_PORT[$ns]}" netns "$NODE"
    ip -n "$ns" addr add "${NS_IP[$ns]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "${NS_GW[$ns]}"
    ip -n "$NODE" link set "${NS_PORT[$ns]}" master mgp-br0 up
    offloads_off "$ns" eth0; offloads_off "$NODE" "${NS_PORT[$ns]}"
    # Real lookups: glibc in the workload reads this via `ip netns exec`.
    mkdir -p "/etc/netns/$ns"
    echo "nameserver $DNS_IP" >"/etc/netns/$ns/resolv.conf"
  done
  # api reaches vault through a hosts entry (like a Kubernetes hostAlias): the
  # name is only visible in the TLS SNI, never in DNS.
  printf '127.0.0.1 localhost\n%s vault.secrets.example\n' "$VAULT_IP" >"/etc/netns/$API/hosts"
  offloads_off "$NODE" mgp-br0
  sleep 0.5
}

services_up() {
  # One self-signed certificate naming every HTTPS service; clients verify it
  # (--cacert), so names and SNI are checked as in production.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=services.example" \
    -addext "subjectAltName=DNS:api.payments.example,DNS:auth.idp.example,DNS:queue.jobs.example,DNS:vault.secrets.example,DNS:cdn.assets.example,IP:$TLSPOOL_IP" \
    -keyout "$TMPD/key.pem" -out "$TMPD/cert.pem" 2>/dev/null

  # DNS: dnsmasq answers from a hosts file; rotate_cdn rewrites it and sends
  # SIGHUP (dnsmasq re-reads it), as a CDN's authoritative answers change.
  : >"$TMPD/hosts"
  rotate_cdn "$CDN_A"
  ip netns exec "$SVC" dnsmasq --no-daemon --no-resolv --no-hosts --addn-hosts="$TMPD/hosts" --local=/example/ \
    --listen-address="$DNS_IP" --bind-interfaces --local-ttl=300 --pid-file= --log-facility=/dev/null \
    >/dev/null 2>&1 &
  DNSMASQ_PID=$!
  BG_PIDS+=($DNSMASQ_PID)

  local ip
  for ip in $PAY_IP $IDP_IP $QUEUE_IP $VAULT_IP $CDN_A $CDN_B $CDN_C $CDN_D; do
    bg "$SVC" openssl s_server -quiet -www -accept "$ip:443" -cert "$TMPD/cert.pem" -key "$TMPD/key.pem" >/dev/null 2>&1
  done

  mkdir -p "$TMPD/catalog" "$TMPD/objects"
  printf '{"items":[{"sku":"A-100","price":1299},{"sku":"B-200","price":499}],"updated":"2026-03-01T00:00:00Z"}\n' \
    >"$TMPD/catalog/items.json"
  head -c 3000 /dev/zero | tr '\0' 'x' >"$TMPD/objects/job-input.csv"
  bg "$SVC" python3 -m http.server 8080 --bind "$CATALOG_IP" --directory "$TMPD/catalog" >/dev/null 2>&1
  bg "$SVC" python3 -m http.server 9000 --bind "$OBJECTS_IP" --directory "$TMPD/objects" >/dev/null 2>&1

  # statsd sink: a real UDP listener so the datagrams are not answered with ICMP.
  bg "$SVC" socat -u "UDP4-RECV:8125,bind=$STATSD_IP" /dev/null

  # PostgreSQL 15, trust auth for the workload subnets, listening on its IP only.
  mkdir -p "$TMPD/pg"; chown postgres: "$TMPD/pg"
  setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/initdb -D "$TMPD/pg/data" \
    -U app --auth=trust >/dev/null
  echo "host all all 10.88.0.0/16 trust" >>"$TMPD/pg/data/pg_hba.conf"
  bg "$SVC" setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/postgres -D "$TMPD/pg/data" \
    -c listen_addresses="$PG_IP" -c port=5432 -c unix_socket_directories="$TMPD/pg" -c logging_collector=off \
    >/dev/null 2>&1

  # Pools (contacted only in later.pcap): the real npm stratum 0.2.4 Server,
  # clear on metrics-cache.internal.example:3443, and behind ncat --ssl on the
  # bare IP :8443.
  bg "$SVC" node "$NODE_DIR/stratum-pool.js" "$POOL_IP" 3443 >/dev/null 2>&1
  bg "$SVC" node "$NODE_DIR/stratum-pool.js" 127.0.0.1 3336 >/dev/null 2>&1
  bg "$SVC" ncat --ssl --ssl-cert "$TMPD/cert.pem" --ssl-key "$TMPD/key.pem" -l "$TLSPOOL_IP" 8443 --keep-open \
    --sh-exec "exec ncat 127.0.0.1 3336"

  wait_port "$SVC" 53 udp
  for p in 443 8080 9000 5432 3443 3336 8443; do wait_port "$SVC" $p; done
  wait_port "$SVC" 8125 udp
  ip netns exec "$SVC" psql "host=$PG_IP user=app dbname=postgres" -qc \
    "create table jobs(id serial primary key, state text not null default 'queued', created timestamptz default now())" >/dev/null
}

rotate_cdn() { # ADDR...: what cdn.assets.example answers from now on.
  {
    echo "$PAY_IP api.payments.example"
    echo "$IDP_IP auth.idp.example"
    echo "$QUEUE_IP queue.jobs.example"
    echo "$CATALOG_IP catalog.internal.example"
    echo "$OBJECTS_IP objects.store.example"
    echo "$LICENSE_IP license.vendor.example"
    echo "$POOL_IP metrics-cache.internal.example"
    local a; for a in "$@"; do echo "$a cdn.assets.example"; done
  } >"$TMPD/hosts"
  if [ -n "$DNSMASQ_PID" ]; then kill -HUP "$DNSMASQ_PID"; sleep 0.3; fi
}

cap_start() { # FILE
  rm -f "$1"
  ip netns exec "$NODE" timeout 600 tcpdump -i mgp-br0 -s 0 -U --immediate-mode -n -Z root -w "$1" 2>"$TMPD/tcpdump.err" &
  TCPDUMP_PID=$!
  local i
  for i in $(seq 50); do grep -q listening "$TMPD/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  sleep 0.3
}

cap_stop() {
  sleep 1 # last FIN/ACKs
  kill -INT "$TCPDUMP_PID" 2>/dev/null || true
  wait "$TCPDUMP_PID" 2>/dev/null || true
  TCPDUMP_PID=""
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" timeout 30 "$@"; }
https() { local ns=$1; shift; in_ns "$ns" curl -sS --fail --cacert "$TMPD/cert.pem" -o /dev/null "$@"; }
http() { local ns=$1; shift; in_ns "$ns" curl -sS --fail -o /dev/null "$@"; }

# Ordinary jobs. Every name is looked up through dnsmasq by glibc (A + AAAA).
web_job() { # NS WITH_CATALOG
  local ns=$1
  https "$ns" https://cdn.assets.example/app.js
  https "$ns" https://api.payments.example/v1/charges
  if [ "$2" = 1 ]; then
    http "$ns" -H 'Accept: application/json' http://catalog.internal.example:8080/items.json
  fi
}
api_job() {
  https "$API" https://auth.idp.example/oauth2/token
  https "$API" https://vault.secrets.example/v1/secret/db
  in_ns "$API" psql "host=$PG_IP port=5432 user=app dbname=postgres sslmode=disable application_name=api" -qAt \
    -c "insert into jobs default values" -c "select count(*) from jobs where state = 'queued'" >/dev/null
  http "$API" http://catalog.internal.example:8080/items.json
}
worker_job() {
  in_ns "$WORKER" getent ahosts license.vendor.example >/dev/null
  https "$WORKER" https://queue.jobs.example/v1/next
  http "$WORKER" http://objects.store.example:9000/job-input.csv
  https "$WORKER" https://cdn.assets.example/model.bin
  printf 'worker.jobs.done:1|c\nworker.job.ms:%d|ms\n' $((RANDOM % 900 + 100)) | in_ns "$WORKER" socat -u - "UDP4-SENDTO:$STATSD_IP:8125"
}

# round WEB1_CATALOG WEB2_CATALOG [miner]: all workloads at once, as on a node.
round() {
  local pids=()
  web_job "$WEB1" "$1" & pids+=($!)
  web_job "$WEB2" "$2" & pids+=($!)
  api_job & pids+=($!)
  { worker_job; [ "${3:-}" = miner ] && miner || true; } & pids+=($!)
  local p; for p in "${pids[@]}"; do wait "$p"; done
  sleep 0.5
}

# The miner started later in worker.
miner() {
  # (1) real npm stratum-client 1.1.0; it resolves the pool name itself
  # (node dns.lookup → getaddrinfo → dnsmasq).
  in_ns "$WORKER" node "$NODE_DIR/stratum-client-miner.js" metrics-cache.internal.example 3443 >/dev/null
  sleep 0.5
  # (2) the same miner through a local TLS wrapper (as with stunnel): openssl
  # s_client to the bare IP, no SNI (like XMRig's default), no DNS lookup.
  ip netns exec "$WORKER" timeout 20 socat TCP4-LISTEN:3335,bind=127.0.0.1,reuseaddr \
    EXEC:"openssl s_client -quiet -no_ign_eof -noservername -host $TLSPOOL_IP -port 8443" 2>/dev/null &
  local wrapper=$!
  wait_port "$WORKER" 3335
  in_ns "$WORKER" node "$NODE_DIR/stratum-client-miner.js" 127.0.0.1 3335 >/dev/null
  wait "$wrapper" 2>/dev/null || true
}

lab_up
services_up
sleep 1

# Baseline: cdn answers A, then B, then both (A+B in one answer).
cap_start "$OUT_DIR/baseline.pcap"
rotate_cdn "$CDN_A"; round 1 0
rotate_cdn "$CDN_B"; round 1 0
rotate_cdn "$CDN_A" "$CDN_B"; round 1 0
cap_stop

# L1: the same baseline, but the miner (both sessions) already runs in worker
# during learning. Learning on this file must learn neither pool destination
# (detectors flag both flows), so later.pcap then reports the same EXPECTED.tsv.
cap_start "$OUT_DIR/baseline-l1-miner.pcap"
rotate_cdn "$CDN_A"; round 1 0
rotate_cdn "$CDN_B"; round 1 0 miner
rotate_cdn "$CDN_A" "$CDN_B"; round 1 0
cap_stop

# Later: cdn answers C only (same name: not a new destination). Only web2
# fetches the catalog now (the workload learned it from web1: same identity).
# worker starts the miner in the middle round.
rotate_cdn "$CDN_C"
cap_start "$OUT_DIR/later.pcap"
round 0 1
round 0 1 miner
round 0 1
cap_stop

# Later, benign only: cdn answers B, then a never-seen D.
cap_start "$OUT_DIR/later-benign.pcap"
rotate_cdn "$CDN_B"; round 0 1
rotate_cdn "$CDN_D"; round 0 1
cap_stop

down
trap - EXIT

# ---- expected files, read back from the pcaps ----
cd "$OUT_DIR"
cat >workloads.txt <<EOF
10.88.1.0/24=web
10.88.2.0/24=api
10.88.3.0/24=worker
EOF

syn_tuple() { # FILE FILTER → "src\tsport\tdst\tdport" for each SYN
  tcpdump -nnr "$1" "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and ($2)" 2>/dev/null |
    sed -nE 's/.* IP ([0-9.]+)\.([0-9]+) > ([0-9.]+)\.([0-9]+):.*/\1\t\2\t\3\t\4/p' | awk '!seen[$0]++'
}
{
  printf 'workload\tproto\tsrc\tsport\tdst\tdport\twhy\n'
  t=$(syn_tuple later.pcap "dst host $POOL_IP and dst port 3443")
  [ "$(wc -l <<<"$t")" = 1 ] && [ -n "$t" ] || { echo "expected one SYN to $POOL_IP:3443, got: $t" >&2; exit 1; }
  printf 'worker\ttcp\t%s\tnew name metrics-cache.internal.example:3443\n' "$t"
  t=$(syn_tuple later.pcap "dst host $TLSPOOL_IP and dst port 8443")
  [ "$(wc -l <<<"$t")" = 1 ] && [ -n "$t" ] || { echo "expected one SYN to $TLSPOOL_IP:8443, got: $t" >&2; exit 1; }
  printf 'worker\ttcp\t%s\tnew ip %s:8443\n' "$t" "$TLSPOOL_IP"
} >EXPECTED.tsv
printf 'workload\tproto\tsrc\tsport\tdst\tdport\twhy\n' >EXPECTED-later-benign.tsv

# ---- independent check: a minimal profile model over the raw pcaps ----
# Learn (workload, destination, port, transport) from baseline.pcap, where the
# destination is the name a DNS answer seen from that workload gave for the
# address, else the TLS SNI, else the address; then list what later.pcap and
# later-benign.pcap add. It must equal EXPECTED.tsv / nothing.
python3 - "$OUT_DIR" <<'PY'
import ipaddress, struct, sys, os
out = sys.argv[1]
wl = [(ipaddress.ip_network(l.split('=')[0]), l.split('=')[1].strip())
      for l in open(os.path.join(out, 'workloads.txt')) if '=' in l]
def workload(ip):
    a = ipaddress.ip_address(ip)
    return next((n for net, n in wl if a in net), None)

def packets(path):
    d = open(path, 'rb').read()
    magic = struct.unpack('<I', d[:4])[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), 'not a little-endian pcap'
    assert struct.unpack('<I', d[20:24])[0] == 1, 'link type must be Ethernet'
    off = 24
    while off + 16 <= len(d):
        _, _, incl, _ = struct.unpack('<IIII', d[off:off+16]); off += 16
        yield d[off:off+incl]; off += incl

def name(b, o):
    """→ (name, offset after it in the record), following compression pointers."""
    labels = []; jumps = 0; end = None
    while True:
        l = b[o]
        if l & 0xc0 == 0xc0:
            if end is None: end = o + 2
            o = ((l & 0x3f) << 8) | b[o+1]; jumps += 1
            if jumps > 20: raise ValueError('DNS compression loop')
            continue
        o += 1
        if l == 0: return '.'.join(labels).lower(), end if end is not None else o
        labels.append(b[o:o+l].decode()); o += l

def skip_name(b, o):
    while True:
        l = b[o]
        if l & 0xc0 == 0xc0: return o + 2
        o += 1 + l
        if l == 0: return o

def dns_answers(b):
    _, flags, qd, an = struct.unpack('>HHHH', b[:8])
    if not flags & 0x8000: return []
    o = 12
    for _ in range(qd): o = skip_name(b, o) + 4
    res = []
    for _ in range(an):
        n, o2 = name(b, o); o = o2
        t, _, _, rdl = struct.unpack('>HHIH', b[o:o+10]); o += 10
        if t == 1: res.append((n, str(ipaddress.ip_address(b[o:o+4]))))
        o += rdl
    return res

def sni(p):
    # TLS record → ClientHello → server_name extension.
    if len(p) < 6 or p[0] != 0x16 or p[5] != 1: return None
    o = 9 + 2 + 32
    o += 1 + p[o]
    o += 2 + struct.unpack('>H', p[o:o+2])[0]
    o += 1 + p[o]
    end = o + 2 + struct.unpack('>H', p[o:o+2])[0]; o += 2
    while o + 4 <= end:
        t, l = struct.unpack('>HH', p[o:o+4]); o += 4
        if t == 0: return p[o+5:o+5+struct.unpack('>H', p[o+3:o+5])[0]].decode().lower()
        o += l
    return None

def flows(path):
    """→ list of (workload, proto, src, sport, dst, dport, key)."""
    names = {}   # (workload, ip) → name, from DNS answers seen by that workload
    fl = {}      # 5-tuple → [workload, key]
    for f in packets(path):
        if len(f) < 34 or f[12:14] != b'\x08\x00': continue
        ihl = (f[14] & 15) * 4; proto = f[23]
        src, dst = str(ipaddress.ip_address(f[26:30])), str(ipaddress.ip_address(f[30:34]))
        l4 = f[14+ihl:]
        if proto not in (6, 17): continue
        sp, dp = struct.unpack('>HH', l4[:4])
        if proto == 6:
            doff = (l4[12] >> 4) * 4; pay = l4[doff:]; syn = l4[13] & 0x12 == 0x02
        else:
            pay = l4[8:]; syn = False
        p = 'tcp' if proto == 6 else 'udp'
        if proto == 17 and sp == 53 and workload(dst):
            for n, a in dns_answers(pay): names[(workload(dst), a)] = n
            continue
        w = workload(src)
        if not w: continue
        t = (p, src, sp, dst, dp)
        if t not in fl and (syn or proto == 17):
            fl[t] = [w, names.get((w, dst), dst)]
        if t in fl and proto == 6 and pay:
            s = sni(pay)
            if s and fl[t][1] == dst: fl[t][1] = s
    return [(w, p, s, sp, d, dp, k) for (p, s, sp, d, dp), (w, k) in fl.items()]

base = flows(os.path.join(out, 'baseline.pcap'))
learned = {(w, k, dp, p) for w, p, s, sp, d, dp, k in base}
print('baseline: %d flows; learned entries per workload: %s' % (len(base),
      {w: sum(1 for e in learned if e[0] == w) for _, w in wl}), file=sys.stderr)
with open(os.path.join(out, 'baseline-profile.tsv'), 'w') as fh:
    print('workload\tdest\tport\tproto', file=fh)
    for e in sorted(learned, key=str): print(*e, sep='\t', file=fh)

def new(path):
    fs = flows(os.path.join(out, path))
    return fs, sorted((w, p, s, str(sp), d, str(dp)) for w, p, s, sp, d, dp, k in fs if (w, k, dp, p) not in learned)

# The data must discriminate: a model keyed by address only (no names) would
# flag every rotated CDN flow, and one keyed by replica instead of workload
# would flag web2's catalog fetches.
def diff(path, key):
    lrn = {key(f) for f in base}
    return {(f[0], f[4]) for f in flows(os.path.join(out, path)) if key(f) not in lrn}
by_ip = diff('later.pcap', lambda f: (f[0], f[4], f[5], f[1]))
assert by_ip == {('web', '10.88.9.103'), ('worker', '10.88.9.103'), ('worker', '10.88.9.66'), ('worker', '10.88.9.77')}, by_ip
by_ip = diff('later-benign.pcap', lambda f: (f[0], f[4], f[5], f[1]))
assert by_ip == {('web', '10.88.9.104'), ('worker', '10.88.9.104')}, by_ip
by_replica = diff('later-benign.pcap', lambda f: (f[2], f[6], f[5], f[1]))
assert by_replica == {('web', '10.88.9.50')}, by_replica
# Names learned from DNS, not only from SNI: plain-HTTP destinations are names.
assert ('web', 'catalog.internal.example', 8080, 'tcp') in learned and ('worker', 'objects.store.example', 9000, 'tcp') in learned

later, got = new('later.pcap')
want = sorted(tuple(l.rstrip('\n').split('\t')[:6]) for l in list(open(os.path.join(out, 'EXPECTED.tsv')))[1:])
print('later: %d flows, model reports %s' % (len(later), got), file=sys.stderr)
assert got == want, 'model %s != EXPECTED %s' % (got, want)
benign, got = new('later-benign.pcap')
print('later-benign: %d flows, model reports %s' % (len(benign), got), file=sys.stderr)
assert got == [], got
PY
ls -l "$OUT_DIR"
