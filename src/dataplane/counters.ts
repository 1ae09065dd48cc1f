// Counters shared between the workers (which write them) and the main
// thread (which reads them for `fand show` and logs). Each worker owns one
// block of COUNTER_COUNT float64 slots in a SharedArrayBuffer: a worker only
// ever writes its own block, so no atomics are needed, and float64 holds
// exact integers up to 2^53 — far beyond any packet count.

/** Why a packet was dropped. Values index the counter block (see below). */
export const enum Drop {
  // Outbound: read from the TUN, would be encapsulated.
  OutNotIpv4 = 0,      // version nibble is not 4
  OutMalformed,        // header length / total length inconsistent with the bytes read
  OutNotOverlay,       // destination outside the overlay (the route should not send it here)
  OutLocalSlice,       // destination in this host's own slice: belongs on the bridge, not the wire
  OutBadUnderlay,      // destination maps to the underlay network/broadcast address or to this host
  OutTtlExpired,       // inner TTL 0: the packet may not be forwarded
  OutSendError,        // the kernel refused the send (routing error, EMSGSIZE, ...)
  OutQueueFull,        // socket send buffer full (EAGAIN): dropped rather than blocking
  // Inbound: read from the raw IPIP socket, would be decapsulated.
  InTruncated,         // shorter than two IPv4 headers, or larger than the receive slot
  InOuterMalformed,    // outer header inconsistent (version, IHL, protocol, length)
  InOuterSource,       // outer source outside the underlay, or this host itself
  InInnerNotIpv4,      // inner version nibble is not 4
  InInnerMalformed,    // inner IHL / total length inconsistent with the bytes received
  InInnerChecksum,     // inner header checksum wrong
  InInnerDestination,  // inner destination outside this host's slice
  InSpoofedSource,     // inner source not in the slice of the outer source
  InEcnDrop,           // RFC 6040: outer CE over a Not-ECT inner packet must be dropped
  InTunError,          // the TUN refused the write
  InQueueFull,         // TUN would block (EAGAIN)
  // VXLAN fans (packet/vxlan.ts): the Fan's mapping of Ethernet frames.
  OutUnmapped,         // a frame the Fan cannot map (IPv6, other broadcasts, VLAN tags): it stays on the local bridge
  OutTooBig,           // IPv4 with DF larger than the fan MTU: answered with ICMP "fragmentation needed"
  InVxlanHeader,       // VXLAN header without the I flag or with reserved bits set, or no Ethernet header behind it
  InVni,               // VNI of no fan of this host
  InArpMalformed,      // ARP that is not Ethernet/IPv4 request or reply
}

/** The reasons' names, in Drop order (counter-names.ts says how they are shown and exported). */
export const DROP_NAMES = [
  'out.not-ipv4', 'out.malformed', 'out.not-overlay', 'out.local-slice', 'out.bad-underlay',
  'out.ttl-expired', 'out.send-error', 'out.queue-full',
  'in.truncated', 'in.outer-malformed', 'in.outer-source', 'in.inner-not-ipv4',
  'in.inner-malformed', 'in.inner-checksum', 'in.inner-destination', 'in.spoofed-source',
  'in.ecn-drop', 'in.tun-error', 'in.queue-full',
  'out.unmapped', 'out.too-big', 'in.vxlan-header', 'in.vni', 'in.arp-malformed',
] as const;

export const DROP_COUNT = DROP_NAMES.length;

/** Traffic counters follow the drop counters in each block. */
export const enum Traffic {
  TxPackets = 24,               // encapsulated and sent on the underlay (= DROP_COUNT; a test checks)
  TxBytes,                      // inner bytes sent
  RxPackets,                    // decapsulated and written to the TUN
  RxBytes,                      // inner bytes written
  Loops,                        // worker loop iterations: proves the worker is alive
  OutRead,                      // packets read from the TUN (= tx.packets + out.* drops)
  InReceived,                   // packets received on the raw socket (= rx.packets + in.* drops)
  TxDirect,                     // of tx.packets, sent straight to a resolved next hop (AF_PACKET)
}

export const TRAFFIC_NAMES = ['tx.packets', 'tx.bytes', 'rx.packets', 'rx.bytes', 'loops', 'out.read', 'in.received', 'tx.direct'] as const;
export const COUNTER_COUNT = DROP_COUNT + TRAFFIC_NAMES.length;
