// Outbound: an inner IPv4 packet read from the TUN becomes an IPIP packet
// for the underlay host that owns its destination. The outer header is
// written into the headroom in front of the inner packet: no copy.

import { Drop } from '../counters.js';
import { type PacketContext, dropResult } from './context.js';
import { IPPROTO_IPIP, IP_DF, ipv4HeaderChecksum, readU32, writeU16, writeU32 } from './ipv4.js';

export { isDrop, dropReason, dropResult } from './context.js';

/** Bytes of headroom encapsulate needs in front of the inner packet. */
export const OUTER_HEADER_LENGTH = 20;

/**
 * Encapsulates the inner IPv4 packet at buf[off, off+len) in place; the
 * caller guarantees off >= 20. The inner packet's length is its total-length
 * field (bytes after it are ignored), so the outer packet is
 * buf[off-20, off + innerTotalLength) and its length is the outer
 * total-length field, ipTotalLength(buf, off - 20).
 *
 * Returns the outer destination (the underlay host owning the inner
 * destination, > 0 since 0/8 underlays are rejected) or a negative drop
 * result (isDrop/dropReason). Reads only buf[off, off+len), writes only
 * buf[off-20, off). The inner packet is not modified.
 *
 * The outer header follows what Linux's ip_tunnel_xmit() (net/ipv4/ip_tunnel.c)
 * builds for the fallback ipip device tunl0, whose parameters are all zero
 * (`ttl inherit nopmtudisc`):
 *  - TTL: tnl_params->ttl is 0, so `ttl = inner_iph->ttl`: inherited. The
 *    inner TTL is not decremented: the kernel did that when it routed the
 *    packet into the TUN. An inner TTL of 0 is dropped (OutTtlExpired).
 *  - DF: `df = tnl_params->frag_off (0) | (inner frag_off & IP_DF)`: copied.
 *    No MF, offset 0, ID 0 (raw_send_hdrinc() picks an ID when it is 0).
 *  - ECN: ip_tunnel_ecn_encap() → INET_ECN_encapsulate()
 *    (include/net/inet_ecn.h): the outer ECN is the inner's, except that
 *    inner CE becomes outer ECT(0). That is RFC 3168 §9.1.1
 *    full-functionality encapsulation; RFC 6040 §4.1 normal mode would copy
 *    CE as well. We follow the kernel so that a Fan of fand hosts and kernel
 *    Fan hosts marks alike. The inner result after decapsulation is the same
 *    either way: RFC 6040 §4.2 never clears an inner CE.
 *  - DSCP: copied from the inner packet (RFC 2983 uniform model). Linux does
 *    this only for `tos inherit` tunnels (tunl0's default tos 0 gives DSCP 0);
 *    copying keeps the Fan transparent to QoS on the underlay.
 *  - Checksum: computed, although raw_send_hdrinc() recomputes it anyway.
 */
export function encapsulate(buf: Uint8Array, off: number, len: number, ctx: PacketContext): number {
  const r = encapsulateHeader(buf, off, len, ctx);
  return r < 0 ? r : readU32(buf, off - 4);
}

/**
 * encapsulate() without the destination in the result: returns 0 on success
 * (the destination is the outer header's, readU32(buf, off - 4)) or a
 * negative drop result. Use it where the result crosses a call that V8 does
 * not inline: a uint32 above 2^30 returned from a function is boxed as a
 * heap number (16 bytes a packet, measured), while 0 and the small negative
 * drop results are Smis.
 */
export function encapsulateHeader(buf: Uint8Array, off: number, len: number, ctx: PacketContext): number {
  if (len < 20) {
    // Classify a short IPv6 or garbage packet by its version when there is one.
    return len > 0 && buf[off] >>> 4 !== 4 ? dropResult(Drop.OutNotIpv4) : dropResult(Drop.OutMalformed);
  }
  const vihl = buf[off];
  if (vihl >>> 4 !== 4) return dropResult(Drop.OutNotIpv4);
  const ihl = (vihl & 0x0f) << 2;
  if (ihl < 20 || ihl > len) return dropResult(Drop.OutMalformed);
  const total = (buf[off + 2] << 8) | buf[off + 3];
  if (total > len || total < ihl) return dropResult(Drop.OutMalformed);

  const dst = readU32(buf, off + 16);
  if (((dst & ctx.overlayMask) >>> 0) !== ctx.overlayNet) return dropResult(Drop.OutNotOverlay);
  if (((dst & ctx.sliceMask) >>> 0) === ctx.localSlice) return dropResult(Drop.OutLocalSlice);
  const host = (ctx.underlayNet | ((dst & ~ctx.overlayMask) >>> ctx.sliceShift)) >>> 0;
  if (host === ctx.underlayNet || host === ((ctx.underlayNet | ctx.hostBitsMask) >>> 0) || host === ctx.localUnderlay) {
    return dropResult(Drop.OutBadUnderlay);
  }
  const ttl = buf[off + 8];
  if (ttl === 0) return dropResult(Drop.OutTtlExpired);
  // The outer total length must fit 16 bits. An inner packet this large
  // cannot come from a TUN whose MTU is the underlay's minus 20; the kernel
  // would refuse the send with EMSGSIZE, so count it the same way.
  if (total > 0xffff - 20) return dropResult(Drop.OutSendError);

  const tos = buf[off + 1];
  const o = off - 20;
  buf[o] = 0x45;
  buf[o + 1] = (tos & 3) === 3 ? (tos & 0xfc) | 2 : tos;
  writeU16(buf, o + 2, total + 20);
  buf[o + 4] = 0;
  buf[o + 5] = 0;
  buf[o + 6] = (buf[off + 6] & (IP_DF >>> 8));
  buf[o + 7] = 0;
  buf[o + 8] = ttl;
  buf[o + 9] = IPPROTO_IPIP;
  buf[o + 10] = 0;
  buf[o + 11] = 0;
  writeU32(buf, o + 12, ctx.localUnderlay);
  writeU32(buf, o + 16, host);
  writeU16(buf, o + 10, ipv4HeaderChecksum(buf, o, 20));
  return 0;
}
