// The VXLAN Fan's packet code (src/dataplane/packet/vxlan.ts): the mapping
// of frames to underlay hosts as Ubuntu's patched vxlan driver does it, the
// validation of what arrives, the ICMP answer to frames too big for the fan,
// and the cutting of TCP super-frames. Table tests, properties and fuzzing
// over guarded buffers (nothing outside the frame is read or written).
import test from 'ava';
import fc from 'fast-check';
import { COUNTER_COUNT, DROP_COUNT, DROP_NAMES, Drop, Traffic, TRAFFIC_NAMES } from '../src/dataplane/counters.js';
import { makePacketContext, sliceOf } from '../src/dataplane/packet/context.js';
import { dropReason, isDrop } from '../src/dataplane/packet/encap.js';
import { checksumValid, readU32 } from '../src/dataplane/packet/ipv4.js';
import { segmentPayload, tcpSegmentCount } from '../src/dataplane/packet/tso.js';
import { fragmentChunk, fragmentCount, writeFragmentHeader } from '../src/dataplane/packet/fragment.js';
import {
  decapsulateFrame, encapsulateFrame, fragNeededFrame, lxdVni, makeVxlanContext, SEGMENT_PREFIX, vniOf, writeVxlanHeader,
  writeVxlanSegment, type VxlanContext,
} from '../src/dataplane/packet/vxlan.js';
import { defaultVni } from '../src/fan/encap.js';
import { GUARD, guarded, hex, inetChecksum, ip, ipv4Packet, placed } from './helpers/packets.js';
import { arpFrame, ethFrame, MAC_A, MAC_B, vxlanPacket } from './helpers/vxlan-packets.js';

const OVERLAY = { network: ip('250.0.0.0'), prefix: 8 };
const UNDERLAY = { network: ip('172.16.0.0'), prefix: 16 };
const HOST_A = ip('172.16.3.4'); // sender, slice 250.3.4.0/24
const HOST_B = ip('172.16.5.6'); // receiver, slice 250.5.6.0/24
const VNI = lxdVni(OVERLAY.network);
const ctxA = makeVxlanContext(makePacketContext(OVERLAY, UNDERLAY, HOST_A), VNI, 1450);
const ctxB = makeVxlanContext(makePacketContext(OVERLAY, UNDERLAY, HOST_B), VNI, 1450);

const OUT_REASONS = new Set<number>([Drop.OutNotIpv4, Drop.OutMalformed, Drop.OutNotOverlay, Drop.OutLocalSlice, Drop.OutBadUnderlay,
  Drop.OutUnmapped, Drop.OutTooBig]);
const IN_REASONS = new Set<number>([Drop.InTruncated, Drop.InVxlanHeader, Drop.InVni, Drop.InOuterSource, Drop.InInnerNotIpv4,
  Drop.InInnerMalformed, Drop.InInnerChecksum, Drop.InInnerDestination, Drop.InSpoofedSource, Drop.InEcnDrop, Drop.InArpMalformed]);

const name = (v: number): string => (isDrop(v) ? `drop ${DROP_NAMES[dropReason(v)]}` : `ok ${v}`);

/** Runs encapsulateFrame on a frame placed behind 8 bytes of headroom; returns the result, destination and TOS. */
function encap(frame: Uint8Array, ctx: VxlanContext = ctxA, len = frame.length, segmentTotal = 0): { r: number; dst: number; tos: number; header: string } {
  const { buf, off } = placed(frame, 8, 0);
  const dsts = new Uint32Array(1);
  const tos = new Uint8Array(1);
  const r = encapsulateFrame(buf, off, len, ctx, dsts, tos, 0, segmentTotal);
  return { r, dst: dsts[0]!, tos: tos[0]!, header: hex(buf.subarray(off - 8, off)) };
}

function decap(pkt: Uint8Array, src = HOST_A, outerTos = 0, ctx: VxlanContext = ctxB): number {
  const { buf, off, len } = placed(pkt, 0, 0);
  return decapsulateFrame(buf, off, len, src, outerTos, ctx);
}

const udp = new Uint8Array([0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]);
const ipAB = (over: Partial<Parameters<typeof ipv4Packet>[0]> = {}) => ipv4Packet({ src: ip('250.3.4.10'), dst: ip('250.5.6.7'), payload: udp, ...over });

// ---- constants ---------------------------------------------------------------

test('counters: the traffic counters follow the drop counters (the Traffic enum matches DROP_COUNT)', (t) => {
  t.is(Traffic.TxPackets, DROP_COUNT);
  t.is(COUNTER_COUNT, DROP_COUNT + TRAFFIC_NAMES.length);
  for (const n of ['out.unmapped', 'out.too-big', 'in.vxlan-header', 'in.vni', 'in.arp-malformed']) t.true(DROP_NAMES.includes(n as never), n);
});

test('VNI as LXD derives it: the overlay network address >> 8', (t) => {
  t.is(lxdVni(ip('240.0.0.0')), 15728640);
  t.is(defaultVni({ network: ip('240.0.0.0'), prefix: 8 }), 15728640);
  t.is(lxdVni(ip('250.0.0.0')), 0xfa0000);
  t.is(lxdVni(ip('100.64.0.0')), 0x644000);
  const b = new Uint8Array(8);
  writeVxlanHeader(b, 0, 15728640);
  t.is(hex(b), '08000000f0000000');
  t.is(vniOf(b, 0, 8), 15728640);
});

// ---- outbound ----------------------------------------------------------------

test('encapsulate: an IPv4 frame goes to the host of its inner destination, with the VXLAN header in front', (t) => {
  const e = encap(ethFrame(MAC_A, MAC_B, 0x0800, ipAB()));
  t.is(e.r, 0, name(e.r));
  t.is(e.dst, HOST_B);
  t.is(e.header, '08000000fa000000');
});

test('encapsulate: ARP requests and replies go to the host of the target address', (t) => {
  const req = encap(arpFrame(1, MAC_A, ip('250.3.4.10'), new Uint8Array(6), ip('250.5.6.7')));
  t.is(req.r, 0, name(req.r));
  t.is(req.dst, HOST_B);
  t.is(req.tos, 0);
  const reply = encap(arpFrame(2, MAC_A, ip('250.3.4.10'), MAC_B, ip('250.9.8.7')));
  t.is(reply.r, 0);
  t.is(reply.dst, ip('172.16.9.8'));
});

test('encapsulate: outer TOS is the inner ECN (CE as ECT(0)) with the DSCP copied', (t) => {
  for (const [inner, outer] of [[0x00, 0x00], [0x01, 0x01], [0x02, 0x02], [0x03, 0x02], [0xb9, 0xb9], [0xbb, 0xba]] as const) {
    t.is(encap(ethFrame(MAC_A, MAC_B, 0x0800, ipAB({ tos: inner }))).tos, outer, `inner tos ${inner}`);
  }
});

test('encapsulate: each outbound drop reason', (t) => {
  const f = (p: Uint8Array) => ethFrame(MAC_A, MAC_B, 0x0800, p);
  const cases: [string, Uint8Array, number][] = [
    ['too short for Ethernet', new Uint8Array(13), Drop.OutMalformed],
    ['IPv6', ethFrame(MAC_A, MAC_B, 0x86dd, new Uint8Array(40)), Drop.OutUnmapped],
    ['VLAN tag', ethFrame(MAC_A, MAC_B, 0x8100, new Uint8Array(40)), Drop.OutUnmapped],
    ['not version 4', f((() => { const p = ipAB(); p[0] = 0x65; return p; })()), Drop.OutNotIpv4],
    ['IHL past the end', f(ipAB().slice(0, 19)), Drop.OutMalformed],
    ['total length past the end', f((() => { const p = ipAB(); p[3] = p[3]! + 1; return p; })()), Drop.OutMalformed],
    ['not the overlay', f(ipAB({ dst: ip('10.1.2.3') })), Drop.OutNotOverlay],
    ['own slice', f(ipAB({ dst: ip('250.3.4.99') })), Drop.OutLocalSlice],
    ['maps to the underlay network', f(ipAB({ dst: ip('250.0.0.9') })), Drop.OutBadUnderlay],
    ['maps to the underlay broadcast', f(ipAB({ dst: ip('250.255.255.9') })), Drop.OutBadUnderlay],
    ['ARP for the own slice', arpFrame(1, MAC_A, ip('250.3.4.10'), new Uint8Array(6), ip('250.3.4.11')), Drop.OutLocalSlice],
    ['ARP for an IPv6 protocol', (() => { const a = arpFrame(1, MAC_A, ip('250.3.4.10'), new Uint8Array(6), ip('250.5.6.7')); a[16] = 0x86; return a; })(), Drop.OutMalformed],
    ['ARP too short', arpFrame(1, MAC_A, ip('250.3.4.10'), new Uint8Array(6), ip('250.5.6.7')).slice(0, 41), Drop.OutMalformed],
    ['DF and longer than the fan', f(ipAB({ payload: new Uint8Array(1431) })), Drop.OutTooBig],
  ];
  for (const [what, frame, reason] of cases) {
    const e = encap(frame);
    t.is(e.r, -1 - reason, `${what}: ${name(e.r)}`);
    t.is(e.header, '0000000000000000', `${what}: nothing written`);
  }
  // exactly the fan MTU fits; without DF a larger one is sent (the kernel fragments the datagram)
  t.is(encap(f(ipAB({ payload: new Uint8Array(1430) }))).r, 0);
  t.is(encap(f(ipAB({ payload: new Uint8Array(3000), df: false }))).r, 0);
  // a super-frame is judged by its segments
  t.is(encap(f(ipAB({ payload: new Uint8Array(3000) })), ctxA, undefined, 1440).r, 0);
  t.is(encap(f(ipAB({ payload: new Uint8Array(3000) })), ctxA, undefined, 1460).r, -1 - Drop.OutTooBig);
});

// ---- inbound -----------------------------------------------------------------

test('decapsulate: a VXLAN IPv4 frame is delivered whole, Ethernet padding left behind', (t) => {
  const frame = ethFrame(MAC_A, MAC_B, 0x0800, ipAB());
  t.is(decap(vxlanPacket(VNI, frame)), frame.length);
  const padded = new Uint8Array(60);
  padded.set(frame);
  t.is(decap(vxlanPacket(VNI, padded)), frame.length);
});

test('decapsulate: ARP requests and replies for this slice from the sender\'s slice', (t) => {
  const req = arpFrame(1, MAC_A, ip('250.3.4.10'), new Uint8Array(6), ip('250.5.6.7'));
  t.is(decap(vxlanPacket(VNI, req)), req.length);
  const reply = arpFrame(2, MAC_A, ip('250.3.4.10'), MAC_B, ip('250.5.6.7'));
  t.is(decap(vxlanPacket(VNI, reply)), reply.length);
});

test('decapsulate: each inbound drop reason', (t) => {
  const ok = ethFrame(MAC_A, MAC_B, 0x0800, ipAB());
  const v = (frame: Uint8Array) => vxlanPacket(VNI, frame);
  const mut = (p: Uint8Array, at: number, value: number) => { const q = p.slice(); q[at] = value; return q; };
  const arp = (op: number, sip: number, tip: number) => arpFrame(op, MAC_A, sip, new Uint8Array(6), tip);
  const cases: [string, Uint8Array, number, number?][] = [
    ['shorter than a VXLAN header', new Uint8Array(7), Drop.InTruncated],
    ['no Ethernet header', v(ok).slice(0, 8 + 13), Drop.InVxlanHeader],
    ['no I flag', mut(v(ok), 0, 0x00), Drop.InVxlanHeader],
    ['another flag', mut(v(ok), 0, 0x88), Drop.InVxlanHeader],
    ['reserved bits after the flags', mut(v(ok), 2, 0x01), Drop.InVxlanHeader],
    ['reserved byte after the VNI', mut(v(ok), 7, 0x01), Drop.InVxlanHeader],
    ['another VNI', vxlanPacket(VNI + 1, ok), Drop.InVni],
    ['multicast source MAC', v(mut(ok, 6, 0x01)), Drop.InInnerMalformed],
    ['IPv6', v(ethFrame(MAC_A, MAC_B, 0x86dd, new Uint8Array(40))), Drop.InInnerNotIpv4],
    ['IPv4 with version 6', v(mut(ok, 14, 0x65)), Drop.InInnerMalformed],
    ['IPv4 cut short', v(ok.slice(0, 14 + 19)), Drop.InInnerMalformed],
    ['IPv4 total length past the frame', v(mut(ok, 14 + 3, ok[14 + 3]! + 1)), Drop.InInnerMalformed],
    ['bad header checksum', v(mut(ok, 14 + 10, ok[14 + 10]! ^ 0xff)), Drop.InInnerChecksum],
    ['destination in another slice', v(ethFrame(MAC_A, MAC_B, 0x0800, ipAB({ dst: ip('250.9.9.9') }))), Drop.InInnerDestination],
    ['source outside the sender\'s slice', v(ethFrame(MAC_A, MAC_B, 0x0800, ipAB({ src: ip('250.7.7.7') }))), Drop.InSpoofedSource],
    ['ARP from another slice', v(arp(1, ip('250.7.7.7'), ip('250.5.6.7'))), Drop.InSpoofedSource],
    ['ARP probe (sender 0.0.0.0)', v(arp(1, 0, ip('250.5.6.7'))), Drop.InSpoofedSource],
    ['ARP for another slice', v(arp(1, ip('250.3.4.10'), ip('250.9.9.9'))), Drop.InInnerDestination],
    ['ARP operation 3', v(arp(3, ip('250.3.4.10'), ip('250.5.6.7'))), Drop.InArpMalformed],
    ['ARP cut short', v(arp(1, ip('250.3.4.10'), ip('250.5.6.7')).slice(0, 14 + 27)), Drop.InArpMalformed],
    ['ARP for IPv6', v(mut(arp(1, ip('250.3.4.10'), ip('250.5.6.7')), 16, 0x86)), Drop.InArpMalformed],
    ['outer source outside the underlay', v(ok), Drop.InOuterSource, ip('192.168.1.1')],
    ['outer source is this host', v(ok), Drop.InOuterSource, HOST_B],
    ['outer source is the underlay network', v(ok), Drop.InOuterSource, UNDERLAY.network],
    ['outer source is the underlay broadcast', v(ok), Drop.InOuterSource, ip('172.16.255.255')],
  ];
  for (const [what, pkt, reason, src] of cases) {
    const r = decap(pkt, src ?? HOST_A);
    t.is(r, -1 - reason, `${what}: ${name(r)}`);
  }
  // with the source check off, a foreign inner source passes (as the kernel Fan behaves)
  const lax = makeVxlanContext(makePacketContext(OVERLAY, UNDERLAY, HOST_B, false), VNI, 1450);
  t.true(decap(v(ethFrame(MAC_A, MAC_B, 0x0800, ipAB({ src: ip('250.7.7.7') }))), HOST_A, 0, lax) > 0);
});

test('decapsulate: RFC 6040 ECN from the outer TOS, as the IPIP path (unknown outer TOS: left alone)', (t) => {
  const cases: [number, number, number | 'drop'][] = [
    [0, 3, 'drop'], [2, 3, 3], [1, 3, 3], [3, 0, 3], [2, 1, 1], [1, 2, 1], [0, 1, 0], [2, 0, 2],
  ];
  for (const [inner, outer, want] of cases) {
    const { buf, off, len } = placed(vxlanPacket(VNI, ethFrame(MAC_A, MAC_B, 0x0800, ipAB({ tos: 0x20 | inner }))), 0, 0);
    const r = decapsulateFrame(buf, off, len, HOST_A, outer, ctxB);
    if (want === 'drop') { t.is(r, -1 - Drop.InEcnDrop); continue; }
    t.true(r > 0, name(r));
    t.is(buf[off + 8 + 14 + 1]! & 3, want, `inner ${inner} outer ${outer}`);
    t.true(checksumValid(buf, off + 8 + 14, 20));
  }
  const { buf, off, len } = placed(vxlanPacket(VNI, ethFrame(MAC_A, MAC_B, 0x0800, ipAB({ tos: 0 }))), 0, 0);
  t.true(decapsulateFrame(buf, off, len, HOST_A, -1, ctxB) > 0);
});

// ---- PMTU ---------------------------------------------------------------------

test('fragNeededFrame: ICMP fragmentation needed back to the sender, from the destination, quoting the packet', (t) => {
  const inner = ipAB({ payload: new Uint8Array(1500) });
  const frame = ethFrame(MAC_B, MAC_A, 0x0800, inner); // from A to B
  const out = new Uint8Array(400).fill(0xee);
  const n = fragNeededFrame(frame, 0, frame.length, 1450, out, 10);
  const f = out.subarray(10, 10 + n);
  t.is(hex(f.subarray(0, 6)), hex(MAC_A), 'to the sender\'s MAC');
  t.is(hex(f.subarray(6, 12)), hex(MAC_B));
  t.is(hex(f.subarray(12, 14)), '0800');
  const o = 14;
  t.true(checksumValid(f, o, 20));
  t.is(readU32(f, o + 12), ip('250.5.6.7'));
  t.is(readU32(f, o + 16), ip('250.3.4.10'));
  t.is(f[o + 9], 1);
  t.is((f[o + 2]! << 8) | f[o + 3]!, n - 14);
  const icmp = f.subarray(o + 20, n);
  t.is(icmp[0], 3);
  t.is(icmp[1], 4);
  t.is((icmp[6]! << 8) | icmp[7]!, 1450);
  t.is(inetChecksum(icmp), 0, 'ICMP checksum');
  t.is(hex(icmp.subarray(8, 8 + 28)), hex(inner.subarray(0, 28)), 'quotes the IPv4 header and what follows');
  t.is(out[9], 0xee);
  t.is(out[10 + n], 0xee, 'nothing past the frame written');
});

// ---- TSO ------------------------------------------------------------------------

test('writeVxlanSegment: segments carry VXLAN + the frame\'s Ethernet header + a segment each; the payloads join to the original', (t) => {
  const payload = new Uint8Array(5000).map((_, i) => (i * 13) & 255);
  const tcp = new Uint8Array(20 + payload.length);
  tcp[12] = 0x50; tcp[13] = 0x18; tcp.set(payload, 20);
  const frame = ethFrame(MAC_A, MAC_B, 0x0800, ipv4Packet({ src: ip('250.3.4.10'), dst: ip('250.5.6.7'), proto: 6, payload: tcp }));
  const buf = new Uint8Array(frame.length + 10 * 200);
  buf.set(frame);
  const mss = 1400;
  const count = tcpSegmentCount(buf, 14, frame.length - 14, mss);
  t.is(count, 4);
  const joined: number[] = [];
  for (let k = 0; k < count; k++) {
    const h = frame.length + k * 200;
    const hl = writeVxlanSegment(buf, 0, frame.length, mss, k, count, h, VNI);
    t.is(hl, SEGMENT_PREFIX + 40);
    t.is(vniOf(buf, h, hl), VNI);
    t.is(hex(buf.subarray(h + 8, h + 22)), hex(frame.subarray(0, 14)));
    t.true(checksumValid(buf, h + 22, 20));
    const p = segmentPayload(buf, 14, frame.length - 14, mss, k);
    const n = ((buf[h + 24]! << 8) | buf[h + 25]!) - 40;
    t.is(n, k < count - 1 ? mss : 5000 - 3 * mss);
    joined.push(...buf.subarray(p, p + n));
  }
  t.is(hex(Uint8Array.from(joined)), hex(payload));
});

// ---- properties and fuzzing -------------------------------------------------------

const hostOfUnderlay = fc.integer({ min: 1, max: 0xfffe }).map((h) => (UNDERLAY.network | h) >>> 0).filter((h) => h !== HOST_B);
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((m) => { m[0] = m[0]! & 0xfe; return m; });

/** A legitimate VXLAN packet for B: IPv4 (ECN outside the drop cell) or ARP, from some host's slice. */
const legit = fc.record({
  host: hostOfUnderlay,
  src: mac, dst: mac,
  arp: fc.boolean(),
  op: fc.constantFrom(1, 2),
  tos: fc.integer({ min: 0, max: 255 }),
  hostByte: fc.integer({ min: 0, max: 255 }),
  dstByte: fc.integer({ min: 0, max: 255 }),
  payload: fc.integer({ min: 0, max: 80 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  outerTos: fc.integer({ min: 0, max: 255 }),
}).map((r) => {
  const sip = (sliceOf(ctxB, r.host) | r.hostByte) >>> 0;
  const tip = (ctxB.localSlice | r.dstByte) >>> 0;
  const frame = r.arp ? arpFrame(r.op, r.src, sip, r.dst, tip)
    : ethFrame(r.dst, r.src, 0x0800, ipv4Packet({ src: sip, dst: tip, tos: r.tos, payload: r.payload }));
  const outerTos = (r.tos & 3) === 0 && (r.outerTos & 3) === 3 ? r.outerTos & 0xfe : r.outerTos;
  return { host: r.host, frame, pkt: vxlanPacket(VNI, frame), outerTos };
});

test('property: decapsulate accepts every legitimate VXLAN packet and hands back its frame', (t) => {
  fc.assert(fc.property(legit, ({ host, frame, pkt, outerTos }) => {
    const { buf, off, len } = placed(pkt, 0, 0);
    const r = decapsulateFrame(buf, off, len, host, outerTos, ctxB);
    if (r !== frame.length) return false;
    for (let i = 0; i < frame.length; i++) {
      // only the ECN bits and the header checksum of an IPv4 packet may change
      if (frame[12] === 0x08 && frame[13] === 0 && (i === 15 || i === 24 || i === 25)) continue;
      if (buf[off + 8 + i] !== frame[i]) return false;
    }
    return true;
  }), { numRuns: 3000 });
  t.pass();
});

test('property: round trip, frames encapsulated on A are accepted on B', (t) => {
  fc.assert(fc.property(legit, ({ frame }) => {
    // the same frame sent by A: its sender lives in A's slice
    const f = frame.slice();
    if (f[12] === 0x08 && f[13] === 0x06) f.set([250, 3, 4, 9], 14 + 14);
    else { f.set([250, 3, 4, 9], 14 + 12); f[24] = 0; f[25] = 0; const c = inetChecksum(f.subarray(14, 34)); f[24] = c >>> 8; f[25] = c & 255; }
    const e = placed(f, 8, 0);
    const dsts = new Uint32Array(1); const tos = new Uint8Array(1);
    if (encapsulateFrame(e.buf, e.off, e.len, ctxA, dsts, tos, 0) !== 0 || dsts[0] !== HOST_B) return false;
    const wire = e.buf.slice(e.off - 8, e.off + e.len);
    const rx = placed(wire, 0, 0);
    return decapsulateFrame(rx.buf, rx.off, rx.len, HOST_A, tos[0]!, ctxB) > 0;
  }), { numRuns: 2000 });
  t.pass();
});

const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });

test('fuzz: decapsulate on random bytes and on mutated legitimate packets', (t) => {
  const seen = new Set<string>();
  const check = (pkt: Uint8Array, len: number, src: number, tos: number): boolean => {
    const r = guarded(t, pkt, len, 0, (buf, off, l) => decapsulateFrame(buf, off, l, src, tos, ctxB));
    seen.add(isDrop(r) ? DROP_NAMES[dropReason(r)]! : 'ok');
    if (isDrop(r)) return IN_REASONS.has(dropReason(r));
    return Number.isInteger(r) && r >= 14 && r <= len - 8;
  };
  fc.assert(fc.property(fc.integer({ min: 0, max: 120 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), fc.boolean(), (bytes, plausible) => {
    if (plausible && bytes.length >= 8) { bytes.set([8, 0, 0, 0, 0xfa, 0, 0, 0]); }
    return check(bytes, bytes.length, HOST_A, 0);
  }), { numRuns: 5000 });
  fc.assert(fc.property(legit, mutation, fc.integer({ min: -8, max: 8 }), ({ host, pkt, outerTos }, edits, dlen) => {
    const p = pkt.slice();
    for (const [i, v] of edits) p[i % p.length] = v;
    return check(p, Math.max(0, Math.min(p.length, p.length + dlen)), host, outerTos);
  }), { numRuns: 5000 });
  t.true(seen.size >= 9, `outcomes reached: ${[...seen].join(' ')}`);
});

test('fuzz: encapsulate on random bytes and mutated frames', (t) => {
  const seen = new Set<string>();
  const run = (pkt: Uint8Array, len: number): boolean => {
    const dsts = new Uint32Array(1); const tos = new Uint8Array(1);
    const r = guarded(t, pkt, len, 8, (buf, off, l) => encapsulateFrame(buf, off, l, ctxA, dsts, tos, 0));
    seen.add(isDrop(r) ? DROP_NAMES[dropReason(r)]! : 'ok');
    if (isDrop(r)) return OUT_REASONS.has(dropReason(r));
    const d = dsts[0]!;
    return r === 0 && ((d & 0xffff0000) >>> 0) === UNDERLAY.network && d !== HOST_A && (d & 0xffff) !== 0 && (d & 0xffff) !== 0xffff;
  };
  // Random frames, some made IPv4 or ARP toward the overlay, aimed (the
  // destination's middle octets) at nothing in particular, this host's own
  // slice (3.4) or hosts the underlay has no address for (0.0, 255.255): so
  // that every run reaches those outcomes, not only a lucky one.
  const aims = [undefined, [3, 4], [0, 0], [255, 255]] as const;
  fc.assert(fc.property(fc.integer({ min: 0, max: 100 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), fc.constantFrom(0, 1, 2), fc.constantFrom(0, 1, 2, 3), (bytes, kind, aim) => {
    const to = aims[aim];
    if (bytes.length >= 34 && kind === 1) {
      bytes[12] = 8; bytes[13] = 0; bytes[14] = 0x45; bytes[30] = 250;
      if (to) { bytes[16] = (bytes.length - 14) >>> 8; bytes[17] = (bytes.length - 14) & 255; bytes[31] = to[0]; bytes[32] = to[1]; }
    }
    if (bytes.length >= 42 && kind === 2) {
      bytes.set([8, 6, 0, 1, 8, 0, 6, 4], 12); bytes[38] = 250;
      if (to) { bytes[20] = 0; bytes[21] = 1; bytes[39] = to[0]; bytes[40] = to[1]; }
    }
    return run(bytes, bytes.length);
  }), { numRuns: 5000 });
  fc.assert(fc.property(legit, mutation, fc.integer({ min: -4, max: 8 }), ({ frame }, edits, dlen) => {
    const p = frame.slice();
    for (const [i, v] of edits) p[i % p.length] = v;
    return run(p, Math.max(0, Math.min(p.length, p.length + dlen)));
  }), { numRuns: 5000 });
  t.true(seen.size >= 7 && seen.has('out.local-slice') && seen.has('out.bad-underlay'), `outcomes reached: ${[...seen].join(' ')}`);
});

test('GUARD is the helpers\' (placed) guard', (t) => {
  t.is(GUARD, 32);
});

// ---- fragmentation (packet/fragment.ts) -------------------------------------------

test('fragments: a 3000-byte IPv4 datagram without DF cut to a 1450 fan; the pieces reassemble to it', (t) => {
  const payload = new Uint8Array(2980).map((_, i) => (i * 31) & 255);
  const p = ipAB({ payload, df: false, id: 0x4242 });
  t.is(fragmentCount(p, 0, p.length, 1450), 3);
  t.is(fragmentChunk(1450), 1424);
  t.is(fragmentCount(ipAB({ payload })/* DF */, 0, 3000, 1450), 0);
  t.is(fragmentCount(ipAB({ df: false }), 0, 40, 1450), 0, 'fits');
  t.is(fragmentCount(ipv4Packet({ src: 1, dst: 2, df: false, options: new Uint8Array(4), payload }), 0, 3004, 1450), 0, 'IP options are not cut');
  const joined: number[] = [];
  const out = new Uint8Array(20);
  for (let k = 0; k < 3; k++) {
    const n = writeFragmentHeader(p, 0, 1450, k, 3, out, 0);
    t.true(checksumValid(out, 0, 20));
    t.is((out[2]! << 8) | out[3]!, 20 + n);
    const word = (out[6]! << 8) | out[7]!;
    t.is(word & 0x1fff, k * 1424 / 8);
    t.is((word & 0x2000) !== 0, k < 2, `MF of fragment ${k}`);
    t.is(word & 0x4000, 0);
    t.is((out[4]! << 8) | out[5]!, 0x4242);
    joined.push(...p.subarray(20 + k * 1424, 20 + k * 1424 + n));
  }
  t.is(hex(Uint8Array.from(joined)), hex(payload));
});

test('fragments: cutting a fragment keeps its offset and its MF', (t) => {
  const p = ipAB({ payload: new Uint8Array(2000), fragWord: 0x2000 | 100 });
  const out = new Uint8Array(20);
  t.is(fragmentCount(p, 0, p.length, 1450), 2);
  writeFragmentHeader(p, 0, 1450, 1, 2, out, 0);
  t.is((out[6]! << 8) | out[7]!, 0x2000 | (100 + 178));
});
