// SPDX-License-Identifier: MIT OR GPL-2.0
// A prototype, compiled and run by test/vxlan-collect-md.test.ts only (not
// part of fand): the Fan's VXLAN mapping in the kernel of a stock (mainline)
// kernel, in tc eBPF on a stock vxlan device in collect_md (`external`)
// mode, a port of the fan's bridge. Egress (frames the bridge sends out of the
// vxlan port): the outer destination from the inner IPv4 destination or the
// ARP target, as the patch's vxlan_fan_build_rdst(); set with
// bpf_skb_set_tunnel_key. Ingress (decapsulated by the kernel, metadata
// attached): VNI, outer source inside the underlay, inner source (IPv4 src,
// ARP sender) inside the outer source's slice; else dropped.
// Parameters as -D: OVERLAY, OVERLAY_PREFIX, UNDERLAY, UNDERLAY_PREFIX, LOCAL, VNI (host order).
// A fand mode would take them from a map, count its drops by reason, and be
// loaded by fand's own loader (src/dataplane/ebpf/); this one is attached
// with tc(8) and needs libbpf's headers (bpf_helpers.h).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MASK(p) ((p) == 0 ? 0u : (0xffffffffu << (32 - (p))))
#define OMASK MASK(OVERLAY_PREFIX)
#define UMASK MASK(UNDERLAY_PREFIX)
#define SHIFT (UNDERLAY_PREFIX - OVERLAY_PREFIX)
#define SLICE_PREFIX (OVERLAY_PREFIX + (32 - UNDERLAY_PREFIX))

struct arp_ipv4 { __be16 htype, ptype; __u8 hlen, plen; __be16 op; __u8 sha[6]; __be32 sip; __u8 tha[6]; __be32 tip; } __attribute__((packed));

static __always_inline int inner_addrs(struct __sk_buff *skb, __u32 *src, __u32 *dst) {
  void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return -1;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) return -1;
    *src = bpf_ntohl(ip->saddr); *dst = bpf_ntohl(ip->daddr);
    return 0;
  }
  if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
    struct arp_ipv4 *a = (void *)(eth + 1);
    if ((void *)(a + 1) > end) return -1;
    if (a->htype != bpf_htons(1) || a->ptype != bpf_htons(ETH_P_IP) || a->hlen != 6 || a->plen != 4) return -1;
    *src = bpf_ntohl(a->sip); *dst = bpf_ntohl(a->tip);
    return 0;
  }
  return -1; // IPv6 ND, other broadcasts: stay local, as the patched driver does
}

SEC("tc/egress")
int vxfan_egress(struct __sk_buff *skb) {
  __u32 src, dst;
  bpf_skb_pull_data(skb, 64);
  if (inner_addrs(skb, &src, &dst) < 0) return TC_ACT_SHOT;
  if ((dst & OMASK) != OVERLAY) return TC_ACT_SHOT;
  __u32 host = UNDERLAY | ((dst & ~OMASK) >> SHIFT);
  if (host == LOCAL || (host & ~UMASK) == 0 || (host & ~UMASK) == ~UMASK) return TC_ACT_SHOT;
  struct bpf_tunnel_key key = {};
  key.remote_ipv4 = host;
  key.tunnel_id = VNI;
  key.tunnel_ttl = 64;
  if (bpf_skb_set_tunnel_key(skb, &key, sizeof key, BPF_F_ZERO_CSUM_TX) < 0) return TC_ACT_SHOT;
  return TC_ACT_OK;
}

SEC("tc/ingress")
int vxfan_ingress(struct __sk_buff *skb) {
  struct bpf_tunnel_key key = {};
  if (bpf_skb_get_tunnel_key(skb, &key, sizeof key, 0) < 0) return TC_ACT_SHOT;
  if (key.tunnel_id != VNI) return TC_ACT_SHOT;
  __u32 outer = key.remote_ipv4;
  if ((outer & UMASK) != UNDERLAY || outer == LOCAL) return TC_ACT_SHOT;
  __u32 src, dst;
  bpf_skb_pull_data(skb, 64);
  if (inner_addrs(skb, &src, &dst) < 0) return TC_ACT_SHOT;
  __u32 slice = OVERLAY | ((outer & ~UMASK) << SHIFT);
  if ((src & MASK(SLICE_PREFIX)) != slice) return TC_ACT_SHOT; // spoofed inner source
  __u32 mine = OVERLAY | ((LOCAL & ~UMASK) << SHIFT);
  if ((dst & MASK(SLICE_PREFIX)) != mine) return TC_ACT_SHOT;
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
