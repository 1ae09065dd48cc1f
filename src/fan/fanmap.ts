// The Fan address mapping. Pure arithmetic, no I/O.
//
// An overlay /o over an underlay /u gives every underlay host a slice of the
// overlay of length /s, s = o + 32 - u: the host's bits below the underlay
// prefix (32 - u of them) are placed right after the overlay prefix.
//
//   250.0.0.0/8 over 172.16.0.0/16: host 172.16.3.4 owns 250.3.4.0/24
//   (bridge 250.3.4.1, containers .2-.254), and overlay address 250.5.6.7
//   lives on underlay host 172.16.5.6.
//
// The reverse direction, overlay address -> underlay host, is what the packet
// path runs for every packet; `underlayHostOf` does it with two ANDs, a shift
// and an OR, using numbers precomputed in `FanMap`.

import IPCIDR from 'ip-cidr';
import {
  type Cidr,
  type Ipv4,
  contains,
  formatCidr,
  formatIpv4,
  hostMaskOf,
  lastOf,
  maskOf,
  overlaps,
  parseIpv4,
} from './ipv4.js';

/** A Fan configuration that cannot work; the message names the fix. */
export class FanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FanError';
  }
}

const PREFIX = /^(0|[1-9]\d?)$/;

/**
 * Parses `A.B.C.D/len` keeping host bits (an underlay such as
 * `172.16.3.4/16` names a host). `what` ("overlay", "underlay") prefixes
 * errors.
 */
export function parseCidr(text: string, what: string): { address: Ipv4; prefix: number } {
  const slash = text.indexOf('/');
  if (slash < 0) {
    if (looksIpv6(text)) throw ipv6Error(text, what);
    throw new FanError(`${what} '${text}': expected A.B.C.D/len, e.g. 250.0.0.0/8`);
  }
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  const address = parseIpv4(addrText);
  if (address === undefined) {
    if (looksIpv6(text)) throw ipv6Error(text, what);
    throw new FanError(
      `${what} '${text}': '${addrText}' is not an IPv4 address (expected four decimal octets 0-255, e.g. 250.0.0.0/8)`,
    );
  }
  if (!PREFIX.test(lenText) || Number(lenText) > 32) {
    throw new FanError(`${what} '${text}': prefix length '${lenText}' must be a number 0..32`);
  }
  return { address, prefix: Number(lenText) };
}

/** Parses `A.B.C.D/len` as a network: host bits must be clear. */
export function parseNetwork(text: string, what: string): Cidr {
  const { address, prefix } = parseCidr(text, what);
  const network = (address & maskOf(prefix)) >>> 0;
  if (network !== address) {
    throw new FanError(
      `${what} ${text} has host bits set; did you mean ${formatCidr({ network, prefix })}?`,
    );
  }
  return { network, prefix };
}

/** True when `text` is an IPv6 address or CIDR (so the error can say so). */
export function looksIpv6(text: string): boolean {
  if (!text.includes(':')) return false;
  return text.includes('/') ? IPCIDR.isValidCIDR(text) : IPCIDR.isValidAddress(text);
}

function ipv6Error(text: string, what: string): FanError {
  return new FanError(`${what} ${text}: IPv6 is not supported; the Fan maps IPv4 underlays to IPv4 overlays`);
}

/**
 * The numbers the packet path needs, computed once. All are uint32.
 * overlay address a lives on underlay host
 *   underlay.network | ((a & ~overlayMask) >>> sliceShift)
 */
export interface FanMap {
  readonly overlay: Cidr;
  readonly underlay: Cidr;
  /** Prefix length of each host's slice: overlay.prefix + 32 - underlay.prefix. */
  readonly sliceLen: number;
  readonly overlayMask: number;
  readonly underlayMask: number;
  /** 32 - sliceLen (= underlay.prefix - overlay.prefix): slice bits below the host bits. */
  readonly sliceShift: number;
  /** Netmask of a slice. */
  readonly sliceMask: number;
  /** Host bits of the underlay (~underlayMask). */
  readonly hostBitsMask: number;
}

/**
 * Slice length of overlay /o over underlay /u, or FanError when the pair
 * cannot work. Needs only the prefixes, so configuration whose underlay is
 * an interface name can be checked before the host is known.
 */
export function sliceLenFor(overlayPrefix: number, underlayPrefix: number): number {
  const o = overlayPrefix;
  const u = underlayPrefix;
  if (!Number.isInteger(o) || o < 0 || o > 32) throw new FanError(`overlay prefix /${o} must be 0..32`);
  if (!Number.isInteger(u) || u < 0 || u > 32) throw new FanError(`underlay prefix /${u} must be 0..32`);
  if (o < 1) throw new FanError(`overlay /0 covers the whole address space; an overlay must be /1 or longer (e.g. 250.0.0.0/8)`);
  if (u > 30) {
    throw new FanError(`underlay /${u} has no room for hosts; the underlay prefix must be /30 or shorter (the network the hosts share, e.g. /16)`);
  }
  const s = o + 32 - u;
  if (s > 30) {
    throw new FanError(
      `overlay /${o} over underlay /${u} gives /${s} slices; a slice must be /30 or shorter (need underlay prefix ≥ ${o + 2})`,
    );
  }
  return s;
}

/** Ranges no overlay or underlay can use. */
const NEVER: readonly { cidr: Cidr; why: string }[] = [
  { cidr: { network: 0x00000000, prefix: 8 }, why: '"this network", not routable' },
  { cidr: { network: 0x7f000000, prefix: 8 }, why: 'loopback' },
  { cidr: { network: 0xe0000000, prefix: 4 }, why: 'multicast' },
];

function checkUsable(c: Cidr, what: string, fix: string): void {
  for (const n of NEVER) {
    if (overlaps(c, n.cidr)) {
      throw new FanError(`${what} ${formatCidr(c)} intersects ${formatCidr(n.cidr)} (${n.why}); ${fix}`);
    }
  }
  if (lastOf(c) === 0xffffffff) {
    throw new FanError(`${what} ${formatCidr(c)} contains 255.255.255.255 (limited broadcast); ${fix}`);
  }
}

function checkCidr(c: Cidr, what: string): void {
  if (!Number.isInteger(c.prefix) || c.prefix < 0 || c.prefix > 32) {
    throw new FanError(`${what} prefix /${c.prefix} must be 0..32`);
  }
  if (!Number.isInteger(c.network) || c.network < 0 || c.network > 0xffffffff) {
    throw new FanError(`${what} network ${c.network} is not a uint32 address`);
  }
  const network = (c.network & maskOf(c.prefix)) >>> 0;
  if (network !== c.network) {
    throw new FanError(
      `${what} ${formatCidr(c)} has host bits set; did you mean ${formatCidr({ network, prefix: c.prefix })}?`,
    );
  }
}

/**
 * Checks an overlay on its own (a network that can carry a Fan). Lets
 * configuration be checked before the underlay is resolved.
 */
export function checkOverlay(overlay: Cidr): void {
  checkCidr(overlay, 'overlay');
  checkUsable(overlay, 'overlay', 'choose an overlay outside 0.0.0.0/8, 127.0.0.0/8 and 224.0.0.0/4 (250.0.0.0/8 is the usual one)');
}

/** Validates an overlay/underlay pair and precomputes its masks. */
export function makeFanMap(overlay: Cidr, underlay: Cidr): FanMap {
  checkCidr(overlay, 'overlay');
  checkCidr(underlay, 'underlay');
  const sliceLen = sliceLenFor(overlay.prefix, underlay.prefix);
  checkOverlay(overlay);
  checkUsable(underlay, 'underlay', 'the underlay must be the network the hosts share (e.g. 172.16.0.0/16)');
  if (overlaps(overlay, underlay)) {
    throw new FanError(
      `overlay ${formatCidr(overlay)} and underlay ${formatCidr(underlay)} overlap; the overlay must be address space the underlay does not use`,
    );
  }
  const underlayMask = maskOf(underlay.prefix);
  return Object.freeze({
    overlay: Object.freeze({ network: overlay.network, prefix: overlay.prefix }),
    underlay: Object.freeze({ network: underlay.network, prefix: underlay.prefix }),
    sliceLen,
    overlayMask: maskOf(overlay.prefix),
    underlayMask,
    sliceShift: 32 - sliceLen,
    sliceMask: maskOf(sliceLen),
    hostBitsMask: ~underlayMask >>> 0,
  });
}

/** One host's share of the overlay. */
export interface Slice {
  readonly network: Ipv4;
  readonly prefix: number;
  /** The bridge's own address: the first usable one. */
  readonly bridgeAddress: Ipv4;
  readonly firstUsable: Ipv4;
  readonly lastUsable: Ipv4;
  readonly broadcast: Ipv4;
  /** First address handed to containers: network + hostReserve + 1. */
  readonly dhcpFirst: Ipv4;
  readonly dhcpLast: Ipv4;
  /** Addresses kept for the host at the start of the slice (the bridge is one). */
  readonly hostReserve: number;
  readonly underlayHost: Ipv4;
}

/** The largest host-reserve that leaves one address for containers in a /sliceLen. */
export function maxHostReserve(sliceLen: number): number {
  return 2 ** (32 - sliceLen) - 3;
}

/** The slice owned by `underlayHost`, with its address plan. */
export function sliceFor(map: FanMap, underlayHost: Ipv4, hostReserve = 1): Slice {
  const h = underlayHost >>> 0;
  if (!contains(map.underlay, h)) {
    throw new FanError(`underlay host ${formatIpv4(h)} is not in underlay ${formatCidr(map.underlay)}`);
  }
  const hostBits = (h & map.hostBitsMask) >>> 0;
  if (hostBits === 0) {
    throw new FanError(
      `underlay host ${formatIpv4(h)} is the network address of underlay ${formatCidr(map.underlay)}; give the host's own address`,
    );
  }
  if (hostBits === map.hostBitsMask) {
    throw new FanError(
      `underlay host ${formatIpv4(h)} is the broadcast address of underlay ${formatCidr(map.underlay)}; give the host's own address`,
    );
  }
  const max = maxHostReserve(map.sliceLen);
  if (!Number.isInteger(hostReserve) || hostReserve < 1) {
    throw new FanError(`host-reserve ${hostReserve} must be a whole number ≥ 1 (the bridge address is always reserved)`);
  }
  if (hostReserve > max) {
    throw new FanError(
      `host-reserve ${hostReserve} leaves no address for containers in a /${map.sliceLen} slice (at most ${max})`,
    );
  }
  const network = sliceNetworkOf(map, h);
  const broadcast = (network | hostMaskOf(map.sliceLen)) >>> 0;
  return Object.freeze({
    network,
    prefix: map.sliceLen,
    bridgeAddress: network + 1,
    firstUsable: network + 1,
    lastUsable: broadcast - 1,
    broadcast,
    dhcpFirst: network + hostReserve + 1,
    dhcpLast: broadcast - 1,
    hostReserve,
    underlayHost: h,
  });
}

/**
 * The underlay host an overlay address lives on. Throws when the address is
 * outside the overlay, or falls in a slice that belongs to no host (the
 * slices of the underlay's network and broadcast addresses).
 */
export function underlayFor(map: FanMap, overlayAddress: Ipv4): Ipv4 {
  const a = overlayAddress >>> 0;
  if (!contains(map.overlay, a)) {
    throw new FanError(`${formatIpv4(a)} is not in overlay ${formatCidr(map.overlay)}`);
  }
  const h = underlayHostOf(map, a);
  const hostBits = (h & map.hostBitsMask) >>> 0;
  if (hostBits === 0 || hostBits === map.hostBitsMask) {
    const which = hostBits === 0 ? 'network' : 'broadcast';
    throw new FanError(
      `${formatIpv4(a)} maps to ${formatIpv4(h)}, the ${which} address of underlay ${formatCidr(map.underlay)}; no host owns it`,
    );
  }
  return h;
}

/** Hot path: underlay host of overlay address `a`. No checks, no allocation. */
export function underlayHostOf(map: FanMap, a: number): number {
  return (map.underlay.network | ((a & ~map.overlayMask) >>> map.sliceShift)) >>> 0;
}

/** Hot path: slice network of underlay host `h`. No checks, no allocation. */
export function sliceNetworkOf(map: FanMap, underlayHost: number): number {
  return (map.overlay.network | ((underlayHost & map.hostBitsMask) << map.sliceShift)) >>> 0;
}

// ---------------------------------------------------------------------------
// Interface names.
//
// Linux interface names are at most 15 bytes (IFNAMSIZ is 16 including the
// NUL; include/uapi/linux/if.h), and dev_valid_name() in net/core/dev.c
// rejects "", ".", "..", and names containing '/', ':' or whitespace.
//
// Naming rule (copied to the README):
//   bridge: "fan-" + the slice's significant octets, ceil(prefix/8) of them,
//           joined by "-":  250.3.4.0/24 -> fan-250-3-4,
//           10.16.0.0/20 -> fan-10-16-0, 100.64.128.0/18 -> fan-100-64-128.
//   tunnel: "ftun-" + the overlay's significant octets: 250.0.0.0/8 -> ftun-250;
//           "fvx-" for a VXLAN fan's device: 240.0.0.0/8 -> fvx-240.
//   When that is longer than 15 bytes, the name is the prefix ("fan-" or
//   "ftun-") + the network address as 8 lowercase hex digits:
//   250.255.255.224/28 -> fan-faffffe0. Only slices longer than /24 (and
//   overlays longer than /16) can need this.
// ---------------------------------------------------------------------------

export const IFNAMSIZ_MAX = 15;

function octetName(prefix: string, c: { network: Ipv4; prefix: number }): string {
  const n = Math.max(1, Math.ceil(c.prefix / 8));
  const octets = [c.network >>> 24, (c.network >>> 16) & 255, (c.network >>> 8) & 255, c.network & 255];
  const name = prefix + octets.slice(0, n).join('-');
  if (name.length <= IFNAMSIZ_MAX) return name;
  return prefix + (c.network >>> 0).toString(16).padStart(8, '0');
}

/** Bridge name of a slice (see the naming rule above). */
export function bridgeNameFor(slice: { network: Ipv4; prefix: number }): string {
  return octetName('fan-', slice);
}

/**
 * The fan bridge's Ethernet address: locally administered unicast (first
 * octet 0x02), then 0xfa, then the slice's network address:
 * 250.3.4.0/24 -> 02:fa:fa:03:04:00. Without a fixed address a Linux bridge
 * takes the lowest address of its ports (net/bridge/br_stp_if.c,
 * br_stp_recalculate_bridge_id) and changes it when that port leaves, and
 * every container's ARP entry for its gateway goes stale until it expires.
 * Derived from the slice, it is the same across restarts and unique across
 * the fan (slices never overlap).
 */
export function bridgeMacFor(slice: { network: Ipv4 }): string {
  const n = slice.network >>> 0;
  return ['02', 'fa', ...[24, 16, 8, 0].map((s) => ((n >>> s) & 255).toString(16).padStart(2, '0'))].join(':');
}

/** Tunnel device name of an overlay (see the naming rule above). */
export function tunNameFor(overlay: Cidr): string {
  return octetName('ftun-', overlay);
}

/**
 * The VXLAN device of a VXLAN fan (the TAP of the userspace dataplane, the
 * vxlan device of kernel-fan): "fvx-" + the overlay's significant octets,
 * 240.0.0.0/8 -> fvx-240 (the naming rule above, with "fvx-").
 */
export function vxlanNameFor(overlay: Cidr): string {
  return octetName('fvx-', overlay);
}

/** Throws FanError unless `name` is a valid Linux interface name. */
export function validateIfName(name: string, what: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) throw new FanError(`${what}: interface name is empty`);
  if (bytes > IFNAMSIZ_MAX) {
    throw new FanError(`${what} '${name}': interface name is ${bytes} bytes; Linux allows at most ${IFNAMSIZ_MAX}`);
  }
  if (name === '.' || name === '..') throw new FanError(`${what} '${name}': not a valid interface name`);
  if (/[/:\s\0]/.test(name)) {
    throw new FanError(`${what} '${name}': interface names may not contain '/', ':', whitespace or NUL`);
  }
}
