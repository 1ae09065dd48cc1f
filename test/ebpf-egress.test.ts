// The egress program against encap.ts, on a real kernel: random and mutated
// inner packets are sent into an overlay device whose egress runs
// fand_egress; what it drops must be dropped by encapsulateHeader() for the
// same reason, and what it sends must arrive on the far side of the underlay
// as encapsulate() builds it (the outer ID aside: the program sets 0 under
// DF, a random one otherwise, where the kernel would pick one). As root, in
// two network namespaces: the fan host (overlay device ft0, underlay u0
// 172.16.5.6/16) and a peer that accepts every address of 172.16.1.0/24.
import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNodeScript } from '../src/demo/lab.js';
import { run } from '../src/demo/exec.js';
import { DROP_NAMES } from '../src/dataplane/counters.js';
import { makePacketContext } from '../src/dataplane/packet/context.js';
import { encapsulateHeader, isDrop, dropReason } from '../src/dataplane/packet/encap.js';
import { checksumValid, ipTotalLength } from '../src/dataplane/packet/ipv4.js';
import { hex, ip, ipv4Packet, placed } from './helpers/packets.js';

const PROBE = fileURLToPath(new URL('./helpers/ebpf-egress-probe.js', import.meta.url));
const CTX = makePacketContext({ network: ip('250.0.0.0'), prefix: 8 }, { network: ip('172.16.0.0'), prefix: 16 }, ip('172.16.5.6'));
/** Remote hosts the peer answers for (their neighbour entries are made permanent: no ARP races). */
const HOSTS = ['172.16.1.1', '172.16.1.2', '172.16.1.3', '172.16.1.4'];

/** The outer header with its ID and checksum cleared, then the inner packet, as hex. */
const comparable = (pkt: Uint8Array) => { const c = pkt.slice(); c.fill(0, 4, 6); c.fill(0, 10, 12); return hex(c); };

const sliceAddr = (slice: number) => fc.integer({ min: 0, max: 255 }).map((h) => (slice | h) >>> 0);
const dsts = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...HOSTS.map((h) => ip(h))).chain((h) => sliceAddr((ip('250.0.0.0') | ((h & 0xffff) << 8)) >>> 0)) },
  ...[ip('250.5.6.0'), ip('250.0.0.0'), ip('250.255.255.0'), ip('10.1.2.0')].map((s) => ({ weight: 1, arbitrary: sliceAddr(s) })),
);
const inner = fc.record({
  src: fc.nat().map((n) => n >>> 0), dst: dsts,
  tos: fc.integer({ min: 0, max: 255 }), ttl: fc.integer({ min: 0, max: 255 }).map((t) => (t % 10 === 0 ? 0 : t)),
  fragWord: fc.integer({ min: 0, max: 0xffff }), id: fc.integer({ min: 0, max: 0xffff }), proto: fc.integer({ min: 0, max: 255 }),
  options: fc.constantFrom(0, 0, 0, 4, 40).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  payload: fc.integer({ min: 0, max: 1400 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
}).map(ipv4Packet);
// Edits anywhere but the destination (bytes 16..19 stay one of the hosts above), and cut tails.
const mutated = fc.tuple(inner, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.integer({ min: -30, max: 0 }))
  .map(([p, edits, cut]) => {
    const q = p.slice(0, Math.max(1, p.length + cut));
    for (const [i, v] of edits) { const at = i % q.length; if (at < 16 || at > 19) q[at] = v; }
    return q;
  });
const junk = fc.integer({ min: 1, max: 100 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));

test('egress program = encap.ts: drops by reason, and the IPIP that arrives on the underlay', async (t) => {
  const a = `eg${process.pid % 100000}a`;
  const b = `eg${process.pid % 100000}b`;
  const dir = mkdtempSync(join(tmpdir(), 'fand-egress-'));
  t.teardown(async () => {
    for (const ns of [a, b]) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  for (const ns of [a, b]) { await run('ip', ['netns', 'add', ns]); await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']); }
  await run('ip', ['-n', a, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1', 'netns', b]);
  await run('ip', ['-n', a, 'addr', 'add', '172.16.5.6/16', 'dev', 'u0']);
  await run('ip', ['-n', a, 'link', 'set', 'u0', 'up']);
  await run('ip', ['-n', a, 'tuntap', 'add', 'mode', 'tun', 'name', 'ft0']);
  await run('ip', ['-n', a, 'link', 'set', 'ft0', 'mtu', '1480', 'up']);
  await run('ip', ['-n', b, 'addr', 'add', '172.16.1.1/16', 'dev', 'u1']);
  await run('ip', ['-n', b, 'link', 'set', 'u1', 'up']);
  // Every address of 172.16.1.0/24 is the peer's (not the fan host's 172.16.5.6: a local source would be a martian).
  await run('ip', ['-n', b, 'route', 'add', 'local', '172.16.1.0/24', 'dev', 'lo']);
  const mac = (JSON.parse((await run('ip', ['-n', b, '-j', 'link', 'show', 'u1'])).stdout) as { address: string }[])[0]!.address;
  for (const h of HOSTS) await run('ip', ['-n', a, 'neigh', 'replace', h, 'lladdr', mac, 'dev', 'u0', 'nud', 'permanent']);

  const packets = fc.sample(fc.oneof({ weight: 3, arbitrary: inner }, { weight: 3, arbitrary: mutated }, { weight: 1, arbitrary: junk }), { numRuns: 700, seed: Date.now() % 100000 });
  const expectDrops: Record<string, number> = {};
  const expectSent = new Map<string, number>();
  for (const p of packets) {
    const { buf, off } = placed(p, 20, 0);
    const r = encapsulateHeader(buf, off, p.length, CTX);
    if (isDrop(r)) {
      const k = `drop.${DROP_NAMES[dropReason(r)]}`;
      expectDrops[k] = (expectDrops[k] ?? 0) + 1;
    } else {
      const outer = buf.slice(off - 20, off - 20 + ipTotalLength(buf, off - 20));
      const k = comparable(outer);
      expectSent.set(k, (expectSent.get(k) ?? 0) + 1);
    }
  }
  const file = join(dir, 'packets.json');
  writeFileSync(file, JSON.stringify(packets.map(hex)));

  const stop = join(dir, 'stop');
  const cap = runNodeScript(b, PROBE, ['capture', stop], 150_000);
  await cap.first;
  const sent = runNodeScript(a, PROBE, ['send', file], 120_000);
  const [{ counters }] = (await sent.done) as [{ counters: Record<string, number> }];
  writeFileSync(stop, ''); // the capture ends once its socket is empty
  const got = (await cap.done).at(-1) as { packets: string[] };

  const drops = Object.fromEntries(Object.entries(counters).filter(([k]) => k.startsWith('drop.')));
  t.deepEqual(drops, expectDrops, 'drops by reason');
  const accepted = [...expectSent.values()].reduce((s, n) => s + n, 0);
  t.is(counters['tx.packets'], accepted);
  t.is(counters['out.read'], packets.length);
  t.true(accepted > 100 && Object.keys(expectDrops).length >= 5, `a sample that exercises little: ${accepted} accepted, drops ${JSON.stringify(expectDrops)}`);
  // what arrived is what encap.ts builds, each as often as it was sent
  const arrived = new Map<string, number>();
  for (const h of got.packets) {
    const p = Uint8Array.from(Buffer.from(h, 'hex'));
    t.true(checksumValid(p, 0, 20), `outer checksum of ${h.slice(0, 40)}`);
    if ((p[6]! & 0x40) !== 0) t.is((p[4]! << 8) | p[5]!, 0, 'the ID of a DF packet is 0');
    arrived.set(comparable(p), (arrived.get(comparable(p)) ?? 0) + 1);
  }
  t.log(`sent ${accepted}, arrived ${got.packets.length}`);
  const diff = [...new Set([...expectSent.keys(), ...arrived.keys()])].filter((k) => expectSent.get(k) !== arrived.get(k));
  t.deepEqual(diff.map((k) => `${k.slice(0, 80)}: sent ${expectSent.get(k) ?? 0}, arrived ${arrived.get(k) ?? 0}`), []);
});
