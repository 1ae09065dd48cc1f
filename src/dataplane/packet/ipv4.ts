// IPv4 header access on raw bytes, for the per-packet hot path: every
// function takes (buf, off) where off is the first byte of the header, reads
// or writes big-endian fields, and allocates nothing. Callers check bounds
// first; nothing here validates.

/** ECN codepoints (RFC 3168 §5): the two low bits of the TOS byte. */
export const enum Ecn {
  NotEct = 0,
  Ect1 = 1,
  Ect0 = 2,
  Ce = 3,
}

export const IPV4_HEADER_MIN = 20;
export const IPPROTO_IPIP = 4;
/** The DF bit in the flags/fragment-offset word. */
export const IP_DF = 0x4000;
/** MF bit and fragment offset: non-zero in every fragment of a datagram. */
export const IP_FRAG_MASK = 0x3fff;

export function readU16(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

export function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v;
}

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}

// Field accessors. `off` is the start of the IPv4 header.
export function ipVersion(buf: Uint8Array, off: number): number { return buf[off] >>> 4; }
/** Header length in bytes (IHL × 4). */
export function ipHeaderLength(buf: Uint8Array, off: number): number { return (buf[off] & 0x0f) << 2; }
export function ipTos(buf: Uint8Array, off: number): number { return buf[off + 1]; }
export function ipTotalLength(buf: Uint8Array, off: number): number { return readU16(buf, off + 2); }
export function ipId(buf: Uint8Array, off: number): number { return readU16(buf, off + 4); }
/** The flags (3 bits) and fragment offset (13 bits) word. */
export function ipFragWord(buf: Uint8Array, off: number): number { return readU16(buf, off + 6); }
export function ipTtl(buf: Uint8Array, off: number): number { return buf[off + 8]; }
export function ipProtocol(buf: Uint8Array, off: number): number { return buf[off + 9]; }
export function ipChecksum(buf: Uint8Array, off: number): number { return readU16(buf, off + 10); }
export function ipSource(buf: Uint8Array, off: number): number { return readU32(buf, off + 12); }
export function ipDestination(buf: Uint8Array, off: number): number { return readU32(buf, off + 16); }

/**
 * The header checksum (RFC 791) of the ihlBytes-long header at off: the
 * ones' complement of the ones' complement sum of its 16-bit words, with the
 * checksum field itself taken as zero. Store the result at off+10.
 */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number, ihlBytes: number): number {
  let sum = 0;
  for (let i = 0; i < ihlBytes; i += 2) {
    if (i !== 10) sum += (buf[off + i] << 8) | buf[off + i + 1];
  }
  // At most 30 words of 0xffff: two folds always suffice.
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** True when the header's stored checksum is right (the sum over all words, checksum included, is 0xffff). */
export function checksumValid(buf: Uint8Array, off: number, ihlBytes: number): boolean {
  let sum = 0;
  for (let i = 0; i < ihlBytes; i += 2) sum += (buf[off + i] << 8) | buf[off + i + 1];
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

/**
 * Sets the TOS byte and updates the header checksum incrementally, RFC 1624
 * eqn. 3: HC' = ~(~HC + ~m + m'), m being the 16-bit word holding
 * version/IHL and TOS. Gives the same value as a full recomputation when the
 * old checksum was right (the version nibble keeps m' non-zero, so the -0
 * case of eqn. 2 cannot arise). This is what the kernel's
 * ipv4_change_dsfield() does when a tunnel sets CE on decapsulation.
 */
export function setTosUpdateChecksum(buf: Uint8Array, off: number, tos: number): void {
  const hi = buf[off] << 8;
  const oldWord = hi | buf[off + 1];
  const newWord = hi | (tos & 0xff);
  let sum = (~readU16(buf, off + 10) & 0xffff) + (~oldWord & 0xffff) + newWord;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  buf[off + 1] = tos;
  writeU16(buf, off + 10, ~sum & 0xffff);
}
