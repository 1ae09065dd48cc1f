// fand's rtnetlink client (src/host/netlink/): the codec on hand-built and
// random bytes (never throws, never reads outside what it is given), and
// the reads and events against the real kernel in a throwaway network
// namespace, checked against what iproute2 says about the same objects.
import test from 'ava';
import fc from 'fast-check';
import { execFile, execFileSync } from 'node:child_process';
import { endianness } from 'node:os';
import { promisify } from 'node:util';
import {
  buildMessage, decodeAddress, decodeError, decodeLink, decodeNeighbour, decodeNexthop, decodeRoute, decodeRule,
  IFLA_IFNAME, IFLA_MTU, IFLA_STATS64, NLM_F_ACK_TLVS, NLMSG_ERROR, parseAttrs, parseMessages, RTM_NEWLINK, type Message,
} from '../src/host/netlink/codec.js';
import { decodeEvent, NetlinkEvents, type HostEvent } from '../src/host/netlink/events.js';
import { NetlinkSocket } from '../src/host/netlink/socket.js';
import { Rtnetlink } from '../src/host/netlink/rtnl.js';
import { LinuxHost } from '../src/host/ip.js';
import { changeMessage, parseIpWords } from '../src/host/netlink/change.js';
import { formatIpv4 } from '../src/fan/ipv4.js';
import { tempNetns } from './helpers/netns.js';
import { PATIENCE_MS } from '../src/demo/lab.js';

const run = promisify(execFile);
const LE = endianness() === 'LE';
const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args], { timeout: 10_000 });

const DECODERS = [decodeLink, decodeAddress, decodeRoute, decodeRule, decodeNeighbour, decodeNexthop, decodeError, decodeEvent] as const;

// ---------------------------------------------------------------------------
// Codec

test('a link message built here decodes back: name, MTU, counters; attributes 4-aligned', (t) => {
  const ifinfo = new Uint8Array(16);
  const v = new DataView(ifinfo.buffer);
  v.setUint16(2, 1, LE);      // ARPHRD_ETHER
  v.setInt32(4, 42, LE);      // index
  v.setUint32(8, 0x1, LE);    // IFF_UP
  const stats = new Uint8Array(200);
  const sv = new DataView(stats.buffer);
  for (let i = 0; i < 8; i++) sv.setBigUint64(i * 8, BigInt(1000 + i), LE);
  const mtu = new Uint8Array(4);
  new DataView(mtu.buffer).setUint32(0, 1480, LE);
  const msg = buildMessage(RTM_NEWLINK, 0, 7, ifinfo, [
    { type: IFLA_IFNAME, payload: new TextEncoder().encode('fan-250\0') },
    { type: IFLA_MTU, payload: mtu },
    { type: IFLA_STATS64, payload: stats },
  ]);
  t.is(msg.length % 4, 0);
  const [m, ...rest] = parseMessages(msg);
  t.is(rest.length, 0);
  t.is(m!.seq, 7);
  const l = decodeLink(m!);
  t.like(l, { index: 42, name: 'fan-250', mtu: 1480, up: true, master: 0 });
  t.deepEqual(l!.stats, { rxPackets: 1000, txPackets: 1001, rxBytes: 1002, txBytes: 1003, rxErrors: 1004, txErrors: 1005, rxDropped: 1006, txDropped: 1007 });
});

test('an error reply with an extended ACK gives the errno and the kernel\'s words', (t) => {
  // struct nlmsgerr { int error = -ENODEV; nlmsghdr (capped) } + NLMSGERR_ATTR_MSG
  const body = new Uint8Array(4 + 16);
  new DataView(body.buffer).setInt32(0, -19, LE);
  new DataView(body.buffer).setUint32(4, 16, LE);
  const text = new TextEncoder().encode('Unknown device\0');
  const msg = buildMessage(NLMSG_ERROR, 0x100 | NLM_F_ACK_TLVS, 3, body, [{ type: 1, payload: text }]);
  t.deepEqual(decodeError(parseMessages(msg)[0]!), { errno: 19, message: 'Unknown device' });
});

test('fuzz: no decoder throws or reads outside its bytes, on any input', (t) => {
  const check = (buf: Uint8Array) => {
    // A view into a larger buffer: reading past the view would see the 0xee guard bytes.
    const big = new Uint8Array(buf.length + 64).fill(0xee);
    big.set(buf, 32);
    const view = big.subarray(32, 32 + buf.length);
    for (const m of parseMessages(view)) {
      if (m.payload.byteOffset + m.payload.length > 32 + buf.length) return false;
      for (const d of DECODERS) d(m as Message);
      parseAttrs(m.payload, 0);
    }
    return true;
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), check), { numRuns: 3000 });
  // Structured: valid headers of every type fand decodes around random bodies and attributes.
  const types = [2, 3, 16, 17, 20, 21, 24, 25, 28, 29, 32, 33, 104, 105];
  const attr = fc.record({ type: fc.integer({ min: 0, max: 0xffff }), payload: fc.uint8Array({ maxLength: 80 }) });
  fc.assert(fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 24 }), fc.array(attr, { maxLength: 8 }), fc.integer({ min: -8, max: 8 }),
    (type, header, attrs, cut) => {
      const msg = buildMessage(type, 0, 1, header, attrs);
      const len = Math.max(0, Math.min(msg.length, msg.length + cut));
      return check(msg.subarray(0, len));
    }), { numRuns: 3000 });
  t.pass();
});

// ---------------------------------------------------------------------------
// The real kernel

interface IpLink { ifname: string; ifindex: number; mtu: number; flags: string[]; master?: string; address?: string; link_type?: string; linkinfo?: { info_kind?: string } }

test('reads match iproute2: links (kind, master, MTU, state, address), addresses, routes, rules; a dump of 400 neighbours in parts', async (t) => {
  const ns = await tempNetns(t, 'nlread');
  await ip(ns, 'link', 'set', 'lo', 'up');
  await ip(ns, 'link', 'add', 'br0', 'type', 'bridge');
  await ip(ns, 'link', 'add', 'va', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'vb');
  await ip(ns, 'link', 'set', 'va', 'master', 'br0');
  await ip(ns, 'link', 'set', 'va', 'up');
  await ip(ns, 'link', 'set', 'br0', 'up');
  await ip(ns, 'tuntap', 'add', 'mode', 'tun', 'multi_queue', 'vnet_hdr', 'name', 'tq0');
  await ip(ns, 'addr', 'add', '10.9.0.1/16', 'dev', 'br0');
  await ip(ns, 'addr', 'add', '10.9.0.2/32', 'dev', 'br0');
  await ip(ns, 'route', 'add', '250.0.0.0/8', 'dev', 'br0', 'src', '10.9.0.1');
  await ip(ns, 'route', 'add', 'default', 'via', '10.9.0.254');
  await ip(ns, 'rule', 'add', 'iif', 'vb', 'blackhole', 'pref', '90');
  const host = new LinuxHost(ns);
  const want = JSON.parse((await ip(ns, '-j', '-d', 'link', 'show')).stdout) as IpLink[];
  const got = await host.links();
  t.deepEqual(got.map((l) => l.name).sort(), want.map((l) => l.ifname).sort());
  for (const w of want) {
    const g = got.find((l) => l.name === w.ifname)!;
    t.is(g.index, w.ifindex, w.ifname);
    t.is(g.mtu, w.mtu, w.ifname);
    t.is(g.up, w.flags.includes('UP'), w.ifname);
    t.is(g.master, w.master, w.ifname);
    t.is(g.kind, w.linkinfo?.info_kind, w.ifname);
    t.is(g.mac, w.link_type === 'ether' ? w.address : undefined, w.ifname);
  }
  t.like(got.find((l) => l.name === 'tq0')!.tun, { type: 'tun', multiQueue: true, vnetHdr: true, persist: true, pi: false });
  const addrs = await host.addresses();
  t.deepEqual(addrs.find((a) => a.name === 'br0')!.addresses.map((a) => `${formatIpv4(a.address)}/${a.prefix}`).sort(), ['10.9.0.1/16', '10.9.0.2/32']);
  t.deepEqual(addrs.find((a) => a.name === 'vb')!.addresses, [], 'an interface without IPv4 is listed, with none');
  const wantRoutes = JSON.parse((await ip(ns, '-j', '-4', 'route', 'show', 'table', 'main')).stdout) as { dst: string; dev?: string; prefsrc?: string; gateway?: string }[];
  t.deepEqual((await host.routes()).map((r) => JSON.stringify(r)).sort(),
    wantRoutes.map((r) => JSON.stringify({ dst: r.dst, dev: r.dev, prefsrc: r.prefsrc, gateway: r.gateway })).sort());
  t.is(await host.defaultRouteIface(), 'br0');
  t.true((await host.rules()).some((r) => r.iif === 'vb' && r.action === 'blackhole' && r.priority === 90));
  // Enough neighbours that the dump comes in several datagrams.
  const lines = Array.from({ length: 400 }, (_, i) => `neigh add 10.9.${1 + (i >> 8)}.${i & 255} lladdr 02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} dev br0 nud permanent`);
  execFileSync('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
  const rtnl = new Rtnetlink(ns);
  t.teardown(() => rtnl.close());
  const neigh = (await rtnl.neighbours()).filter((n) => n.state === 0x80);
  t.is(neigh.length, 400);
  t.is(new Set(neigh.map((n) => n.dst)).size, 400);
  // The counters of one device, as `ip -s` shows them.
  await run('ip', ['netns', 'exec', ns, 'ping', '-c', '2', '-i', '0.2', '-W', '1', '10.9.0.2']);
  const lo = await rtnl.link('lo');
  const ipLo = (JSON.parse((await ip(ns, '-s', '-j', 'link', 'show', 'dev', 'lo')).stdout) as { stats64: { rx: { packets: number } } }[])[0]!;
  t.true(lo!.stats!.rxPackets >= 4 && lo!.stats!.rxPackets <= ipLo.stats64.rx.packets, `lo rx ${lo!.stats!.rxPackets} vs ip ${ipLo.stats64.rx.packets}`);
  t.is(await rtnl.link('nosuchdev0'), undefined);
});

/** Collects events until `done` holds (or the cap passes: then the test fails naming what it saw). */
function collect(events: NetlinkEvents, kinds: Parameters<NetlinkEvents['subscribe']>[0]) {
  const seen: HostEvent[] = [];
  let waiter: { pred: (e: HostEvent) => boolean; resolve: (e: HostEvent) => void } | undefined;
  const unsub = events.subscribe(kinds, (batch) => {
    seen.push(...batch);
    for (const e of batch) if (waiter?.pred(e)) { const w = waiter; waiter = undefined; w.resolve(e); }
  });
  return {
    seen, unsub,
    wait(pred: (e: HostEvent) => boolean, what: string, capMs = PATIENCE_MS): Promise<HostEvent> {
      const hit = seen.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what} within ${capMs} ms; saw ${seen.map((e) => e.kind + (e.kind === 'neighbour' ? ` ${formatIpv4(e.neighbour.dst)} ${e.op}` : '')).join(', ')}`)), capMs);
        waiter = { pred, resolve: (e) => { clearTimeout(timer); resolve(e); } };
      });
    },
  };
}

test('events: an address, a port joining a bridge, a neighbour appearing and going, a route deleted', async (t) => {
  const ns = await tempNetns(t, 'nlev');
  await ip(ns, 'link', 'add', 'br0', 'type', 'bridge');
  await ip(ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb');
  await ip(ns, 'link', 'set', 'br0', 'up');
  const events = new NetlinkEvents(ns);
  t.teardown(() => events.close());
  const c = collect(events, ['link', 'address', 'neighbour', 'route']);
  await ip(ns, 'addr', 'add', '10.8.0.1/24', 'dev', 'br0');
  const a = await c.wait((e) => e.kind === 'address' && e.op === 'new', 'address event');
  t.is(a.kind === 'address' && formatIpv4(a.address.address), '10.8.0.1');
  await ip(ns, 'link', 'set', 'va', 'master', 'br0');
  const br = (await new Rtnetlink(ns).links()).find((l) => l.name === 'br0')!;
  await c.wait((e) => e.kind === 'link' && e.link.name === 'va' && e.link.master === br.index, 'va joining br0');
  await ip(ns, 'link', 'set', 'va', 'nomaster');
  await c.wait((e) => e.kind === 'link' && e.link.name === 'va' && e.link.master === 0 && c.seen.indexOf(e) > 0, 'va leaving br0');
  // The bridge's own AF_BRIDGE RTM_DELLINK of its port is not a device deletion.
  t.false(c.seen.some((e) => e.kind === 'link' && e.op === 'del' && e.link.name === 'va'), 'a port leaving its bridge looked like a deletion');
  await ip(ns, 'neigh', 'add', '10.8.0.9', 'lladdr', '02:00:00:00:00:09', 'dev', 'br0', 'nud', 'reachable');
  const n = await c.wait((e) => e.kind === 'neighbour' && e.op === 'new' && formatIpv4(e.neighbour.dst) === '10.8.0.9', 'neighbour event');
  t.deepEqual(n.kind === 'neighbour' && [...n.neighbour.lladdr!], [2, 0, 0, 0, 0, 9]);
  await ip(ns, 'neigh', 'del', '10.8.0.9', 'dev', 'br0');
  await c.wait((e) => e.kind === 'neighbour' && e.op === 'del' && formatIpv4(e.neighbour.dst) === '10.8.0.9', 'neighbour deletion');
  await ip(ns, 'route', 'add', '250.0.0.0/8', 'dev', 'br0');
  await ip(ns, 'route', 'del', '250.0.0.0/8', 'dev', 'br0');
  await c.wait((e) => e.kind === 'route' && e.op === 'del' && e.route.dstLen === 8 && formatIpv4(e.route.dst) === '250.0.0.0', 'route deletion');
  await ip(ns, 'link', 'del', 'br0');
  await c.wait((e) => e.kind === 'link' && e.op === 'del' && e.link.name === 'br0', 'bridge deletion');
  c.unsub();
});

test('events: deleting a nexthop object takes its routes along, and only the nexthop\'s deletion is announced', async (t) => {
  const ns = await tempNetns(t, 'nlnh');
  await ip(ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb');
  await ip(ns, 'link', 'set', 'va', 'up');
  await ip(ns, 'link', 'set', 'vb', 'up'); // a nexthop needs the carrier
  await ip(ns, 'addr', 'add', '10.9.0.1/24', 'dev', 'va');
  await ip(ns, 'nexthop', 'add', 'id', '4194304007', 'via', '10.9.0.2', 'dev', 'va', 'proto', '250');
  await ip(ns, 'route', 'add', '250.7.0.0/16', 'nhid', '4194304007', 'proto', '250');
  const events = new NetlinkEvents(ns);
  t.teardown(() => events.close());
  const c = collect(events, ['route', 'nexthop']);
  await ip(ns, 'nexthop', 'del', 'id', '4194304007');
  const d = await c.wait((e) => e.kind === 'nexthop' && e.op === 'del', 'nexthop deletion');
  t.deepEqual(d.kind === 'nexthop' && [d.nexthop.id, d.nexthop.protocol, formatIpv4(d.nexthop.gateway!)], [4194304007, 250, '10.9.0.2']);
  t.false((await new Rtnetlink(ns).routes()).some((r) => r.dstLen === 16 && formatIpv4(r.dst) === '250.7.0.0'), 'the route outlived its nexthop');
  // A marker route after it: once its event is in, any route event for 250.7.0.0/16 would have been too.
  await ip(ns, 'route', 'add', '250.8.0.0/16', 'dev', 'va');
  await c.wait((e) => e.kind === 'route' && e.op === 'new' && formatIpv4(e.route.dst) === '250.8.0.0', 'marker route');
  t.false(c.seen.some((e) => e.kind === 'route' && formatIpv4(e.route.dst) === '250.7.0.0'), 'the kernel announced the flushed route after all (the watcher may rely on route events then)');
  c.unsub();
});

test('events lost to a full queue are reported as an overrun, and the socket keeps working', async (t) => {
  const ns = await tempNetns(t, 'nlovr');
  await ip(ns, 'link', 'add', 'br0', 'type', 'bridge');
  // The smallest queue the kernel allows; the event loop is blocked while 500 neighbours are added.
  const events = new NetlinkEvents(ns, 1);
  t.teardown(() => events.close());
  const c = collect(events, ['neighbour']);
  const lines = Array.from({ length: 500 }, (_, i) => `neigh add 10.7.${i >> 7}.${(i & 127) + 1} lladdr 02:00:00:00:00:01 dev br0 nud permanent`);
  execFileSync('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
  await c.wait((e) => e.kind === 'overrun', 'overrun');
  await ip(ns, 'neigh', 'add', '10.7.9.9', 'lladdr', '02:00:00:00:00:02', 'dev', 'br0');
  await c.wait((e) => e.kind === 'neighbour' && formatIpv4(e.neighbour.dst) === '10.7.9.9', 'an event after the overrun');
  t.pass();
});

test('a request answered with an error names it and the kernel\'s reason; a closed socket refuses', async (t) => {
  const ns = await tempNetns(t, 'nlerr');
  const sock = new NetlinkSocket({ netns: ns });
  // RTM_GETLINK of index 9999 (no such device): ENODEV.
  const ifinfo = new Uint8Array(16);
  new DataView(ifinfo.buffer).setInt32(4, 9999, LE);
  await t.throwsAsync(sock.request('get link 9999', (seq) => buildMessage(18, 1, seq, ifinfo)), { message: /^get link 9999: .*no such device \(ENODEV\)/i });
  sock.close();
  await t.throwsAsync(sock.request('after close', (seq) => buildMessage(18, 1, seq, ifinfo)), { message: /closed/ });
  t.throws(() => new NetlinkSocket({ netns: 'no-such-netns-here' }), { message: /no-such-netns-here/ });
});

// ---------------------------------------------------------------------------
// Changes: the same commands through rtnetlink and through `ip -batch` leave
// two namespaces alike; errors read as ip's.

const CHANGES: string[][] = [
  ['link', 'add', 'fanbr0', 'address', '02:fa:fa:01:0a:00', 'type', 'bridge'],
  ['link', 'set', 'dev', 'fanbr0', 'mtu', '1480', 'up'],
  ['link', 'set', 'dev', 'va', 'master', 'fanbr0', 'mtu', '1480', 'txqueuelen', '4096', 'up'],
  ['addr', 'add', '250.1.10.1/24', 'dev', 'fanbr0'],
  ['addr', 'add', '10.3.0.1/16', 'dev', 'vb'],
  ['link', 'set', 'dev', 'vb', 'up'],
  ['route', 'replace', '250.0.0.0/8', 'dev', 'vb', 'src', '250.1.10.1'],
  ['route', 'replace', '250.0.0.0/8', 'dev', 'vb', 'src', '250.1.10.1'],
  ['route', 'replace', '10.99.0.0/16', 'dev', 'vb'],
  ['rule', 'add', 'iif', 'vb', 'blackhole', 'pref', '90'],
  ['link', 'set', 'dev', 'fanbr0', 'address', '02:fa:fa:01:0a:01'],
  ['route', 'del', '10.99.0.0/16', 'dev', 'vb'],
  ['addr', 'del', '10.3.0.1/16', 'dev', 'vb'],
  ['link', 'set', 'dev', 'va', 'nomaster'],
  ['link', 'set', 'dev', 'va', 'master', 'fanbr0'],
];

async function snapshot(ns: string): Promise<unknown> {
  const j = async (...args: string[]) => JSON.parse((await ip(ns, '-j', ...args)).stdout) as Record<string, unknown>[];
  const pick = (o: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
  return {
    links: (await j('-d', 'link', 'show')).map((l) => pick(l, ['ifname', 'flags', 'mtu', 'master', 'address', 'txqlen', 'operstate'])),
    addrs: (await j('-4', 'addr', 'show')).map((a) => ({ ifname: a['ifname'], addr: (a['addr_info'] as Record<string, unknown>[]).map((x) => pick(x, ['local', 'prefixlen', 'scope', 'broadcast'])) })),
    routes: await j('-4', 'route', 'show', 'table', 'all'),
    rules: await j('-4', 'rule', 'show'),
  };
}

test('changes over rtnetlink leave the host as ip -batch leaves it; unknown commands still go to ip', async (t) => {
  const viaNetlink = await tempNetns(t, 'nlchg');
  const viaIp = await tempNetns(t, 'ipchg');
  for (const ns of [viaNetlink, viaIp]) {
    await ip(ns, 'link', 'add', 'va', 'address', '02:00:00:00:00:0a', 'type', 'veth', 'peer', 'name', 'vb', 'address', '02:00:00:00:00:0b');
  }
  const host = new LinuxHost(viaNetlink);
  for (const c of CHANGES) {
    t.truthy(parseIpWords(c), `${c.join(' ')} is sent over rtnetlink`);
    await host.apply([c]);
  }
  execFileSync('ip', ['-n', viaIp, '-batch', '-'], { input: CHANGES.map((c) => c.join(' ')).join('\n') + '\n' });
  t.deepEqual(await snapshot(viaNetlink), await snapshot(viaIp));
  // Outside the grammar: ip -batch does it (here: a tuntap and a next hop).
  for (const c of [['tuntap', 'add', 'mode', 'tun', 'name', 'tq0'], ['nexthop', 'add', 'id', '7', 'dev', 'vb'], ['route', 'replace', '10.5.0.0/16', 'via', '10.3.0.9', 'dev', 'vb']]) {
    t.is(parseIpWords(c), undefined, c.join(' '));
  }
  await host.apply([['tuntap', 'add', 'mode', 'tun', 'name', 'tq0']]);
  t.true((await host.links()).some((l) => l.name === 'tq0' && l.kind === 'tun'));
  await host.apply([['link', 'del', 'dev', 'fanbr0']]);
  t.false((await host.links()).some((l) => l.name === 'fanbr0'));
});

test('failed changes read as ip\'s own errors (teardown recognises "already gone" by them); -force goes on past them', async (t) => {
  const ns = await tempNetns(t, 'nlfail');
  await ip(ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb');
  // A main table with a route in it (in a namespace without one, the kernel says "FIB table does not exist").
  await ip(ns, 'addr', 'add', '10.2.0.1/24', 'dev', 'va');
  await ip(ns, 'link', 'set', 'va', 'up');
  const host = new LinuxHost(ns);
  const ipSays = async (c: string[]) => { try { await ip(ns, ...c); return ''; } catch (e) { return String((e as { stderr: string }).stderr).trim(); } };
  // [command, fand's message, ip's]: where the kernel gives an extended-ACK text, ip prints only that
  // ("Error: ipv4: Address not found."); fand prints strerror and the text, so teardown's patterns match.
  const cases: [string[], RegExp, RegExp][] = [
    [['route', 'del', '250.0.0.0/8', 'dev', 'va'], /RTNETLINK answers: No such process/, /No such process/],
    [['rule', 'del', 'iif', 'va', 'blackhole', 'pref', '90'], /RTNETLINK answers: No such file or directory/, /No such file or directory/],
    [['addr', 'del', '10.9.9.9/24', 'dev', 'va'], /RTNETLINK answers: Cannot assign requested address \(ipv4: Address not found\)/, /Cannot assign requested address|Address not found/],
    [['link', 'del', 'dev', 'nosuch0'], /Cannot find device "nosuch0"/, /Cannot find device "nosuch0"/],
    [['link', 'set', 'dev', 'va', 'master', 'nosuch1'], /Cannot find device "nosuch1"/, /"nosuch1" is wrong: Device does not exist/],
    [['addr', 'add', '10.1.1.1/24', 'dev', 'nosuch2'], /Cannot find device "nosuch2"/, /Cannot find device "nosuch2"/],
  ];
  for (const [c, ours, theirs] of cases) {
    const err = await host.apply([c]).then(() => undefined, (e: Error) => e.message);
    t.regex(err ?? '(no error)', ours, c.join(' '));
    t.regex(await ipSays(c), theirs, `ip itself: ${c.join(' ')}`);
  }
  await host.apply([['addr', 'add', '10.1.1.1/24', 'dev', 'va']]);
  await t.throwsAsync(host.apply([['addr', 'add', '10.1.1.1/24', 'dev', 'va']]), { message: /^ip addr add 10\.1\.1\.1\/24 dev va: RTNETLINK answers: File exists/ });
  // -force: every command is tried, the first error is reported.
  await t.throwsAsync(host.apply([['route', 'del', '250.0.0.0/8', 'dev', 'va'], ['addr', 'del', '10.1.1.1/24', 'dev', 'va']], { force: true }), { message: /No such process/ });
  t.deepEqual((await host.addresses()).find((a) => a.name === 'va')!.addresses.map((a) => a.prefix), [24], 'only 10.2.0.1/24 is left');
});

test('fuzz: the change grammar never throws on any words, and what it accepts builds well-formed messages', (t) => {
  const word = fc.oneof(fc.constantFrom('link', 'add', 'set', 'del', 'dev', 'addr', 'route', 'replace', 'rule', 'iif', 'blackhole', 'pref', 'mtu', 'txqueuelen',
    'address', 'master', 'nomaster', 'up', 'down', 'type', 'bridge', 'src', 'default', 'br0', '10.0.0.1/24', '10.0.0.0/8', '02:00:00:00:00:01', '1480', '90', '4294967296'), fc.string({ maxLength: 20 }));
  fc.assert(fc.property(fc.array(word, { maxLength: 12 }), (words) => {
    const c = parseIpWords(words);
    if (!c) return true;
    const msg = changeMessage(c, 1, () => 3);
    const [m, ...rest] = parseMessages(msg);
    return rest.length === 0 && m !== undefined && m.payload.length + 16 === msg.length;
  }), { numRuns: 5000 });
  t.pass();
});
