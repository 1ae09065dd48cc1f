// Netlink attributes as the kernel models in test/helpers/*-kernel.ts read
// and write them (host byte order, 4-byte aligned). Kept apart from the
// daemon's codec on purpose: a model that shared fand's parser could not
// catch a mistake in it.
import { endianness } from 'node:os';

export const LE = endianness() === 'LE';

export type Attr = { type: number; payload: Uint8Array };

/** The attributes in `b`, the NLA_F_NESTED/NLA_F_NET_BYTEORDER bits masked off; stops at a short or overlong one. */
export function attrs(b: Uint8Array): Attr[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Attr[] = [];
  for (let off = 0; off + 4 <= b.length;) {
    const len = v.getUint16(off, LE);
    if (len < 4 || off + len > b.length) break;
    out.push({ type: v.getUint16(off + 2, LE) & 0x3fff, payload: b.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

export const find = (as: Attr[], t: number): Uint8Array | undefined => as.find((a) => a.type === t)?.payload;
export const str = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array()).replace(/\0+$/, '');

export function attr(type: number, payload: Uint8Array): Uint8Array {
  const len = 4 + payload.length;
  const b = new Uint8Array((len + 3) & ~3);
  const v = new DataView(b.buffer);
  v.setUint16(0, len, LE);
  v.setUint16(2, type, LE);
  b.set(payload, 4);
  return b;
}

export const cat = (...p: Uint8Array[]): Uint8Array => { const b = new Uint8Array(p.reduce((s, x) => s + x.length, 0)); let o = 0; for (const x of p) { b.set(x, o); o += x.length; } return b; };
/** nla_nest_start() sets NLA_F_NESTED: the parser must mask it. */
export const nest = (type: number, ...kids: Uint8Array[]): Uint8Array => attr(type | 0x8000, cat(...kids));

/** An RTM_NEWLINK reply: nlmsghdr, ifinfomsg with `index`, then `body` (attributes). */
export function newLinkReply(index: number, seq: number, body: Uint8Array): Uint8Array {
  const b = new Uint8Array(32 + body.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, b.length, LE); v.setUint16(4, 16 /* RTM_NEWLINK */, LE); v.setUint32(8, seq, LE);
  v.setInt32(20, index, LE);
  b.set(body, 32);
  return b;
}

/** An NLMSG_ERROR answer carrying `err` (0: an ACK, -errno: a refusal). */
export function errorReply(err: number, seq: number): Uint8Array {
  const b = new Uint8Array(36);
  const v = new DataView(b.buffer);
  v.setUint32(0, 36, LE); v.setUint16(4, 2 /* NLMSG_ERROR */, LE); v.setUint32(8, seq, LE);
  v.setInt32(16, err, LE);
  return b;
}
