// The few kernel UAPI and libbpf definitions minerguard.c (XDP) and capture/bypass.c (the
// capture socket filter) need, kept here so that the
// object builds the same on every machine with clang alone (no kernel or libbpf headers,
// which differ by distribution and architecture).

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef int __s32;

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

#define bpf_htons(x) __builtin_bswap16(x) // little-endian targets only (bpfel)

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_LPM_TRIE = 11,
};

// bpf_map_update_elem flags.
#define BPF_ANY 0
#define BPF_NOEXIST 1

#define BPF_F_NO_PREALLOC (1U << 0)

enum xdp_action {
	XDP_ABORTED = 0,
	XDP_DROP,
	XDP_PASS,
	XDP_TX,
	XDP_REDIRECT,
};

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

// The leading fields of struct __sk_buff (socket filters); the verifier rewrites context
// accesses by offset, so the rest of the struct can stay out.
struct __sk_buff {
	__u32 len;
	__u32 pkt_type;
	__u32 mark;
	__u32 queue_mapping;
	__u32 protocol;
	__u32 vlan_present;
	__u32 vlan_tci;
	__u32 vlan_proto;
	__u32 priority;
	__u32 ingress_ifindex;
	__u32 ifindex;
};

// bpf_skb_load_bytes_relative start headers.
enum {
	BPF_HDR_START_MAC = 0,
	BPF_HDR_START_NET = 1,
};

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct ethhdr {
	unsigned char h_dest[6];
	unsigned char h_source[6];
	__be16 h_proto;
} __attribute__((packed));

// Helper IDs from include/uapi/linux/bpf.h (stable ABI).
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_skb_load_bytes_relative)(const void *skb, __u32 offset, void *to, __u32 len, __u32 start_header) = (void *)68;
