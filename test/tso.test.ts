// Outbound offloads: finishing partial checksums and cutting TCP
// super-packets into wire segments, checked against independent
// computations, plus fuzzing.
import test from 'ava';
import fc from 'fast-check';
import { completeChecksum, onesSum, tcpSegmentCount, writeTcpSegment, segmentPayload } from '../src/dataplane/packet/tso.js';
import { ip, ipv4Packet, inetChecksum } from './helpers/packets.js';

const SRC = ip('250.1.10.11');
const DST = ip('250.2.10.11');

function tcpHeader(seq: number, flags: number, options = 12): Uint8Array {
  const thl = 20 + options;
  const h = new Uint8Array(thl);
  h[0] = 0x30; h[1] = 0x39; h[2] = 0x14; h[3] = 0x51; // ports 12345 → 5201
  h[4] = seq >>> 24; h[5] = (seq >>> 16) & 255; h[6] = (seq >>> 8) & 255; h[7] = seq & 255;
  h[12] = (thl / 4) << 4;
  h[13] = flags;
  h[14] = 0xff; h[15] = 0xff;
  for (let i = 20; i < thl; i++) h[i] = 1; // NOPs
  return h;
}

/** The L4 checksum computed from scratch: complement of the sum over pseudo-header and segment. */
function l4Checksum(pkt: Uint8Array, proto: number): number {
  const ihl = (pkt[0]! & 15) * 4;
  const l4 = pkt.subarray(ihl);
  const pseudo = new Uint8Array(12 + l4.length);
  pseudo.set(pkt.subarray(12, 20), 0);
  pseudo[9] = proto;
  pseudo[10] = l4.length >>> 8; pseudo[11] = l4.length & 255;
  pseudo.set(l4, 12);
  return inetChecksum(pseudo);
}

function superPacket(payloadLen: number, flags: number, seq = 0xfffff000): Uint8Array {
  const payload = new Uint8Array(payloadLen);
  for (let i = 0; i < payloadLen; i++) payload[i] = (i * 7 + 3) & 255;
  const tcp = tcpHeader(seq, flags);
  const l4 = new Uint8Array(tcp.length + payload.length);
  l4.set(tcp); l4.set(payload, tcp.length);
  return ipv4Packet({ src: SRC, dst: DST, proto: 6, id: 0xfffe, payload: l4 });
}

test('completeChecksum finishes a partial (pseudo-header) checksum to the real one', (t) => {
  for (const [proto, csumOffset] of [[6, 16], [17, 6]] as const) {
    const l4 = proto === 6 ? tcpHeader(1, 0x18) : new Uint8Array(8);
    const body = new Uint8Array(l4.length + 333).fill(0x42);
    body.set(l4);
    if (proto === 17) { body[4] = body.length >>> 8; body[5] = body.length & 255; }
    const p = ipv4Packet({ src: SRC, dst: DST, proto, payload: body });
    const want = l4Checksum(p, proto);
    // what the kernel hands over with NEEDS_CSUM: the folded pseudo-header sum in the field
    let ps = (SRC >>> 16) + (SRC & 0xffff) + (DST >>> 16) + (DST & 0xffff) + proto + body.length;
    while (ps > 0xffff) ps = (ps & 0xffff) + (ps >>> 16);
    p[20 + csumOffset] = ps >>> 8; p[20 + csumOffset + 1] = ps & 255;
    t.true(completeChecksum(p, 0, p.length, 20, csumOffset));
    t.is((p[20 + csumOffset]! << 8) | p[20 + csumOffset + 1]!, want);
    t.is(l4Checksum(p, proto), 0, 'a packet with a correct checksum sums to zero');
  }
  t.false(completeChecksum(new Uint8Array(30), 0, 30, 20, 16), 'offsets outside the packet');
});

test('a TCP super-packet is cut into segments that carry its payload exactly, with valid headers', (t) => {
  const mss = 1448;
  const p = superPacket(10_000, 0x80 | 0x18 | 0x01); // CWR, PSH|ACK, FIN
  const count = tcpSegmentCount(p, 0, p.length, mss);
  t.is(count, Math.ceil(10_000 / mss));
  const buf = new Uint8Array(p.length + count * 160);
  buf.set(p);
  const original = buf.slice(0, p.length);
  const payload: number[] = [];
  for (let k = 0; k < count; k++) {
    const h = p.length + k * 160;
    const hl = writeTcpSegment(buf, 0, p.length, mss, k, count, h);
    t.is(hl, 20 + 32);
    const total = (buf[h + 2]! << 8) | buf[h + 3]!;
    const payOff = segmentPayload(buf, 0, p.length, mss, k);
    const chunk = total - hl;
    t.is(chunk, Math.min(mss, 10_000 - k * mss));
    const seg = new Uint8Array(total);
    seg.set(buf.subarray(h, h + hl));
    seg.set(buf.subarray(payOff, payOff + chunk), hl);
    t.is(inetChecksum(seg.subarray(0, 20)), 0, `IP checksum of segment ${k}`);
    t.is(l4Checksum(seg, 6), 0, `TCP checksum of segment ${k}`);
    t.is((seg[4]! << 8) | seg[5]!, (0xfffe + k) & 0xffff, 'IP id');
    const seq = ((seg[24]! << 24) | (seg[25]! << 16) | (seg[26]! << 8) | seg[27]!) >>> 0;
    t.is(seq, (0xfffff000 + k * mss) >>> 0, 'sequence number (wrapping)');
    const flags = seg[33]!;
    t.is((flags & 0x01) !== 0, k === count - 1, 'FIN on the last only');
    t.is((flags & 0x08) !== 0, k === count - 1, 'PSH on the last only');
    t.is((flags & 0x80) !== 0, k === 0, 'CWR on the first only');
    t.is(flags & 0x10, 0x10, 'ACK on all');
    payload.push(...seg.subarray(hl));
  }
  t.deepEqual(Uint8Array.from(payload), p.subarray(52));
  t.deepEqual(buf.subarray(0, p.length), original, 'the super-packet itself is not modified');
});

test('partial segments (checksum left to the sender) finish to the same bytes as full ones', (t) => {
  const mss = 1448;
  const p = superPacket(7_777, 0x18); // an odd payload length: the last segment is odd
  const count = tcpSegmentCount(p, 0, p.length, mss);
  const full = new Uint8Array(p.length + count * 160);
  full.set(p);
  const part = full.slice();
  for (let k = 0; k < count; k++) {
    const h = p.length + k * 160;
    const hl = writeTcpSegment(full, 0, p.length, mss, k, count, h);
    t.is(writeTcpSegment(part, 0, p.length, mss, k, count, h, true), hl);
    const total = (full[h + 2]! << 8) | full[h + 3]!;
    const payOff = segmentPayload(full, 0, p.length, mss, k);
    const seg = (b: Uint8Array) => { const s = new Uint8Array(total); s.set(b.subarray(h, h + hl)); s.set(b.subarray(payOff, payOff + total - hl), hl); return s; };
    const partial = seg(part);
    t.notDeepEqual(partial, seg(full), `segment ${k}: the checksum is not finished yet`);
    t.true(completeChecksum(partial, 0, total, 20, 16));
    t.deepEqual(partial, seg(full), `segment ${k}`);
  }
});

test('packets that cannot be cut safely are refused (0 segments), never mangled', (t) => {
  const good = superPacket(3000, 0x10);
  t.is(tcpSegmentCount(good, 0, good.length, 1448), 3);
  const udp = ipv4Packet({ src: SRC, dst: DST, proto: 17, payload: new Uint8Array(3000) });
  t.is(tcpSegmentCount(udp, 0, udp.length, 1448), 0, 'not TCP');
  const frag = superPacket(3000, 0x10); frag[6] = 0x20; // MF
  t.is(tcpSegmentCount(frag, 0, frag.length, 1448), 0, 'a fragment');
  t.is(tcpSegmentCount(good, 0, good.length - 1, 1448), 0, 'length disagrees with the header');
  const badThl = superPacket(3000, 0x10); badThl[32] = 0x40; // TCP data offset 16 bytes
  t.is(tcpSegmentCount(badThl, 0, badThl.length, 1448), 0, 'TCP header shorter than 20');
  t.is(tcpSegmentCount(good, 0, good.length, 0), 0, 'MSS 0');
});

test('fuzz: segmentation writes only its header slots and every accepted segment checksums', (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 64, max: 1460 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 0, maxLength: 8 }), (plen, mss, flags, noise) => {
    const p = superPacket(plen, flags);
    for (let i = 0; i < noise.length; i += 2) p[20 + (noise[i]! % 32)] ^= noise[i + 1] ?? 0; // corrupt the TCP header a bit
    const count = tcpSegmentCount(p, 0, p.length, mss);
    if (count === 0) return true;
    const buf = new Uint8Array(p.length + count * 160);
    buf.set(p);
    for (let k = 0; k < count; k++) {
      const h = p.length + k * 160;
      const hl = writeTcpSegment(buf, 0, p.length, mss, k, count, h);
      if (hl > 120) return false;
      const total = (buf[h + 2]! << 8) | buf[h + 3]!;
      const off = segmentPayload(buf, 0, p.length, mss, k);
      if (off + total - hl > p.length) return false;
      const seg = new Uint8Array(total);
      seg.set(buf.subarray(h, h + hl)); seg.set(buf.subarray(off, off + total - hl), hl);
      if (l4Checksum(seg, 6) !== 0 || inetChecksum(seg.subarray(0, 20)) !== 0) return false;
    }
    return onesSum(buf, 0, p.length) === onesSum(p, 0, p.length); // the source packet is untouched
  }), { numRuns: 400 });
  t.pass();
});
