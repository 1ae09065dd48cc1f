// Inbound coalescing (GRO): consecutive TCP segments of one flow in a
// received batch are joined into one super-packet and written to the TUN
// with a TCPv4 GSO header, so the kernel forwards one packet instead of
// dozens and re-segments only if it must. The rules follow the kernel's
// tcp_gro_receive(): same flow, the next sequence number, the same ACK,
// window and TCP options, only ACK (and PSH on the last) set, every segment
// but the last exactly gso_size long. Anything else passes through as it
// came. Pure functions over byte views: no allocation.
//
// UDP datagrams of one flow are joined the same way into a UDP super-packet
// with a UDP_L4 GSO header (USO: the kernel cuts it back into the same
// datagrams where it must -- at the receiving socket, __udp_gso_segment()),
// on kernels whose TAP knows that header (TUN_F_USO4, Linux 6.2). The rules
// make the cut give back the datagrams that came: same addresses, ports,
// TOS, TTL and DF, consecutive IPv4 IDs (the kernel numbers the segments on
// from the first), every datagram but the last exactly gso_size long.
import { fold, onesSum, pseudoHeaderSum } from './tso.js';
import { VNET_HDR_LEN } from './vnet.js';

/** Largest IPv4 packet: the merged total length must fit the header field. */
export const MAX_MERGED = 65535;

const ACK = 0x10;
const PSH = 0x08;
/** VIRTIO_NET_HDR_GSO_UDP_L4 (include/uapi/linux/virtio_net.h, Linux 6.2). */
export const VNET_GSO_UDP_L4 = 5;

/**
 * What the receive call already knows of an inner TCP/UDP checksum (the
 * addon's rawRecv checks them while the batch is in cache).
 */
export const enum InnerCsum { Unchecked = 0, Right = 1, Wrong = 2 }

/**
 * TCP payload length of a packet that may start a merge or be merged, or -1:
 * IPv4 without options, TCP, not a fragment, only ACK/PSH set, some payload,
 * and a TCP checksum that is either complete and correct, or partial (the
 * pseudo-header sum a virtual underlay leaves): a corrupted segment is never
 * hidden inside a merged one. `checked` says what the receive call found
 * (Unchecked: it is summed here).
 */
export function mergeablePayload(buf: Uint8Array, off: number, len: number, checked: InnerCsum = InnerCsum.Unchecked): number {
  if (len < 40 || buf[off] !== 0x45 || buf[off + 9] !== 6) return -1;
  if ((((buf[off + 6]! << 8) | buf[off + 7]!) & 0x3fff) !== 0) return -1;
  const t = off + 20;
  const thl = (buf[t + 12]! >>> 4) << 2;
  if (thl < 20 || 20 + thl >= len) return -1;
  const flags = buf[t + 13]!;
  if ((flags & ~PSH) !== ACK) return -1;
  const tcpLen = len - 20;
  const pseudo = pseudoHeaderSum(buf, off, 6, tcpLen);
  const field = (buf[t + 16]! << 8) | buf[t + 17]!;
  // the complement of a correct sum is 0: the sum itself is 0xffff
  if (field !== pseudo && checked !== InnerCsum.Right
    && (checked === InnerCsum.Wrong || fold(pseudo + onesSum(buf, t, off + len)) !== 0xffff)) return -1;
  return len - 20 - thl;
}

/**
 * Whether packet b (at bOff, bLen, payload bPay) continues the merge whose
 * first packet is at aOff (gso size `gso`, the merge so far `merged` bytes
 * of payload, the last one added `lastPay` bytes with its PSH bit `lastPsh`).
 */
export function continuesMerge(buf: Uint8Array, aOff: number, gso: number, merged: number, lastPay: number, lastPsh: boolean,
  bOff: number, bLen: number, bPay: number): boolean {
  if (bPay <= 0 || bPay > gso || lastPay !== gso || lastPsh) return false;
  const a = aOff + 20;
  const b = bOff + 20;
  const thl = (buf[a + 12]! >>> 4) << 2;
  if (((buf[b + 12]! >>> 4) << 2) !== thl || bLen !== 20 + thl + bPay) return false;
  if (20 + thl + merged + bPay > MAX_MERGED) return false;
  // addresses and TOS/TTL of the IPv4 headers
  if (buf[aOff + 1] !== buf[bOff + 1] || buf[aOff + 8] !== buf[bOff + 8]) return false;
  for (let i = 12; i < 20; i++) if (buf[aOff + i] !== buf[bOff + i]) return false;
  // ports, ACK number, window, options; the sequence number follows on
  for (let i = 0; i < 4; i++) if (buf[a + i] !== buf[b + i]) return false;
  for (let i = 8; i < 12; i++) if (buf[a + i] !== buf[b + i]) return false;
  if (buf[a + 14] !== buf[b + 14] || buf[a + 15] !== buf[b + 15]) return false;
  for (let i = 20; i < thl; i++) if (buf[a + i] !== buf[b + i]) return false;
  const seqA = ((buf[a + 4]! << 24) | (buf[a + 5]! << 16) | (buf[a + 6]! << 8) | buf[a + 7]!) >>> 0;
  const seqB = ((buf[b + 4]! << 24) | (buf[b + 5]! << 16) | (buf[b + 6]! << 8) | buf[b + 7]!) >>> 0;
  return ((seqA + merged) >>> 0) === seqB;
}

/** Appends packet b's payload to the merge at aOff (its payload ends at aOff + aLen). */
export function appendPayload(buf: Uint8Array, aOff: number, aLen: number, bOff: number, bLen: number, bPay: number, bPsh: boolean): number {
  buf.copyWithin(aOff + aLen, bOff + bLen - bPay, bOff + bLen);
  if (bPsh) buf[aOff + 20 + 13] = buf[aOff + 20 + 13]! | PSH;
  return aLen + bPay;
}

/**
 * Finishes a merged packet at buf[off, off+len) made of segments of `gso`
 * bytes: IPv4 total length and checksum, the TCP checksum field set to the
 * pseudo-header sum, and the virtio-net header (NEEDS_CSUM, GSO TCPv4) in
 * buf[off-10, off). With `vnet` (and `l2len`, the length of a link header
 * in front of the packet, 14 for an Ethernet frame), the virtio-net header
 * goes to vnet[vnetAt, +10) instead, its offsets counted from the frame's
 * start; `len` is then the merged IPv4 length, whose payload need not be
 * contiguous (a writev joins it).
 */
export function finishMerged(buf: Uint8Array, off: number, len: number, gso: number,
  vnet: Uint8Array = buf, vnetAt = off - VNET_HDR_LEN, l2len = 0): void {
  buf[off + 2] = len >>> 8;
  buf[off + 3] = len & 255;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  const ipc = ~fold(onesSum(buf, off, off + 20)) & 0xffff;
  buf[off + 10] = ipc >>> 8;
  buf[off + 11] = ipc & 255;
  const t = off + 20;
  const thl = (buf[t + 12]! >>> 4) << 2;
  const pseudo = pseudoHeaderSum(buf, off, 6, len - 20);
  buf[t + 16] = pseudo >>> 8;
  buf[t + 17] = pseudo & 255;
  const at = vnetAt;
  const hdr = l2len + 20 + thl;
  vnet[at] = 1;                 // NEEDS_CSUM
  vnet[at + 1] = 1;             // GSO_TCPV4
  vnet[at + 2] = hdr & 255; vnet[at + 3] = hdr >>> 8;
  vnet[at + 4] = gso & 255; vnet[at + 5] = gso >>> 8;
  vnet[at + 6] = l2len + 20; vnet[at + 7] = 0;   // csum_start
  vnet[at + 8] = 16; vnet[at + 9] = 0;           // csum_offset
}

/** At most this many datagrams in one UDP super-packet (the kernel's UDP_MAX_SEGMENTS is 128; a send takes 64). */
export const UDP_MERGE_MAX_SEGMENTS = 64;

const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

/**
 * UDP payload length of an IPv4 datagram that may start or join a UDP
 * merge, or -1: no options, UDP, not a fragment, a UDP length that matches
 * the IPv4 one, some payload, and a non-zero checksum that is either right
 * or partial (the pseudo-header sum): the kernel computes new checksums for
 * the datagrams it cuts, so a corrupted one must never be joined. A zero
 * checksum (none) is kept as it came: the cut would add one.
 */
export function mergeableUdpPayload(buf: Uint8Array, off: number, len: number, checked: InnerCsum = InnerCsum.Unchecked): number {
  if (len < 29 || buf[off] !== 0x45 || buf[off + 9] !== 17) return -1;
  if ((be16(buf, off + 6) & 0x3fff) !== 0) return -1;
  const u = off + 20;
  const ulen = be16(buf, u + 4);
  if (ulen !== len - 20) return -1;
  const field = be16(buf, u + 6);
  if (field === 0) return -1;
  const pseudo = pseudoHeaderSum(buf, off, 17, ulen);
  if (field !== pseudo && checked !== InnerCsum.Right
    && (checked === InnerCsum.Wrong || fold(pseudo + onesSum(buf, u, off + len)) !== 0xffff)) return -1;
  return len - 28;
}

/**
 * Whether datagram b (at bOff, bLen, payload bPay) continues the UDP merge
 * whose first datagram is at aOff (gso size `gso`, `segs` datagrams and
 * `merged` payload bytes so far, the last one `lastPay` bytes).
 */
export function continuesUdpMerge(buf: Uint8Array, aOff: number, gso: number, merged: number, segs: number, lastPay: number,
  bOff: number, bLen: number, bPay: number): boolean {
  if (bPay <= 0 || bPay > gso || lastPay !== gso || segs >= UDP_MERGE_MAX_SEGMENTS) return false;
  if (bLen !== 28 + bPay || 28 + merged + bPay > MAX_MERGED) return false;
  // TOS, DF, TTL, addresses; ports
  if (buf[aOff + 1] !== buf[bOff + 1] || buf[aOff + 8] !== buf[bOff + 8]) return false;
  if (((buf[aOff + 6]! ^ buf[bOff + 6]!) & 0x40) !== 0) return false;
  for (let i = 12; i < 24; i++) if (buf[aOff + i] !== buf[bOff + i]) return false;
  return be16(buf, bOff + 4) === ((be16(buf, aOff + 4) + segs) & 0xffff);
}

/**
 * Finishes a merged UDP packet at buf[off, ...) of `len` IPv4 bytes made of
 * datagrams of `gso` payload bytes: IPv4 total length and checksum, UDP
 * length, the UDP checksum field set to the pseudo-header sum, and the
 * virtio-net header (NEEDS_CSUM, GSO UDP_L4) in vnet[vnetAt, +10), its
 * offsets counted from the frame's start (`l2len` bytes of link header).
 */
export function finishMergedUdp(buf: Uint8Array, off: number, len: number, gso: number, vnet: Uint8Array, vnetAt: number, l2len: number): void {
  buf[off + 2] = len >>> 8;
  buf[off + 3] = len & 255;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  const ipc = ~fold(onesSum(buf, off, off + 20)) & 0xffff;
  buf[off + 10] = ipc >>> 8;
  buf[off + 11] = ipc & 255;
  const u = off + 20;
  const ulen = len - 20;
  buf[u + 4] = ulen >>> 8;
  buf[u + 5] = ulen & 255;
  const pseudo = pseudoHeaderSum(buf, off, 17, ulen);
  buf[u + 6] = pseudo >>> 8;
  buf[u + 7] = pseudo & 255;
  const at = vnetAt;
  const hdr = l2len + 28;
  vnet[at] = 1;                 // NEEDS_CSUM
  vnet[at + 1] = VNET_GSO_UDP_L4;
  vnet[at + 2] = hdr & 255; vnet[at + 3] = hdr >>> 8;
  vnet[at + 4] = gso & 255; vnet[at + 5] = gso >>> 8;
  vnet[at + 6] = l2len + 20; vnet[at + 7] = 0;   // csum_start
  vnet[at + 8] = 6; vnet[at + 9] = 0;            // csum_offset
}
