#!/usr/bin/env bash
# Regenerates every capture in testdata/captures (needs root, node 20, tcpdump,
# dnsmasq, dig (bind9-dnsutils), ethtool, openssl, curl, ncat, danted, tinyproxy, socat, editcap, microsocks, proxychains4, stunnel4, python3; the real XMRig in /work/shared/miners). CI does not run this.
set -euo pipefail
cd "$(dirname "$0")"
(cd node && npm ci --no-audit --no-fund)
for s in s1-stratum.sh s2-xmrig.sh s3-dns.sh s4-eth.sh s5-getwork.sh s6-proxies.sh s7-evasions.sh s9-benign.sh s10-dns-tcp.sh s11-fragments.sh formats.sh; do
  echo "== $s"
  bash "$s"
done
# Issue 15: real XMRig, "tls"+"sni", through a SOCKS5 proxy (microsocks) that resolves a name on
# no list: only the behaviour of the tunnelled TLS records gives it away.
d=$(mktemp -d); OUT_DIR=$d bash s11-behaviour.sh xmrig-socks5-d120-j20 177 90
mv "$d/xmrig-socks5-d120-j20.pcap" ../captures/mining-socks5-xmrig-tls-unlisted-1080.pcap
# The same through an HTTP CONNECT proxy (tinyproxy; XMRig under proxychains4, which asks for the name).
OUT_DIR=$d bash s11-behaviour.sh xmrig-connect-d120-j20 178 100
mv "$d/xmrig-connect-d120-j20.pcap" ../captures/mining-http-connect-xmrig-tls-unlisted-8888.pcap; rmdir "$d"
bash expected.sh > ../captures/EXPECTED.tsv
chmod a+r ../captures/*
