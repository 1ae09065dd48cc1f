// The names of fand's counters, defined once: what every dataplane reports,
// and how `fand show`, `fand show --json` and the Prometheus metrics
// (src/metrics.ts) present it. No other file decides what a key means.
//
// A dataplane reports, per fan (and per worker where it has workers), one
// flat record of counts (Dataplane.counters()). Its keys are of two kinds:
//
// - `drop.<REASON>`: packets dropped for REASON. A REASON is `out.<why>`
//   (taken in from the overlay on its way to the underlay) or `in.<why>`
//   (received from the underlay), e.g. `in.spoofed-source`. The REASON is
//   the one name an operator sees everywhere:
//     fand show          fan-250-1-10 dropped: in.spoofed-source=5 ...
//     fand show --json   "drops": { "in.spoofed-source": 5, ... }
//     /metrics           fand_dropped_packets_total{...,direction="rx",reason="in.spoofed-source"} 5
//   Any `drop.` key is a drop, whichever dataplane reports it: the eBPF
//   dataplane's per-CPU counter map reports the userspace reasons under the
//   same names, and a new dataplane adds its own (a VXLAN one might report
//   `in.vni`) by reporting the key and describing it in DROP_REASONS.
//
// - every other key is a counter of what was carried or taken in, listed in
//   COUNTERS with the metric it is exported as. `show --json` lists them
//   under "counters" by their key (`tx.packets`); a key missing from
//   COUNTERS is shown but not exported (a test checks that the userspace
//   dataplane reports none).
//
// Counts add up: for each fan, `out.read` = `tx.packets` + the `out.*`
// drops, and `in.received` = `rx.packets` + the `in.*` drops. In the
// metrics: fand_handled_packets_total{direction} = fand_packets_total{direction}
// + sum by (direction) (fand_dropped_packets_total).

export type Direction = 'tx' | 'rx';

/** A drop reason: `out.<why>` on the way to the underlay (tx), `in.<why>` from it (rx). */
export type DropReason = `out.${string}` | `in.${string}`;

const DROP_PREFIX = 'drop.';
const REASON_RE = /^(out|in)\.[a-z0-9][a-z0-9-]*$/;

/** The record key a dataplane reports a drop reason under. */
export function dropKey(reason: DropReason): string {
  return DROP_PREFIX + reason;
}

/** The reason of a drop key (`drop.in.spoofed-source` -> `in.spoofed-source`), or undefined for other keys. */
export function dropReasonOf(key: string): string | undefined {
  return key.startsWith(DROP_PREFIX) ? key.slice(DROP_PREFIX.length) : undefined;
}

/** tx for `out.*` reasons, rx for `in.*`; undefined for a name outside the scheme. */
export function dropDirection(reason: string): Direction | undefined {
  const m = REASON_RE.exec(reason);
  return m ? (m[1] === 'out' ? 'tx' : 'rx') : undefined;
}

/**
 * What each drop reason means (for the README and `fand show`'s readers).
 * The userspace reasons are counters.ts's Drop enum, in its order; the
 * eBPF dataplane counts the same ones. Other dataplanes add theirs here.
 */
export const DROP_REASONS: Readonly<Record<string, string>> = {
  'out.not-ipv4': 'read from the overlay device, but not IPv4',
  'out.malformed': 'header length or total length inconsistent with the bytes read',
  'out.not-overlay': 'destination outside the overlay',
  'out.local-slice': "destination in this host's own slice (belongs on the bridge, not the wire)",
  'out.bad-underlay': "destination maps to the underlay's network or broadcast address, or to this host",
  'out.ttl-expired': 'inner TTL 0: may not be forwarded',
  'out.send-error': 'the kernel refused the send (routing error, EMSGSIZE, ...)',
  'out.queue-full': 'socket send buffer full: dropped rather than blocking',
  'in.truncated': 'shorter than two IPv4 headers, or larger than the receive slot',
  'in.outer-malformed': 'outer header inconsistent (version, IHL, protocol, length)',
  'in.outer-source': 'outer source outside the underlay, or this host itself',
  'in.inner-not-ipv4': 'inner packet not IPv4',
  'in.inner-malformed': 'inner IHL or total length inconsistent with the bytes received',
  'in.inner-checksum': 'inner header checksum wrong',
  'in.inner-destination': "inner destination outside this host's slice",
  'in.spoofed-source': "inner source not in the slice of the outer source (the sender speaks for another host's containers)",
  'in.ecn-drop': 'RFC 6040: outer CE over a Not-ECT inner packet',
  'in.tun-error': 'the overlay device refused the write',
  'in.queue-full': 'the overlay device would block',
  // kernel-ipip: the kernel forwards, and counts errors on tunl0, shared by every fan of the host
  'in.tunl0-errors': 'kernel-ipip: receive errors on tunl0',
  'out.tunl0-errors': 'kernel-ipip: transmit errors on tunl0',
  // VXLAN fans (userspace VXLAN dataplane, src/dataplane/packet/vxlan.ts)
  'out.unmapped': 'VXLAN: a frame the Fan cannot map (IPv6, other broadcasts, VLAN tags): it stays on the local bridge, as the patched kernel keeps it',
  'out.too-big': 'VXLAN: IPv4 with DF larger than the fan MTU (answered with ICMP "fragmentation needed"), or without DF but with IP options',
  'in.vxlan-header': 'VXLAN: a header without the I flag or with reserved bits set, or no Ethernet header behind it',
  'in.vni': 'VXLAN: the VNI of no fan of this host',
  'in.arp-malformed': 'VXLAN: ARP that is not an Ethernet/IPv4 request or reply',
};

export interface CounterName {
  /** The Prometheus metric this count is exported as. */
  readonly metric: string;
  /** Its labels besides fan and worker. */
  readonly labels: Readonly<Record<string, string>>;
}

/** Every non-drop key and its metric. The metrics' help texts are in METRICS. */
export const COUNTERS: Readonly<Record<string, CounterName>> = {
  'tx.packets': { metric: 'fand_packets_total', labels: { direction: 'tx' } },
  'rx.packets': { metric: 'fand_packets_total', labels: { direction: 'rx' } },
  'tx.bytes': { metric: 'fand_bytes_total', labels: { direction: 'tx' } },
  'rx.bytes': { metric: 'fand_bytes_total', labels: { direction: 'rx' } },
  'out.read': { metric: 'fand_handled_packets_total', labels: { direction: 'tx' } },
  'in.received': { metric: 'fand_handled_packets_total', labels: { direction: 'rx' } },
  'loops': { metric: 'fand_worker_loops_total', labels: {} },
  'tx.direct': { metric: 'fand_direct_sends_total', labels: {} },
  // ebpf dataplane (src/dataplane/ebpf/layout.ts, bpf/fan.h)
  'rx.direct': { metric: 'fand_port_deliveries_total', labels: {} },
  'slow-path.out': { metric: 'fand_slow_path_packets_total', labels: { direction: 'tx' } },
  'slow-path.in': { metric: 'fand_slow_path_packets_total', labels: { direction: 'rx' } },
};

/** The drop metric (its labels: fan, worker, direction, reason). */
export const DROPPED_METRIC = 'fand_dropped_packets_total';

/** Help text of every metric the counts become. */
export const METRICS: Readonly<Record<string, string>> = {
  fand_packets_total: 'Inner packets carried by the fan: tx = encapsulated and sent on the underlay, rx = decapsulated and delivered to this host.',
  fand_bytes_total: 'Inner bytes (IPv4 header included, outer IPIP header not) carried by the fan, by direction as for fand_packets_total.',
  fand_handled_packets_total: 'Packets the dataplane took in, whatever became of them: tx = read from the overlay device towards the underlay, rx = received from the underlay. Equals fand_packets_total plus fand_dropped_packets_total of the same direction.',
  [DROPPED_METRIC]: "Packets the dataplane dropped, by reason: 'out.*' (direction tx) on the way to the underlay, 'in.*' (direction rx) received from it. The reasons are the names `fand show` prints.",
  fand_worker_loops_total: 'Iterations of a userspace worker loop; a worker whose count stops growing is stuck.',
  fand_direct_sends_total: 'Of fand_packets_total{direction="tx"}, those the userspace dataplane sent straight to a next hop the kernel had resolved (AF_PACKET) rather than through the kernel IP output path.',
  fand_port_deliveries_total: 'Of fand_packets_total{direction="rx"}, those the ebpf dataplane handed straight to the container\'s port or namespace (bpf_redirect_peer/bpf_redirect, from the port map) rather than through the bridge.',
  fand_slow_path_packets_total: 'Packets the ebpf dataplane\'s programs passed to fand\'s slow path (the userspace raw-socket and TUN worker): outer fragments, IP options, packets the kernel\'s helpers would not resize. The slow path then counts them like every other packet.',
};

/** One record split by kind: what `fand show --json` gives per fan and per worker. */
export interface NamedCounts {
  /** Non-drop counters by key (`tx.packets`). */
  readonly counters: Record<string, number>;
  /** Drops by reason (`in.spoofed-source`). */
  readonly drops: Record<string, number>;
}

export function nameCounts(record: Readonly<Record<string, number>>): NamedCounts {
  const counters: Record<string, number> = {};
  const drops: Record<string, number> = {};
  for (const [key, n] of Object.entries(record)) {
    const reason = dropReasonOf(key);
    if (reason === undefined) counters[key] = n; else drops[reason] = n;
  }
  return { counters, drops };
}

/** All drops of a record, or of one direction. */
export function droppedTotal(drops: Readonly<Record<string, number>>, direction?: Direction): number {
  let sum = 0;
  for (const [reason, n] of Object.entries(drops)) if (direction === undefined || dropDirection(reason) === direction) sum += n;
  return sum;
}
