// The virtio-net header fand writes in front of inbound packets: GSO for
// super-packets, NEEDS_CSUM for checksums a virtual underlay left partial.
import test from 'ava';
import fc from 'fast-check';
import { writeInboundVnetHeader, VNET_HDR_LEN } from '../src/dataplane/packet/vnet.js';
import { ip, ipv4Packet } from './helpers/packets.js';

const SRC = ip('250.1.10.11');
const DST = ip('250.3.10.11');

/** Folded pseudo-header sum, computed the slow, obvious way. */
function pseudo(src: number, dst: number, proto: number, l4len: number): number {
  let s = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4len;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function l4(proto: 6 | 17, payloadLen: number, checksum: number, tcpFlags = 0x10): Uint8Array {
  const hl = proto === 6 ? 20 : 8;
  const b = new Uint8Array(hl + payloadLen).fill(0x5a);
  if (proto === 6) { b[12] = 5 << 4; b[13] = tcpFlags; b[16] = checksum >>> 8; b[17] = checksum & 255; }
  else { b[4] = (b.length >>> 8) & 255; b[5] = b.length & 255; b[6] = checksum >>> 8; b[7] = checksum & 255; }
  return b;
}

function place(pkt: Uint8Array): { buf: Uint8Array; off: number } {
  const buf = new Uint8Array(VNET_HDR_LEN + 16 + pkt.length + 16).fill(0xee);
  const off = 16 + VNET_HDR_LEN;
  buf.set(pkt, off);
  return { buf, off };
}

const hdr = (buf: Uint8Array, off: number) => {
  const h = buf.subarray(off - VNET_HDR_LEN, off);
  const u16 = (i: number) => h[i]! | (h[i + 1]! << 8);
  return { flags: h[0], gsoType: h[1], hdrLen: u16(2), gsoSize: u16(4), csumStart: u16(6), csumOffset: u16(8) };
};
const ZERO = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };

test('a small packet with a complete checksum gets a zero header and is not changed', (t) => {
  const p = ipv4Packet({ src: SRC, dst: DST, proto: 17, payload: l4(17, 100, 0x1234) });
  const { buf, off } = place(p);
  writeInboundVnetHeader(buf, off, p.length, 1480);
  t.deepEqual(hdr(buf, off), ZERO);
  t.deepEqual(buf.subarray(off, off + p.length), p);
});

test('UDP whose checksum field holds only the pseudo-header sum gets NEEDS_CSUM', (t) => {
  const ps = pseudo(SRC, DST, 17, 108);
  const p = ipv4Packet({ src: SRC, dst: DST, proto: 17, payload: l4(17, 100, ps) });
  const { buf, off } = place(p);
  writeInboundVnetHeader(buf, off, p.length, 1480);
  t.deepEqual(hdr(buf, off), { flags: 1, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 6 });
  t.is((buf[off + 26]! << 8) | buf[off + 27]!, ps);
});

test('UDP without a checksum (0) stays plain', (t) => {
  const p = ipv4Packet({ src: SRC, dst: DST, proto: 17, payload: l4(17, 100, 0) });
  const { buf, off } = place(p);
  writeInboundVnetHeader(buf, off, p.length, 1480);
  t.deepEqual(hdr(buf, off), ZERO);
});

test('a TCP super-packet gets a TCPv4 GSO header sized to the fan MTU and a partial checksum', (t) => {
  const p = ipv4Packet({ src: SRC, dst: DST, proto: 6, payload: l4(6, 6000, 0xbeef) });
  const { buf, off } = place(p);
  writeInboundVnetHeader(buf, off, p.length, 1480);
  t.deepEqual(hdr(buf, off), { flags: 1, gsoType: 1, hdrLen: 40, gsoSize: 1440, csumStart: 20, csumOffset: 16 });
  t.is((buf[off + 36]! << 8) | buf[off + 37]!, pseudo(SRC, DST, 6, 6020));
  // CWR set: the GSO ECN bit tells the kernel to keep CWR on the first segment only
  const q = ipv4Packet({ src: SRC, dst: DST, proto: 6, payload: l4(6, 6000, 0xbeef, 0x90) });
  const e = place(q);
  writeInboundVnetHeader(e.buf, e.off, q.length, 1480);
  t.is(hdr(e.buf, e.off).gsoType, 0x81);
});

test('large non-TCP packets and fragments stay plain (the kernel fragments or refuses them by DF)', (t) => {
  for (const p of [
    ipv4Packet({ src: SRC, dst: DST, proto: 17, payload: l4(17, 4000, 0x1111) }),
    ipv4Packet({ src: SRC, dst: DST, proto: 1, payload: new Uint8Array(3000) }),
    ipv4Packet({ src: SRC, dst: DST, proto: 6, fragWord: 0x2000, payload: l4(6, 3000, 0x2222) }),
  ]) {
    const { buf, off } = place(p);
    writeInboundVnetHeader(buf, off, p.length, 1480);
    t.deepEqual(hdr(buf, off), ZERO);
  }
});

test('fuzz: writes only the 10 header bytes and the L4 checksum field, never outside the packet', (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 200 }), (raw) => {
    const p = raw.slice();
    p[0] = 0x45;
    const { buf, off } = place(p);
    const before = buf.slice();
    writeInboundVnetHeader(buf, off, p.length, 60 + (raw[1]! % 100));
    for (let i = 0; i < buf.length; i++) {
      if (i >= off - VNET_HDR_LEN && i < off) continue;
      if (i >= off + 20 && i < off + 20 + 18) continue; // L4 checksum field (UDP 6..7, TCP 16..17)
      if (buf[i] !== before[i]) return false;
    }
    return true;
  }), { numRuns: 3000 });
  t.pass();
});
