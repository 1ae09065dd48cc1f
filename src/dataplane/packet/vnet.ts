// The virtio-net header that travels in front of every packet on a TUN
// opened with IFF_VNET_HDR (include/uapi/linux/virtio_net.h, legacy layout,
// 10 bytes, native byte order for a TUN without TUNSETVNETLE/BE):
//   u8 flags; u8 gso_type; u16 hdr_len; u16 gso_size; u16 csum_start; u16 csum_offset
//
// Why fand needs it before any offload is enabled: an inbound IPIP packet
// need not be one wire packet. A kernel-ipip or kernel-Fan peer hands its
// underlay a TCP super-packet (GSO) that veth carries whole, and a NIC's GRO
// coalesces IPIP TCP segments; either way the raw socket receives up to
// 64 KiB of IPIP whose inner TCP packet is larger than the fan MTU. Written
// to a plain TUN, that packet would be forwarded to a bridge it does not fit
// and (DF set) answered with "fragmentation needed" forever. Written with a
// GSO header, the kernel segments it to the fan MTU, as it would have
// segmented it on the sender.

import { pseudoHeaderSum } from './tso.js';

export const VNET_HDR_LEN = 10;
const F_NEEDS_CSUM = 1;
const GSO_NONE = 0;
const GSO_TCPV4 = 1;
const GSO_ECN = 0x80;

/** Writes 10 zero bytes: an ordinary packet, no offload. */
function plain(buf: Uint8Array, at: number): void {
  buf.fill(0, at, at + VNET_HDR_LEN);
}

function u16le(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v & 255;
  buf[at + 1] = (v >>> 8) & 255;
}

/**
 * Writes the virtio-net header for the inner IPv4 packet at
 * buf[off, off+len) into buf[off-10, off). The caller has validated the IPv4
 * header (decapsulate). No allocation.
 *
 * Two kinds of inbound packet need more than a zero header:
 *  - A TCP packet larger than the fan MTU (a peer's GSO super-packet, or
 *    GRO's coalescing): a TCPv4 GSO header with segments that fit `mtu`.
 *  - A TCP or UDP packet whose checksum field holds only the pseudo-header
 *    sum: the sender's stack left the checksum to "hardware"
 *    (CHECKSUM_PARTIAL), and on a virtual underlay (veth, virtio between
 *    VMs of one host) nothing computed it. The raw socket cannot say so, but
 *    the field then equals the folded pseudo-header sum exactly, which is
 *    cheap to test. NEEDS_CSUM lets the kernel finish it. A complete
 *    checksum that happens to equal that sum (1 in 65,536) is recomputed to
 *    the same value if the data is intact, so nothing is lost.
 * In both cases the checksum field is set to the pseudo-header sum, as for a
 * CHECKSUM_PARTIAL packet (tcp_v4_send_check()), and the kernel computes the
 * real checksum of each segment. Everything else gets a zero header: the
 * kernel then forwards, fragments or refuses it by its DF bit, as any packet.
 */
export function writeInboundVnetHeader(buf: Uint8Array, off: number, len: number, mtu: number): void {
  writeInboundVnetHeaderTo(buf, off, len, mtu, buf, off - VNET_HDR_LEN, 0);
}

/**
 * writeInboundVnetHeader for a packet that travels behind an `l2len`-byte
 * link header (a TAP's Ethernet frame: 14), with the header written to
 * out[at, at+10) (it need not precede the packet: a writev joins them). The
 * header's offsets (hdr_len, csum_start) count from the frame's start, as
 * virtio-net's do.
 */
export function writeInboundVnetHeaderTo(buf: Uint8Array, off: number, len: number, mtu: number, out: Uint8Array, at: number, l2len: number): void {
  const proto = buf[off + 9]!;
  const ihl = (buf[off]! & 15) << 2;
  const fragWord = (buf[off + 6]! << 8) | buf[off + 7]!;
  if ((proto !== 6 && proto !== 17) || (fragWord & 0x3fff) !== 0) { plain(out, at); return; }
  const t = off + ihl;
  const l4len = len - ihl;
  const csumOffset = proto === 6 ? 16 : 6;
  if (l4len < (proto === 6 ? 20 : 8)) { plain(out, at); return; }
  const sum = pseudoHeaderSum(buf, off, proto, l4len);
  const field = (buf[t + csumOffset]! << 8) | buf[t + csumOffset + 1]!;
  let gsoType = GSO_NONE;
  let hdrLen = 0;
  let gsoSize = 0;
  if (proto === 6 && len > mtu) {
    const thl = (buf[t + 12]! >>> 4) << 2;
    const mss = mtu - ihl - thl;
    if (thl >= 20 && ihl + thl < len && mss >= 8) {
      gsoType = GSO_TCPV4 | ((buf[t + 13]! & 0x80) !== 0 ? GSO_ECN : 0); // CWR travels with the first segment only
      hdrLen = ihl + thl;
      gsoSize = mss;
    }
  }
  const partial = field === sum && !(proto === 17 && field === 0);
  if (gsoType === GSO_NONE && !partial) { plain(out, at); return; }
  buf[t + csumOffset] = sum >>> 8;
  buf[t + csumOffset + 1] = sum & 255;
  out[at] = F_NEEDS_CSUM;
  out[at + 1] = gsoType;
  u16le(out, at + 2, hdrLen === 0 ? 0 : l2len + hdrLen);
  u16le(out, at + 4, gsoSize);
  u16le(out, at + 6, l2len + ihl);   // csum_start: the L4 header
  u16le(out, at + 8, csumOffset);    // csum_offset: its checksum field
}
