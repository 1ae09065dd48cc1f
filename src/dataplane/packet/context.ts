// What the per-packet functions need to know about the Fan, precomputed once
// per worker so that the hot path is a handful of ANDs, ORs and shifts.
//
// The Fan mapping: overlay /o over underlay /u gives each underlay host a
// slice /(o + 32 - u) of the overlay whose bits after the overlay prefix are
// the host bits of its underlay address. 250.0.0.0/8 over 172.16.0.0/16:
// host 172.16.3.4 owns 250.3.4.0/24, and 250.5.6.7 lives on 172.16.5.6.

import { Drop } from '../counters.js';

export interface PacketContext {
  overlayNet: number;
  overlayMask: number;
  underlayNet: number;
  underlayMask: number;
  /** 32 - slice prefix length (= u - o). */
  sliceShift: number;
  /** Mask of the slice prefix length. */
  sliceMask: number;
  /** Host bits of the underlay: ~underlayMask >>> 0. */
  hostBitsMask: number;
  /** This host's underlay address. */
  localUnderlay: number;
  /** This host's slice network. */
  localSlice: number;
  /** Drop inbound packets whose inner source is not in the sender's slice. */
  checkInnerSource: boolean;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Builds the context. Setup code, not hot path: throws a RangeError when the
 * Fan is impossible (overlay prefix must be 1..u, underlay prefix o..30) or
 * localUnderlay is not a host of the underlay.
 */
export function makePacketContext(
  overlay: { network: number; prefix: number },
  underlay: { network: number; prefix: number },
  localUnderlay: number,
  checkInnerSource = true,
): PacketContext {
  const o = overlay.prefix;
  const u = underlay.prefix;
  if (!Number.isInteger(o) || !Number.isInteger(u) || o < 1 || u > 30 || o > u) {
    throw new RangeError(`fan overlay /${o} over underlay /${u}: need 1 <= overlay prefix <= underlay prefix <= 30`);
  }
  const overlayMask = maskOf(o);
  const underlayMask = maskOf(u);
  const overlayNet = (overlay.network & overlayMask) >>> 0;
  const underlayNet = (underlay.network & underlayMask) >>> 0;
  const hostBitsMask = ~underlayMask >>> 0;
  const local = localUnderlay >>> 0;
  if (((local & underlayMask) >>> 0) !== underlayNet || local === underlayNet || local === ((underlayNet | hostBitsMask) >>> 0)) {
    throw new RangeError(`local underlay address ${local >>> 24}.${(local >>> 16) & 255}.${(local >>> 8) & 255}.${local & 255} is not a host of the underlay /${u}`);
  }
  const sliceLen = o + 32 - u;
  const sliceShift = 32 - sliceLen;
  return {
    overlayNet,
    overlayMask,
    underlayNet,
    underlayMask,
    sliceShift,
    sliceMask: maskOf(sliceLen),
    hostBitsMask,
    localUnderlay: local,
    localSlice: (overlayNet | ((local & hostBitsMask) << sliceShift)) >>> 0,
    checkInnerSource,
  };
}

/** The underlay host whose slice holds overlay address a (a must be in the overlay). */
export function underlayHostOf(ctx: PacketContext, a: number): number {
  return (ctx.underlayNet | ((a & ~ctx.overlayMask) >>> ctx.sliceShift)) >>> 0;
}

/** The slice network of underlay host h. */
export function sliceOf(ctx: PacketContext, h: number): number {
  return (ctx.overlayNet | ((h & ctx.hostBitsMask) << ctx.sliceShift)) >>> 0;
}

// Results of encapsulate/decapsulate: a non-negative value is the success
// result, a negative one encodes a drop reason as -(1 + reason), so that a
// single number crosses the call without an object.

/** The negative return value that stands for dropping with `reason`. */
export function dropResult(reason: Drop): number {
  return -1 - reason;
}

export function isDrop(v: number): boolean {
  return v < 0;
}

/** The Drop reason of a negative result (undefined meaning for v >= 0). */
export function dropReason(v: number): Drop {
  return -1 - v;
}
