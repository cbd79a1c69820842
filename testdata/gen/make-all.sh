#!/usr/bin/env bash
# Regenerates every capture in testdata/captures (needs root, node 20, tcpdump,
# dnsmasq, dig (bind9-dnsutils), ethtool, openssl, curl, ncat, danted, tinyproxy, socat, editcap). CI does not run this.
set -euo pipefail
cd "$(dirname "$0")"
(cd node && npm ci --no-audit --no-fund)
for s in s1-stratum.sh s2-xmrig.sh s3-dns.sh s4-eth.sh s5-getwork.sh s6-proxies.sh s7-evasions.sh s9-benign.sh s10-dns-tcp.sh s11-fragments.sh formats.sh; do
  echo "== $s"
  bash "$s"
done
bash expected.sh > ../captures/EXPECTED.tsv
chmod a+r ../captures/*
