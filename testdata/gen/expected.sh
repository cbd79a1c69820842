#!/usr/bin/env bash
# Prints EXPECTED.tsv from the committed captures: the 5-tuples are read back
# from each file (tcpdump -nr), src = the side that opened the connection
# (SYN) or sent the DNS query. A flow whose SYN is not in the capture (mid-stream)
# uses its first client->server packet.
set -euo pipefail
CAP_DIR="$(cd "$(dirname "$0")/../captures" && pwd)"
cd "$CAP_DIR"

rd() { case $1 in *.gz) gzip -dc "$1" | tcpdump -nr - "${@:2}" 2>/dev/null ;; *) tcpdump -nr "$1" "${@:2}" 2>/dev/null ;; esac; }
tuples() { sed -nE 's/.* IP ([0-9.]+)\.([0-9]+) > ([0-9.]+)\.([0-9]+):.*/\1\t\2\t\3\t\4/p' | awk '!seen[$0]++'; }

row() { # FILE EXPECT PROTO FILTER
  local f=$1 expect=$2 proto=$3 filter=$4 out
  if [ "$proto" = tcp ]; then
    out=$(rd "$f" "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and ($filter)" | tuples)
    [ -n "$out" ] || out=$(rd "$f" "tcp and ($filter)" | tuples | head -1)
  else
    out=$(rd "$f" "udp and ($filter)" | tuples)
  fi
  [ -n "$out" ] || { echo "expected.sh: no $proto flow for '$filter' in $f" >&2; exit 1; }
  while IFS= read -r t; do printf '%s\t%s\t%s\t%s\n' "$f" "$proto" "$t" "$expect"; done <<<"$out"
}
benign() { printf '%s\t-\t-\t-\t-\t-\tbenign\n' "$1"; }

printf 'file\tproto\tsrc_ip\tsrc_port\tdest_ip\tdest_port\texpect\n'
row mining-stratum-client-3333.pcap stratum tcp 'dst port 3333'
row mining-stratum-client-3333.pcapng stratum tcp 'dst port 3333'
row mining-stratum-lib-443.pcap stratum tcp 'dst port 443'
row mining-xmrig-login-3333.pcap stratum tcp 'dst port 3333'
row mining-xmrig-login-3333.pcap.gz stratum tcp 'dst port 3333'
row mining-xmrig-tls-nosni-443.pcap tls-no-sni tcp 'dst port 443'
row mining-xmrig-tls-sni-supportxmr-443.pcap pool-sni tcp 'dst port 443'
row mining-dns-supportxmr-xmrig-3333.pcap pool-dns udp 'dst port 53'
row mining-dns-supportxmr-xmrig-3333.pcap stratum tcp 'dst port 3333'
row mining-dns-2miners-stratum-client-4444.pcap pool-dns udp 'dst port 53'
row mining-dns-2miners-stratum-client-4444.pcap stratum tcp 'dst port 4444'
row mining-ethstratum-nicehash-3353.pcap stratum tcp 'dst port 3353'
row mining-eth-proxy-8008.pcap stratum tcp 'dst port 8008'
row mining-getwork-http-8332.pcap getwork tcp 'dst port 8332'
row mining-getblocktemplate-http-80.pcap getblocktemplate tcp 'dst port 80'
row mining-socks5-xmrig-1080.pcap stratum tcp 'dst port 1080'
row mining-http-connect-stratum-8888.pcap stratum tcp 'dst port 8888'
row mining-webminer-ws-8892.pcap webminer tcp 'dst port 8892'
row mining-webminer-relay-any-sll2.pcap webminer tcp 'dst port 8892'
row mining-webminer-relay-any-sll2.pcap stratum tcp 'dst port 3333'
row mining-evasion-escapes-spacing-3333.pcap stratum tcp 'dst port 3333'
row mining-evasion-1byte-segments-3334.pcap stratum tcp 'dst port 3334'
row mining-evasion-midstream-5555.pcap stratum tcp 'dst port 5555'
row mining-dns-tcp-40-and-4000-records-500-byte-segments.pcap pool-dns tcp 'dst port 53'
row mining-dns-tcp-40-and-4000-records-500-byte-segments.pcap pool-ip tcp 'dst port 3333'
row mining-stratum-ip-fragments-3333.pcap stratum tcp 'dst port 3333'
row mining-socks5-xmrig-tls-unlisted-1080.pcap behaviour tcp 'dst port 1080'
row mining-http-connect-xmrig-tls-unlisted-8888.pcap behaviour tcp 'dst port 8888'
for f in benign-*.pcap; do benign "$f"; done
