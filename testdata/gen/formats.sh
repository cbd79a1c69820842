#!/usr/bin/env bash
# Container-format variants of existing captures: pcapng (editcap from
# wireshark-common) and a gzip-compressed pcap. The SLL2 capture is made by
# s6-proxies.sh (tcpdump -i any).
set -euo pipefail
CAP_DIR="$(cd "$(dirname "$0")/../captures" && pwd)"
editcap -F pcapng "$CAP_DIR/mining-stratum-client-3333.pcap" "$CAP_DIR/mining-stratum-client-3333.pcapng"
gzip -9 -n -c "$CAP_DIR/mining-xmrig-login-3333.pcap" > "$CAP_DIR/mining-xmrig-login-3333.pcap.gz"
