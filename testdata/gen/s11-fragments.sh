#!/usr/bin/env bash
# Scenario 11: Stratum that crosses the wire only in IP fragments. Three namespaces: the
# miner (10.77.0.1) runs TCP without DF (net.ipv4.ip_no_pmtu_disc=1, which any container
# may set in its own netns); a router namespace forwards it to the pool (10.77.1.2) over a
# 96-byte-MTU link, so the router's kernel fragments every segment; the pool advertises a
# 1,400-byte MSS so segments stay larger than that link. Captured on the pool's veth, where
# only fragments arrive. The miner's bytes are npm stratum-client 1.1.0's, replayed from
# mining-stratum-client-3333.pcap one message at a time (bash /dev/tcp); the pool answers
# each with one line (python3).
set -euo pipefail
GEN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CAP_DIR="$(cd "$GEN_DIR/../captures" && pwd)"
M=mgt-miner R=mgt-router P=mgt-pool
OUT="$CAP_DIR/mining-stratum-ip-fragments-3333.pcap"
WORK=$(mktemp -d)
down() {
  [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null || true
  for n in $M $R $P; do ip netns del $n 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap down EXIT
down; WORK=$(mktemp -d)

# The client payloads of the original capture, one file per TCP segment.
python3 - "$CAP_DIR/mining-stratum-client-3333.pcap" "$WORK" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
off, n = 24, 0
while off + 16 <= len(data):
    incl = struct.unpack('<I', data[off+8:off+12])[0]
    pkt = data[off+16:off+16+incl]; off += 16 + incl
    if len(pkt) < 34 or pkt[12:14] != b'\x08\x00' or pkt[23] != 6: continue
    ip = pkt[14:]; ihl = (ip[0] & 15) * 4; tot = struct.unpack('>H', ip[2:4])[0]
    tcp = ip[ihl:tot]; doff = (tcp[12] >> 4) * 4
    if struct.unpack('>H', tcp[2:4])[0] == 3333 and len(tcp) > doff:
        open('%s/msg%d' % (sys.argv[2], n), 'wb').write(tcp[doff:]); n += 1
PY

for n in $M $R $P; do ip netns add $n; ip -n $n link set lo up; done
ip link add mgt-m0 netns $M type veth peer name mgt-r0 netns $R
ip link add mgt-r1 netns $R type veth peer name mgt-p0 netns $P
ip -n $M addr add 10.77.0.1/24 dev mgt-m0
ip -n $R addr add 10.77.0.254/24 dev mgt-r0
ip -n $R addr add 10.77.1.254/24 dev mgt-r1
ip -n $P addr add 10.77.1.2/24 dev mgt-p0
for n in $M $R $P; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
ip -n $R link set mgt-r1 mtu 96
ip -n $P link set mgt-p0 mtu 96
for d in "$M mgt-m0" "$R mgt-r0" "$R mgt-r1" "$P mgt-p0"; do set -- $d; ip -n $1 link set $2 up; ip netns exec $1 ethtool -K $2 tso off gso off gro off >/dev/null; done
ip -n $M route add default via 10.77.0.254
ip -n $P route add default via 10.77.1.254 advmss 1400
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
ip netns exec $M sysctl -qw net.ipv4.ip_no_pmtu_disc=1

ip netns exec $P timeout 30 python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("10.77.1.2", 3333)); s.listen(1)
c, _ = s.accept()
while c.recv(4096):
    c.sendall(b"{\"id\":1,\"result\":true,\"error\":null}\n")
' &
SRV=$!
for i in $(seq 100); do ip netns exec $P ss -Hltn "sport = :3333" | grep -q . && break; sleep 0.1; done
rm -f "$OUT"
ip netns exec $P timeout 30 tcpdump -i mgt-p0 -s 0 -U --immediate-mode -n -w "$OUT" 2>"$WORK/tcpdump.err" &
TD=$!
for i in $(seq 50); do grep -q listening "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
sleep 0.2
ip netns exec $M timeout 20 bash -c '
exec 3<>/dev/tcp/10.77.1.2/3333
for f in "$1"/msg*; do cat "$f" >&3; IFS= read -r -t 5 reply <&3; done
exec 3>&-' _ "$WORK"
sleep 1
kill -INT $TD; wait $TD 2>/dev/null || true
chmod a+r "$OUT"
