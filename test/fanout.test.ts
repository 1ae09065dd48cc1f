import test from 'ava';
import fc from 'fast-check';
import { fanoutFilter, fanoutWorker, BPF_ACCEPT, MAX_WORKERS } from '../src/dataplane/packet/fanout.js';
import { writeU16 } from '../src/dataplane/packet/ipv4.js';
import { checkBpf, decodeBpf, runBpf, type BpfInsn } from './helpers/bpf.js';
import { ip, ipipPacket, ipv4Packet } from './helpers/packets.js';

const programs = new Map<number, BpfInsn[][]>();
function filters(n: number): BpfInsn[][] {
  let p = programs.get(n);
  if (!p) {
    p = [];
    for (let i = 0; i < n; i++) p.push(decodeBpf(fanoutFilter(n, i)));
    programs.set(n, p);
  }
  return p;
}

/** Which workers of n accept pkt; fails the test on any out-of-bounds load. */
function acceptors(n: number, pkt: Uint8Array): number[] {
  const out: number[] = [];
  filters(n).forEach((prog, i) => {
    const r = runBpf(prog, pkt);
    if (r.outOfBounds) throw new Error(`worker ${i}/${n}: load out of bounds on ${pkt.length} bytes`);
    if (r.result !== 0) {
      if (r.result !== BPF_ACCEPT) throw new Error(`worker ${i}/${n}: returned ${r.result}`);
      out.push(i);
    }
  });
  return out;
}

/** Independent statement of "too short for the loads". */
function tooShort(p: Uint8Array): boolean {
  if (p.length < 1) return true;
  const x = (p[0]! & 15) * 4;
  if (x + 20 > p.length) return true;
  const proto = p[x + 9];
  const frag = ((p[x + 6]! << 8) | p[x + 7]!) & 0x3fff;
  if ((proto === 6 || proto === 17 || proto === 132) && frag === 0) return x + (p[x]! & 15) * 4 + 4 > p.length;
  return false;
}

test('fanoutFilter: every program passes the kernel checks', (t) => {
  for (let n = 1; n <= MAX_WORKERS; n++) {
    for (let i = 0; i < n; i++) {
      const bytes = fanoutFilter(n, i);
      t.is(bytes.length % 8, 0);
      checkBpf(decodeBpf(bytes));
    }
  }
  t.is(fanoutFilter(1, 0).length, 8, 'one worker: a single ret');
  t.pass();
});

test('fanoutFilter: bad arguments throw RangeError', (t) => {
  for (const [n, i] of [[0, 0], [65, 0], [1.5, 0], [NaN, 0], [4, -1], [4, 4], [4, 1.5]] as [number, number][]) {
    t.throws(() => fanoutFilter(n, i), { instanceOf: RangeError }, `${n}, ${i}`);
  }
});

test('fanoutFilter: byte layout is struct sock_filter, little-endian', (t) => {
  const b = fanoutFilter(1, 0);
  t.deepEqual([...b], [0x06, 0x00, 0, 0, 0xff, 0xff, 0xff, 0xff]); // ret #-1
  const first = decodeBpf(fanoutFilter(4, 1))[0]!;
  t.deepEqual(first, { code: 0x80, jt: 0, jf: 0, k: 0 }); // ld len
});

const addr = fc.nat().map((n) => n >>> 0);
const flow = fc.record({
  src: addr, dst: addr,
  proto: fc.constantFrom(6, 17, 132, 1, 47, 6, 17),
  sport: fc.integer({ min: 0, max: 0xffff }), dport: fc.integer({ min: 0, max: 0xffff }),
});
const variation = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  ttl: fc.integer({ min: 1, max: 255 }),
  tos: fc.integer({ min: 0, max: 255 }),
  df: fc.boolean(),
  innerOpts: fc.integer({ min: 0, max: 10 }),
  outerOpts: fc.integer({ min: 0, max: 10 }),
  extra: fc.uint8Array({ maxLength: 40 }),
  outerSrc: fc.integer({ min: 1, max: 0xfffe }).map((h) => (ip('172.16.0.0') | h) >>> 0),
});
type Flow = { src: number; dst: number; proto: number; sport: number; dport: number };
type Variation = { id: number; ttl: number; tos: number; df: boolean; innerOpts: number; outerOpts: number; extra: Uint8Array; outerSrc: number };

function packetOf(f: Flow, v: Variation, fragWord?: number): Uint8Array {
  const l4 = new Uint8Array(8 + v.extra.length);
  writeU16(l4, 0, f.sport);
  writeU16(l4, 2, f.dport);
  l4.set(v.extra, 8);
  const inner = ipv4Packet({ src: f.src, dst: f.dst, proto: f.proto, id: v.id, ttl: v.ttl, tos: v.tos, df: v.df, fragWord,
    options: new Uint8Array(v.innerOpts * 4), payload: l4 });
  return ipipPacket(v.outerSrc, ip('172.16.5.6'), inner, 0, new Uint8Array(v.outerOpts * 4));
}

test('fanout: every well-formed IPIP packet is accepted by exactly one of N (N = 1..8)', (t) => {
  fc.assert(fc.property(flow, variation, fc.option(fc.integer({ min: 0, max: 0xffff })), (f, v, frag) => {
    const pkt = packetOf(f, v, frag ?? undefined);
    for (let n = 1; n <= 8; n++) {
      const a = acceptors(n, pkt);
      if (a.length !== 1 || a[0] !== fanoutWorker(pkt, 0, pkt.length, n)) return false;
    }
    return true;
  }), { numRuns: 1500 });
  t.pass();
});

test('fanout: short or malformed packets (0..60 random bytes) go to worker 0 when too short, else to exactly one', (t) => {
  let short = 0, long = 0;
  const bytesUpTo60 = fc.integer({ min: 0, max: 60 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
  fc.assert(fc.property(bytesUpTo60, fc.integer({ min: 0, max: 2 }), (bytes, shape) => {
    // shape 0: raw bytes; 1: outer IHL 5; 2: outer IHL 5 and inner UDP with IHL 5..7.
    if (shape >= 1 && bytes.length > 0) bytes[0] = 0x45;
    if (shape === 2 && bytes.length > 29) { bytes[29] = 17; bytes[20] = 0x45 + (bytes[20]! % 3); bytes[26]! &= 0xc0; bytes[27] = 0; }
    const s = tooShort(bytes);
    if (s) short++; else long++;
    for (let n = 1; n <= 8; n++) {
      const a = acceptors(n, bytes);
      if (a.length !== 1) return false;
      if (s && a[0] !== 0) return false;
      if (a[0] !== fanoutWorker(bytes, 0, bytes.length, n)) return false;
    }
    return true;
  }), { numRuns: 4000 });
  t.true(short > 100 && long > 100, `both kinds generated: ${short} short, ${long} not`);
  // Every length from 0 to 60 of an all-zero and an all-0x4f (IHL 15) packet.
  for (let len = 0; len <= 60; len++) {
    for (const fill of [0, 0x45, 0x4f, 0xff]) {
      const a = acceptors(4, new Uint8Array(len).fill(fill));
      t.is(a.length, 1, `len ${len} fill ${fill}`);
    }
  }
});

test('fanout: a truncated TCP header goes to worker 0; a non-first fragment without one is hashed', (t) => {
  const inner = ipv4Packet({ src: ip('250.3.4.1'), dst: ip('250.5.6.7'), proto: 6, payload: new Uint8Array(2) });
  const pkt = ipipPacket(ip('172.16.3.4'), ip('172.16.5.6'), inner);
  for (let n = 2; n <= 8; n++) t.deepEqual(acceptors(n, pkt), [0]);
  const frag = ipv4Packet({ src: ip('250.3.4.1'), dst: ip('250.5.6.7'), proto: 6, fragWord: 0x0010, payload: new Uint8Array(2) });
  const fpkt = ipipPacket(ip('172.16.3.4'), ip('172.16.5.6'), frag);
  for (let n = 2; n <= 8; n++) t.is(acceptors(n, fpkt).length, 1);
  // First (MF, offset 0), middle and last fragments of 64 datagrams: together, every time.
  for (let k = 0; k < 64; k++) {
    const f: Flow = { src: ip('250.3.4.1') + k, dst: ip('250.5.6.7'), proto: 17, sport: 1000 + k, dport: 53 };
    const v: Variation = { id: k, ttl: 64, tos: 0, df: false, innerOpts: 0, outerOpts: 0, extra: new Uint8Array(0), outerSrc: ip('172.16.3.4') };
    const ws = new Set([0x2000, 0x20b9, 0x0172].map((w) => acceptors(8, packetOf(f, v, w))[0]));
    t.is(ws.size, 1, `datagram ${k}`);
  }
});

test('fanout: packets of one flow always go to the same worker', (t) => {
  fc.assert(fc.property(flow.filter((f) => f.proto !== 1 && f.proto !== 47), variation, variation, fc.integer({ min: 2, max: 8 }), (f, v1, v2, n) => {
    const a = acceptors(n, packetOf(f, { ...v1, df: true }));
    const b = acceptors(n, packetOf(f, { ...v2, df: false }));
    return a.length === 1 && b.length === 1 && a[0] === b[0];
  }), { numRuns: 1000 });
  // All fragments of one datagram, whatever their offset, go together.
  fc.assert(fc.property(flow, variation, fc.array(fc.integer({ min: 1, max: 0x3fff }), { minLength: 2, maxLength: 5 }), (f, v, frags) => {
    const workers = new Set(frags.map((w) => acceptors(4, packetOf(f, v, w))[0]));
    return workers.size === 1;
  }), { numRuns: 300 });
  t.pass();
});

function spread(n: number, flows: Flow[], v: Variation): number[] {
  const counts = new Array<number>(n).fill(0);
  for (const f of flows) {
    const a = acceptors(n, packetOf(f, v));
    counts[a[0]!]!++;
  }
  return counts;
}

test('fanout: 2000 random flows spread roughly evenly over 4 workers', (t) => {
  const v: Variation = { id: 1, ttl: 64, tos: 0, df: true, innerOpts: 0, outerOpts: 0, extra: new Uint8Array(0), outerSrc: ip('172.16.3.4') };
  const checkEven = (what: string, flows: Flow[]): void => {
    const counts = spread(4, flows, v);
    for (const c of counts) t.true(c >= 0.15 * flows.length && c <= 0.35 * flows.length, `${what}: ${counts.join(' ')}`);
  };
  const random = fc.sample(flow.filter((f) => f.proto === 6 || f.proto === 17), { numRuns: 2000, seed: 42 });
  checkEven('random 5-tuples', random);
  // The common real case: one client and one server, the client's ephemeral ports varying.
  checkEven('one address pair, sequential source ports', Array.from({ length: 2000 }, (_, k) => ({
    src: ip('250.3.4.10'), dst: ip('250.5.6.7'), proto: 6, sport: 32768 + k, dport: 443 })));
  // Many hosts of one slice pinging one address (no ports).
  checkEven('ICMP from 2000 sources', Array.from({ length: 2000 }, (_, k) => ({
    src: (ip('250.3.0.0') + k) >>> 0, dst: ip('250.5.6.7'), proto: 1, sport: 0, dport: 0 })));
});
