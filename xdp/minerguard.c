//go:build ignore

// minerguard XDP data path: per-workload flow and destination blocks.
//
// One program object is loaded per attachment; workload_id and view are load-time
// constants. All maps are shared by every attachment (pinned by name by the Go manager).
// Anything that does not parse passes: the sensor must never break traffic it does not
// understand. Each packet increments exactly one counter, so the counters sum to the
// number of packets seen.

#include "mg_bpf.h"

char __license[] SEC("license") = "Dual MIT/GPL";

enum mg_mode_kind {
	MG_MODE_FLAG_ONLY = 0, // count matches, never drop
	MG_MODE_ENFORCE = 1,   // drop on match
	MG_MODE_BYPASS = 2,    // no lookups at all
};

enum mg_view {
	MG_VIEW_EGRESS = 0,  // host-side veth: the packet's source is the workload
	MG_VIEW_INGRESS = 1, // inside the workload netns: the packet's destination is the workload
};

enum mg_counter {
	MG_PASSED = 0,
	MG_DROPPED_FLOW,
	MG_DROPPED_DEST,
	MG_FLAGGED_FLOW,
	MG_FLAGGED_DEST,
	MG_FAILED_OPEN,
	MG_NOT_PARSED,
	MG_BYPASS,
	MG_COUNTER_MAX,
};

struct mg_mode {
	__u32 mode;
	__u32 fail_closed;
};

// LPM key: prefixlen counts bits from pad0 on, so an entry's prefixlen is
// 128 (pad0, workload_id, proto, pad, port: always matched exactly) + the address prefix.
struct mg_dest_key {
	__u32 prefixlen;
	__u32 pad0;
	__u64 workload_id;
	__u8 proto; // 0 = any
	__u8 pad;
	__be16 port; // 0 = any
	__u8 addr[16]; // IPv4 as ::ffff:a.b.c.d
};

// Oriented as the workload sees the flow: src is the workload side.
struct mg_flow_key {
	__u64 workload_id;
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct mg_block {
	__u64 installed_ns;  // written by user space (CLOCK_MONOTONIC)
	__u64 first_drop_ns; // written by the first drop
	__u64 drops;
	__u32 reason; // opaque to the data path
	__u32 pad;
};

struct mg_settings {
	__u64 heartbeat_ns; // CLOCK_MONOTONIC, written by the sensor every second
	__u64 timeout_ns;   // 0 = default 30 s
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct mg_mode);
	__uint(max_entries, 4096);
} mg_modes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct mg_dest_key);
	__type(value, struct mg_block);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} mg_dests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct mg_flow_key);
	__type(value, struct mg_block);
	__uint(max_entries, 65536);
} mg_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, MG_COUNTER_MAX);
} mg_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct mg_settings);
	__uint(max_entries, 1);
} mg_config SEC(".maps");

// Set by the loader before load (CollectionSpec.Variables); volatile so clang keeps the loads.
volatile const __u64 workload_id = 0;
volatile const __u32 view = MG_VIEW_EGRESS;

#define DEFAULT_TIMEOUT_NS (30ULL * 1000 * 1000 * 1000)
#define MAX_VLAN 2
#define MAX_IPV6_EXT 6

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD

// IPv6 extension header numbers skipped on the way to the transport header.
#define NH_HOPOPTS 0
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define NH_AH 51
#define NH_DSTOPTS 60

struct pkt {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 has_ports; // 0 for non-first fragments and protocols without ports
};

static __always_inline void count(enum mg_counter c)
{
	__u32 idx = c;
	__u64 *v = bpf_map_lookup_elem(&mg_counters, &idx);
	if (v)
		*v += 1; // per-CPU: no atomics needed
}

static __always_inline int parse_ports(void *l4, void *end, struct pkt *p)
{
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return 0; // parsed, just no ports
	// TCP and UDP both start with the two 16-bit ports.
	__be16 *ports = l4;
	if ((void *)(ports + 2) > end)
		return -1;
	p->sport = ports[0];
	p->dport = ports[1];
	p->has_ports = 1;
	return 0;
}

static __always_inline int parse_ipv4(void *l3, void *end, struct pkt *p)
{
	__u8 *ip = l3;
	if ((void *)(ip + 20) > end)
		return -1;
	if ((ip[0] >> 4) != 4)
		return -1;
	__u32 ihl = (ip[0] & 0x0f) * 4;
	if (ihl < 20)
		return -1;
	p->proto = ip[9];
	p->src[10] = 0xff;
	p->src[11] = 0xff;
	p->dst[10] = 0xff;
	p->dst[11] = 0xff;
	__builtin_memcpy(&p->src[12], ip + 12, 4);
	__builtin_memcpy(&p->dst[12], ip + 16, 4);
	__u16 frag = ((__u16)ip[6] << 8 | ip[7]) & 0x1fff;
	if (frag != 0)
		return 0; // non-first fragment: no transport header
	void *l4 = (void *)ip + ihl;
	if (l4 > end)
		return -1;
	return parse_ports(l4, end, p);
}

static __always_inline int parse_ipv6(void *l3, void *end, struct pkt *p)
{
	__u8 *ip = l3;
	if ((void *)(ip + 40) > end)
		return -1;
	if ((ip[0] >> 4) != 6)
		return -1;
	__builtin_memcpy(p->src, ip + 8, 16);
	__builtin_memcpy(p->dst, ip + 24, 16);
	__u8 nh = ip[6];
	__u8 *h = ip + 40;
	int i;
	for (i = 0; i < MAX_IPV6_EXT; i++) {
		if (nh != NH_HOPOPTS && nh != NH_ROUTING && nh != NH_FRAGMENT && nh != NH_AH &&
		    nh != NH_DSTOPTS)
			break;
		if ((void *)(h + 8) > end)
			return -1;
		if (nh == NH_FRAGMENT) {
			__u16 off = ((__u16)h[2] << 8 | h[3]) & 0xfff8;
			nh = h[0];
			h += 8;
			if (off != 0) {
				p->proto = nh;
				return 0; // non-first fragment
			}
			continue;
		}
		__u32 len = nh == NH_AH ? ((__u32)h[1] + 2) * 4 : ((__u32)h[1] + 1) * 8;
		nh = h[0];
		h += len;
	}
	if (i == MAX_IPV6_EXT && (nh == NH_HOPOPTS || nh == NH_ROUTING || nh == NH_FRAGMENT ||
				 nh == NH_AH || nh == NH_DSTOPTS))
		return -1; // too many extension headers: give up (fail open)
	p->proto = nh;
	if ((void *)h > end)
		return -1;
	return parse_ports(h, end, p);
}

static __always_inline int parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	__be16 proto = eth->h_proto;
	void *l3 = eth + 1;
	for (int i = 0; i < MAX_VLAN; i++) {
		if (proto != bpf_htons(ETH_P_8021Q_) && proto != bpf_htons(ETH_P_8021AD_))
			break;
		// 802.1Q tag: TCI (2 bytes) then the inner ethertype.
		__be16 *tag = l3;
		if ((void *)(tag + 2) > end)
			return -1;
		proto = tag[1];
		l3 = tag + 2;
	}
	if (proto == bpf_htons(ETH_P_IP_))
		return parse_ipv4(l3, end, p);
	if (proto == bpf_htons(ETH_P_IPV6_))
		return parse_ipv6(l3, end, p);
	return -1; // not IP (ARP, a third VLAN tag, ...)
}

static __always_inline void note_drop(struct mg_block *b)
{
	// A plain store: two CPUs dropping their first packet at the same moment may both
	// write, and the values differ by nanoseconds. Good enough for a latency metric.
	if (b->first_drop_ns == 0)
		b->first_drop_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&b->drops, 1);
}

static __always_inline struct mg_block *lookup_dest(struct mg_dest_key *k, __u8 proto, __be16 port,
						    int has_port)
{
	struct mg_block *b;
	k->proto = proto;
	if (has_port) {
		k->port = port;
		b = bpf_map_lookup_elem(&mg_dests, k);
		if (b)
			return b;
	}
	k->port = 0;
	b = bpf_map_lookup_elem(&mg_dests, k);
	if (b)
		return b;
	if (proto == 0)
		return 0;
	k->proto = 0;
	if (has_port) {
		k->port = port;
		b = bpf_map_lookup_elem(&mg_dests, k);
		if (b)
			return b;
	}
	k->port = 0;
	return bpf_map_lookup_elem(&mg_dests, k);
}

// heartbeat_expired reports whether the sensor stopped writing mg_config.
static __always_inline int heartbeat_expired(void)
{
	__u32 zero = 0;
	struct mg_settings *cfg = bpf_map_lookup_elem(&mg_config, &zero);
	if (!cfg)
		return 1;
	__u64 timeout = cfg->timeout_ns ? cfg->timeout_ns : DEFAULT_TIMEOUT_NS;
	__u64 now = bpf_ktime_get_ns();
	return now > cfg->heartbeat_ns && now - cfg->heartbeat_ns > timeout;
}

SEC("xdp")
int minerguard_xdp(struct xdp_md *ctx)
{
	__u64 wid = workload_id;
	struct mg_mode *m = bpf_map_lookup_elem(&mg_modes, &wid);
	__u32 mode = m ? m->mode : MG_MODE_FLAG_ONLY;
	if (mode == MG_MODE_BYPASS) {
		count(MG_BYPASS);
		return XDP_PASS;
	}

	struct pkt p = {};
	if (parse(ctx, &p) < 0) {
		count(MG_NOT_PARSED);
		return XDP_PASS;
	}

	// Orient the packet as the workload sees it.
	__u8 *wl_addr = p.src, *peer_addr = p.dst;
	__be16 wl_port = p.sport, peer_port = p.dport;
	if (view == MG_VIEW_INGRESS) {
		wl_addr = p.dst;
		peer_addr = p.src;
		wl_port = p.dport;
		peer_port = p.sport;
	}

	struct mg_block *b = 0;
	int is_flow = 0;
	if (p.has_ports) {
		struct mg_flow_key fk = {};
		fk.workload_id = wid;
		__builtin_memcpy(fk.src, wl_addr, 16);
		__builtin_memcpy(fk.dst, peer_addr, 16);
		fk.sport = wl_port;
		fk.dport = peer_port;
		fk.proto = p.proto;
		b = bpf_map_lookup_elem(&mg_flows, &fk);
		is_flow = b != 0;
	}
	if (!b) {
		struct mg_dest_key dk = {};
		dk.prefixlen = 256;
		dk.workload_id = wid;
		__builtin_memcpy(dk.addr, peer_addr, 16);
		b = lookup_dest(&dk, p.proto, peer_port, p.has_ports);
	}
	if (!b) {
		count(MG_PASSED);
		return XDP_PASS;
	}
	if (mode != MG_MODE_ENFORCE) {
		count(is_flow ? MG_FLAGGED_FLOW : MG_FLAGGED_DEST);
		return XDP_PASS;
	}
	if (!(m && m->fail_closed) && heartbeat_expired()) {
		count(MG_FAILED_OPEN);
		return XDP_PASS;
	}
	note_drop(b);
	count(is_flow ? MG_DROPPED_FLOW : MG_DROPPED_DEST);
	return XDP_DROP;
}
