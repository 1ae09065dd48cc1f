// Outbound offloads: with TUN_F_CSUM|TUN_F_TSO4 the kernel hands the TUN
// reader whole TCP super-packets (up to 64 KiB behind a virtio-net header
// with gso_type TCPV4 and gso_size = MSS) and leaves checksums partial
// (NEEDS_CSUM: the checksum field holds the folded pseudo-header sum, to be
// finished over [csum_start, end)). A raw socket sends bytes as they are, so
// fand finishes checksums itself and cuts super-packets into wire-sized
// segments, as the kernel's tcp_gso_segment() would. Pure functions over
// byte views: no allocation.

/** virtio_net_hdr.flags / gso_type values (include/uapi/linux/virtio_net.h). */
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
/** Flag on gso_type (TUN_F_TSO_ECN): the super-packet carries CWR, which only its first segment keeps. */
export const VNET_GSO_ECN = 0x80;

/** Little-endian u16 of the virtio-net header (native order on x86 and arm64). */
export function vnetU16(buf: Uint8Array, at: number): number {
  return buf[at]! | (buf[at + 1]! << 8);
}

/** Ones'-complement sum of buf[start, end) as big-endian 16-bit words, unfolded. */
export function onesSum(buf: Uint8Array, start: number, end: number): number {
  let sum = 0;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

/** Folds a ones'-complement sum to 16 bits. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/**
 * Folded TCP/UDP pseudo-header sum of the IPv4 header at buf[ip]: source,
 * destination, protocol, L4 length. This is what the checksum field of a
 * CHECKSUM_PARTIAL packet holds (tcp_v4_send_check(), udp4_hwcsum()).
 */
export function pseudoHeaderSum(buf: Uint8Array, ip: number, proto: number, l4len: number): number {
  return fold(((buf[ip + 12]! << 8) | buf[ip + 13]!) + ((buf[ip + 14]! << 8) | buf[ip + 15]!)
    + ((buf[ip + 16]! << 8) | buf[ip + 17]!) + ((buf[ip + 18]! << 8) | buf[ip + 19]!) + proto + l4len);
}

/**
 * Finishes a NEEDS_CSUM checksum of the packet at buf[off, off+len): the
 * field at csumStart+csumOffset already holds the pseudo-header sum, so the
 * checksum is the complement of the folded sum over [csumStart, len).
 * Returns false when the offsets do not fit the packet.
 */
export function completeChecksum(buf: Uint8Array, off: number, len: number, csumStart: number, csumOffset: number): boolean {
  if (!partialChecksumFits(len, csumStart, csumOffset)) return false;
  const field = off + csumStart + csumOffset;
  let c = ~fold(onesSum(buf, off + csumStart, off + len)) & 0xffff;
  if (c === 0 && csumOffset === 6) c = 0xffff; // UDP: 0 means "no checksum"
  buf[field] = c >>> 8;
  buf[field + 1] = c & 255;
  return true;
}

/**
 * Whether a NEEDS_CSUM packet of len bytes can have its checksum finished:
 * the sum starts past a minimal IPv4 header and the field lies inside the
 * packet (the same check completeChecksum makes; the addon's rawSendV
 * finishes it).
 */
export function partialChecksumFits(len: number, csumStart: number, csumOffset: number): boolean {
  return csumStart >= 20 && csumStart + csumOffset + 2 <= len;
}

/**
 * Number of segments of a TCPv4 super-packet at buf[off, off+len) with the
 * given MSS, or 0 when it is not a well-formed IPv4/TCP packet that can be
 * cut (then it is dropped as malformed: never sent corrupted).
 */
export function tcpSegmentCount(buf: Uint8Array, off: number, len: number, mss: number): number {
  if (len < 40 || mss < 1 || buf[off]! >>> 4 !== 4 || buf[off + 9] !== 6) return 0;
  const ihl = (buf[off]! & 15) << 2;
  if (ihl < 20 || ihl + 20 > len) return 0;
  const total = (buf[off + 2]! << 8) | buf[off + 3]!;
  if (total !== len) return 0;
  if ((((buf[off + 6]! << 8) | buf[off + 7]!) & 0x3fff) !== 0) return 0; // a fragment cannot be a TSO packet
  const thl = (buf[off + ihl + 12]! >>> 4) << 2;
  if (thl < 20 || ihl + thl > len) return 0;
  const payload = len - ihl - thl;
  return payload === 0 ? 1 : Math.ceil(payload / mss);
}

/**
 * Writes the inner IPv4 + TCP headers of segment k of the super-packet at
 * buf[off, off+len) to buf[hdrOff, ...): total length, IP id (+k), header
 * checksum, sequence number (+k*mss), flags (FIN and PSH only on the last
 * segment, CWR only on the first) and the full TCP checksum over the
 * segment's header and its slice of the payload, which stays in place at
 * buf[payOff, payOff+payLen). With `partial`, the TCP checksum is left as a
 * CHECKSUM_PARTIAL packet has it (the folded pseudo-header sum) for the
 * sender to finish over header and payload (the addon's rawSendV does, in
 * the same pass that sends). Returns the header length. The caller checked
 * the packet with tcpSegmentCount.
 */
export function writeTcpSegment(buf: Uint8Array, off: number, len: number, mss: number, k: number, count: number, hdrOff: number,
  partial = false): number {
  const ihl = (buf[off]! & 15) << 2;
  const thl = (buf[off + ihl + 12]! >>> 4) << 2;
  const hl = ihl + thl;
  const payStart = off + hl;
  const payOff = payStart + k * mss;
  const payLen = Math.min(mss, off + len - payOff);
  buf.copyWithin(hdrOff, off, off + hl);
  // IPv4: length, id, checksum
  const total = hl + payLen;
  buf[hdrOff + 2] = total >>> 8;
  buf[hdrOff + 3] = total & 255;
  const id = ((((buf[off + 4]! << 8) | buf[off + 5]!) + k) & 0xffff);
  buf[hdrOff + 4] = id >>> 8;
  buf[hdrOff + 5] = id & 255;
  buf[hdrOff + 10] = 0;
  buf[hdrOff + 11] = 0;
  const ipc = ~fold(onesSum(buf, hdrOff, hdrOff + ihl)) & 0xffff;
  buf[hdrOff + 10] = ipc >>> 8;
  buf[hdrOff + 11] = ipc & 255;
  // TCP: sequence, flags, checksum
  const t = hdrOff + ihl;
  const seq = ((((buf[t + 4]! << 24) | (buf[t + 5]! << 16) | (buf[t + 6]! << 8) | buf[t + 7]!) >>> 0) + k * mss) >>> 0;
  buf[t + 4] = seq >>> 24;
  buf[t + 5] = (seq >>> 16) & 255;
  buf[t + 6] = (seq >>> 8) & 255;
  buf[t + 7] = seq & 255;
  let flags = buf[t + 13]!;
  if (k < count - 1) flags &= ~0x09; // FIN, PSH: last segment only
  if (k > 0) flags &= ~0x80;         // CWR: first segment only
  buf[t + 13] = flags;
  buf[t + 16] = 0;
  buf[t + 17] = 0;
  const tcpLen = thl + payLen;
  if (partial) {
    const p = pseudoHeaderSum(buf, hdrOff, 6, tcpLen);
    buf[t + 16] = p >>> 8;
    buf[t + 17] = p & 255;
    return hl;
  }
  let sum = pseudoHeaderSum(buf, hdrOff, 6, tcpLen) + onesSum(buf, t, t + thl);
  // The payload slice starts at an even offset from the TCP header only if
  // thl is even (it always is: a multiple of 4), so word alignment holds.
  sum += onesSum(buf, payOff, payOff + payLen);
  const tc = ~fold(sum) & 0xffff;
  buf[t + 16] = tc >>> 8;
  buf[t + 17] = tc & 255;
  return hl;
}

/** Payload span of segment k (for the second iovec). */
export function segmentPayload(buf: Uint8Array, off: number, len: number, mss: number, k: number): number {
  const ihl = (buf[off]! & 15) << 2;
  const thl = (buf[off + ihl + 12]! >>> 4) << 2;
  return off + ihl + thl + k * mss;
}
