// The VXLAN Fan (LXD's default `fan.type`), as Ubuntu's patched vxlan driver
// runs it (drivers/net/vxlan: vxlan_fan_build_rdst()): the whole overlay is
// one Ethernet segment, and each frame that leaves a host goes to the one
// underlay host the Fan mapping computes from it:
//   - an IPv4 frame: from its inner destination address;
//   - an ARP frame (request or reply): from its target protocol address;
//   - anything else (IPv6 neighbour discovery, other broadcasts, VLAN tags):
//     the patched driver drops it (tx_dropped); it stays on the local bridge.
// The frame travels in UDP (RFC 7348): an 8-byte VXLAN header (flags with the
// I bit, 24-bit VNI) in front of the Ethernet frame, to UDP port 8472 (the
// Linux default for `dstport 0`). fand sends and receives through UDP
// sockets, so the outer IPv4 and UDP headers are the kernel's; what is here
// is the VXLAN header and everything behind it. Pure functions over byte
// views: no allocation, no I/O.

import { Drop } from '../counters.js';
import { type PacketContext, dropResult } from './context.js';
import { checksumValid, readU32, setTosUpdateChecksum, writeU16, writeU32 } from './ipv4.js';
import { writeTcpSegment } from './tso.js';

/** VXLAN header (RFC 7348 §5): flags(8) reserved(24) VNI(24) reserved(8). */
export const VXLAN_HEADER_LENGTH = 8;
/** The I flag: the VNI is valid. */
export const VXLAN_FLAG_VNI = 0x08;
/** UDP port of the Linux vxlan driver when created with `dstport 0` (IANA's is 4789). */
export const VXLAN_PORT_LINUX = 8472;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14): the fan MTU is the underlay's minus this. */
export const VXLAN_OVERHEAD = 50;
export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
/** ARP for IPv4 over Ethernet: 8 bytes of header + 2 × (6 + 4) addresses. */
export const ARP_LENGTH = 28;

/**
 * The VNI LXD gives a VXLAN fan: the overlay's network address shifted right
 * by 8 (lxd/network/driver_bridge.go: `binary.BigEndian.Uint32(overlay) >> 8`),
 * so 240.0.0.0/8 → 15728640 (0xf00000). Always a valid 24-bit VNI.
 */
export function lxdVni(overlayNetwork: number): number {
  return (overlayNetwork >>> 8) & 0xffffff;
}

/** What the VXLAN path needs beyond the Fan context. */
export interface VxlanContext extends PacketContext {
  readonly vni: number;
  /** The fan MTU: an IPv4 frame with DF whose packet is longer is answered with ICMP (fragNeededFrame). */
  readonly mtu: number;
}

export function makeVxlanContext(ctx: PacketContext, vni: number, mtu: number): VxlanContext {
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) throw new RangeError(`VNI ${vni} must be 0..16777215`);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new RangeError(`fan MTU ${mtu} must be 68..65535`);
  return { ...ctx, vni, mtu };
}

/** Writes the 8-byte VXLAN header with the I flag and `vni` at buf[off]. */
export function writeVxlanHeader(buf: Uint8Array, off: number, vni: number): void {
  writeU32(buf, off, VXLAN_FLAG_VNI << 24);
  writeU32(buf, off + 4, (vni << 8) >>> 0);
}

/**
 * The underlay host whose slice holds overlay address a, or a drop reason:
 * outside the overlay, in this host's own slice (it belongs on the local
 * bridge; the patched driver discards what maps to itself), or mapping to
 * the underlay's network or broadcast address.
 */
function hostFor(ctx: PacketContext, a: number): number {
  if (((a & ctx.overlayMask) >>> 0) !== ctx.overlayNet) return dropResult(Drop.OutNotOverlay);
  if (((a & ctx.sliceMask) >>> 0) === ctx.localSlice) return dropResult(Drop.OutLocalSlice);
  const host = (ctx.underlayNet | ((a & ~ctx.overlayMask) >>> ctx.sliceShift)) >>> 0;
  if (host === ctx.underlayNet || host === ((ctx.underlayNet | ctx.hostBitsMask) >>> 0) || host === ctx.localUnderlay) {
    return dropResult(Drop.OutBadUnderlay);
  }
  return 0;
}

/** True for an ARP header of IPv4 over Ethernet (htype 1, ptype 0x0800, hlen 6, plen 4). */
function arpIpv4(buf: Uint8Array, a: number): boolean {
  return buf[a] === 0 && buf[a + 1] === 1 && buf[a + 2] === 0x08 && buf[a + 3] === 0 && buf[a + 4] === 6 && buf[a + 5] === 4;
}

/**
 * Outbound: the Ethernet frame at buf[off, off+len), read from the fan's TAP,
 * is checked and mapped. On success returns 0, writes the VXLAN header into
 * buf[off-8, off), the underlay host into dsts[m] and the outer TOS into
 * tos[m]; the message to send is buf[off-8, off+len) (the caller guarantees
 * off >= 8). Otherwise returns a negative drop result (isDrop/dropReason) and
 * writes nothing; OutTooBig asks the caller to answer with fragNeededFrame.
 * For a TCP super-packet (TSO) `segmentTotal` is the IPv4 length of each of
 * its segments, which is what must fit the fan MTU.
 *
 * The outer TOS follows what Linux's vxlan_xmit_one() gives a device with the
 * default `tos 0`: ip_tunnel_ecn_encap() → INET_ECN_encapsulate(0, inner):
 * the inner ECN field, CE sent as ECT(0) (RFC 3168 §9.1.1 full functionality,
 * as the IPIP path does). The DSCP is copied, as fand's IPIP path does (RFC
 * 2983 uniform model), so the underlay sees the containers' QoS. ARP: 0.
 * The inner frame is never modified; its TTL is not touched (a bridge
 * forwards it, nothing routes it).
 */
export function encapsulateFrame(buf: Uint8Array, off: number, len: number, ctx: VxlanContext,
  dsts: Uint32Array, tos: Uint8Array, m: number, segmentTotal = 0): number {
  if (len < ETH_HLEN) return dropResult(Drop.OutMalformed);
  const type = (buf[off + 12]! << 8) | buf[off + 13]!;
  let target: number;
  let t = 0;
  if (type === ETH_P_IP) {
    const i = off + ETH_HLEN;
    const n = len - ETH_HLEN;
    if (n < 20) return dropResult(Drop.OutMalformed);
    const vihl = buf[i]!;
    if (vihl >>> 4 !== 4) return dropResult(Drop.OutNotIpv4);
    const ihl = (vihl & 0x0f) << 2;
    const total = (buf[i + 2]! << 8) | buf[i + 3]!;
    if (ihl < 20 || ihl > n || total > n || total < ihl) return dropResult(Drop.OutMalformed);
    target = readU32(buf, i + 16);
    const r = hostFor(ctx, target);
    if (r < 0) return r;
    // DF and longer than the fan: the next hop cannot take it whole.
    if ((segmentTotal > 0 ? segmentTotal : total) > ctx.mtu && (buf[i + 6]! & 0x40) !== 0) return dropResult(Drop.OutTooBig);
    const itos = buf[i + 1]!;
    t = (itos & 3) === 3 ? (itos & 0xfc) | 2 : itos;
  } else if (type === ETH_P_ARP) {
    if (len < ETH_HLEN + ARP_LENGTH || !arpIpv4(buf, off + ETH_HLEN)) return dropResult(Drop.OutMalformed);
    target = readU32(buf, off + ETH_HLEN + 24); // target protocol address, whatever the operation
    const r = hostFor(ctx, target);
    if (r < 0) return r;
  } else {
    return dropResult(Drop.OutUnmapped);
  }
  dsts[m] = (ctx.underlayNet | ((target & ~ctx.overlayMask) >>> ctx.sliceShift)) >>> 0;
  tos[m] = t;
  writeVxlanHeader(buf, off - VXLAN_HEADER_LENGTH, ctx.vni);
  return 0;
}

/** The VNI of the VXLAN header at buf[off], or -1 when the header is not one Linux would accept (see decapsulateFrame). */
export function vniOf(buf: Uint8Array, off: number, len: number): number {
  if (len < VXLAN_HEADER_LENGTH) return -1;
  if (buf[off] !== VXLAN_FLAG_VNI || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0 || buf[off + 7] !== 0) return -1;
  return (buf[off + 4]! << 16) | (buf[off + 5]! << 8) | buf[off + 6]!;
}

/**
 * Inbound: one VXLAN packet at buf[off, off+len) (the UDP payload, or one
 * segment of a GRO'd one), received from underlay address `src` with outer
 * TOS `outerTos` (-1: unknown). Untrusted: every field is checked before it
 * is used and nothing outside buf[off, off+len) is read. Returns the length
 * of the inner Ethernet frame to deliver, which starts at off + 8 (for IPv4:
 * 14 + the IPv4 total length, so Ethernet padding is left behind), or a
 * negative drop result. Only the inner TOS and header checksum may be
 * written (ECN).
 *
 * The checks are the IPIP path's (decap.ts), applied to what a VXLAN fan
 * carries:
 *  - the outer source inside the underlay, not this host and not the
 *    underlay's network or broadcast address (InOuterSource);
 *  - the VXLAN header as Linux's vxlan_rcv() takes it: the I flag set and
 *    every reserved bit clear (InVxlanHeader), the fan's VNI (InVni);
 *  - the Ethernet source unicast (a bridge refuses a multicast source);
 *  - IPv4: well-formed header (version, IHL, total length within the frame),
 *    correct header checksum, destination in this host's slice, source in
 *    the slice of the outer source (with checkInnerSource), RFC 6040 ECN as
 *    decap.ts applies it when the outer TOS is known;
 *  - ARP: IPv4 over Ethernet, request or reply (InArpMalformed), target in
 *    this host's slice (it is what the sender mapped on), sender in the slice
 *    of the outer source;
 *  - anything else: InInnerNotIpv4 (the patched driver never sends it).
 */
export function decapsulateFrame(buf: Uint8Array, off: number, len: number, src: number, outerTos: number, ctx: VxlanContext): number {
  // Who sent it first: a host outside the underlay has nothing to say, whatever it sent.
  const s = src >>> 0;
  if (((s & ctx.underlayMask) >>> 0) !== ctx.underlayNet || s === ctx.localUnderlay ||
      s === ctx.underlayNet || s === ((ctx.underlayNet | ctx.hostBitsMask) >>> 0)) {
    return dropResult(Drop.InOuterSource);
  }
  if (len < VXLAN_HEADER_LENGTH + ETH_HLEN) return dropResult(len < VXLAN_HEADER_LENGTH ? Drop.InTruncated : Drop.InVxlanHeader);
  const vni = vniOf(buf, off, len);
  if (vni < 0) return dropResult(Drop.InVxlanHeader);
  if (vni !== ctx.vni) return dropResult(Drop.InVni);
  const e = off + VXLAN_HEADER_LENGTH;
  const n = len - VXLAN_HEADER_LENGTH - ETH_HLEN; // bytes after the Ethernet header
  if ((buf[e + 6]! & 1) !== 0) return dropResult(Drop.InInnerMalformed); // multicast/broadcast source address
  const type = (buf[e + 12]! << 8) | buf[e + 13]!;
  const senderSlice = (ctx.overlayNet | ((s & ctx.hostBitsMask) << ctx.sliceShift)) >>> 0;
  if (type === ETH_P_ARP) {
    const a = e + ETH_HLEN;
    if (n < ARP_LENGTH || !arpIpv4(buf, a) || buf[a + 6] !== 0 || (buf[a + 7] !== 1 && buf[a + 7] !== 2)) {
      return dropResult(Drop.InArpMalformed);
    }
    if (((readU32(buf, a + 24) & ctx.sliceMask) >>> 0) !== ctx.localSlice) return dropResult(Drop.InInnerDestination);
    if (ctx.checkInnerSource && ((readU32(buf, a + 14) & ctx.sliceMask) >>> 0) !== senderSlice) return dropResult(Drop.InSpoofedSource);
    return len - VXLAN_HEADER_LENGTH;
  }
  if (type !== ETH_P_IP) return dropResult(Drop.InInnerNotIpv4);
  const i = e + ETH_HLEN;
  if (n < 20) return dropResult(Drop.InInnerMalformed);
  const ivihl = buf[i]!;
  const iihl = (ivihl & 0x0f) << 2;
  const itotal = (buf[i + 2]! << 8) | buf[i + 3]!;
  if (ivihl >>> 4 !== 4 || iihl < 20 || itotal < iihl || itotal > n) return dropResult(Drop.InInnerMalformed);
  if (!checksumValid(buf, i, iihl)) return dropResult(Drop.InInnerChecksum);
  if (((readU32(buf, i + 16) & ctx.sliceMask) >>> 0) !== ctx.localSlice) return dropResult(Drop.InInnerDestination);
  if (ctx.checkInnerSource && ((readU32(buf, i + 12) & ctx.sliceMask) >>> 0) !== senderSlice) return dropResult(Drop.InSpoofedSource);
  if (outerTos >= 0) {
    // RFC 6040 §4.2 as Linux's INET_ECN_decapsulate() (decap.ts has the table).
    const outerEcn = outerTos & 3;
    const itos = buf[i + 1]!;
    const innerEcn = itos & 3;
    if (innerEcn === 0) {
      if (outerEcn === 3) return dropResult(Drop.InEcnDrop);
    } else if (outerEcn === 3) {
      if (innerEcn !== 3) setTosUpdateChecksum(buf, i, itos | 3);
    } else if (outerEcn === 1 && innerEcn === 2) {
      setTosUpdateChecksum(buf, i, (itos & 0xfc) | 1);
    }
  }
  return ETH_HLEN + itotal;
}

/** Bytes of the offending packet an ICMP error quotes: its IPv4 header and what follows, up to this many. */
export const ICMP_QUOTE_MAX = 128;

/**
 * Builds, at out[at], the answer to an IPv4 frame with DF that does not fit
 * the fan MTU (encapsulateFrame returned OutTooBig): an Ethernet frame back
 * to its sender carrying ICMP "fragmentation needed" (type 3 code 4, RFC 1191)
 * with next-hop MTU `mtu`, as Linux's bridged vxlan devices answer since 5.9
 * (iptunnel_pmtud_build_icmp(), net/ipv4/ip_tunnel_core.c): from the packet's
 * destination address and MAC to its source, TTL 64, quoting the start of
 * the packet. The sender's kernel lowers its path MTU to that destination
 * (tcp_v4_err → tcp_v4_mtu_reduced): a container whose MTU is larger than
 * the fan still completes large transfers. The frame at buf[off, off+len)
 * must have passed encapsulateFrame's IPv4 checks. Returns the length
 * written (at most 14 + 20 + 8 + ICMP_QUOTE_MAX).
 */
export function fragNeededFrame(buf: Uint8Array, off: number, len: number, mtu: number, out: Uint8Array, at: number): number {
  const i = off + ETH_HLEN;
  const ihl = (buf[i]! & 0x0f) << 2;
  const total = (buf[i + 2]! << 8) | buf[i + 3]!;
  const quote = Math.min(total, len - ETH_HLEN, Math.max(ihl + 8, ICMP_QUOTE_MAX));
  // Ethernet: back to the sender, from the address it sent to.
  out.set(buf.subarray(off + 6, off + 12), at);
  out.set(buf.subarray(off, off + 6), at + 6);
  writeU16(out, at + 12, ETH_P_IP);
  const o = at + ETH_HLEN;
  const icmpLen = 8 + quote;
  out[o] = 0x45;
  out[o + 1] = 0;
  writeU16(out, o + 2, 20 + icmpLen);
  writeU16(out, o + 4, 0);
  writeU16(out, o + 6, 0x4000);
  out[o + 8] = 64;
  out[o + 9] = 1; // ICMP
  writeU16(out, o + 10, 0);
  out.set(buf.subarray(i + 16, i + 20), o + 12); // source: the packet's destination
  out.set(buf.subarray(i + 12, i + 16), o + 16); // destination: its source
  writeU16(out, o + 10, sumWords(out, o, o + 20));
  const c = o + 20;
  out[c] = 3;      // destination unreachable
  out[c + 1] = 4;  // fragmentation needed and DF set
  writeU16(out, c + 2, 0);
  writeU16(out, c + 4, 0);
  writeU16(out, c + 6, mtu);
  out.set(buf.subarray(i, i + quote), c + 8);
  writeU16(out, c + 2, sumWords(out, c, c + icmpLen));
  return ETH_HLEN + 20 + icmpLen;
}

/** The Internet checksum (RFC 1071) of out[from, to). */
function sumWords(b: Uint8Array, from: number, to: number): number {
  let sum = 0;
  let k = from;
  for (; k + 1 < to; k += 2) sum += (b[k]! << 8) | b[k + 1]!;
  if (k < to) sum += b[k]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Bytes in front of each TSO segment's inner IPv4 header: VXLAN + Ethernet. */
export const SEGMENT_PREFIX = VXLAN_HEADER_LENGTH + ETH_HLEN;

/**
 * Writes the headers of segment k of the TCP super-frame at buf[off,
 * off+len) (an Ethernet frame whose IPv4/TCP packet tcpSegmentCount accepted
 * with this mss) to buf[hdrOff, ...): the VXLAN header, the frame's Ethernet
 * header, then the segment's IPv4 and TCP headers (tso.ts writeTcpSegment,
 * the TCP checksum left as the pseudo-header sum for the addon to finish
 * over header and payload). Returns the length written; the segment's
 * payload stays in place (segmentPayload(buf, off + 14, ...)).
 */
export function writeVxlanSegment(buf: Uint8Array, off: number, len: number, mss: number, k: number, count: number,
  hdrOff: number, vni: number): number {
  writeVxlanHeader(buf, hdrOff, vni);
  buf.copyWithin(hdrOff + VXLAN_HEADER_LENGTH, off, off + ETH_HLEN);
  return SEGMENT_PREFIX + writeTcpSegment(buf, off + ETH_HLEN, len - ETH_HLEN, mss, k, count, hdrOff + SEGMENT_PREFIX, true);
}

/** True when the Ethernet headers at buf[a] and buf[b] are equal (the same flow between the same two MACs). */
export function sameEthernet(buf: Uint8Array, a: number, b: number): boolean {
  for (let i = 0; i < ETH_HLEN; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}
