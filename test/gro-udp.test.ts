// Inbound UDP coalescing (USO toward the bridge): datagrams of one flow are
// joined into one UDP_L4 GSO packet exactly when the kernel's cut
// (__udp_gso_segment(): the first datagram's headers, consecutive IPv4 IDs,
// each checksum computed anew) gives back the datagrams that came, byte for
// byte. Checked here by doing that cut on every merged packet.
import test from 'ava';
import fc from 'fast-check';
import {
  continuesUdpMerge, finishMergedUdp, InnerCsum, mergeableUdpPayload, UDP_MERGE_MAX_SEGMENTS, VNET_GSO_UDP_L4,
} from '../src/dataplane/packet/gro.js';
import { ipv4HeaderChecksum } from '../src/dataplane/packet/ipv4.js';
import { ip, ipv4Packet, inetChecksum } from './helpers/packets.js';

const SRC = ip('250.2.10.11');
const DST = ip('250.1.10.11');

interface Dg { id: number; payload: number; sport?: number; tos?: number; ttl?: number; df?: boolean; noSum?: boolean; badSum?: boolean; seed?: number; src?: number }

function udpSum(p: Uint8Array): number {
  const l4 = p.subarray(20);
  const ps = new Uint8Array(12 + l4.length + (l4.length & 1));
  ps.set(p.subarray(12, 20)); ps[9] = 17; ps[10] = l4.length >>> 8; ps[11] = l4.length & 255; ps.set(l4, 12);
  const c = inetChecksum(ps);
  return c === 0 ? 0xffff : c;
}

function datagram(d: Dg): Uint8Array {
  const l4 = new Uint8Array(8 + d.payload);
  const sport = d.sport ?? 40000;
  l4[0] = sport >>> 8; l4[1] = sport & 255; l4[2] = 0x14; l4[3] = 0x51;
  l4[4] = l4.length >>> 8; l4[5] = l4.length & 255;
  for (let i = 0; i < d.payload; i++) l4[8 + i] = ((d.seed ?? d.id) * 31 + i) & 255;
  const p = ipv4Packet({ src: d.src ?? SRC, dst: DST, proto: 17, id: d.id, tos: d.tos ?? 0, ttl: d.ttl ?? 64, df: d.df ?? true, payload: l4 });
  if (!d.noSum) { const c = udpSum(p) ^ (d.badSum ? 0x0101 : 0); p[26] = c >>> 8; p[27] = c & 255; }
  return p;
}

/** The worker's merge loop over packets laid out one per slot; returns each output packet with its vnet header and datagram count. */
function mergeAll(pkts: Uint8Array[], checked = InnerCsum.Unchecked): { pkt: Uint8Array; vnet: Uint8Array; segs: number; gso: number }[] {
  const SLOT = 2048;
  const buf = new Uint8Array(SLOT * pkts.length + 70000);
  const offs = pkts.map((p, i) => { buf.set(p, i * SLOT + 16); return i * SLOT + 16; });
  const out: { parts: Uint8Array[]; off: number; len: number; segs: number; gso: number; vnet: Uint8Array }[] = [];
  let open = -1; let merged = 0; let lastPay = 0;
  const close = () => {
    if (open >= 0 && out[open]!.segs > 1) finishMergedUdp(buf, out[open]!.off, out[open]!.len, out[open]!.gso, out[open]!.vnet, 0, 0);
    open = -1;
  };
  pkts.forEach((p, i) => {
    const v = offs[i]!;
    const pay = mergeableUdpPayload(buf, v, p.length, checked);
    const o = open >= 0 ? out[open]! : undefined;
    if (o && pay > 0 && continuesUdpMerge(buf, o.off, o.gso, merged, o.segs, lastPay, v, p.length, pay)) {
      o.parts.push(buf.subarray(v + 28, v + p.length));
      o.len += pay; merged += pay; lastPay = pay; o.segs++;
      return;
    }
    close();
    out.push({ parts: [], off: v, len: p.length, segs: 1, gso: pay, vnet: new Uint8Array(10) });
    if (pay > 0) { open = out.length - 1; merged = pay; lastPay = pay; }
  });
  close();
  // The writev: the first datagram's headers (rewritten) and payload, then the others' payloads.
  return out.map((o) => {
    const first = buf.slice(o.off, o.off + 28 + (o.segs > 1 ? o.gso : o.len - 28));
    const pkt = new Uint8Array(o.len);
    pkt.set(first);
    let at = first.length;
    for (const part of o.parts) { pkt.set(part, at); at += part.length; }
    return { pkt, vnet: o.vnet, segs: o.segs, gso: o.gso };
  });
}

/** __udp_gso_segment() + inet_gso_segment(), as the receiving kernel cuts a UDP_L4 GSO packet. */
function cut(m: { pkt: Uint8Array; gso: number }): Uint8Array[] {
  const { pkt, gso } = m;
  const total = pkt.length - 28;
  const id0 = (pkt[4]! << 8) | pkt[5]!;
  const segs: Uint8Array[] = [];
  for (let k = 0, at = 0; at < total; k++, at += gso) {
    const n = Math.min(gso, total - at);
    const s = new Uint8Array(28 + n);
    s.set(pkt.subarray(0, 28));
    s.set(pkt.subarray(28 + at, 28 + at + n), 28);
    s[2] = s.length >>> 8; s[3] = s.length & 255;
    const id = (id0 + k) & 0xffff;
    s[4] = id >>> 8; s[5] = id & 255;
    s[10] = 0; s[11] = 0;
    const c = ipv4HeaderChecksum(s, 0, 20);
    s[10] = c >>> 8; s[11] = c & 255;
    s[24] = (8 + n) >>> 8; s[25] = (8 + n) & 255;
    s[26] = 0; s[27] = 0;
    const u = udpSum(s);
    s[26] = u >>> 8; s[27] = u & 255;
    segs.push(s);
  }
  return segs;
}

const flow = (n: number, size: number, last = size, id0 = 100) => Array.from({ length: n }, (_, k) => datagram({ id: id0 + k, payload: k === n - 1 ? last : size }));

test('consecutive datagrams of one flow become one UDP_L4 GSO packet; the kernel\'s cut gives them back byte for byte', (t) => {
  const pkts = flow(5, 64, 30);
  const out = mergeAll(pkts);
  t.is(out.length, 1);
  t.is(out[0]!.segs, 5);
  t.deepEqual([...out[0]!.vnet], [1, VNET_GSO_UDP_L4, 28, 0, 64, 0, 20, 0, 6, 0], 'NEEDS_CSUM, UDP_L4, hdr 28, gso 64, csum at 20+6');
  t.is((out[0]!.pkt[2]! << 8) | out[0]!.pkt[3]!, 28 + 4 * 64 + 30, 'IPv4 total length');
  t.is((out[0]!.pkt[24]! << 8) | out[0]!.pkt[25]!, 8 + 4 * 64 + 30, 'UDP length');
  t.deepEqual(cut(out[0]!), pkts);
});

test('what does not continue a flow starts anew or passes as it came', (t) => {
  const cases: [string, Uint8Array[], number[]][] = [
    ['an ID out of order', [datagram({ id: 1, payload: 64 }), datagram({ id: 3, payload: 64 })], [1, 1]],
    ['another source port', [datagram({ id: 1, payload: 64 }), datagram({ id: 2, payload: 64, sport: 1 })], [1, 1]],
    ['another TOS', [datagram({ id: 1, payload: 64 }), datagram({ id: 2, payload: 64, tos: 4 })], [1, 1]],
    ['another TTL', [datagram({ id: 1, payload: 64 }), datagram({ id: 2, payload: 64, ttl: 3 })], [1, 1]],
    ['DF differs', [datagram({ id: 1, payload: 64 }), datagram({ id: 2, payload: 64, df: false })], [1, 1]],
    ['a longer one after', [datagram({ id: 1, payload: 64 }), datagram({ id: 2, payload: 65 })], [1, 1]],
    ['after a shorter one', [datagram({ id: 1, payload: 64 }), datagram({ id: 2, payload: 10 }), datagram({ id: 3, payload: 10 })], [2, 1]],
    ['no checksum', [datagram({ id: 1, payload: 64, noSum: true }), datagram({ id: 2, payload: 64, noSum: true })], [1, 1]],
    ['a wrong checksum', [datagram({ id: 1, payload: 64 }), datagram({ id: 2, payload: 64, badSum: true }), datagram({ id: 3, payload: 64 })], [1, 1, 1]],
    ['another source', [datagram({ id: 1, payload: 64 }), datagram({ id: 2, payload: 64, src: ip('250.2.10.12') })], [1, 1]],
  ];
  for (const [what, pkts, segs] of cases) {
    const out = mergeAll(pkts);
    t.deepEqual(out.map((o) => o.segs), segs, what);
    t.deepEqual(out.flatMap((o) => (o.segs > 1 ? cut(o) : [o.pkt])), pkts, `${what}: every datagram comes out as it came`);
  }
});

test('limits: at most 64 datagrams, at most 65535 IPv4 bytes; IDs wrap', (t) => {
  const many = flow(UDP_MERGE_MAX_SEGMENTS + 6, 100);
  t.deepEqual(mergeAll(many).map((o) => o.segs), [UDP_MERGE_MAX_SEGMENTS, 6]);
  const big = flow(60, 1400);
  const out = mergeAll(big);
  t.true(out.every((o) => o.pkt.length <= 65535));
  t.deepEqual(out.flatMap(cut), big);
  const wrap = flow(4, 64, 64, 0xfffe);
  t.deepEqual(mergeAll(wrap).map((o) => o.segs), [4]);
  t.deepEqual(cut(mergeAll(wrap)[0]!), wrap);
});

test('a fragment, IP options or a UDP length that disagrees are never joined', (t) => {
  const frag = ipv4Packet({ src: SRC, dst: DST, proto: 17, fragWord: 0x2000, payload: new Uint8Array(72) });
  t.is(mergeableUdpPayload(frag, 0, frag.length), -1);
  const opts = ipv4Packet({ src: SRC, dst: DST, proto: 17, options: new Uint8Array([1, 1, 1, 0]), payload: new Uint8Array(72) });
  t.is(mergeableUdpPayload(opts, 0, opts.length), -1);
  const d = datagram({ id: 1, payload: 64 });
  d[25]! += 1;
  t.is(mergeableUdpPayload(d, 0, d.length, InnerCsum.Right), -1);
});

test('fuzz: whatever arrives, merging then cutting gives back exactly the datagrams that came', (t) => {
  const dg = fc.record({
    idStep: fc.constantFrom(1, 1, 1, 2), payload: fc.constantFrom(64, 64, 64, 30, 1400), sport: fc.constantFrom(40000, 40000, 40001),
    tos: fc.constantFrom(0, 0, 2), noSum: fc.nat(9).map((n) => n === 0), seed: fc.nat(1000),
  });
  fc.assert(fc.property(fc.array(dg, { minLength: 1, maxLength: 80 }), fc.nat(0xffff), (ds, id0) => {
    let id = id0;
    const pkts = ds.map((d) => { id = (id + d.idStep) & 0xffff; return datagram({ id, payload: d.payload, sport: d.sport, tos: d.tos, noSum: d.noSum, seed: d.seed }); });
    const back = mergeAll(pkts).flatMap((o) => (o.segs > 1 ? cut(o) : [o.pkt]));
    t.deepEqual(back, pkts);
  }), { numRuns: 300 });
});
