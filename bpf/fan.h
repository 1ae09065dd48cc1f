// The layout shared by the tc programs (fan.bpf.c) and the daemon
// (src/dataplane/ebpf/maps.ts writes and reads these bytes; test/ebpf.test.ts
// checks both sides agree by running the loaded programs).
//
// Byte order: addresses and masks in the config are host order (the program
// converts packet fields with bpf_ntohl); the port map's key is the address
// as it is in the packet (network order).
#ifndef FAND_FAN_H
#define FAND_FAN_H

#include <linux/types.h>

// Fans one daemon carries (src/dataplane/userspace/ring.ts MAX_FANS).
#define FAN_MAX 16

// struct fan_cfg.flags
#define FAN_ACTIVE (1u << 0)
// Drop inbound packets whose inner source is not in the outer source's slice.
#define FAN_CHECK_SOURCE (1u << 1)
// Hand decapsulated packets straight to the container's port (port map).
#define FAN_REDIRECT_PORTS (1u << 2)

struct fan_cfg {
  __u32 flags;
  __u32 tun_ifindex;       // the overlay device: egress program runs there
  __u32 overlay_net;
  __u32 overlay_mask;
  __u32 underlay_net;
  __u32 underlay_mask;
  __u32 slice_mask;
  __u32 slice_shift;       // 32 - slice prefix length
  __u32 host_mask;         // ~underlay_mask
  __u32 local_underlay;    // this host's underlay address
  __u32 local_slice;       // this host's slice network
  __u32 underlay_ifindex;  // where encapsulated packets leave (bpf_redirect_neigh)
};

// The value of the one-element config map (key 0). The index of a fan in
// fans[] (its slot) is its row in the counter map; a row whose flags lack
// FAN_ACTIVE is unused. The slot maps (fand_tuns, fand_locals,
// fand_overlays) say which slot a packet belongs to.
struct fan_config {
  __u32 magic;             // FAN_CONFIG_MAGIC: written by a daemon that knows this layout
  __u32 nfans;             // fans[0..nfans) are looked at
  struct fan_cfg fans[FAN_MAX];
};
#define FAN_CONFIG_MAGIC 0xfa4e0001u

// Key of the overlay map (an LPM trie): prefix length, then the address in
// network order (struct bpf_lpm_trie_key's layout).
struct fan_lpm_key {
  __u32 prefixlen;
  __u32 addr;
};

// Port map value: where a container address lives on this host. The
// daemon fills it from the bridge's FDB and the neighbour table.
struct fan_port {
  __u32 ifindex;           // the bridge port (host side of the container's veth)
  __u16 mtu;               // the port's MTU: larger non-GSO packets take the normal path
  __u8 flags;              // PORT_PEER: redirect into the peer's namespace
  __u8 pad;
  __u8 dmac[6];            // the container's Ethernet address
  __u8 smac[6];            // the bridge's Ethernet address (the container's gateway)
};
#define PORT_PEER (1u << 0)

// Counters: one row of FAN_COUNTERS u64 per fan and CPU. The first 27 have
// the index and meaning of the userspace dataplane's (src/dataplane/
// counters.ts: Drop, then Traffic); the rest are this dataplane's own.
// The names are what `fand show` prints (a test compares them with
// counters.ts).
#define FAN_COUNTER_LIST(X)                     \
  X(OUT_NOT_IPV4, "out.not-ipv4")               \
  X(OUT_MALFORMED, "out.malformed")             \
  X(OUT_NOT_OVERLAY, "out.not-overlay")         \
  X(OUT_LOCAL_SLICE, "out.local-slice")         \
  X(OUT_BAD_UNDERLAY, "out.bad-underlay")       \
  X(OUT_TTL_EXPIRED, "out.ttl-expired")         \
  X(OUT_SEND_ERROR, "out.send-error")           \
  X(OUT_QUEUE_FULL, "out.queue-full")           \
  X(IN_TRUNCATED, "in.truncated")               \
  X(IN_OUTER_MALFORMED, "in.outer-malformed")   \
  X(IN_OUTER_SOURCE, "in.outer-source")         \
  X(IN_INNER_NOT_IPV4, "in.inner-not-ipv4")     \
  X(IN_INNER_MALFORMED, "in.inner-malformed")   \
  X(IN_INNER_CHECKSUM, "in.inner-checksum")     \
  X(IN_INNER_DESTINATION, "in.inner-destination") \
  X(IN_SPOOFED_SOURCE, "in.spoofed-source")     \
  X(IN_ECN_DROP, "in.ecn-drop")                 \
  X(IN_TUN_ERROR, "in.tun-error")               \
  X(IN_QUEUE_FULL, "in.queue-full")             \
  X(TX_PACKETS, "tx.packets")                   \
  X(TX_BYTES, "tx.bytes")                       \
  X(RX_PACKETS, "rx.packets")                   \
  X(RX_BYTES, "rx.bytes")                       \
  X(LOOPS, "loops")                             \
  X(OUT_READ, "out.read")                       \
  X(IN_RECEIVED, "in.received")                 \
  X(TX_DIRECT, "tx.direct")                     \
  X(RX_DIRECT, "rx.direct")                     \
  X(SLOW_OUT, "slow-path.out")                  \
  X(SLOW_IN, "slow-path.in")

#define FAN_COUNTER_ENUM(name, text) C_##name,
enum { FAN_COUNTER_LIST(FAN_COUNTER_ENUM) FAN_COUNTERS };
#undef FAN_COUNTER_ENUM

struct fan_counters {
  __u64 c[FAN_COUNTERS];
};

#endif
