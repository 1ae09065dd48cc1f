// The ebpf dataplane's port map (src/dataplane/ebpf/ports.ts): the join of
// the neighbour table and the bridge FDB (pure), the updater that follows
// the kernel's events (driven here by a fake KernelTables), and the
// rtnetlink tables it runs on in the daemon, against a real bridge in a
// network namespace.
import test from 'ava';
import { pino } from 'pino';
import { diffPorts, PortMap, portsFor, type FanBridge, type KernelTables, type Tables } from '../src/dataplane/ebpf/ports.js';
import { NetlinkKernelTables } from '../src/dataplane/ebpf/kernel-tables.js';
import type { Port } from '../src/dataplane/ebpf/layout.js';
import { NetlinkEvents } from '../src/host/netlink/events.js';
import { Rtnetlink } from '../src/host/netlink/rtnl.js';
import { formatIpv4 } from '../src/fan/ipv4.js';
import { run } from '../src/demo/exec.js';
import { ip } from './helpers/packets.js';

const BR: FanBridge = { name: 'fan-250-1-10', slice: { network: ip('250.1.10.0'), prefix: 24 }, address: ip('250.1.10.1') };
const BRMAC = '02:fa:fa:01:0a:00';

function tables(over: Partial<Tables> = {}): Tables {
  return {
    links: [
      { name: BR.name, index: 5, kind: 'bridge', mtu: 1480, up: true, mac: BRMAC },
      { name: 'c1', index: 7, kind: 'veth', mtu: 1480, up: true, master: BR.name, mac: '0a:00:00:00:00:01', linkNetnsId: 0 },
      { name: 'tap3', index: 8, kind: 'tun', mtu: 1400, up: true, master: BR.name, mac: '0a:00:00:00:00:03' },
      { name: 'c9', index: 9, kind: 'veth', mtu: 1480, up: false, master: BR.name, mac: '0a:00:00:00:00:09', linkNetnsId: 0 },
      { name: 'other0', index: 10, kind: 'bridge', mtu: 1500, up: true, mac: '0a:00:00:00:00:10' },
      ...(over.links ?? []),
    ],
    neighbours: over.neighbours ?? [
      { dst: '250.1.10.11', dev: BR.name, lladdr: '02:00:00:00:00:11', state: ['REACHABLE'] },
      { dst: '250.1.10.13', dev: BR.name, lladdr: '02:00:00:00:00:13', state: ['STALE'] },
      { dst: '250.1.10.19', dev: BR.name, lladdr: '02:00:00:00:00:19', state: ['DELAY'] },
      { dst: '250.1.10.20', dev: BR.name, lladdr: '02:00:00:00:00:20', state: ['FAILED'] },
      { dst: '250.1.10.21', dev: BR.name, state: ['INCOMPLETE'] },
      { dst: '250.1.10.1', dev: BR.name, lladdr: '02:00:00:00:00:01', state: ['PERMANENT'] },
      { dst: '250.1.11.5', dev: BR.name, lladdr: '02:00:00:00:00:11', state: ['REACHABLE'] },
      { dst: '172.16.2.10', dev: 'eth0', lladdr: '02:00:00:00:00:11', state: ['REACHABLE'] },
    ],
    fdb: over.fdb ?? [
      { mac: '02:00:00:00:00:11', dev: 'c1', master: BR.name, flags: [] },
      { mac: '02:00:00:00:00:13', dev: 'tap3', master: BR.name, flags: [] },
      { mac: '02:00:00:00:00:19', dev: 'c9', master: BR.name, flags: [] },
      { mac: '02:00:00:00:00:20', dev: 'c1', master: BR.name, flags: [] },
      { mac: '02:00:00:00:00:01', dev: BR.name, master: BR.name, flags: [] },
      { mac: '33:33:00:00:00:01', dev: 'c1', flags: ['self'] },
    ],
  };
}

test('portsFor: a valid neighbour of the slice whose address the bridge learned on an up port', (t) => {
  const p = portsFor([BR], tables());
  t.deepEqual([...p.keys()].map(formatIpv4).sort(), ['250.1.10.11', '250.1.10.13']);
  t.deepEqual(p.get(ip('250.1.10.11')), { ifindex: 7, mtu: 1480, peer: true, mac: '02:00:00:00:00:11', bridgeMac: BRMAC });
  // a tap (a VM's port): redirected out of the port, not into a peer namespace
  t.deepEqual(p.get(ip('250.1.10.13')), { ifindex: 8, mtu: 1400, peer: false, mac: '02:00:00:00:00:13', bridgeMac: BRMAC });
  // not: a port that is down (.19), a failed or unresolved neighbour (.20, .21), the bridge itself (.1),
  // outside the slice (250.1.11.5), another device's neighbour, another bridge's entries
  t.deepEqual(portsFor([{ ...BR, name: 'other0' }], tables()).size, 0);
  // no bridge, no address: nothing
  t.is(portsFor([BR], { ...tables(), links: tables().links.filter((l) => l.name !== BR.name) }).size, 0);
});

test('diffPorts: what to write and what to delete', (t) => {
  const a: Port = { ifindex: 7, mtu: 1480, peer: true, mac: '02:00:00:00:00:11', bridgeMac: BRMAC };
  const from = new Map([[1, a], [2, a], [3, a]]);
  const to = new Map([[1, a], [2, { ...a, mac: '02:00:00:00:00:99' }], [4, a]]);
  const d = diffPorts(from, to);
  t.deepEqual(d.set.map(([k]) => k).sort(), [2, 4]);
  t.deepEqual(d.del, [3]);
});

class FakeTables implements KernelTables {
  t: Tables = tables();
  fail: string | undefined;
  onChange: (() => void) | undefined;
  onLost: ((why: string) => void) | undefined;
  stopped = false;
  async read(): Promise<Tables> { if (this.fail) throw new Error(this.fail); return this.t; }
  watch(onChange: () => void, onLost: (why: string) => void): () => void { this.onChange = onChange; this.onLost = onLost; return () => { this.stopped = true; }; }
}

function sink() {
  const map = new Map<number, Port>();
  return { map, setPort: (a: number, p: Port) => { map.set(a, p); }, deletePort: (a: number) => map.delete(a) };
}

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`never: ${what}`);
};

test('PortMap follows the events: a change re-reads the tables; a lost source or an unreadable table empties the map', async (t) => {
  const fake = new FakeTables();
  const s = sink();
  const logs: string[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => { logs.push(JSON.parse(l).msg as string); } });
  const pm = new PortMap(fake, s, log, 5);
  await pm.start([BR]);
  t.is(s.map.size, 2);
  // a container's port goes: its FDB entry and port go with it
  fake.t = { ...tables(), fdb: tables().fdb.filter((f) => f.dev !== 'c1') };
  const n = pm.refreshes;
  fake.onChange!();
  fake.onChange!(); // two events close together: one re-read
  await until(() => pm.refreshes > n, 're-read');
  t.is(pm.refreshes, n + 1);
  t.deepEqual([...s.map.keys()].map(formatIpv4), ['250.1.10.13']);
  // the event source dies: everything takes the normal path
  fake.onLost!('socket closed');
  t.is(s.map.size, 0);
  t.true(logs.some((m) => /lost the kernel's change events \(socket closed\)/.test(m)));
  fake.t = tables();
  fake.onChange!();
  await until(() => s.map.size === 2, 'back after the next event');
  // the tables cannot be read: empty, logged once
  fake.fail = 'EPERM';
  fake.onChange!();
  await until(() => s.map.size === 0, 'emptied');
  fake.onChange!();
  await until(() => pm.refreshes >= n + 4, 'read again');
  t.is(logs.filter((m) => /cannot read the kernel tables \(EPERM\)/.test(m)).length, 1);
  await pm.stop();
  t.true(fake.stopped);
});

test('the rtnetlink tables: a real bridge, its container\'s neighbour and FDB entry, and the events when the container changes', async (t) => {
  const ns = `pt${process.pid % 100000}`;
  t.teardown(async () => { await run('ip', ['netns', 'del', ns]).catch(() => undefined); await run('ip', ['netns', 'del', `${ns}c`]).catch(() => undefined); });
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['netns', 'add', `${ns}c`]);
  const sh = (cmd: string[]) => run('ip', ['-n', ns, ...cmd]);
  await sh(['link', 'add', BR.name, 'address', BRMAC, 'type', 'bridge']);
  await sh(['addr', 'add', '250.1.10.1/24', 'dev', BR.name]);
  await sh(['link', 'set', BR.name, 'up']);
  await sh(['link', 'add', 'c1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `${ns}c`]);
  await sh(['link', 'set', 'c1', 'master', BR.name, 'up']);
  await run('ip', ['-n', `${ns}c`, 'link', 'set', 'eth0', 'address', '02:00:00:00:00:11', 'up']);
  await run('ip', ['-n', `${ns}c`, 'addr', 'add', '250.1.10.11/24', 'dev', 'eth0']);
  await run('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '2', '250.1.10.11']);

  const events = new NetlinkEvents(ns);
  const tablesOf = new NetlinkKernelTables(new Rtnetlink(ns), events);
  t.teardown(() => events.close());
  const got = portsFor([BR], await tablesOf.read());
  t.deepEqual([...got.entries()].map(([a, p]) => [formatIpv4(a), p.mac, p.peer, p.bridgeMac]), [['250.1.10.11', '02:00:00:00:00:11', true, BRMAC]]);
  let changes = 0;
  const stop = tablesOf.watch(() => { changes++; }, () => undefined, (dev) => dev === BR.name || dev === 'c1');
  t.teardown(stop);
  // the container gets a new Ethernet address and speaks: the kernel says so, and the join follows
  await run('ip', ['-n', `${ns}c`, 'link', 'set', 'eth0', 'address', '02:00:00:00:00:77']);
  await run('ip', ['-n', `${ns}c`, 'neigh', 'flush', 'all']); // its next packet starts with an ARP request, which the host learns from
  await run('ip', ['netns', 'exec', `${ns}c`, 'ping', '-c', '1', '-W', '2', '250.1.10.1']);
  await until(() => changes > 0, 'an event');
  for (let i = 0; i < 100; i++) {
    const p = portsFor([BR], await tablesOf.read()).get(ip('250.1.10.11'));
    if (p?.mac === '02:00:00:00:00:77') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is(portsFor([BR], await tablesOf.read()).get(ip('250.1.10.11'))?.mac, '02:00:00:00:00:77');
});
