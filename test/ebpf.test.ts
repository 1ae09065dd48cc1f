// The ebpf dataplane's pieces, against the real kernel where there is one:
// the object and its loader, the layout both sides share, and the ingress
// program itself, run on packets with BPF_PROG_TEST_RUN and compared with
// what the userspace dataplane's decapsulate() (decap.ts) decides for the
// same bytes. Needs root (CAP_BPF): without it these fail, naming why.
import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { native } from '../src/native/index.js';
import { BpfObjectError, parseBpfObject, relocate } from '../src/dataplane/ebpf/elf.js';
import { FanBpf } from '../src/dataplane/ebpf/maps.js';
import { fanObjectPath } from '../src/dataplane/ebpf/loader.js';
import { COUNTER_NAMES, encodeConfig, parseCpuList, sumCounters, COUNTERS_SIZE, type FanConfig } from '../src/dataplane/ebpf/layout.js';
import { probeEbpf } from '../src/dataplane/ebpf/index.js';
import { UNIT_CAPABILITIES } from '../src/cli/install-service.js';
import { readTcSources, tcMissing } from '../src/dataplane/ebpf/probe.js';
import { DROP_NAMES } from '../src/dataplane/counters.js';
import { COUNTERS, DROP_REASONS, dropReasonOf } from '../src/dataplane/counter-names.js';
import { makePacketContext } from '../src/dataplane/packet/context.js';
import { decapsulate, isDrop, dropReason } from '../src/dataplane/packet/decap.js';
import { checksumValid, ipv4HeaderChecksum, readU32, writeU16 } from '../src/dataplane/packet/ipv4.js';
import { hex, ip, ipipPacket, ipv4Packet } from './helpers/packets.js';

const FAN_H = fileURLToPath(new URL('../../bpf/fan.h', import.meta.url));

test('the counters of bpf/fan.h are named as every dataplane names them (counter-names.ts)', (t) => {
  const list = [...readFileSync(FAN_H, 'utf8').matchAll(/^\s*X\((\w+), "([^"]+)"\)/gm)].map((m) => m[2]!);
  t.deepEqual(list, COUNTER_NAMES.map((n) => n.replace(/^drop\./, '')));
  for (const key of COUNTER_NAMES) {
    const reason = dropReasonOf(key);
    // a drop is one of the userspace dataplane's reasons, described once; anything else has its metric
    if (reason !== undefined) t.true((DROP_NAMES as readonly string[]).includes(reason) && DROP_REASONS[reason] !== undefined, key);
    else t.truthy(COUNTERS[key], `${key} has no metric in counter-names.ts`);
  }
  // the IPIP drops, in the userspace dataplane's order
  t.deepEqual(COUNTER_NAMES.filter((k) => k.startsWith('drop.')), DROP_NAMES.slice(0, 19).map((n) => `drop.${n}`));
});

test('the committed object holds the two programs and the maps fand creates; relocation patches the map fds', (t) => {
  const obj = parseBpfObject(readFileSync(fanObjectPath()));
  t.deepEqual(obj.programs.map((p) => [p.name, p.section]), [['fand_egress', 'tc/egress'], ['fand_ingress', 'tc/ingress']]);
  t.deepEqual(obj.maps.map((m) => m.name).sort(), ['fand_config', 'fand_counters', 'fand_locals', 'fand_overlays', 'fand_ports', 'fand_tuns']);
  t.is(obj.license, 'Dual MIT/GPL');
  const ingress = obj.programs.find((p) => p.name === 'fand_ingress')!;
  const fds = new Map(obj.maps.map((m, i) => [m.name, 100 + i]));
  const out = relocate(ingress, fds);
  t.is(out.length, ingress.insns.length);
  for (const r of ingress.mapRefs) {
    t.is(out[r.offset], 0x18, 'ld_imm64');
    t.is(out[r.offset + 1]! >> 4, 1, 'src_reg BPF_PSEUDO_MAP_FD');
    t.is(new DataView(out.buffer).getInt32(r.offset + 4, true), fds.get(r.map)!);
  }
  // everything else is the object's own bytes
  const patched = new Set(ingress.mapRefs.flatMap((r) => [1, 4, 5, 6, 7].map((k) => r.offset + k)));
  t.true([...out].every((b, i) => patched.has(i) || b === ingress.insns[i]));
  t.throws(() => relocate(ingress, new Map()), { instanceOf: BpfObjectError, message: /uses map fand_\w+, which was not created/ });
});

test('fuzz: the object reader refuses damaged objects with a reason and nothing else', (t) => {
  const good = new Uint8Array(readFileSync(fanObjectPath()));
  let refused = 0;
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(), (edits, cut) => {
    const b = good.slice(0, cut % 3 === 0 ? good.length : cut % good.length);
    for (const [i, v] of edits) if (b.length) b[i % b.length] = v;
    try {
      parseBpfObject(b);
    } catch (e) {
      if (!(e instanceof BpfObjectError)) throw e;
      refused++;
    }
    return true;
  }), { numRuns: 3000 });
  t.true(refused > 100, `refused ${refused}`);
});

test('layout: the CPU list, the config and the per-CPU counter sums', (t) => {
  t.is(parseCpuList('0-1\n'), 2);
  t.is(parseCpuList('0,2-5'), 6);
  t.throws(() => parseCpuList('zero'), { instanceOf: RangeError });
  const fan: FanConfig = {
    slot: 3, overlay: { network: ip('250.0.0.0'), prefix: 8 }, underlay: { network: ip('172.16.0.0'), prefix: 16 }, localUnderlay: ip('172.16.5.6'),
    tunIfindex: 7, underlayIfindex: 2, checkInnerSource: true, redirectPorts: false,
  };
  const c = encodeConfig([fan]);
  const v = new DataView(c.buffer);
  t.is(v.getUint32(0, true), 0xfa4e0001);
  t.is(v.getUint32(4, true), 4);
  const row = 8 + 3 * 48;
  t.deepEqual(Array.from({ length: 12 }, (_, i) => v.getUint32(row + 4 * i, true)),
    [1 | 2, 7, ip('250.0.0.0'), ip('255.0.0.0'), ip('172.16.0.0'), ip('255.255.0.0'), ip('255.255.255.0'), 8, 0xffff, ip('172.16.5.6'), ip('250.5.6.0'), 2]);
  t.throws(() => encodeConfig([fan, { ...fan }]), { message: /distinct/ });
  t.throws(() => encodeConfig([{ ...fan, slot: 16 }]), { message: /slots must be 0..15/ });
  const per = new Uint8Array(((COUNTERS_SIZE + 7) & ~7) * 2);
  const pv = new DataView(per.buffer);
  pv.setBigUint64(8 * COUNTER_NAMES.indexOf('rx.packets'), 5n, true);
  pv.setBigUint64(((COUNTERS_SIZE + 7) & ~7) + 8 * COUNTER_NAMES.indexOf('rx.packets'), 7n, true);
  t.is(sumCounters(per, 2)['rx.packets'], 12);
});

test('the kernel verifies both programs with the unit\'s capabilities; without CAP_BPF the probe says why in its own words', async (t) => {
  t.is(probeEbpf(release()), undefined);
  t.regex(probeEbpf('5.4.0') ?? '', /kernel 5\.4\.0 is older than 5\.10/);
  // The probe as an unprivileged process sees the kernel refuse the first bpf() call.
  const { execFile } = await import('node:child_process');
  const script = `import('${fileURLToPath(new URL('../src/dataplane/ebpf/index.js', import.meta.url))}').then((m) => process.stdout.write(String(m.probeEbpf('${release()}'))))`;
  const out = await new Promise<string>((resolve, reject) => execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '-e', script],
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout))));
  t.regex(out, /^bpf\(BPF_(MAP_CREATE|PROG_LOAD)\): Operation not permitted \(EPERM\): needs CAP_BPF/);
  // With exactly the systemd unit's capabilities (systemd/fand.service: no CAP_SYS_ADMIN, no
  // CAP_PERFMON, whose absence makes the verifier stricter) the programs load; without CAP_BPF not.
  const asRootWith = (caps: string) => new Promise<string>((resolve, reject) => execFile('setpriv', [`--bounding-set=-all,${caps}`, '--inh-caps=-all', '--', process.execPath, '-e', script],
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout))));
  const unit = UNIT_CAPABILITIES.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
  t.true(unit.includes('+bpf'));
  t.is(await asRootWith(unit.join(',')), 'undefined');
  t.regex(await asRootWith(unit.filter((c) => c !== '+bpf').join(',')), /^bpf\(BPF_(MAP_CREATE|PROG_LOAD)\): Operation not permitted \(EPERM\): needs CAP_BPF/);
});

// ---------------------------------------------------------------------------
// The ingress program on packets (BPF_PROG_TEST_RUN runs it on a frame as tc
// ingress would see it: from the Ethernet header, skb->protocol from it).

const TC_ACT_UNSPEC = -1;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const UNDERLAY = { network: ip('172.16.0.0'), prefix: 16 };
const HOST_B = ip('172.16.5.6');
// Two fans on one underlay address, as test/multifan has: 250/8 (slot 0) and 10/8 (slot 1).
const FANS: FanConfig[] = [
  { slot: 0, overlay: { network: ip('250.0.0.0'), prefix: 8 }, underlay: UNDERLAY, localUnderlay: HOST_B, tunIfindex: 901, underlayIfindex: 902, checkInnerSource: true, redirectPorts: true },
  { slot: 1, overlay: { network: ip('10.0.0.0'), prefix: 8 }, underlay: UNDERLAY, localUnderlay: HOST_B, tunIfindex: 903, underlayIfindex: 902, checkInnerSource: true, redirectPorts: true },
];
const CTX = FANS.map((f) => makePacketContext(f.overlay, f.underlay, f.localUnderlay, f.checkInnerSource));
const PORTS = new Map([
  [ip('250.5.6.7'), { ifindex: 911, mtu: 1480, peer: true, mac: '02:00:00:00:00:07', bridgeMac: '02:00:00:00:00:01' }],
  [ip('250.5.6.8'), { ifindex: 912, mtu: 100, peer: false, mac: '02:00:00:00:00:08', bridgeMac: '02:00:00:00:00:01' }],
]);
const macBytes = (m: string) => Uint8Array.from(m.split(':').map((x) => parseInt(x, 16)));

let bpf: FanBpf | undefined;
function loaded(): FanBpf {
  if (!bpf) {
    bpf = FanBpf.load();
    bpf.writeConfig(FANS);
    for (const [a, p] of PORTS) bpf.setPort(a, p);
  }
  return bpf;
}
test.after.always(() => bpf?.close());

interface Outcome { ret: number; out: string; counts: Record<string, number> }

function countsOf(b: FanBpf): Record<string, number>[] {
  return FANS.map((f) => b.counters(f.slot));
}

/**
 * BPF_PROG_TEST_RUN refuses an IPv4 frame shorter than an IPv4 header
 * (EINVAL); on a wire such a frame is padded to 60 bytes anyway.
 */
const runnable = (f: Uint8Array) => f.length >= 34 || f[12] !== 0x08 || f[13] !== 0x00;

function runIngress(frame: Uint8Array): Outcome {
  const b = loaded();
  const before = countsOf(b);
  const out = new Uint8Array(frame.length + 64);
  const res = new Int32Array(3);
  native.bpfProgTestRun(b.programs.ingress, frame, out, new Uint8Array(0), 1, res);
  const after = countsOf(b);
  const counts: Record<string, number> = {};
  after.forEach((row, slot) => {
    for (const [k, v] of Object.entries(row)) if (v !== before[slot]![k]) counts[`${slot}:${k}`] = v - before[slot]![k]!;
  });
  return { ret: res[0]!, out: res[0] === TC_ACT_REDIRECT ? hex(out.subarray(0, res[1]!)) : '', counts };
}

/**
 * What the ingress program must do with `frame`, from decap.ts and the rules
 * the stack applies before a raw socket sees a packet (bpf/fan.bpf.c).
 */
function model(frame: Uint8Array): Outcome {
  const none: Outcome = { ret: TC_ACT_UNSPEC, out: '', counts: {} };
  if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) return none;
  const o = 14;
  if (frame[o + 9] !== 4 || readU32(frame, o + 16) !== HOST_B) return none;
  const plen = frame.length - 14;
  const tot = (frame[o + 2]! << 8) | frame[o + 3]!;
  const len = tot >= 20 && tot <= plen ? tot : plen;
  const slot = len >= 40 && ((readU32(frame, o + 36) & 0xff000000) >>> 0) === ip('10.0.0.0') ? 1 : 0;
  const drop = (reason: string): Outcome => ({ ret: TC_ACT_SHOT, out: '', counts: { [`${slot}:drop.${reason}`]: 1, [`${slot}:in.received`]: 1 } });
  if (len < 40) return drop('in.truncated');
  const oihl = (frame[o]! & 15) * 4;
  if (frame[o]! >> 4 !== 4 || oihl < 20 || oihl + 20 > len || tot !== len) return drop('in.outer-malformed');
  if (oihl !== 20 || (((frame[o + 6]! << 8) | frame[o + 7]!) & 0x3fff) !== 0) return { ret: TC_ACT_OK, out: '', counts: { [`${slot}:slow-path.in`]: 1 } };
  if (!checksumValid(frame, o, 20)) return drop('in.outer-malformed');
  const buf = frame.slice(o, o + len);
  const r = decapsulate(buf, 0, len, CTX[slot]!);
  // Inner options: once the inner header is known well-formed, the program hands the packet to
  // the slow path (the checksum of a variable-length header is not read in the kernel).
  const early = ['in.outer-source', 'in.inner-not-ipv4', 'in.inner-malformed'];
  if ((buf[20]! & 15) !== 5 && !(isDrop(r) && early.includes(DROP_NAMES[dropReason(r)]!))) return { ret: TC_ACT_OK, out: '', counts: { [`${slot}:slow-path.in`]: 1 } };
  if (isDrop(r)) return drop(DROP_NAMES[dropReason(r)]!);
  const inner = buf.slice(r);
  const counts: Record<string, number> = { [`${slot}:in.received`]: 1, [`${slot}:rx.packets`]: 1, [`${slot}:rx.bytes`]: inner.length };
  const eth = frame.slice(0, 14);
  const port = slot === 0 ? PORTS.get(readU32(inner, 16)) : undefined;
  if (port && inner[8]! > 1 && inner.length <= port.mtu) {
    eth.set(macBytes(port.mac), 0);
    eth.set(macBytes(port.bridgeMac), 6);
    inner[8] = inner[8]! - 1;
    writeU16(inner, 10, 0);
    writeU16(inner, 10, ipv4HeaderChecksum(inner, 0, (inner[0]! & 15) * 4));
    counts[`${slot}:rx.direct`] = 1;
  }
  return { ret: TC_ACT_REDIRECT, out: hex(eth) + hex(inner) + hex(frame.subarray(14 + len)), counts };
}

const frameOf = (pkt: Uint8Array, padding = 0, ethertype = 0x0800): Uint8Array => {
  const f = new Uint8Array(14 + pkt.length + padding);
  f.set([2, 0, 0, 0, 5, 6, 2, 0, 0, 0, 3, 4], 0);
  writeU16(f, 12, ethertype);
  f.set(pkt, 14);
  return f;
};

/** The checksum of a directly delivered packet is the kernel's incremental one: compare it by validity. */
function sameOutcome(t: { deepEqual(a: unknown, b: unknown, m?: string): void }, got: Outcome, want: Outcome, what: string): boolean {
  const strip = (o: Outcome) => ({
    ret: o.ret,
    out: o.out.length >= 2 * 34 ? o.out.slice(0, 2 * 24) + o.out.slice(2 * 26) : o.out,
    counts: Object.fromEntries(Object.entries(o.counts).sort(([a], [b]) => (a < b ? -1 : 1))),
  });
  const ok = JSON.stringify(strip(got)) === JSON.stringify(strip(want));
  if (!ok) t.deepEqual(got, want, what);
  if (ok && got.out.length >= 2 * 34) {
    const inner = Buffer.from(got.out.slice(28), 'hex');
    if (!checksumValid(inner, 0, (inner[0]! & 15) * 4)) { t.deepEqual(got.out, want.out, `${what}: inner checksum wrong`); return false; }
  }
  return ok;
}

const otherHost = fc.integer({ min: 1, max: 0xfffe }).map((h) => (UNDERLAY.network | h) >>> 0).filter((h) => h !== HOST_B);
const sliceOfHost = (overlay: number, h: number) => (overlay | ((h & 0xffff) << 8)) >>> 0;

/** IPIP for B from an underlay host, for either fan, ECN and TTL anything, options sometimes. */
const ipip = fc.record({
  host: otherHost,
  overlay: fc.constantFrom(ip('250.0.0.0'), ip('10.0.0.0')),
  // .7 and .8 have ports in the map (straight in, and too small an MTU): often
  dstHost: fc.oneof(fc.constantFrom(7, 8), fc.integer({ min: 0, max: 255 })),
  srcHost: fc.integer({ min: 0, max: 255 }),
  tos: fc.integer({ min: 0, max: 255 }),
  outerTos: fc.integer({ min: 0, max: 255 }),
  ttl: fc.integer({ min: 0, max: 255 }),
  proto: fc.constantFrom(1, 6, 17, 47),
  payload: fc.integer({ min: 0, max: 1500 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  innerOptions: fc.constantFrom(0, 0, 0, 4, 40).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  outerOptions: fc.constantFrom(0, 0, 0, 0, 8).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  fragWord: fc.constantFrom(0x4000, 0x4000, 0, 0x2000, 0x0010),
  padding: fc.constantFrom(0, 0, 0, 6),
  // 0-5 honest; then an inner source of another host's slice, an inner destination in another
  // host's slice, an outer source outside the underlay, this host, the underlay's broadcast address
  lie: fc.integer({ min: 0, max: 10 }),
}).map((s) => {
  const inner = ipv4Packet({
    src: (s.lie === 6 ? sliceOfHost(s.overlay, s.host ^ 1) : sliceOfHost(s.overlay, s.host)) | s.srcHost,
    dst: (s.lie === 7 ? sliceOfHost(s.overlay, ip('172.16.5.7')) : s.overlay === ip('250.0.0.0') ? ip('250.5.6.0') : ip('10.5.6.0')) | s.dstHost,
    tos: s.tos, ttl: s.ttl, proto: s.proto, options: s.innerOptions, payload: s.payload,
  });
  const src = s.lie === 8 ? ip('192.168.1.1') : s.lie === 9 ? HOST_B : s.lie === 10 ? ip('172.16.255.255') : s.host;
  const outer = ipv4Packet({ src, dst: HOST_B, tos: s.outerTos, proto: 4, ttl: 64, fragWord: s.fragWord, id: 7, options: s.outerOptions, payload: inner });
  return { outer, padding: s.padding };
});

test('ingress program = decap.ts: IPIP for two fans from honest and lying hosts, with ECN, TTL, options, fragments, padding', (t) => {
  const seen = new Set<string>();
  fc.assert(fc.property(ipip, ({ outer, padding }) => {
    if (outer.length + padding + 14 > 3000) return true;
    const f = frameOf(outer, padding);
    const want = model(f);
    seen.add(`${want.ret} ${Object.keys(want.counts).sort().join(',')}`);
    return sameOutcome(t, runIngress(f), want, hex(f));
  }), { numRuns: 1500 });
  t.log([...seen].join('\n'));
  for (const outcome of ['0:rx.direct', '1:rx.packets', 'slow-path.in', 'drop.in.spoofed-source', 'drop.in.inner-destination', 'drop.in.outer-source', 'drop.in.ecn-drop']) {
    t.true([...seen].some((s) => s.includes(outcome)), `never reached ${outcome}`);
  }
});

const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });

test('fuzz: ingress program = decap.ts on mutated and truncated packets, and on junk', (t) => {
  const seen = new Set<string>();
  fc.assert(fc.property(ipip, mutation, fc.integer({ min: -30, max: 4 }), ({ outer }, edits, dlen) => {
    const pkt = outer.slice(0, Math.max(0, Math.min(outer.length, outer.length + dlen)));
    // edits land in the first 60 bytes (the headers) most of the time
    for (const [i, v] of edits) if (pkt.length) pkt[(i % 3 === 0 ? i : i % 60) % pkt.length] = v;
    const f = frameOf(pkt);
    if (!runnable(f)) return true;
    const want = model(f);
    seen.add(Object.keys(want.counts).filter((k) => k.includes('drop')).join(',') || String(want.ret));
    return sameOutcome(t, runIngress(f), want, hex(f));
  }), { numRuns: 3000 });
  fc.assert(fc.property(fc.integer({ min: 0, max: 200 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), fc.boolean(), (bytes, plausible) => {
    if (plausible && bytes.length >= 20) { bytes[0] = 0x45; bytes[9] = 4; writeU16(bytes, 2, bytes.length); bytes.set([172, 16, 5, 6], 16); }
    const f = frameOf(bytes);
    return !runnable(f) || sameOutcome(t, runIngress(f), model(f), hex(f));
  }), { numRuns: 2000 });
  t.log([...seen].sort().join('\n'));
  t.true(seen.size >= 10, `outcomes reached: ${[...seen].join(' ')}`);
});

test('ingress program: other traffic passes untouched to the next filter', (t) => {
  const inner = ipv4Packet({ src: ip('250.1.2.3'), dst: ip('250.5.6.7'), payload: new Uint8Array(8) });
  const cases: [string, Uint8Array][] = [
    ['IPv6 ethertype', frameOf(ipipPacket(ip('172.16.1.2'), HOST_B, inner), 0, 0x86dd)],
    ['ARP', frameOf(new Uint8Array(28), 0, 0x0806)],
    ['UDP for this host', frameOf(ipv4Packet({ src: ip('172.16.1.2'), dst: HOST_B, payload: new Uint8Array(20) }))],
    ['IPIP for another address on the link', frameOf(ipipPacket(ip('172.16.1.2'), ip('172.16.5.7'), inner))],
  ];
  for (const [what, f] of cases) t.deepEqual(runIngress(f), { ret: TC_ACT_UNSPEC, out: '', counts: {} }, what);
});

test('the probe reads clsact and cls_bpf from the kernel\'s configuration or modules, and says which is missing', (t) => {
  const src = (config: string | undefined, o: { loaded?: string[]; available?: string[]; builtin?: string[] } = {}) =>
    ({ config, loaded: new Set(o.loaded ?? []), available: new Set(o.available ?? []), builtin: new Set(o.builtin ?? []) });
  t.is(tcMissing(src('CONFIG_NET_SCH_INGRESS=y\nCONFIG_NET_CLS_BPF=y\n')), undefined);
  t.is(tcMissing(src('CONFIG_NET_SCH_INGRESS=m\nCONFIG_NET_CLS_BPF=m\n', { available: ['sch_ingress', 'cls_bpf'] })), undefined);
  t.is(tcMissing(src('CONFIG_NET_SCH_INGRESS=m\nCONFIG_NET_CLS_BPF=y\n', { loaded: ['sch_ingress'] })), undefined);
  t.is(tcMissing(src('CONFIG_NET_SCH_INGRESS=m\nCONFIG_NET_CLS_BPF=y\n')), 'the clsact qdisc is a module (sch_ingress) that is neither loaded nor installed for this kernel');
  t.is(tcMissing(src('# CONFIG_NET_SCH_INGRESS is not set\nCONFIG_NET_CLS_BPF=y\n')), 'the kernel has no clsact qdisc (CONFIG_NET_SCH_INGRESS is not set)');
  t.is(tcMissing(src('CONFIG_NET_SCH_INGRESS=y\n# CONFIG_NET_CLS_BPF is not set\n')), 'the kernel has no cls_bpf classifier (CONFIG_NET_CLS_BPF is not set)');
  // no configuration to read (a User-Mode Linux guest, say): modules decide, and without them the probe does not guess
  t.is(tcMissing(src(undefined, { builtin: ['sch_ingress', 'cls_bpf'] })), undefined);
  t.is(tcMissing(src(undefined, { loaded: ['sch_ingress', 'cls_bpf'] })), undefined);
  t.regex(tcMissing(src(undefined)) ?? '', /^cannot tell whether the kernel has the clsact qdisc \(CONFIG_NET_SCH_INGRESS\)/);
  // this machine's kernel, as the daemon reads it
  t.is(tcMissing(readTcSources(release())), undefined);
});
