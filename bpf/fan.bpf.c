// SPDX-License-Identifier: MIT OR GPL-2.0
// The Fan's IPIP in tc eBPF: fand's `ebpf` dataplane (src/dataplane/ebpf/).
//
//   fand_egress   tc egress on the overlay device (the fan's TUN, which the
//                 route OVERLAY dev TUN src BRIDGE_ADDR feeds): validates
//                 like src/dataplane/packet/encap.ts, writes the outer IPv4
//                 header in front of the inner packet and hands it to the
//                 underlay with bpf_redirect_neigh (the kernel routes it and
//                 resolves the next hop).
//   fand_ingress  tc ingress on the underlay device: IPIP for this host is
//                 validated like src/dataplane/packet/decap.ts and
//                 decapsulated; the inner packet goes straight to the
//                 container's port when the port map knows where its address
//                 lives, else into the overlay device as if it had been
//                 received there (which is where the userspace dataplane
//                 delivers it too).
//
// Everything rejected is dropped and counted by reason (fan.h). What the
// programs cannot do in place (outer fragments, outer IP options, packets
// the kernel's helpers refuse to resize) is passed up to fand's slow path,
// the userspace dataplane's raw-socket and TUN worker, which applies the
// same checks.
//
// Build: scripts/build-bpf.mjs (clang -O2 -target bpfel -mcpu=v3). The
// object needs no BTF and no CO-RE: it touches only packet bytes and stable
// __sk_buff fields, so one object runs on every kernel >= 5.10
// (bpf_redirect_neigh, bpf_redirect_peer). Maps are declared the legacy way
// (struct bpf_map_def in section "maps"); fand's loader creates them and
// patches their fds into the programs (src/dataplane/ebpf/elf.ts).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#include "fan.h"

#define SEC(name) __attribute__((section(name), used))
#define INLINE static inline __attribute__((always_inline))

// Helpers, by their number in enum bpf_func_id (include/uapi/linux/bpf.h);
// the kernel version that added each is in brackets.
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static __u32 (*bpf_get_prandom_u32)(void) = (void *)BPF_FUNC_get_prandom_u32;
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)BPF_FUNC_redirect;
static long (*bpf_skb_load_bytes)(const struct __sk_buff *skb, __u32 off, void *to, __u32 len) = (void *)BPF_FUNC_skb_load_bytes; // [4.5]
static long (*bpf_skb_pull_data)(struct __sk_buff *skb, __u32 len) = (void *)BPF_FUNC_skb_pull_data;          // [4.9]
static long (*bpf_skb_change_head)(struct __sk_buff *skb, __u32 len, __u64 flags) = (void *)BPF_FUNC_skb_change_head; // [4.10]
static long (*bpf_skb_adjust_room)(struct __sk_buff *skb, __s32 len_diff, __u32 mode, __u64 flags) =
    (void *)BPF_FUNC_skb_adjust_room;                                                                          // [4.13]
static long (*bpf_redirect_neigh)(__u32 ifindex, void *params, int plen, __u64 flags) =
    (void *)BPF_FUNC_redirect_neigh;                                                                           // [5.10]
static long (*bpf_redirect_peer)(__u32 ifindex, __u64 flags) = (void *)BPF_FUNC_redirect_peer;                 // [5.10]

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ntohs(x) __builtin_bswap16(x)
#define htons(x) __builtin_bswap16(x)
#define ntohl(x) __builtin_bswap32(x)
#define htonl(x) __builtin_bswap32(x)
#else
#define ntohs(x) (x)
#define htons(x) (x)
#define ntohl(x) (x)
#define htonl(x) (x)
#endif

// Maps, created by fand's loader from these definitions (the layout of
// iproute2's and libbpf's legacy struct bpf_map_def).
struct bpf_map_def {
  __u32 type;
  __u32 key_size;
  __u32 value_size;
  __u32 max_entries;
  __u32 map_flags;
};

// One element (key 0): struct fan_config. A hash map, not an array: a hash
// map update replaces the element as a whole (a new element is linked in,
// the old one unlinked; with BPF_F_NO_PREALLOC it is freed after an RCU
// grace period), so a packet never sees half of a reload.
struct bpf_map_def SEC("maps") fand_config = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = sizeof(struct fan_config),
    .max_entries = 1, .map_flags = BPF_F_NO_PREALLOC};
// Row = fan slot; per CPU, so counting needs no atomics. fand sums on demand.
struct bpf_map_def SEC("maps") fand_counters = {
    .type = BPF_MAP_TYPE_PERCPU_ARRAY, .key_size = 4, .value_size = sizeof(struct fan_counters),
    .max_entries = FAN_MAX, .map_flags = 0};
// Which fan a packet belongs to, without a loop over the fans (a loop
// would have the verifier check everything after it once per fan):
// the overlay device's ifindex -> slot (egress),
struct bpf_map_def SEC("maps") fand_tuns = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 4, .max_entries = FAN_MAX, .map_flags = BPF_F_NO_PREALLOC};
// this host's underlay address (host order) -> the first fan's slot on it,
struct bpf_map_def SEC("maps") fand_locals = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 4, .max_entries = FAN_MAX, .map_flags = BPF_F_NO_PREALLOC};
// and overlay prefix -> slot (ingress: the fan whose overlay holds the inner destination).
struct bpf_map_def SEC("maps") fand_overlays = {
    .type = BPF_MAP_TYPE_LPM_TRIE, .key_size = sizeof(struct fan_lpm_key), .value_size = 4, .max_entries = FAN_MAX,
    .map_flags = BPF_F_NO_PREALLOC};
// Container address (network order) -> its port (src/dataplane/ebpf/ports.ts).
struct bpf_map_def SEC("maps") fand_ports = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = sizeof(struct fan_port),
    .max_entries = 65536, .map_flags = BPF_F_NO_PREALLOC};

char _license[] SEC("license") = "Dual MIT/GPL";

#define IP_DF 0x4000
#define IP_FRAG 0x3fff    // MF + offset
#define OUTER 20          // the outer header fand writes and accepts on the fast path
#define L2 ETH_HLEN

INLINE struct fan_config *config(void) {
  __u32 zero = 0;
  struct fan_config *cfg = bpf_map_lookup_elem(&fand_config, &zero);
  return cfg && cfg->magic == FAN_CONFIG_MAGIC ? cfg : 0;
}

INLINE struct fan_counters *counters(__u32 slot) {
  return bpf_map_lookup_elem(&fand_counters, &slot);
}

INLINE int drop(struct fan_counters *c, __u32 reason, __u32 read_ctr, __u32 segs) {
  c->c[reason] += segs;
  c->c[read_ctr] += segs;
  return TC_ACT_SHOT;
}

// RFC 791 header checksum of the 20-byte header at h (checksum field 0).
INLINE __u16 csum20(const __u16 *h) {
  __u32 s = 0;
#pragma unroll
  for (__u32 i = 0; i < 10; i++) s += h[i];
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return (__u16)~s;
}


// Ones'-complement sum of a header's 16-bit words equals 0xffff: its
// checksum is right (RFC 791; byte order does not matter to the sum).
INLINE int sum_ok(__u32 s) {
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return s == 0xffff;
}

INLINE __u32 sum20(const __u16 *h) {
  __u32 s = 0;
#pragma unroll
  for (__u32 i = 0; i < 10; i++) s += h[i];
  return s;
}

// Makes the first N bytes (or the whole packet, if shorter) linear, for
// direct reads. The comparison is against a constant: the verifier lets a
// program with CAP_BPF but not CAP_PERFMON add only constants to packet
// pointers (a variable offset would need a Spectre v1 mask the verifier
// cannot build for packet pointers), so every variable offset below is read
// with bpf_skb_load_bytes instead.
#define LINEAR(skb, N)                                                              \
  ((long)(skb)->data + (N) <= (long)(skb)->data_end ? 0                          \
   : bpf_skb_pull_data((skb), (skb)->len < (N) ? (skb)->len : (N)) ? -1 : 0)

// Inner bytes as the userspace dataplane counts them: each segment of a TCP
// super-packet carries its own IPv4 and TCP headers. `ip` is the IPv4 header
// at packet offset `off`.
INLINE __u64 segment_bytes(struct __sk_buff *skb, __u32 off, __u32 ihl, __u32 total, __u32 segs, __u8 protocol) {
  __u64 bytes = total;
  __u8 doff;
  if (segs > 1 && protocol == IPPROTO_TCP && !bpf_skb_load_bytes(skb, (off + ihl + 12) & 0xffff, &doff, 1))
    bytes += (__u64)(segs - 1) * (ihl + ((doff >> 4) << 2));
  return bytes;
}

// ---------------------------------------------------------------------------
// Egress: the overlay device's packets become IPIP for the underlay host
// that owns their destination.

// The slot in a slot map (fand_tuns, fand_locals, fand_overlays); -1 for none.
INLINE int slot_of(void *map, const void *key) {
  __u32 *v = bpf_map_lookup_elem(map, key);
  return v && *v < FAN_MAX ? (int)*v : -1;
}

SEC("tc/egress")
int fand_egress(struct __sk_buff *skb) {
  struct fan_config *cfg = config();
  if (!cfg) return TC_ACT_OK;  // not configured (yet): the slow path reads the TUN
  __u32 ifindex = skb->ifindex;
  int slot = slot_of(&fand_tuns, &ifindex);
  if (slot < 0 || slot >= FAN_MAX) return TC_ACT_OK;
  struct fan_cfg *f = &cfg->fans[slot];
  if (!(f->flags & FAN_ACTIVE)) return TC_ACT_OK;
  struct fan_counters *c = counters(slot);
  if (!c) return TC_ACT_OK;

  // TCP super-packets (GSO) count as the segments they stand for, as the
  // userspace dataplane counts the segments it cuts.
  __u32 segs = skb->gso_segs ? skb->gso_segs : 1;
  __u32 len = skb->len;  // a TUN has no link-layer header: the packet starts at data
  if (LINEAR(skb, 80)) return TC_ACT_OK;
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;

  // The checks of encapsulateHeader() (src/dataplane/packet/encap.ts), in its order.
  if (len < 20) {
    const __u8 *p = data;
    if (len > 0 && (const void *)(p + 1) <= end && (p[0] >> 4) != 4)
      return drop(c, C_OUT_NOT_IPV4, C_OUT_READ, segs);
    return drop(c, C_OUT_MALFORMED, C_OUT_READ, segs);
  }
  struct iphdr *ip = data;
  if ((void *)(ip + 1) > end) return TC_ACT_OK;
  __u8 vihl = *(__u8 *)ip;
  if ((vihl >> 4) != 4) return drop(c, C_OUT_NOT_IPV4, C_OUT_READ, segs);
  __u32 ihl = (vihl & 15) << 2;
  if (ihl < 20 || ihl > len) return drop(c, C_OUT_MALFORMED, C_OUT_READ, segs);
  __u32 total = ntohs(ip->tot_len);
  if (total > len || total < ihl) return drop(c, C_OUT_MALFORMED, C_OUT_READ, segs);
  // Two 16-bit halves: on a TUN the header starts at the packet's first byte,
  // and kernels for architectures without efficient unaligned access make
  // the verifier insist on aligned direct reads (NET_IP_ALIGN is 2).
  const __u16 *w = (const __u16 *)ip;
  __u32 dst = ((__u32)ntohs(w[8]) << 16) | ntohs(w[9]);
  if ((dst & f->overlay_mask) != f->overlay_net) return drop(c, C_OUT_NOT_OVERLAY, C_OUT_READ, segs);
  if ((dst & f->slice_mask) == f->local_slice) return drop(c, C_OUT_LOCAL_SLICE, C_OUT_READ, segs);
  __u32 host = f->underlay_net | ((dst & ~f->overlay_mask) >> (f->slice_shift & 31));
  if (host == f->underlay_net || host == (f->underlay_net | f->host_mask) || host == f->local_underlay)
    return drop(c, C_OUT_BAD_UNDERLAY, C_OUT_READ, segs);
  __u8 ttl = ip->ttl;
  if (ttl == 0) return drop(c, C_OUT_TTL_EXPIRED, C_OUT_READ, segs);
  // The outer total length must fit 16 bits (the raw socket would say EMSGSIZE).
  if (total > 0xffff - OUTER) return drop(c, C_OUT_SEND_ERROR, C_OUT_READ, segs);

  __u8 tos = ip->tos;
  __u8 protocol = ip->protocol;
  __u16 frag = ip->frag_off;
  __u64 bytes = segment_bytes(skb, 0, ihl, total, segs, protocol);

  // Room for the outer header between the (empty) link-layer header and the
  // inner packet. ENCAP_L3_IPV4 records the inner headers and marks the skb
  // SKB_GSO_IPXIP4, so a TCP super-packet stays one: it is segmented at the
  // underlay device, or by its peer (ipip_gso_segment is in core af_inet,
  // not in ipip.ko). FIXED_GSO: gso_size is the inner MSS, still right.
  // The helper refuses skbs that are already encapsulated (EALREADY) and
  // GSO kinds other than TCP and UDP_L4: those go to the slow path.
  if (bpf_skb_adjust_room(skb, OUTER, BPF_ADJ_ROOM_MAC,
                          BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO)) {
    c->c[C_SLOW_OUT] += segs;
    return TC_ACT_OK;
  }
  // bpf_redirect_neigh needs a link-layer header in front of the network
  // header (its mac header must come before the network header,
  // net/core/filter.c __bpf_redirect_neigh): room for one, which the kernel
  // fills when it has resolved the next hop.
  if (bpf_skb_change_head(skb, L2, 0)) return drop(c, C_OUT_SEND_ERROR, C_OUT_READ, segs);
  data = (void *)(long)skb->data;
  end = (void *)(long)skb->data_end;
  if (data + L2 + OUTER > end) return drop(c, C_OUT_SEND_ERROR, C_OUT_READ, segs);
  struct ethhdr *eth = data;
  eth->h_proto = htons(ETH_P_IP);
  struct iphdr *o = data + L2;
  // As Linux's ip_tunnel_xmit() builds it for tunl0 (`ttl inherit`), like
  // encap.ts: TTL inherited, DF copied, ECN per INET_ECN_encapsulate (inner
  // CE becomes ECT(0)), DSCP copied. The ID: 0 when DF is set (RFC 6864: an
  // atomic datagram's ID means nothing; the segmentation of a super-packet
  // counts up from it), random otherwise, where the kernel would pick one.
  *(__u8 *)o = 0x45;
  o->tos = (tos & 3) == 3 ? (tos & 0xfc) | 2 : tos;
  o->tot_len = htons(total + OUTER);
  o->id = (frag & htons(IP_DF)) ? 0 : (__u16)bpf_get_prandom_u32();
  o->frag_off = frag & htons(IP_DF);
  o->ttl = ttl;
  o->protocol = IPPROTO_IPIP;
  o->check = 0;
  o->saddr = htonl(f->local_underlay);
  o->daddr = htonl(host);
  o->check = csum20((const __u16 *)o);

  c->c[C_OUT_READ] += segs;
  c->c[C_TX_PACKETS] += segs;
  c->c[C_TX_BYTES] += bytes;
  // The kernel looks up the route to the outer destination out of the
  // underlay device, resolves its next hop (ARP, queueing like any output)
  // and writes the Ethernet header.
  return bpf_redirect_neigh(f->underlay_ifindex, 0, 0, 0);
}

// ---------------------------------------------------------------------------
// Ingress: IPIP for this host is checked and decapsulated.

// The fan an inbound packet belongs to: among the fans whose underlay
// address is the outer destination, the one whose overlay holds the inner
// destination, else the first (as the userspace worker's fanOf does; the
// checks then reject it and count it there). -1: not for any fan.
INLINE int find_fan(struct fan_config *cfg, __u32 odst, int inner_ok, __u32 idst_be) {
  int first = slot_of(&fand_locals, &odst);
  if (first < 0 || !inner_ok) return first;
  struct fan_lpm_key k = {.prefixlen = 32, .addr = idst_be};
  int s = slot_of(&fand_overlays, &k);
  if (s < 0 || s >= FAN_MAX || cfg->fans[s].local_underlay != odst) return first;
  return s;
}

// RFC 1624 eqn. 3 for one 16-bit word of the header at h changing from `from`
// to `to` (host order): HC' = ~(~HC + ~m + m').
INLINE void csum_word(struct iphdr *h, __u16 from, __u16 to) {
  __u32 s = (__u16)~ntohs(h->check) + (__u16)~from + to;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  h->check = htons((__u16)~s);
}

// Its locals are 64-bit: clang reuses stack slots, and the verifier of a
// program loaded without CAP_PERFMON refuses a narrower value spilled over a
// slot that held a pointer ("attempt to corrupt spilled pointer on stack").
SEC("tc/ingress")
int fand_ingress(struct __sk_buff *skb) {
  // Untouched, and the next filter runs: everything that is not IPv4 IPIP.
  if (skb->protocol != htons(ETH_P_IP)) return TC_ACT_UNSPEC;
  if (LINEAR(skb, L2 + OUTER + 60)) return TC_ACT_UNSPEC;
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  struct iphdr *o = data + L2;
  if ((void *)(o + 1) > end) return TC_ACT_UNSPEC;
  if (eth->h_proto != htons(ETH_P_IP) || o->protocol != IPPROTO_IPIP) return TC_ACT_UNSPEC;

  struct fan_config *cfg = config();
  if (!cfg) return TC_ACT_UNSPEC;  // the stack (and fand's raw socket, if any) sees it
  __u64 odst = ntohl(o->daddr);
  // What the stack would hand fand's raw socket: the outer packet up to its
  // total length (ip_rcv trims link-layer padding behind it).
  __u64 plen = skb->len - L2;
  __u64 tot = ntohs(o->tot_len);
  __u64 len = tot >= 20 && tot <= plen ? tot : plen;
  struct iphdr *i = (void *)(o + 1);
  int inner_ok = len >= 40 && (void *)(i + 1) <= end;
  int slot = find_fan(cfg, odst, inner_ok, inner_ok ? i->daddr : 0);
  if (slot < 0 || slot >= FAN_MAX) return TC_ACT_UNSPEC;  // IPIP for another address
  struct fan_cfg *f = &cfg->fans[slot];
  if (!(f->flags & FAN_ACTIVE)) return TC_ACT_UNSPEC;
  struct fan_counters *c = counters(slot);
  if (!c) return TC_ACT_UNSPEC;
  __u64 segs = skb->gso_segs ? skb->gso_segs : 1;

  // The checks of decapsulate() (src/dataplane/packet/decap.ts), in its
  // order, plus what ip_rcv checks before a raw socket sees a packet (the
  // outer checksum); outer fragments and options go to the slow path.
  if (len < 40) return drop(c, C_IN_TRUNCATED, C_IN_RECEIVED, segs);
  __u64 ovihl = *(__u8 *)o;
  __u64 oihl = (ovihl & 15) << 2;
  if ((ovihl >> 4) != 4 || oihl < 20 || oihl + 20 > len || tot != len)
    return drop(c, C_IN_OUTER_MALFORMED, C_IN_RECEIVED, segs);
  if (oihl != OUTER || (ntohs(o->frag_off) & IP_FRAG)) {
    // Reassembly (and options) are the stack's: fand's raw socket gets the
    // packet whole and checks it as the userspace dataplane does.
    c->c[C_SLOW_IN] += segs;
    return TC_ACT_OK;
  }
  if (!sum_ok(sum20((const __u16 *)o))) return drop(c, C_IN_OUTER_MALFORMED, C_IN_RECEIVED, segs);
  __u64 osrc = ntohl(o->saddr);
  if ((osrc & f->underlay_mask) != f->underlay_net || osrc == f->local_underlay || osrc == f->underlay_net ||
      osrc == (f->underlay_net | f->host_mask))
    return drop(c, C_IN_OUTER_SOURCE, C_IN_RECEIVED, segs);

  if ((void *)(i + 1) > end) return drop(c, C_IN_TRUNCATED, C_IN_RECEIVED, segs);
  __u64 ivihl = *(__u8 *)i;
  if ((ivihl >> 4) != 4) return drop(c, C_IN_INNER_NOT_IPV4, C_IN_RECEIVED, segs);
  __u64 iihl = (ivihl & 15) << 2;
  __u64 itotal = ntohs(i->tot_len);
  if (iihl < 20 || itotal < iihl || itotal != len - OUTER) return drop(c, C_IN_INNER_MALFORMED, C_IN_RECEIVED, segs);
  if (iihl != 20) {
    // Inner options: their checksum spans a length the verifier cannot
    // bound for direct reads. Rare; the slow path checks them.
    c->c[C_SLOW_IN] += segs;
    return TC_ACT_OK;
  }
  if (!sum_ok(sum20((const __u16 *)i))) return drop(c, C_IN_INNER_CHECKSUM, C_IN_RECEIVED, segs);
  __u64 idst = ntohl(i->daddr);
  if ((idst & f->slice_mask) != f->local_slice) return drop(c, C_IN_INNER_DESTINATION, C_IN_RECEIVED, segs);
  if ((f->flags & FAN_CHECK_SOURCE) &&
      (ntohl(i->saddr) & f->slice_mask) != (f->overlay_net | ((osrc & f->host_mask) << (f->slice_shift & 31))))
    return drop(c, C_IN_SPOOFED_SOURCE, C_IN_RECEIVED, segs);

  // ECN, RFC 6040 section 4.2, as INET_ECN_decapsulate() and decap.ts.
  __u64 outer_ecn = o->tos & 3;
  __u64 itos = i->tos;
  __u64 inner_ecn = itos & 3;
  __u64 ntos = itos;
  if (inner_ecn == 0) {
    if (outer_ecn == 3) return drop(c, C_IN_ECN_DROP, C_IN_RECEIVED, segs);
  } else if (outer_ecn == 3) {
    ntos = itos | 3;
  } else if (outer_ecn == 1 && inner_ecn == 2) {
    ntos = (itos & 0xfc) | 1;
  }
  if (ntos != itos) {
    __u16 from = ((__u16)ivihl << 8) | itos;
    i->tos = ntos;
    csum_word(i, from, ((__u16)ivihl << 8) | ntos);
  }
  __u64 ittl = i->ttl;
  // Read before the helper below resets gso_segs (the kernel recounts them).
  __u64 gso = skb->gso_size;
  __u64 bytes = segment_bytes(skb, L2 + OUTER, iihl, itotal, segs, i->protocol);

  // Take the outer header out from between the Ethernet header and the inner
  // packet. FIXED_GSO: a super-packet keeps its gso_size (the inner MSS).
  // NO_CSUM_RESET: the checksum state of the inner packet stays as the
  // device and GRO left it (a CHECKSUM_COMPLETE sum is adjusted for the
  // bytes removed by the helper itself).
  if (bpf_skb_adjust_room(skb, -OUTER, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_NO_CSUM_RESET)) {
    c->c[C_SLOW_IN] += segs;
    return TC_ACT_OK;
  }
  c->c[C_IN_RECEIVED] += segs;
  c->c[C_RX_PACKETS] += segs;
  c->c[C_RX_BYTES] += bytes;

  // Straight to the container's port, where the kernel's own tables say the
  // address lives: the skb still carries its IPIP GSO state, which a Linux
  // bridge (no tunnel offloads) would answer by segmenting and checksumming
  // every super-packet in software. This host is a router hop: TTL goes
  // down by one, and a packet that must die here, or that is too big for
  // the port, takes the normal path, where the kernel answers with ICMP.
  if (f->flags & FAN_REDIRECT_PORTS) {
    __u32 key = htonl(idst);
    struct fan_port *p = bpf_map_lookup_elem(&fand_ports, &key);
    if (p && ittl > 1 && (gso || itotal <= p->mtu)) {
      data = (void *)(long)skb->data;
      end = (void *)(long)skb->data_end;
      eth = data;
      i = data + L2;
      if ((void *)(i + 1) <= end) {
        __builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
        __builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
        // ip_decrease_ttl() (include/net/ip.h): TTL is the high byte of its word.
        __u32 check = i->check;
        check += htons(0x0100);
        i->check = (__u16)(check + (check >= 0xffff));
        i->ttl--;
        c->c[C_RX_DIRECT] += segs;
        // bpf_redirect_peer: into the container's namespace, as if its eth0
        // had received it (no second pass through the veth); bpf_redirect:
        // out of the port, for ports whose peer is not in another namespace.
        return (p->flags & PORT_PEER) ? bpf_redirect_peer(p->ifindex, 0) : bpf_redirect(p->ifindex, 0);
      }
    }
  }
  // Into the overlay device, as if it had been received there (the kernel
  // pulls the Ethernet header for a device without one): routing, the
  // host's firewall, reverse-path filtering and TTL see what they see in the
  // userspace dataplane, whose worker writes it to the same device.
  return bpf_redirect(f->tun_ifindex, BPF_F_INGRESS);
}
