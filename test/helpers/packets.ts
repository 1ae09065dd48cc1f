// Packet builders for the dataplane tests. Test code: allocates freely.

import { parseIpv4 } from '../../src/fan/ipv4.js';
import { ipv4HeaderChecksum, writeU16, writeU32 } from '../../src/dataplane/packet/ipv4.js';
import { isDrop } from '../../src/dataplane/packet/encap.js';

export function ip(text: string): number {
  const a = parseIpv4(text);
  if (a === undefined) throw new Error(`bad address ${text}`);
  return a;
}

export interface InnerSpec {
  src: number;
  dst: number;
  tos?: number;
  ttl?: number;
  df?: boolean;
  /** Flags/fragment-offset word; overrides df when given. */
  fragWord?: number;
  id?: number;
  proto?: number;
  /** IP options bytes (a multiple of 4, at most 40). */
  options?: Uint8Array;
  payload?: Uint8Array;
}

/** An IPv4 packet with a correct header checksum. */
export function ipv4Packet(s: InnerSpec): Uint8Array {
  const opt = s.options ?? new Uint8Array(0);
  const payload = s.payload ?? new Uint8Array(0);
  const ihl = 20 + opt.length;
  const p = new Uint8Array(ihl + payload.length);
  p[0] = 0x40 | (ihl >> 2);
  p[1] = s.tos ?? 0;
  writeU16(p, 2, p.length);
  writeU16(p, 4, s.id ?? 0x1234);
  writeU16(p, 6, s.fragWord ?? (s.df ?? true ? 0x4000 : 0));
  p[8] = s.ttl ?? 64;
  p[9] = s.proto ?? 17;
  writeU32(p, 12, s.src);
  writeU32(p, 16, s.dst);
  p.set(opt, 20);
  writeU16(p, 10, ipv4HeaderChecksum(p, 0, ihl));
  p.set(payload, ihl);
  return p;
}

/** Internet checksum over bytes (for ICMP). */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An ICMP echo request with a correct ICMP checksum. */
export function icmpEcho(id: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = 8;
  writeU16(m, 4, id);
  writeU16(m, 6, seq);
  m.set(data, 8);
  writeU16(m, 2, inetChecksum(m));
  return m;
}

/** An IPIP packet: outer header (TOS, options as given) around `inner`. */
export function ipipPacket(outerSrc: number, outerDst: number, inner: Uint8Array, outerTos = 0, outerOptions?: Uint8Array): Uint8Array {
  return ipv4Packet({ src: outerSrc, dst: outerDst, tos: outerTos, proto: 4, ttl: 64, df: false, id: 0, options: outerOptions, payload: inner });
}

export const GUARD = 32;

/** `pkt` placed in a larger buffer at off = headroom + GUARD, surrounded by fill bytes. */
export function placed(pkt: Uint8Array, headroom: number, fill: number, tail = GUARD): { buf: Uint8Array; off: number; len: number } {
  const buf = new Uint8Array(GUARD + headroom + pkt.length + tail).fill(fill);
  const off = GUARD + headroom;
  buf.set(pkt, off);
  return { buf, off, len: pkt.length };
}

/**
 * Runs fn on buf[off, off+len) placed twice, with everything else in the
 * buffer (guards, headroom, and packet bytes past len) filled with 0x00 in
 * one run and 0xff in the other. Checks that the result does not depend on
 * those bytes (so none were read), that none was written, except the
 * `headroom` bytes in front on success (encapsulation), and that both runs
 * leave identical bytes where they may write.
 */
export function guarded(t: { fail(m: string): void }, pkt: Uint8Array, len: number, headroom: number,
  fn: (buf: Uint8Array, off: number, len: number) => number): number {
  const a = placed(pkt, headroom, 0x00);
  const b = placed(pkt, headroom, 0xff);
  a.buf.fill(0x00, a.off + len);
  b.buf.fill(0xff, b.off + len);
  const ra = fn(a.buf, a.off, len);
  const rb = fn(b.buf, b.off, len);
  if (ra !== rb) t.fail(`result depends on bytes outside the packet: ${ra} vs ${rb}`);
  const lo = isDrop(ra) ? a.off : a.off - headroom;
  for (let i = 0; i < a.buf.length; i++) {
    const inside = i >= lo && i < a.off + len;
    if (!inside && (a.buf[i] !== 0x00 || b.buf[i] !== 0xff)) { t.fail(`byte ${i - a.off} outside the packet written`); break; }
    if (inside && a.buf[i] !== b.buf[i]) { t.fail(`byte ${i - a.off} differs between runs`); break; }
  }
  return ra;
}

/** Hex string of bytes, for readable assertion messages. */
export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
