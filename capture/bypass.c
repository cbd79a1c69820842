//go:build ignore

// minerguard capture bypass: a socket filter on every capture ring that hands user space
// only what detection needs, and counts the rest in the kernel.
//
// Per flow (key: scope + canonical 5-tuple) it keeps, in one LRU map shared by every ring,
// where each TCP direction's payload starts (ISN+1 from the SYN, else the first sequence
// number seen) and whether user space marked the flow done. The return value is the number
// of bytes the ring copies, so:
//   - each TCP direction is copied up to `depth` payload bytes, then headers only for
//     SYN/FIN/RST and nothing at all for the rest (bypassed, counted);
//   - DNS (UDP or TCP, port 53) is always copied whole;
//   - other UDP is copied as headers only (user space judges it by destination), nothing
//     once user space marked the flow done;
//   - a flow user space marked done (verdict reached, or depth passed both ways) gets only
//     its SYN/FIN/RST headers;
//   - anything it does not understand (non-IP, fragments, IPv6 extension headers), and any
//     packet whose flow could not be stored, is copied whole: never blind.
// scope and slot are load-time constants: one program is loaded per ring.

#include "../xdp/mg_bpf.h"

char __license[] SEC("license") = "Dual MIT/GPL";

// Canonical flow key: endpoint a sorts before endpoint b (see before()), so both
// directions of a flow find one entry. Addresses are the 16 bytes of the IPv6 address (IPv4
// as ::ffff:a.b.c.d) read as four native words; ports in host order.
struct mg_bp_key {
	__u64 scope;
	__u32 a[4];
	__u32 b[4];
	__u16 pa;
	__u16 pb;
	__u8 proto;
	__u8 pad[3];
};

// Direction 0 is a→b, 1 is b→a.
struct mg_bp_flow {
	__u32 base[2]; // sequence number of the direction's first payload byte
	__u32 cap[2];  // the depth the direction passed (0: not yet): later bytes are not copied
	__u8 seen[2];  // base is known
	__u8 past[2];  // the direction passed its depth
	__u8 done;     // written by user space: nothing more of this flow is needed
	__u8 pad[3];
};

// Per ring (slot), per CPU. Every packet is counted in exactly one of bypassed, cut or
// passed.
struct mg_bp_stats {
	__u64 bypassed_packets; // not copied at all
	__u64 bypassed_bytes;   // their frame bytes
	__u64 cut_packets;      // copied as headers plus the payload bytes still wanted
	__u64 passed_packets;   // copied whole
	__u64 flows;            // flow entries this ring's program created
	__u64 midstream;        // of which first seen without their SYN (older than the capture, or evicted)
	__u64 map_full;         // flow entries that could not be stored: the packet was copied whole
	__u64 not_parsed;       // non-IP, fragments, extension headers, bad headers: copied whole
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct mg_bp_key);
	__type(value, struct mg_bp_flow);
	__uint(max_entries, 65536); // set by the loader (capture.bypass_flows)
} mg_bp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct mg_bp_stats);
	__uint(max_entries, 4096); // set by the loader: one slot per ring
} mg_bp_counters SEC(".maps");

// Per ring (slot): a lower depth while the ring is under pressure (it dropped packets), so
// that new flows' first bytes, SYNs and DNS are not lost behind bulk flows' first 64 KiB;
// 0 = the load-time depth. Written by user space.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4096); // set by the loader, as mg_bp_counters
} mg_bp_depth SEC(".maps");

// Set by the loader before load (CollectionSpec.Variables); volatile so clang keeps the loads.
volatile const __u64 scope = 0;
volatile const __u32 slot = 0;
volatile const __u32 depth = 65536;
volatile const __u32 keep_loopback = 0;

#define LOOPBACK_IFINDEX 1 // every netns's lo (include/net/flow.h)
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
// Largest believable link header before the network header (Ethernet + two VLAN tags and
// then some); a bigger gap means the lengths are not what they seem, and the packet is
// copied whole.
#define MAX_L2 64

// Header fields are read from words loaded in native (little-endian) order: byte i of a
// word w is (w >> 8*i) & 0xff.
#define BYTE(w, i) (((w) >> (8 * (i))) & 0xff)
#define BE16(w, i) ((__u16)(BYTE(w, i) << 8 | BYTE(w, (i) + 1)))

// before orders endpoints the way capture/bypass.go does: address words, then port.
static __always_inline int before(const __u32 *x, __u16 px, const __u32 *y, __u16 py)
{
	if (x[0] != y[0])
		return x[0] < y[0];
	if (x[1] != y[1])
		return x[1] < y[1];
	if (x[2] != y[2])
		return x[2] < y[2];
	if (x[3] != y[3])
		return x[3] < y[3];
	return px < py;
}

struct parsed {
	__u32 src[4];
	__u32 dst[4];
	__u32 l4;  // offset of the transport header from the network header
	__u32 tot; // network header + payload, from the IP header
	__u32 proto;
};

// parse_ip fills p from the network header; -1 when the packet is not one this program
// understands (copied whole).
static __always_inline int parse_ip(struct __sk_buff *skb, struct parsed *p)
{
	__u32 w[10];
	if (skb->protocol == bpf_htons(ETH_P_IP_)) {
		if (bpf_skb_load_bytes_relative(skb, 0, w, 20, BPF_HDR_START_NET) < 0)
			return -1;
		if ((BYTE(w[0], 0) >> 4) != 4)
			return -1;
		__u32 ihl = (BYTE(w[0], 0) & 0x0f) * 4;
		p->tot = BE16(w[0], 2);
		if (ihl < 20 || p->tot < ihl)
			return -1;
		if (BE16(w[1], 2) & 0x3fff) // more fragments, or a fragment offset
			return -1;
		p->proto = BYTE(w[2], 1);
		p->src[2] = p->dst[2] = 0xffff0000; // bytes 00 00 ff ff
		p->src[3] = w[3];
		p->dst[3] = w[4];
		p->l4 = ihl;
		return 0;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6_)) {
		if (bpf_skb_load_bytes_relative(skb, 0, w, 40, BPF_HDR_START_NET) < 0)
			return -1;
		if ((BYTE(w[0], 0) >> 4) != 6)
			return -1;
		__u32 plen = BE16(w[1], 0);
		if (plen == 0) // jumbogram (BIG TCP): the length lives in an extension header
			return -1;
		p->tot = 40 + plen;
		p->proto = BYTE(w[1], 2); // extension headers are not walked: such packets are copied whole
		p->src[0] = w[2];
		p->src[1] = w[3];
		p->src[2] = w[4];
		p->src[3] = w[5];
		p->dst[0] = w[6];
		p->dst[1] = w[7];
		p->dst[2] = w[8];
		p->dst[3] = w[9];
		p->l4 = 40;
		return 0;
	}
	return -1;
}

static __always_inline struct mg_bp_stats *stats(void)
{
	__u32 k = slot;
	return bpf_map_lookup_elem(&mg_bp_counters, &k);
}

static __always_inline __u32 pass(struct __sk_buff *skb, struct mg_bp_stats *st)
{
	if (st)
		st->passed_packets++; // per-CPU: no atomics needed
	return skb->len;
}

static __always_inline __u32 bypass(struct __sk_buff *skb, struct mg_bp_stats *st)
{
	if (st) {
		st->bypassed_packets++;
		st->bypassed_bytes += skb->len;
	}
	return 0;
}

// cut copies the first n bytes of the frame; n at or past its end copies it whole.
static __always_inline __u32 cut(struct __sk_buff *skb, struct mg_bp_stats *st, __u32 n)
{
	if (n >= skb->len)
		return pass(skb, st);
	if (st)
		st->cut_packets++;
	return n;
}

// note_base records where direction dir's payload starts. Constant indices only: clang
// turns a variable index into a stack array into pointer arithmetic the verifier refuses.
static __always_inline void note_base(struct mg_bp_flow *v, __u32 dir, __u32 start)
{
	if (dir) {
		v->base[1] = start;
		v->seen[1] = 1;
	} else {
		v->base[0] = start;
		v->seen[0] = 1;
	}
}

static __always_inline void mark_past(struct mg_bp_flow *v, __u32 dir, __u32 lim)
{
	if (dir) {
		v->past[1] = 1;
		if (!v->cap[1])
			v->cap[1] = lim;
	} else {
		v->past[0] = 1;
		if (!v->cap[0])
			v->cap[0] = lim;
	}
}

SEC("socket")
int minerguard_bypass(struct __sk_buff *skb)
{
	if (!keep_loopback && skb->ifindex == LOOPBACK_IFINDEX)
		return 0; // the workload talking to itself: not captured, not counted
	struct mg_bp_stats *st = stats();
	struct parsed p = {};
	if (parse_ip(skb, &p) < 0 || (p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP) ||
	    p.tot > skb->len || skb->len - p.tot > MAX_L2) {
		if (st)
			st->not_parsed++;
		return pass(skb, st);
	}
	__u32 l2 = skb->len - p.tot; // link header: frame bytes before the network header

	__u32 t[5] = {};
	int err;
	if (p.proto == IPPROTO_TCP)
		err = p.l4 + 20 > p.tot ? -1 : bpf_skb_load_bytes_relative(skb, p.l4, t, 20, BPF_HDR_START_NET);
	else
		err = p.l4 + 8 > p.tot ? -1 : bpf_skb_load_bytes_relative(skb, p.l4, t, 8, BPF_HDR_START_NET);
	if (err < 0) {
		if (st)
			st->not_parsed++;
		return pass(skb, st);
	}
	__u16 sport = BE16(t[0], 0), dport = BE16(t[0], 2);
	if (sport == 53 || dport == 53)
		return pass(skb, st); // DNS, either transport: always whole

	struct mg_bp_key k = {};
	k.scope = scope;
	k.proto = p.proto;
	__u32 dir = 0;
	if (before(p.src, sport, p.dst, dport)) {
		__builtin_memcpy(k.a, p.src, 16);
		__builtin_memcpy(k.b, p.dst, 16);
		k.pa = sport;
		k.pb = dport;
	} else {
		__builtin_memcpy(k.a, p.dst, 16);
		__builtin_memcpy(k.b, p.src, 16);
		k.pa = dport;
		k.pb = sport;
		dir = 1;
	}

	if (p.proto == IPPROTO_UDP) {
		// User space reads only the headers of UDP that is not DNS, and only until it
		// marked the flow done; it never asks the kernel to keep UDP state.
		struct mg_bp_flow *v = bpf_map_lookup_elem(&mg_bp_flows, &k);
		if (v && v->done)
			return bypass(skb, st);
		return cut(skb, st, l2 + p.l4 + 8);
	}

	__u32 thl = (BYTE(t[3], 0) >> 4) * 4;
	if (thl < 20 || p.l4 + thl > p.tot) {
		if (st)
			st->not_parsed++;
		return pass(skb, st);
	}
	__u32 flags = BYTE(t[3], 1);
	__u32 seq = __builtin_bswap32(t[1]);
	__u32 plen = p.tot - p.l4 - thl;
	__u32 hdrs = l2 + p.l4 + thl;
	int syn = flags & TCP_SYN, ctl = flags & (TCP_SYN | TCP_FIN | TCP_RST);
	__u32 start = syn ? seq + 1 : seq; // sequence number of the first payload byte

	struct mg_bp_flow *v;
	if (syn && !(flags & TCP_ACK)) {
		// A new connection, also on the 5-tuple of an old one: start over.
		struct mg_bp_flow nv = {};
		note_base(&nv, dir, start);
		if (bpf_map_update_elem(&mg_bp_flows, &k, &nv, BPF_ANY) < 0) {
			if (st)
				st->map_full++;
			return pass(skb, st);
		}
		if (st)
			st->flows++;
		v = bpf_map_lookup_elem(&mg_bp_flows, &k);
	} else {
		v = bpf_map_lookup_elem(&mg_bp_flows, &k);
		if (!v) {
			struct mg_bp_flow nv = {};
			note_base(&nv, dir, start);
			// NOEXIST: another CPU may have stored it meanwhile; then use theirs.
			long err = bpf_map_update_elem(&mg_bp_flows, &k, &nv, BPF_NOEXIST);
			v = bpf_map_lookup_elem(&mg_bp_flows, &k);
			if (err == 0 && st) {
				st->flows++;
				if (!syn)
					st->midstream++;
			}
		}
	}
	if (!v) {
		if (st)
			st->map_full++;
		return pass(skb, st);
	}
	if (v->done) {
		if (ctl)
			return cut(skb, st, hdrs); // flow ends (and starts) are always seen
		return bypass(skb, st);
	}
	if (dir ? !v->seen[1] : !v->seen[0])
		note_base(v, dir, start);
	if (plen == 0) {
		if (ctl)
			return pass(skb, st);
		// A bare ACK tells detection nothing; while payload is still wanted it is cheap
		// and keeps the flow's timers fresh, once bulk runs it is half the packet rate.
		if (v->past[0] || v->past[1])
			return bypass(skb, st);
		return pass(skb, st);
	}
	__u32 lim = depth;
	__u32 k2 = slot;
	__u32 *pd = bpf_map_lookup_elem(&mg_bp_depth, &k2);
	if (pd && *pd && *pd < lim)
		lim = *pd;
	__u32 base = dir ? v->base[1] : v->base[0];
	__u32 c = dir ? v->cap[1] : v->cap[0];
	__s32 rel = (__s32)(start - base);
	if (rel < 0) {
		// Before the first byte seen (reordering at pickup) while the direction is young;
		// once it passed its depth, 2 GiB on: the signed distance has wrapped.
		if (c)
			return ctl ? cut(skb, st, hdrs) : bypass(skb, st);
		return pass(skb, st);
	}
	// A direction that passed a depth (a lower one under pressure included) stays past
	// it; a retransmission of earlier bytes still comes up.
	if (c && (__u32)rel >= c)
		return ctl ? cut(skb, st, hdrs) : bypass(skb, st);
	if ((__u32)rel >= lim) {
		mark_past(v, dir, lim);
		return ctl ? cut(skb, st, hdrs) : bypass(skb, st);
	}
	__u32 want = lim - (__u32)rel;
	if (plen < want)
		return pass(skb, st);
	mark_past(v, dir, lim);
	return cut(skb, st, hdrs + want);
}
