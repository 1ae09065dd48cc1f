// IPv4 fragmentation (RFC 791 §3.2, as Linux's ip_fragment()), for the VXLAN
// fan: the whole overlay is one Ethernet segment, so no router on the way
// fragments a packet that does not fit the fan MTU and a bridge drops a frame
// larger than its port silently. fand stands where the router would: an
// IPv4 packet without DF that does not fit is cut into fragments that do
// (one with DF is answered with ICMP "fragmentation needed", vxlan.ts). Pure
// functions over byte views; the fragments' headers are written apart, their
// payload stays in place (a writev or a send of several iovecs joins them).

/**
 * Fragments of the IPv4 packet at buf[ip, ip+len) cut to `mtu`, or 0 when it
 * is not to be cut: it fits, it has DF, it carries IP options (Linux copies
 * only the "copied" ones into later fragments; fand does not cut such
 * packets, they are dropped as too big), or its header is inconsistent. The
 * caller checked the header (encapsulateFrame / decapsulateFrame).
 */
export function fragmentCount(buf: Uint8Array, ip: number, len: number, mtu: number): number {
  if (len < 20 || buf[ip] !== 0x45) return 0;
  const total = (buf[ip + 2]! << 8) | buf[ip + 3]!;
  if (total <= mtu || total > len || (buf[ip + 6]! & 0x40) !== 0) return 0;
  const chunk = fragmentChunk(mtu);
  if (chunk <= 0) return 0;
  return Math.ceil((total - 20) / chunk);
}

/** Payload bytes per fragment: the largest multiple of 8 that fits behind a 20-byte header. */
export function fragmentChunk(mtu: number): number {
  return ((mtu - 20) >> 3) << 3;
}

/**
 * Writes the 20-byte IPv4 header of fragment k (of count, fragmentCount) of
 * the packet at buf[ip, ...) to out[at, at+20): total length, MF (on every
 * fragment but the last, and on the last too when the packet was itself a
 * fragment with MF), fragment offset (the packet's own plus k chunks), and
 * the header checksum. Returns the payload length; the payload is at
 * ip + 20 + k * fragmentChunk(mtu).
 */
export function writeFragmentHeader(buf: Uint8Array, ip: number, mtu: number, k: number, count: number, out: Uint8Array, at: number): number {
  const total = (buf[ip + 2]! << 8) | buf[ip + 3]!;
  const chunk = fragmentChunk(mtu);
  const pay = k < count - 1 ? chunk : total - 20 - k * chunk;
  const word = (buf[ip + 6]! << 8) | buf[ip + 7]!;
  const offset = (word & 0x1fff) + k * (chunk >> 3);
  const mf = k < count - 1 || (word & 0x2000) !== 0 ? 0x2000 : 0;
  if (out === buf) buf.copyWithin(at, ip, ip + 20);
  else out.set(buf.subarray(ip, ip + 20), at);
  const t = 20 + pay;
  out[at + 2] = t >>> 8;
  out[at + 3] = t & 255;
  const w = (word & 0x8000) | mf | offset; // the reserved bit stays, DF is clear
  out[at + 6] = w >>> 8;
  out[at + 7] = w & 255;
  out[at + 10] = 0;
  out[at + 11] = 0;
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (out[at + i]! << 8) | out[at + i + 1]!;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  out[at + 10] = c >>> 8;
  out[at + 11] = c & 255;
  return pay;
}
