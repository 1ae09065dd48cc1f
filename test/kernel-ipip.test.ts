// kernel-ipip's routes: the table as data, and installing / removing all
// 65,533 of a /16 underlay in bulk on a real kernel. (This kernel has no
// ipip module, so a veth stands in for tunl0: the routes are the same
// `SLICE via HOST dev DEV onlink` routes. The UML tier runs the real thing.)
import test from 'ava';
import { missingSliceHosts, sliceDst, sliceRouteCommands, sliceRouteCommandsFor, sliceRouteDeleteCommands, remoteHostCount, FAND_ROUTE_PROTO } from '../src/dataplane/kernel-ipip/routes.js';
import { makeFanMap, parseNetwork } from '../src/fan/fanmap.js';
import { ensure, teardown, type Created } from '../src/host/ensure.js';
import { sliceRoutes } from '../src/host/resources.js';
import { IpCommand } from '../src/host/ip.js';
import { run } from '../src/demo/exec.js';
import { ip } from './helpers/packets.js';
import { Lab } from '../src/demo/lab.js';
import { chooseDataplane } from '../src/dataplane/select.js';

const map = makeFanMap(parseNetwork('250.0.0.0/8', 'overlay'), parseNetwork('172.16.0.0/16', 'underlay'));

test('one route per remote slice, none for this host, the network or the broadcast address', (t) => {
  const lines = sliceRouteCommands({ map, local: ip('172.16.3.4'), dev: 'tunl0', src: '250.3.4.1', fanIndex: 0 });
  t.is(lines.length, 2 * 65533);
  t.is(remoteHostCount(map.underlay), 65533);
  const nh = lines.filter((l) => l[0] === 'nexthop');
  const rt = lines.filter((l) => l[0] === 'route');
  t.is(lines.indexOf(rt[0]!), nh.length, 'nexthops come before the routes that use them');
  t.deepEqual(nh[0], ['nexthop', 'replace', 'id', String(0xfa000001), 'via', '172.16.0.1', 'dev', 'tunl0', 'onlink', 'proto', String(FAND_ROUTE_PROTO)]);
  t.deepEqual(rt[0], ['route', 'replace', '250.0.1.0/24', 'nhid', String(0xfa000001), 'src', '250.3.4.1', 'proto', String(FAND_ROUTE_PROTO)]);
  t.deepEqual(rt.at(-1)!.slice(2, 5), ['250.255.254.0/24', 'nhid', String(0xfa000000 + 0xfffe)]);
  t.deepEqual(nh.at(-1)!.slice(3, 6), [String(0xfa000000 + 0xfffe), 'via', '172.16.255.254']);
  t.false(rt.some((l) => l[2] === '250.3.4.0/24'));
  t.false(nh.some((l) => l[5] === '172.16.0.0' || l[5] === '172.16.255.255' || l[5] === '172.16.3.4'));
  const del = sliceRouteDeleteCommands({ map, local: ip('172.16.3.4'), dev: 'tunl0', src: '250.3.4.1', fanIndex: 0 });
  t.deepEqual(del[0], ['route', 'del', '250.0.1.0/24', 'proto', String(FAND_ROUTE_PROTO)]);
  t.deepEqual(del.at(-1), ['nexthop', 'del', 'id', String(0xfa000000 + 0xfffe)]);
  // another geometry, another fan: 10.0.0.0/8 over 192.168.16.0/20 gives /20 slices
  const m2 = makeFanMap(parseNetwork('10.0.0.0/8', 'overlay'), parseNetwork('192.168.16.0/20', 'underlay'));
  const l2 = sliceRouteCommands({ map: m2, local: ip('192.168.18.81'), dev: 'tunl0', src: '10.37.16.1', fanIndex: 1 }).filter((l) => l[0] === 'route');
  t.is(l2.length, 4093);
  t.deepEqual(l2[0]!.slice(2, 5), ['10.0.16.0/20', 'nhid', String(0xfa000000 + (1 << 20) + 1)]);
});

test('a repair puts back exactly the slice routes that are missing, with the ids and lines of a full install', (t) => {
  const spec = { map, local: ip('172.16.3.4'), dev: 'tunl0', src: '250.3.4.1', fanIndex: 0 };
  const all = sliceRouteCommands(spec);
  const present = new Set(all.filter((l) => l[0] === 'route').map((l) => l[2]!));
  t.deepEqual(missingSliceHosts(spec, present), []);
  present.delete('250.5.6.0/24');
  present.delete('250.0.1.0/24');
  present.add('250.3.4.0/24'); // this host's own slice is never routed to tunl0: not missing either way
  const lost = missingSliceHosts(spec, present);
  t.deepEqual(lost, [ip('172.16.0.1'), ip('172.16.5.6')]);
  t.is(sliceDst(spec, lost[1]!), '250.5.6.0/24');
  const lines = sliceRouteCommandsFor(spec, lost);
  const wanted = (dst: string) => { const r = all.find((l) => l[0] === 'route' && l[2] === dst)!; return [all.find((l) => l[0] === 'nexthop' && l[3] === r[4])!, r]; };
  const [nh1, rt1] = wanted('250.0.1.0/24');
  const [nh2, rt2] = wanted('250.5.6.0/24');
  t.deepEqual(lines, [nh1, nh2, rt1, rt2]);
  // another geometry: /24 slices of 10.0.0.0/16 over 192.168.1.0/24
  const m2 = makeFanMap(parseNetwork('10.0.0.0/16', 'overlay'), parseNetwork('192.168.1.0/24', 'underlay'));
  const s2 = { map: m2, local: ip('192.168.1.7'), dev: 'tunl0', src: '10.0.7.1', fanIndex: 1 };
  t.is(sliceDst(s2, ip('192.168.1.9')), '10.0.9.0/24');
  t.deepEqual(missingSliceHosts(s2, new Set(['10.0.1.0/24'])).length, 253 - 1);
});

test('auto picks kernel-ipip when the ipip module is there, and says why not kernel-fan', (t) => {
  const c = chooseDataplane('auto', { fanPatch: false, fanEvidence: 'the kernel created an ipip device but dropped its fan-map', ipip: true, tun: true, ebpf: 'not here', notes: [] });
  t.is(c.mode, 'kernel-ipip');
  t.regex(c.reason, /^no kernel Fan: the kernel created an ipip device but dropped its fan-map; ebpf: not here: kernel-ipip$/);
  t.is(chooseDataplane('auto', { fanPatch: false, fanEvidence: 'the kernel created an ipip device but dropped its fan-map', ipip: false, tun: true, ebpf: 'not here', notes: [] }).mode, 'userspace');
  t.throws(() => chooseDataplane('kernel-ipip', { fanPatch: false, fanEvidence: 'the kernel created an ipip device but dropped its fan-map', ipip: false, tun: true, ebpf: 'not here', notes: [] }), { message: /--dataplane kernel-ipip: this host cannot run it: ipip module not available/ });
  t.throws(() => chooseDataplane('auto', { fanPatch: false, fanEvidence: 'the kernel created an ipip device but dropped its fan-map', ipip: false, tun: false, ebpf: 'not here', notes: [] }), { message: /no dataplane can run/ });
});

test('installing and flushing the 65,533 routes of a /16 underlay in bulk', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('rt'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const ns = lab.hosts[0]!.ns;
  await run('ip', ['-n', ns, 'link', 'add', 'stand0', 'type', 'veth', 'peer', 'name', 'stand1']);
  await run('ip', ['-n', ns, 'link', 'set', 'stand0', 'up']);
  await run('ip', ['-n', ns, 'link', 'set', 'stand1', 'up']);
  await run('ip', ['-n', ns, 'addr', 'add', '250.1.10.1/24', 'dev', 'stand1']);
  const host = new IpCommand(ns);
  const count = async (what: 'route' | 'nexthop') => (await run('ip', ['-n', ns, what, 'show', 'proto', String(FAND_ROUTE_PROTO)])).stdout.split('\n').filter(Boolean).length;
  const r = sliceRoutes('stand0', '250.0.0.0/8', '172.16.0.0/16', '172.16.1.10', '250.1.10.1', 0, 65533);
  const created: Created[] = [];
  const logs: string[] = [];
  const t0 = Date.now();
  await ensure(host, [r], { owned: new Map(), onCreated: (c) => { created.push(c); }, log: (m) => logs.push(m) });
  const installMs = Date.now() - t0;
  t.is(await count('route'), 65533);
  t.is(await count('nexthop'), 65533);
  const t1 = Date.now();
  t.deepEqual(await teardown(host, created, (m) => logs.push(m)), []);
  const removeMs = Date.now() - t1;
  t.is(await count('route'), 0);
  t.is(await count('nexthop'), 0);
  t.log(`install ${installMs} ms, remove ${removeMs} ms`);
});

test('counters are read over rtnetlink when asked (IFLA_STATS64), equal to what ip -s shows', async (t) => {
  // This kernel has no tunl0: lo stands in (same RTM_GETLINK, same IFLA_STATS64).
  const { KernelIpipDataplane } = await import('../src/dataplane/kernel-ipip/index.js');
  const { makeLogger } = await import('../src/log.js');
  const dp = new KernelIpipDataplane('lo');
  const fan = { bridge: 'fan-250-1-10' } as unknown as import('../src/fan/resolved.js').ResolvedFan;
  await dp.start([fan], makeLogger('silent'));
  const ipStats = async () => (JSON.parse((await run('ip', ['-s', '-j', 'link', 'show', 'dev', 'lo'])).stdout) as { stats64: { tx: { packets: number } } }[])[0]!.stats64.tx.packets;
  const before = await ipStats();
  await run('ping', ['-c', '3', '-i', '0.2', '-W', '1', '127.0.0.1']);
  // Synchronous: the reading is the kernel's at the moment of the call, not a poll's.
  const tx = dp.counters()[0]!.total['tx.packets']!;
  const after = await ipStats();
  t.true(tx >= before + 6 && tx <= after, `tx ${tx}: between ${before} + 6 (3 pings, 3 replies on lo) and ${after}`);
  await dp.stop();
});
