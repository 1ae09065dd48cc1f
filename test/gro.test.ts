// Inbound coalescing: which TCP segments may be joined, and what a joined
// packet looks like, following the kernel's tcp_gro_receive() rules.
import test from 'ava';
import { appendPayload, continuesMerge, finishMerged, InnerCsum, mergeablePayload } from '../src/dataplane/packet/gro.js';
import { ip, ipv4Packet, inetChecksum } from './helpers/packets.js';

const SRC = ip('250.2.10.11');
const DST = ip('250.1.10.11');

function segment(seq: number, payload: number, opts: { flags?: number; ack?: number; win?: number; ts?: number; badSum?: boolean; src?: number } = {}): Uint8Array {
  const thl = 32;
  const l4 = new Uint8Array(thl + payload);
  l4[0] = 0x14; l4[1] = 0x51; l4[2] = 0x9c; l4[3] = 0x40;
  l4[4] = seq >>> 24; l4[5] = (seq >>> 16) & 255; l4[6] = (seq >>> 8) & 255; l4[7] = seq & 255;
  const ack = opts.ack ?? 777;
  l4[8] = ack >>> 24; l4[9] = (ack >>> 16) & 255; l4[10] = (ack >>> 8) & 255; l4[11] = ack & 255;
  l4[12] = (thl / 4) << 4;
  l4[13] = opts.flags ?? 0x10;
  l4[14] = (opts.win ?? 500) >>> 8; l4[15] = (opts.win ?? 500) & 255;
  l4[20] = 1; l4[21] = 1; l4[22] = 8; l4[23] = 10; // NOP NOP TS
  l4[27] = opts.ts ?? 5;
  for (let i = 0; i < payload; i++) l4[thl + i] = (seq + i) & 255;
  const p = ipv4Packet({ src: opts.src ?? SRC, dst: DST, proto: 6, payload: l4 });
  // TCP checksum over the pseudo-header and segment
  const ps = new Uint8Array(12 + l4.length);
  ps.set(p.subarray(12, 20)); ps[9] = 6; ps[10] = l4.length >>> 8; ps[11] = l4.length & 255; ps.set(l4, 12);
  const c = inetChecksum(ps) ^ (opts.badSum ? 0x1111 : 0);
  p[36] = c >>> 8; p[37] = c & 255;
  return p;
}

/** Lays packets out one per 64 KiB slot (as the worker's ring does) and runs the worker's merge loop. */
function mergeAll(pkts: Uint8Array[]): { packets: Uint8Array[]; segs: number[]; vnet: Uint8Array[] } {
  const SLOT = 65600;
  const buf = new Uint8Array(SLOT * pkts.length);
  const offs = pkts.map((p, i) => { buf.set(p, i * SLOT + 20); return i * SLOT + 20; });
  const out: { off: number; len: number; segs: number }[] = [];
  let open = -1; let gso = 0; let merged = 0; let lastPay = 0; let lastPsh = false;
  const close = () => { if (open >= 0 && out[open]!.segs > 1) finishMerged(buf, out[open]!.off, out[open]!.len, gso); open = -1; };
  pkts.forEach((p, i) => {
    const v = offs[i]!;
    const pay = mergeablePayload(buf, v, p.length);
    const psh = pay > 0 && (buf[v + 33]! & 8) !== 0;
    if (open >= 0 && pay > 0 && continuesMerge(buf, out[open]!.off, gso, merged, lastPay, lastPsh, v, p.length, pay)) {
      out[open]!.len = appendPayload(buf, out[open]!.off, out[open]!.len, v, p.length, pay, psh);
      merged += pay; lastPay = pay; lastPsh = psh; out[open]!.segs++;
      return;
    }
    close();
    out.push({ off: v, len: p.length, segs: 1 });
    if (pay > 0) { open = out.length - 1; gso = pay; merged = pay; lastPay = pay; lastPsh = psh; }
  });
  close();
  return { packets: out.map((o) => buf.slice(o.off, o.off + o.len)), segs: out.map((o) => o.segs), vnet: out.map((o) => buf.slice(o.off - 10, o.off)) };
}

test('consecutive segments of one flow become one GSO packet carrying all their payload', (t) => {
  const pkts = [0, 1, 2, 3].map((k) => segment(1000 + k * 1400, 1400, { flags: k === 3 ? 0x18 : 0x10 }));
  pkts.push(segment(1000 + 4 * 1400, 600, { flags: 0x10 }));
  const { packets, segs, vnet } = mergeAll(pkts.slice(0, 4));
  t.deepEqual(segs, [4]);
  const m = packets[0]!;
  t.is((m[2]! << 8) | m[3]!, 20 + 32 + 4 * 1400);
  t.is(inetChecksum(m.subarray(0, 20)), 0, 'IP checksum');
  t.is(m[33]! & 0x08, 0x08, 'PSH of the last segment kept');
  const expectPayload = new Uint8Array(4 * 1400);
  for (let i = 0; i < expectPayload.length; i++) expectPayload[i] = (1000 + i) & 255;
  t.deepEqual(m.subarray(52), expectPayload);
  t.deepEqual([...vnet[0]!], [1, 1, 52, 0, 1400 & 255, 1400 >> 8, 20, 0, 16, 0]);
  // a shorter last segment joins too
  const r = mergeAll([segment(1, 1400), segment(1401, 1400), segment(2801, 600)]);
  t.deepEqual(r.segs, [3]);
});

test('segments that must not be joined pass through as they came', (t) => {
  const cases: [string, Uint8Array[], number[]][] = [
    ['gap in sequence', [segment(1, 1400), segment(3001, 1400)], [1, 1]],
    ['other flow', [segment(1, 1400), segment(1401, 1400, { src: ip('250.3.10.11') })], [1, 1]],
    ['other ACK', [segment(1, 1400), segment(1401, 1400, { ack: 778 })], [1, 1]],
    ['other window', [segment(1, 1400), segment(1401, 1400, { win: 501 })], [1, 1]],
    ['other timestamp', [segment(1, 1400), segment(1401, 1400, { ts: 6 })], [1, 1]],
    ['PSH ends a merge', [segment(1, 1400, { flags: 0x18 }), segment(1401, 1400)], [1, 1]],
    ['a longer segment after a shorter one', [segment(1, 600), segment(601, 1400)], [1, 1]],
    ['bad checksum', [segment(1, 1400), segment(1401, 1400, { badSum: true })], [1, 1]],
    ['FIN', [segment(1, 1400), segment(1401, 1400, { flags: 0x11 })], [1, 1]],
    ['SYN', [segment(1, 0, { flags: 0x02 }), segment(1, 1400)], [1, 1]],
    ['pure ACK', [segment(1, 0), segment(1, 0)], [1, 1]],
  ];
  for (const [name, pkts, want] of cases) {
    const r = mergeAll(pkts);
    t.deepEqual(r.segs, want, name);
    r.packets.forEach((p, i) => t.deepEqual(p, pkts[i], `${name}: packet ${i} unchanged`));
  }
});

test('what the receive call found of the checksum decides, else it is summed here', (t) => {
  const good = segment(1, 1400);
  const bad = segment(1, 1400, { badSum: true });
  const at = (p: Uint8Array, c?: InnerCsum) => { const b = new Uint8Array(p.length + 20); b.set(p, 20); return mergeablePayload(b, 20, p.length, c); };
  t.is(at(good), 1400);
  t.is(at(bad), -1);
  t.is(at(good, InnerCsum.Right), 1400);
  t.is(at(bad, InnerCsum.Right), 1400, 'the addon checked it: not summed again');
  t.is(at(good, InnerCsum.Wrong), -1);
  // a partial checksum (the pseudo-header sum, as virtual underlays leave it) is accepted whatever the call found
  const partial = good.slice();
  const ps = new Uint8Array(12);
  ps.set(partial.subarray(12, 20)); ps[9] = 6; ps[10] = 1432 >>> 8; ps[11] = 1432 & 255;
  const sum = (~inetChecksum(ps)) & 0xffff;
  partial[36] = sum >>> 8; partial[37] = sum & 255;
  t.is(at(partial, InnerCsum.Wrong), 1400);
  t.is(at(partial, InnerCsum.Unchecked), 1400);
});

test('a merge never grows past the IPv4 length limit', (t) => {
  const pkts = Array.from({ length: 50 }, (_, k) => segment(1 + k * 1400, 1400));
  const r = mergeAll(pkts);
  t.true(r.segs.length >= 2);
  for (const p of r.packets) t.true(((p[2]! << 8) | p[3]!) <= 65535);
  t.is(r.segs.reduce((a, b) => a + b, 0), 50);
});
