import test from 'ava';
import fc from 'fast-check';
import { DROP_NAMES, Drop } from '../src/dataplane/counters.js';
import { makePacketContext, sliceOf, underlayHostOf, type PacketContext } from '../src/dataplane/packet/context.js';
import { encapsulate, encapsulateHeader, isDrop, dropReason, dropResult } from '../src/dataplane/packet/encap.js';
import { decapsulate, innerLength } from '../src/dataplane/packet/decap.js';
import {
  checksumValid, ipv4HeaderChecksum, ipTotalLength, readU32, setTosUpdateChecksum, writeU16,
} from '../src/dataplane/packet/ipv4.js';
import { GUARD, guarded, hex, icmpEcho, ip, ipipPacket, ipv4Packet, placed } from './helpers/packets.js';

const OVERLAY = { network: ip('250.0.0.0'), prefix: 8 };
const UNDERLAY = { network: ip('172.16.0.0'), prefix: 16 };
const HOST_A = ip('172.16.3.4'); // sender, slice 250.3.4.0/24
const HOST_B = ip('172.16.5.6'); // receiver, slice 250.5.6.0/24
const ctxA = makePacketContext(OVERLAY, UNDERLAY, HOST_A);
const ctxB = makePacketContext(OVERLAY, UNDERLAY, HOST_B);

const OUT_REASONS = new Set<number>([Drop.OutNotIpv4, Drop.OutMalformed, Drop.OutNotOverlay, Drop.OutLocalSlice,
  Drop.OutBadUnderlay, Drop.OutTtlExpired, Drop.OutSendError]);
const IN_REASONS = new Set<number>([Drop.InTruncated, Drop.InOuterMalformed, Drop.InOuterSource, Drop.InInnerNotIpv4,
  Drop.InInnerMalformed, Drop.InInnerChecksum, Drop.InInnerDestination, Drop.InSpoofedSource, Drop.InEcnDrop]);

function name(v: number): string {
  return isDrop(v) ? `drop ${DROP_NAMES[dropReason(v)]}` : `ok ${v}`;
}

function encap(pkt: Uint8Array, ctx: PacketContext = ctxA, len = pkt.length): number {
  const { buf, off } = placed(pkt, 20, 0);
  return encapsulate(buf, off, len, ctx);
}

function decap(pkt: Uint8Array, ctx: PacketContext = ctxB, len = pkt.length): number {
  const { buf, off } = placed(pkt, 0, 0);
  return decapsulate(buf, off, len, ctx);
}

/** A valid inner UDP packet from A's slice to B's slice. */
function innerAB(over: Partial<Parameters<typeof ipv4Packet>[0]> = {}): Uint8Array {
  return ipv4Packet({ src: ip('250.3.4.10'), dst: ip('250.5.6.7'), payload: new Uint8Array([0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]), ...over });
}

// ---- context ----------------------------------------------------------------

test('context: the Fan mapping of the example', (t) => {
  t.is(ctxA.localSlice, ip('250.3.4.0'));
  t.is(ctxA.sliceMask, ip('255.255.255.0'));
  t.is(ctxA.sliceShift, 8);
  t.is(ctxA.hostBitsMask, 0xffff);
  t.is(underlayHostOf(ctxA, ip('250.5.6.7')), HOST_B);
  t.is(sliceOf(ctxA, HOST_B), ip('250.5.6.0'));
  const wide = makePacketContext({ network: ip('10.0.0.0'), prefix: 8 }, { network: ip('192.168.0.0'), prefix: 24 }, ip('192.168.0.200'));
  t.is(wide.localSlice, ip('10.200.0.0'));
  t.is(wide.sliceMask, ip('255.255.0.0'));
  t.is(underlayHostOf(wide, ip('10.7.1.2')), ip('192.168.0.7'));
});

test('context: impossible Fans are refused', (t) => {
  t.throws(() => makePacketContext({ network: 0, prefix: 0 }, UNDERLAY, HOST_A), { instanceOf: RangeError });
  t.throws(() => makePacketContext({ network: ip('10.0.0.0'), prefix: 24 }, UNDERLAY, HOST_A), { instanceOf: RangeError });
  t.throws(() => makePacketContext(OVERLAY, { network: ip('172.16.0.0'), prefix: 31 }, ip('172.16.0.1')), { instanceOf: RangeError });
  t.throws(() => makePacketContext(OVERLAY, UNDERLAY, ip('10.0.0.1')), { instanceOf: RangeError });
  t.throws(() => makePacketContext(OVERLAY, UNDERLAY, ip('172.16.255.255')), { instanceOf: RangeError });
});

// ---- ipv4 helpers -----------------------------------------------------------

test('ipv4: checksum of a known header (RFC 1071 style example)', (t) => {
  // Header from the widely used Wikipedia example: checksum 0xb861.
  const h = Uint8Array.from(Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex'));
  t.is(ipv4HeaderChecksum(h, 0, 20), 0xb861);
  t.false(checksumValid(h, 0, 20));
  writeU16(h, 10, 0xb861);
  t.true(checksumValid(h, 0, 20));
});

test('ipv4: incremental TOS update equals recomputation (property)', (t) => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.integer({ min: 0, max: 255 }),
    (h, tos) => {
      h[0] = 0x45;
      writeU16(h, 10, ipv4HeaderChecksum(h, 0, 20));
      setTosUpdateChecksum(h, 0, tos);
      return h[1] === tos && checksumValid(h, 0, 20) && ((h[10]! << 8) | h[11]!) === ipv4HeaderChecksum(h, 0, 20);
    }), { numRuns: 2000 });
  t.pass();
});

// ---- encapsulate: worked example -------------------------------------------

test('encapsulate: worked ICMP echo 250.3.4.10 -> 250.5.6.7', (t) => {
  const inner = ipv4Packet({
    src: ip('250.3.4.10'), dst: ip('250.5.6.7'), tos: 0xba /* EF, ECT(0) */, ttl: 63, df: true, proto: 1,
    payload: icmpEcho(0x0101, 1, new TextEncoder().encode('fandtest')),
  });
  t.is(inner.length, 36);
  const { buf, off, len } = placed(inner, 20, 0xee);
  const r = encapsulate(buf, off, len, ctxA);
  t.is(r, HOST_B, name(r));
  t.is(hex(buf.subarray(off - 20, off)), '45ba0038' + '00004000' + '3f04dadd' + 'ac100304' + 'ac100506');
  t.true(checksumValid(buf, off - 20, 20));
  t.is(ipTotalLength(buf, off - 20), 56);
  t.is(hex(buf.subarray(off, off + len)), hex(inner), 'inner untouched');
  t.true(buf.subarray(0, off - 20).every((b) => b === 0xee));
  t.true(buf.subarray(off + len).every((b) => b === 0xee));
});

test('encapsulate: CE becomes ECT(0) outside, DSCP copied, no DF when inner has none, TTL inherited', (t) => {
  const inner = innerAB({ tos: 0x23 /* DSCP 8, CE */, ttl: 1, df: false });
  const { buf, off, len } = placed(inner, 20, 0);
  t.is(encapsulate(buf, off, len, ctxA), HOST_B);
  t.is(buf[off - 19], 0x22);
  t.is((buf[off - 14]! << 8) | buf[off - 13]!, 0);
  t.is(buf[off - 12], 1);
  t.true(checksumValid(buf, off - 20, 20));
});

test('encapsulate: ECN mapping for each inner codepoint', (t) => {
  const expected = [0, 1, 2, 2]; // Not-ECT, ECT(1), ECT(0), CE -> ECT(0)   (INET_ECN_encapsulate)
  for (let ecn = 0; ecn < 4; ecn++) {
    const { buf, off, len } = placed(innerAB({ tos: 0xfc | ecn }), 20, 0);
    t.is(encapsulate(buf, off, len, ctxA), HOST_B);
    t.is(buf[off - 19], 0xfc | expected[ecn]!, `inner ECN ${ecn}`);
  }
});

test('encapsulate: uses the total length field and ignores trailing bytes', (t) => {
  const inner = innerAB();
  const padded = new Uint8Array(inner.length + 7).fill(0x99);
  padded.set(inner);
  const { buf, off, len } = placed(padded, 20, 0);
  t.is(encapsulate(buf, off, len, ctxA), HOST_B);
  t.is(ipTotalLength(buf, off - 20), inner.length + 20);
});

test('encapsulate: a non-overlay inner source is still encapsulated', (t) => {
  t.is(encap(innerAB({ src: ip('192.0.2.1') })), HOST_B);
  t.is(encap(innerAB({ src: ip('172.16.3.4') })), HOST_B);
});

test('encapsulate: largest inner packet that fits, and one byte more', (t) => {
  const ok = innerAB({ payload: new Uint8Array(65515 - 20) });
  t.is(encap(ok), HOST_B);
  const big = new Uint8Array(65516);
  big.set(innerAB());
  writeU16(big, 2, 65516);
  writeU16(big, 10, 0);
  writeU16(big, 10, ipv4HeaderChecksum(big, 0, 20));
  t.is(dropReason(encap(big)), Drop.OutSendError);
});

// ---- encapsulate: every drop ------------------------------------------------

function withBytes(p: Uint8Array, edits: [number, number][]): Uint8Array {
  const c = p.slice();
  for (const [i, v] of edits) c[i] = v;
  return c;
}

test('encapsulate: each outbound drop reason', (t) => {
  const good = innerAB();
  const v6 = new Uint8Array(40); v6[0] = 0x60;
  const cases: [string, Uint8Array, number | undefined, Drop][] = [
    ['IPv6', v6, 40, Drop.OutNotIpv4],
    ['one byte of IPv6', v6, 1, Drop.OutNotIpv4],
    ['version 5', withBytes(good, [[0, 0x55]]), good.length, Drop.OutNotIpv4],
    ['empty', good, 0, Drop.OutMalformed],
    ['19 bytes', good, 19, Drop.OutMalformed],
    ['IHL 4', withBytes(good, [[0, 0x44]]), good.length, Drop.OutMalformed],
    ['IHL beyond the bytes', withBytes(innerAB({ payload: new Uint8Array(20) }), [[0, 0x4f]]), 40, Drop.OutMalformed],
    ['total length > bytes', good, good.length - 1, Drop.OutMalformed],
    ['total length < IHL', withBytes(good, [[2, 0], [3, 19]]), good.length, Drop.OutMalformed],
    ['destination outside the overlay', innerAB({ dst: ip('10.0.0.1') }), undefined, Drop.OutNotOverlay],
    ['destination in the local slice', innerAB({ dst: ip('250.3.4.99') }), undefined, Drop.OutLocalSlice],
    ['maps to the underlay network', innerAB({ dst: ip('250.0.0.9') }), undefined, Drop.OutBadUnderlay],
    ['maps to the underlay broadcast', innerAB({ dst: ip('250.255.255.9') }), undefined, Drop.OutBadUnderlay],
    ['TTL 0', innerAB({ ttl: 0 }), undefined, Drop.OutTtlExpired],
  ];
  for (const [what, pkt, len, reason] of cases) {
    const r = encap(pkt, ctxA, len ?? pkt.length);
    t.true(isDrop(r), `${what}: ${name(r)}`);
    t.is(dropReason(r), reason, `${what}: ${name(r)}`);
  }
  // The OutBadUnderlay check for "this host" is unreachable through the
  // mapping (only the local slice maps to it), which OutLocalSlice catches.
  t.is(dropResult(Drop.OutBadUnderlay), -(1 + Drop.OutBadUnderlay));
});

// ---- decapsulate ------------------------------------------------------------

test('decapsulate: worked packet and its inner offset and length', (t) => {
  const inner = innerAB({ tos: 0x02 });
  const outer = ipipPacket(HOST_A, HOST_B, inner, 0x02);
  const { buf, off, len } = placed(outer, 0, 0xee);
  const r = decapsulate(buf, off, len, ctxB);
  t.is(r, off + 20, name(r));
  t.is(innerLength(buf, r), inner.length);
  t.is(hex(buf.subarray(r, r + inner.length)), hex(inner));
});

test('decapsulate: outer and inner options', (t) => {
  const inner = innerAB({ options: new Uint8Array([1, 1, 1, 0]) });
  const outer = ipipPacket(HOST_A, HOST_B, inner, 0, new Uint8Array([1, 1, 1, 1, 1, 1, 1, 0]));
  const { buf, off, len } = placed(outer, 0, 0);
  t.is(decapsulate(buf, off, len, ctxB), off + 28);
});

function outerWith(p: Uint8Array, edits: [number, number][], fixChecksum = true): Uint8Array {
  const c = withBytes(p, edits);
  if (fixChecksum) { writeU16(c, 10, 0); writeU16(c, 10, ipv4HeaderChecksum(c, 0, (c[0]! & 15) * 4)); }
  return c;
}

test('decapsulate: each inbound drop reason', (t) => {
  const inner = innerAB();
  const good = ipipPacket(HOST_A, HOST_B, inner);
  const inner20 = 20; // offset of the inner header in `good`
  const innerEdit = (edits: [number, number][], fix = true): Uint8Array => {
    const i = withBytes(inner, edits);
    if (fix) { writeU16(i, 10, 0); writeU16(i, 10, ipv4HeaderChecksum(i, 0, (i[0]! & 15) * 4)); }
    return ipipPacket(HOST_A, HOST_B, i);
  };
  const trailing = new Uint8Array(good.length + 1); trailing.set(good);
  const cases: [string, Uint8Array, number | undefined, Drop][] = [
    ['39 bytes', good, 39, Drop.InTruncated],
    ['empty', good, 0, Drop.InTruncated],
    ['outer version 6', outerWith(good, [[0, 0x65]]), undefined, Drop.InOuterMalformed],
    ['outer IHL 4', outerWith(good, [[0, 0x44]]), undefined, Drop.InOuterMalformed],
    ['outer IHL leaves no inner header', outerWith(good, [[0, 0x4f]]), undefined, Drop.InOuterMalformed],
    ['outer protocol 41', outerWith(good, [[9, 41]]), undefined, Drop.InOuterMalformed],
    ['outer total length < bytes', trailing, undefined, Drop.InOuterMalformed],
    ['outer total length > bytes', good, good.length - 1, Drop.InOuterMalformed],
    ['outer source outside the underlay', ipipPacket(ip('10.1.1.1'), HOST_B, inner), undefined, Drop.InOuterSource],
    ['outer source is this host', ipipPacket(HOST_B, HOST_B, inner), undefined, Drop.InOuterSource],
    ['outer source is the underlay network', ipipPacket(ip('172.16.0.0'), HOST_B, inner), undefined, Drop.InOuterSource],
    ['outer source is the underlay broadcast', ipipPacket(ip('172.16.255.255'), HOST_B, inner), undefined, Drop.InOuterSource],
    ['inner version 6', outerWith(good, [[inner20, 0x65]], false), undefined, Drop.InInnerNotIpv4],
    ['inner IHL 4', innerEdit([[0, 0x44]]), undefined, Drop.InInnerMalformed],
    ['inner total length < IHL', innerEdit([[2, 0], [3, 16]]), undefined, Drop.InInnerMalformed],
    ['inner total length < remaining', innerEdit([[3, inner.length - 1]]), undefined, Drop.InInnerMalformed],
    ['inner total length > remaining', innerEdit([[3, inner.length + 1]]), undefined, Drop.InInnerMalformed],
    ['inner IHL past the end', innerEdit([[0, 0x4f]], false), undefined, Drop.InInnerMalformed],
    ['inner checksum', innerEdit([[10, inner[10]! ^ 1]], false), undefined, Drop.InInnerChecksum],
    ['inner checksum (TTL changed)', innerEdit([[8, 7]], false), undefined, Drop.InInnerChecksum],
    ['inner destination in another slice', ipipPacket(HOST_A, HOST_B, innerAB({ dst: ip('250.5.7.1') })), undefined, Drop.InInnerDestination],
    ['inner destination outside the overlay', ipipPacket(HOST_A, HOST_B, innerAB({ dst: ip('10.5.6.1') })), undefined, Drop.InInnerDestination],
    ['inner source in another slice', ipipPacket(HOST_A, HOST_B, innerAB({ src: ip('250.9.9.9') })), undefined, Drop.InSpoofedSource],
    ['inner source outside the overlay', ipipPacket(HOST_A, HOST_B, innerAB({ src: ip('172.16.3.4') })), undefined, Drop.InSpoofedSource],
    ['outer CE over Not-ECT', ipipPacket(HOST_A, HOST_B, innerAB({ tos: 0 }), 3), undefined, Drop.InEcnDrop],
  ];
  for (const [what, pkt, len, reason] of cases) {
    const r = decap(pkt, ctxB, len ?? pkt.length);
    t.true(isDrop(r), `${what}: ${name(r)}`);
    t.is(dropReason(r), reason, `${what}: ${name(r)}`);
  }
});

test('decapsulate: checkInnerSource false lets a foreign inner source through', (t) => {
  const lax = makePacketContext(OVERLAY, UNDERLAY, HOST_B, false);
  const pkt = ipipPacket(HOST_A, HOST_B, innerAB({ src: ip('250.9.9.9') }));
  t.is(decap(pkt, lax), GUARD + 20);
});

test('decapsulate: RFC 6040 §4.2 table, all 16 combinations', (t) => {
  const N = 0, E1 = 1, E0 = 2, CE = 3, DROP = -1;
  // rows: inner; columns: outer Not-ECT, ECT(0), ECT(1), CE
  const table: [number, number[]][] = [
    [N, [N, N, N, DROP]],
    [E0, [E0, E0, E1, CE]],
    [E1, [E1, E1, E1, CE]],
    [CE, [CE, CE, CE, CE]],
  ];
  const outers = [N, E0, E1, CE];
  for (const [innerEcn, row] of table) {
    for (let c = 0; c < 4; c++) {
      const inner = innerAB({ tos: 0xa0 | innerEcn });
      const { buf, off, len } = placed(ipipPacket(HOST_A, HOST_B, inner, 0x48 | outers[c]!), 0, 0);
      const r = decapsulate(buf, off, len, ctxB);
      const what = `inner ${innerEcn} outer ${outers[c]}`;
      if (row[c] === DROP) {
        t.is(dropReason(r), Drop.InEcnDrop, what);
        continue;
      }
      t.is(r, off + 20, `${what}: ${name(r)}`);
      t.is(buf[r + 1], 0xa0 | row[c]!, what);
      t.true(checksumValid(buf, r, 20), `${what}: inner checksum`);
      t.is(hex(buf.subarray(r + 12, r + inner.length)), hex(inner.subarray(12)), `${what}: rest unchanged`);
    }
  }
});

test('round trip: encapsulate on A, decapsulate on B gives the inner bytes back', (t) => {
  for (const tos of [0, 1, 2, 3, 0xb8, 0xbb]) {
    const inner = innerAB({ tos, options: new Uint8Array([7, 7, 4, 0, 0, 0, 0, 1]) });
    const { buf, off, len } = placed(inner, 20, 0);
    const host = encapsulate(buf, off, len, ctxA);
    t.is(host, HOST_B);
    const outer = buf.slice(off - 20, off - 20 + ipTotalLength(buf, off - 20));
    const rx = placed(outer, 0, 0);
    const r = decapsulate(rx.buf, rx.off, rx.len, ctxB);
    t.is(r, rx.off + 20, name(r));
    t.is(hex(rx.buf.subarray(r, r + innerLength(rx.buf, r))), hex(inner), `tos ${tos}`);
  }
});

// ---- properties -------------------------------------------------------------

const sliceAddr = (slice: number) => fc.integer({ min: 0, max: 255 }).map((h) => (slice | h) >>> 0);
const hostOfUnderlay = fc.integer({ min: 1, max: 0xfffe }).map((h) => (UNDERLAY.network | h) >>> 0).filter((h) => h !== HOST_B);
const options = fc.integer({ min: 0, max: 10 }).chain((n) => fc.uint8Array({ minLength: n * 4, maxLength: n * 4 }));
const innerSpec = (src: fc.Arbitrary<number>, dst: fc.Arbitrary<number>) => fc.record({
  src, dst,
  tos: fc.integer({ min: 0, max: 255 }),
  ttl: fc.integer({ min: 1, max: 255 }),
  fragWord: fc.integer({ min: 0, max: 0xffff }),
  id: fc.integer({ min: 0, max: 0xffff }),
  proto: fc.integer({ min: 0, max: 255 }),
  options,
  payload: fc.integer({ min: 0, max: 64 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
});

/** A legitimate IPIP packet for B from some underlay host, with ECN not in the drop cell. */
const legitIpip = hostOfUnderlay.chain((h) => fc.record({
  host: fc.constant(h),
  inner: innerSpec(sliceAddr(sliceOf(ctxB, h)), sliceAddr(ctxB.localSlice)).map(ipv4Packet),
  outerTos: fc.integer({ min: 0, max: 255 }),
  outerOptions: options,
})).map(({ host, inner, outerTos, outerOptions }) => {
  const tos = (inner[1]! & 3) === 0 && (outerTos & 3) === 3 ? outerTos & 0xfe : outerTos;
  return { host, inner, outer: ipipPacket(host, HOST_B, inner, tos, outerOptions) };
});

test('property: decapsulate accepts every legitimate IPIP packet', (t) => {
  fc.assert(fc.property(legitIpip, ({ inner, outer }) => {
    const { buf, off, len } = placed(outer, 0, 0);
    const r = decapsulate(buf, off, len, ctxB);
    const oihl = (outer[0]! & 15) * 4;
    if (r !== off + oihl) return false;
    if (innerLength(buf, r) !== inner.length || r + inner.length !== off + len) return false;
    // Only the ECN bits and the checksum may differ.
    for (let i = 0; i < inner.length; i++) {
      if (i === 1) { if ((buf[r + 1]! & 0xfc) !== (inner[1]! & 0xfc)) return false; } else if (i !== 10 && i !== 11 && buf[r + i] !== inner[i]) return false;
    }
    return checksumValid(buf, r, (inner[0]! & 15) * 4);
  }), { numRuns: 3000 });
  t.pass();
});

test('property: round trip through encapsulate (on the sender) and decapsulate', (t) => {
  fc.assert(fc.property(innerSpec(sliceAddr(ctxA.localSlice), sliceAddr(ctxB.localSlice)), (spec) => {
    const inner = ipv4Packet(spec);
    const { buf, off, len } = placed(inner, 20, 0);
    if (encapsulate(buf, off, len, ctxA) !== HOST_B) return false;
    const outer = buf.slice(off - 20, off - 20 + ipTotalLength(buf, off - 20));
    if (!checksumValid(outer, 0, 20) || readU32(outer, 12) !== HOST_A) return false;
    const rx = placed(outer, 0, 0);
    const r = decapsulate(rx.buf, rx.off, rx.len, ctxB);
    return r === rx.off + 20 && hex(rx.buf.subarray(r, rx.off + rx.len)) === hex(inner);
  }), { numRuns: 2000 });
  t.pass();
});

function checkDecapResult(r: number, len: number): boolean {
  if (isDrop(r)) return IN_REASONS.has(dropReason(r));
  return Number.isInteger(r) && r >= GUARD + 20 && r < GUARD + len;
}

function checkEncapResult(r: number): boolean {
  if (isDrop(r)) return OUT_REASONS.has(dropReason(r));
  return Number.isInteger(r) && r > 0 && r <= 0xffffffff && ((r & 0xffff0000) >>> 0) === UNDERLAY.network && r !== HOST_A;
}

test('fuzz: decapsulate on random bytes', (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 120 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), fc.boolean(), (bytes, plausible) => {
    if (plausible && bytes.length >= 40) { bytes[0] = 0x45; bytes[9] = 4; writeU16(bytes, 2, bytes.length); bytes[12] = 172; bytes[13] = 16; }
    const r = guarded(t, bytes, bytes.length, 0, (buf, off, len) => decapsulate(buf, off, len, ctxB));
    return checkDecapResult(r, bytes.length);
  }), { numRuns: 5000 });
  t.pass();
});

const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });

test('fuzz: decapsulate on mutated legitimate packets', (t) => {
  const seen = new Set<string>();
  fc.assert(fc.property(legitIpip, mutation, fc.integer({ min: -8, max: 8 }), ({ outer }, edits, dlen) => {
    const pkt = outer.slice();
    for (const [i, v] of edits) pkt[i % pkt.length] = v;
    const len = Math.max(0, Math.min(pkt.length, pkt.length + dlen));
    const r = guarded(t, pkt, len, 0, (buf, off, l) => decapsulate(buf, off, l, ctxB));
    seen.add(isDrop(r) ? DROP_NAMES[dropReason(r)]! : 'ok');
    if (!checkDecapResult(r, len)) return false;
    if (!isDrop(r)) {
      // What was accepted really is consistent.
      const check = placed(pkt, 0, 0);
      const ri = decapsulate(check.buf, check.off, len, ctxB);
      const iihl = (check.buf[ri]! & 15) * 4;
      return ri + innerLength(check.buf, ri) === check.off + len && checksumValid(check.buf, ri, iihl) &&
        ((readU32(check.buf, ri + 16) & ctxB.sliceMask) >>> 0) === ctxB.localSlice;
    }
    return true;
  }), { numRuns: 5000 });
  t.true(seen.size >= 8, `outcomes reached: ${[...seen].join(' ')}`);
});

test('fuzz: encapsulate on random bytes and mutated packets', (t) => {
  const seen = new Set<string>();
  const run = (pkt: Uint8Array, len: number): boolean => {
    const r = guarded(t, pkt, len, 20, (buf, off, l) => encapsulate(buf, off, l, ctxA));
    seen.add(isDrop(r) ? DROP_NAMES[dropReason(r)]! : 'ok');
    if (!checkEncapResult(r)) return false;
    // encapsulateHeader agrees: same bytes, 0 for the destination.
    const x = placed(pkt, 20, 0), y = placed(pkt, 20, 0);
    const rx = encapsulate(x.buf, x.off, len, ctxA), ry = encapsulateHeader(y.buf, y.off, len, ctxA);
    if (ry !== (isDrop(rx) ? rx : 0) || hex(x.buf) !== hex(y.buf)) return false;
    if (!isDrop(r)) {
      const c = placed(pkt, 20, 0);
      encapsulate(c.buf, c.off, len, ctxA);
      const o = c.off - 20;
      return checksumValid(c.buf, o, 20) && readU32(c.buf, o + 16) === r &&
        ipTotalLength(c.buf, o) - 20 === ipTotalLength(c.buf, c.off) && ipTotalLength(c.buf, c.off) <= len &&
        r === underlayHostOf(ctxA, readU32(c.buf, c.off + 16));
    }
    return true;
  };
  fc.assert(fc.property(fc.integer({ min: 0, max: 100 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), fc.boolean(), (bytes, plausible) => {
    if (plausible && bytes.length >= 20) { bytes[0] = 0x45; writeU16(bytes, 2, bytes.length); bytes[16] = 250; }
    return run(bytes, bytes.length);
  }), { numRuns: 5000 });
  // Destinations in B's slice, the local slice, slices mapping to the underlay
  // network and broadcast addresses, and outside the overlay; some TTLs 0.
  const dsts = fc.oneof(...[ctxB.localSlice, ctxA.localSlice, ip('250.0.0.0'), ip('250.255.255.0'), ip('10.1.2.0')].map(sliceAddr));
  fc.assert(fc.property(innerSpec(fc.nat().map((n) => n >>> 0), dsts), mutation, fc.integer({ min: -4, max: 8 }), (spec, edits, dlen) => {
    const pkt = ipv4Packet({ ...spec, ttl: spec.ttl % 8 === 0 ? 0 : spec.ttl });
    for (const [i, v] of edits) pkt[i % pkt.length] = v;
    return run(pkt, Math.max(0, Math.min(pkt.length, pkt.length + dlen)));
  }), { numRuns: 5000 });
  t.true(seen.size >= 7, `outcomes reached: ${[...seen].join(' ')}`);
});
