// Inbound: an IPIP packet from the raw socket (the kernel hands over the
// whole outer IPv4 packet, reassembled) is validated and its inner packet
// located for writing to the TUN. Untrusted input: every field is checked
// before it is used, and nothing outside buf[off, off+len) is touched.

import { Drop } from '../counters.js';
import { type PacketContext, dropResult } from './context.js';
import { IPPROTO_IPIP, checksumValid, readU32, setTosUpdateChecksum } from './ipv4.js';

export { isDrop, dropReason, dropResult } from './context.js';
export { ipTotalLength as innerLength } from './ipv4.js';

/**
 * Validates the outer IPIP packet at buf[off, off+len) and returns the
 * offset of the inner packet (>= off + 20), or a negative drop result
 * (isDrop/dropReason). On success the inner packet is
 * buf[inner, inner + innerLength(buf, inner)) and it ends exactly at
 * off + len (that is checked). Only the inner TOS and checksum bytes may be
 * written (ECN). The inner TTL is left alone: the kernel decrements it when
 * it forwards the packet from the TUN to the bridge.
 *
 * ECN, RFC 6040 §4.2, as Linux's INET_ECN_decapsulate()
 * (include/net/inet_ecn.h, with INET_ECN_set_ect1 since 5.9):
 *
 *   inner \ outer  Not-ECT   ECT(0)   ECT(1)   CE
 *   Not-ECT        Not-ECT   Not-ECT  Not-ECT  drop (InEcnDrop)
 *   ECT(0)         ECT(0)    ECT(0)   ECT(1)   CE
 *   ECT(1)         ECT(1)    ECT(1)   ECT(1)   CE
 *   CE             CE        CE       CE       CE
 *
 * The RFC's "(!)" cells (Not-ECT under ECT, ECT(1) under ECT(0), CE under
 * ECT(1)) pass unchanged; the kernel only logs them.
 */
export function decapsulate(buf: Uint8Array, off: number, len: number, ctx: PacketContext): number {
  if (len < 40) return dropResult(Drop.InTruncated);

  const ovihl = buf[off];
  const oihl = (ovihl & 0x0f) << 2;
  if (ovihl >>> 4 !== 4 || oihl < 20 || oihl + 20 > len || buf[off + 9] !== IPPROTO_IPIP ||
      ((buf[off + 2] << 8) | buf[off + 3]) !== len) {
    return dropResult(Drop.InOuterMalformed);
  }

  const osrc = readU32(buf, off + 12);
  if (((osrc & ctx.underlayMask) >>> 0) !== ctx.underlayNet || osrc === ctx.localUnderlay ||
      osrc === ctx.underlayNet || osrc === ((ctx.underlayNet | ctx.hostBitsMask) >>> 0)) {
    return dropResult(Drop.InOuterSource);
  }

  const i = off + oihl;
  const ivihl = buf[i];
  if (ivihl >>> 4 !== 4) return dropResult(Drop.InInnerNotIpv4);
  const iihl = (ivihl & 0x0f) << 2;
  const itotal = (buf[i + 2] << 8) | buf[i + 3];
  if (iihl < 20 || itotal < iihl || itotal !== len - oihl) return dropResult(Drop.InInnerMalformed);
  if (!checksumValid(buf, i, iihl)) return dropResult(Drop.InInnerChecksum);

  if (((readU32(buf, i + 16) & ctx.sliceMask) >>> 0) !== ctx.localSlice) return dropResult(Drop.InInnerDestination);
  if (ctx.checkInnerSource &&
      ((readU32(buf, i + 12) & ctx.sliceMask) >>> 0) !== ((ctx.overlayNet | ((osrc & ctx.hostBitsMask) << ctx.sliceShift)) >>> 0)) {
    return dropResult(Drop.InSpoofedSource);
  }

  const outerEcn = buf[off + 1] & 3;
  const itos = buf[i + 1];
  const innerEcn = itos & 3;
  if (innerEcn === 0) {
    if (outerEcn === 3) return dropResult(Drop.InEcnDrop);
  } else if (outerEcn === 3) {
    if (innerEcn !== 3) setTosUpdateChecksum(buf, i, itos | 3);
  } else if (outerEcn === 1 && innerEcn === 2) {
    setTosUpdateChecksum(buf, i, (itos & 0xfc) | 1);
  }
  return i;
}
