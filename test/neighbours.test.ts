// The table of next hops the workers send to directly: what the kernel's
// neighbour table allows into it, how lookups answer, and how entries are
// turned off, changed and re-probed.
import test from 'ava';
import fc from 'fast-check';
import { applyHops, directHops, NeighbourTable, NextHop, type KernelNeighbour, type UnderlayLink } from '../src/dataplane/userspace/neighbours.js';
import { NUD_DELAY, NUD_FAILED, NUD_INCOMPLETE, NUD_PERMANENT, NUD_PROBE, NUD_REACHABLE, NUD_STALE } from '../src/host/netlink/codec.js';

const ip = (t: string) => t.split('.').reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
const ETH0: UnderlayLink = { name: 'eth0', ifindex: 7, network: ip('172.16.0.0'), prefix: 16 };
const MAC = '02:00:00:00:02:0a';

test('directHops takes on-link entries of the underlay interface in a state the kernel sends on', (t) => {
  const mac = (m: string) => Uint8Array.from(m.split(':'), (h) => parseInt(h, 16));
  const n = (dst: string, state: number, extra: Partial<KernelNeighbour> = {}): KernelNeighbour => ({ dst: ip(dst), ifindex: 7, lladdr: mac(MAC), state, ...extra });
  const cases: [string, KernelNeighbour, boolean, boolean?][] = [
    ['REACHABLE', n('172.16.2.10', NUD_REACHABLE), true, false],
    ['STALE (probe once)', n('172.16.2.11', NUD_STALE), true, true],
    ['DELAY', n('172.16.2.12', NUD_DELAY), true, false],
    ['PROBE', n('172.16.2.13', NUD_PROBE), true, false],
    ['PERMANENT', n('172.16.2.14', NUD_PERMANENT), true, false],
    ['INCOMPLETE', n('172.16.2.15', NUD_INCOMPLETE, { lladdr: undefined }), false],
    ['FAILED', n('172.16.2.16', NUD_FAILED), false],
    ['no address', n('172.16.2.17', NUD_REACHABLE, { lladdr: undefined }), false],
    ['other interface', n('172.16.2.18', NUD_REACHABLE, { ifindex: 8 }), false],
    ['off-link (a gateway elsewhere)', n('10.0.0.1', NUD_REACHABLE), false],
    ['the network address', n('172.16.0.0', NUD_REACHABLE), false],
    ['multicast Ethernet address', n('172.16.2.19', NUD_REACHABLE, { lladdr: mac('01:00:5e:00:00:01') }), false],
    ['zero Ethernet address', n('172.16.2.20', NUD_REACHABLE, { lladdr: mac('00:00:00:00:00:00') }), false],
    ['not an Ethernet address', n('172.16.2.21', NUD_REACHABLE, { lladdr: mac('02:00:00:00:02') }), false],
    ['deleted (state 0)', n('172.16.2.22', 0), false],
  ];
  for (const [name, entry, taken, probe] of cases) {
    const hops = directHops([entry], [ETH0]);
    t.is(hops.length, taken ? 1 : 0, name);
    if (taken) {
      t.is(hops[0]!.ifindex, 7, name);
      t.deepEqual([...hops[0]!.mac], [2, 0, 0, 0, 2, 10], name);
      t.is(hops[0]!.probe, probe ?? false, name);
    }
  }
});

test('lookup answers with the interface and Ethernet address, or the kernel path', (t) => {
  const table = NeighbourTable.create(64);
  const out = new Int32Array(6).fill(-1);
  t.is(table.lookup(ip('172.16.2.10'), out, 3), NextHop.Kernel, 'unknown');
  t.is(out[3], 0);
  t.true(table.set(ip('172.16.2.10'), 7, Uint8Array.of(0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54)));
  t.is(table.lookup(ip('172.16.2.10'), out, 3), NextHop.Direct);
  t.deepEqual([out[3], out[4]! >>> 0, out[5]! >>> 0], [7, 0xfedcba98, 0x76540000]);
  t.is(table.lookup(0, out, 0), NextHop.Kernel, 'address 0 is never an entry');
  // turned off: the key stays, lookups go to the kernel
  table.set(ip('172.16.2.10'), 0, undefined);
  t.is(table.lookup(ip('172.16.2.10'), out, 3), NextHop.Kernel);
  t.is(out[3], 0);
  t.deepEqual(table.usable(), []);
});

test('a probe request sends exactly one packet through the kernel, then direct again', (t) => {
  const table = NeighbourTable.create(16);
  const out = new Int32Array(3);
  const mac = Uint8Array.of(2, 0, 0, 0, 2, 10);
  table.set(ip('172.16.2.10'), 7, mac, true);
  t.is(table.lookup(ip('172.16.2.10'), out, 0), NextHop.Kernel);
  t.is(table.lookup(ip('172.16.2.10'), out, 0), NextHop.Direct);
  // the same entry again (still STALE at the next refresh): one more
  table.set(ip('172.16.2.10'), 7, mac, true);
  t.is(table.lookup(ip('172.16.2.10'), out, 0), NextHop.Kernel);
  t.is(table.lookup(ip('172.16.2.10'), out, 0), NextHop.Direct);
});

test('applyHops follows the kernel: new, changed and vanished neighbours', (t) => {
  const table = NeighbourTable.create(64);
  const out = new Int32Array(3);
  const a = ip('172.16.2.10'); const b = ip('172.16.3.10');
  const hop = (dst: number, last: number) => ({ dst, ifindex: 7, mac: Uint8Array.of(2, 0, 0, 0, 0, last), probe: false });
  t.is(applyHops(table, [hop(a, 1), hop(b, 2)]), 0);
  t.deepEqual(table.usable().sort(), [a, b].sort());
  // a's Ethernet address changed (a new host took the address, or a failover)
  applyHops(table, [hop(a, 9), hop(b, 2)]);
  table.lookup(a, out, 0);
  t.is(out[2]! >>> 16, 9);
  // b is gone from the kernel's table: its packets go through the kernel, which resolves it anew
  applyHops(table, [hop(a, 9)]);
  t.is(table.lookup(b, out, 0), NextHop.Kernel);
  t.deepEqual(table.usable(), [a]);
  applyHops(table, []);
  t.deepEqual(table.usable(), []);
});

test('a full probe sequence is reported, not silently lost; capacity must be a power of two', (t) => {
  t.throws(() => NeighbourTable.create(100), { message: /power of two/ });
  const table = NeighbourTable.create(16);
  const hops = Array.from({ length: 20 }, (_, i) => ({ dst: ip('172.16.0.0') + 1 + i, ifindex: 7, mac: Uint8Array.of(2, 0, 0, 0, 0, i), probe: false }));
  const full = applyHops(table, hops);
  t.is(full, 4);
  t.is(table.usable().length, 16);
});

test('property: every stored address is found with its own Ethernet address', (t) => {
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 0xffffffff }), { maxLength: 200 }), (dsts) => {
    const table = NeighbourTable.create(1024);
    const out = new Int32Array(3);
    const stored = dsts.filter((d) => table.set(d, 3, Uint8Array.of(2, 0, d >>> 24, (d >>> 16) & 255, (d >>> 8) & 255, d & 255)));
    for (const d of stored) {
      if (table.lookup(d, out, 0) !== NextHop.Direct) return false;
      if (((out[1]! & 0xffff) << 16 | (out[2]! >>> 16)) >>> 0 !== d) return false;
    }
    return stored.length >= Math.min(dsts.length, 1) || dsts.length === 0;
  }), { numRuns: 200 });
  t.pass();
});
