// kernel-fan against a model of the patched kernel's rtnetlink answers
// (helpers/fan-kernel.ts): the plan, the maps on tunl0 read back, teardown
// through the EINVAL of the last map, and the behavioural probe with its
// failure paths. The real Fan kernel runs these in the UML tier
// (test/uml-fan.test.ts).
import test from 'ava';
import { KernelFanDataplane } from '../src/dataplane/kernel-fan/index.js';
import { probeFanKernel, PROBE_MAP, type FanProbeIo } from '../src/dataplane/kernel-fan/probe.js';
import { readFanMaps } from '../src/dataplane/kernel-fan/maps.js';
import { ensure, teardown, type Created } from '../src/host/ensure.js';
import { hostResources } from '../src/plan.js';
import { makeFanMap, parseNetwork, sliceFor, type FanMap } from '../src/fan/fanmap.js';
import { formatCidr } from '../src/fan/ipv4.js';
import type { ResolvedFan } from '../src/fan/resolved.js';
import { describe } from '../src/host/resources.js';
import { FakeHost, link } from './helpers/fake-host.js';
import { FanKernelModel } from './helpers/fan-kernel.js';
import { ip } from './helpers/packets.js';
import { tempNetns } from './helpers/netns.js';
import { fand } from './helpers/fand-cli.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

function fanOf(overlay: string, underlay: string, host: string, bridge: string): ResolvedFan {
  const map = makeFanMap(parseNetwork(overlay, 'overlay'), parseNetwork(underlay, 'underlay'));
  return {
    spec: { overlay: map.overlay, underlay: { kind: 'iface', name: 'eth0', prefix: map.underlay.prefix, text: `eth0/${map.underlay.prefix}` }, dhcp: false, hostReserve: 1, off: false, source: 'test' },
    map, iface: 'eth0', localUnderlay: ip(host), slice: sliceFor(map, ip(host)), bridge, tun: 'ftun-x', mtu: 1480,
    encap: { encap: 'ipip' }, bridgePrefix: map.sliceLen,
  };
}
const fan = fanOf('250.0.0.0/8', '172.16.0.0/16', '172.16.3.4', 'fan-250-3-4');
const fan2 = fanOf('100.64.0.0/10', '172.16.3.0/24', '172.16.3.4', 'fan-100-65');
const maps = (k: FanKernelModel) => k.devs.get('tunl0')!.maps.map((m) => `${formatCidr(m.overlay)}:${formatCidr(m.underlay)}`);
const text = (m: FanMap) => `${formatCidr(m.overlay)}:${formatCidr(m.underlay)}`;

function fanHost(patched = true): { host: FakeHost; kernel: FanKernelModel } {
  const host = new FakeHost([link('lo', 1), link('eth0', 3), { ...link('tunl0', 2, 'ipip', 1480), up: false }]);
  const kernel = new FanKernelModel(patched);
  host.kernel = kernel;
  return { host, kernel };
}

async function up(host: FakeHost, fans: ResolvedFan[], owned = new Map<string, Created>()): Promise<{ created: Created[]; logs: string[] }> {
  const created: Created[] = [];
  const logs: string[] = [];
  await ensure(host, hostResources(fans, new KernelFanDataplane()), { owned, onCreated: (c) => { created.push(c); }, log: (m) => { logs.push(m); } });
  return { created, logs };
}

test('kernel-fan plans what fanctl does: tunl0 up, the map on tunl0, the overlay routed into tunl0 from the bridge address', (t) => {
  t.deepEqual(hostResources([fan], new KernelFanDataplane()).map(describe), [
    'sysctl  net.ipv4.ip_forward = 1',
    'bridge  fan-250-3-4 mtu 1480 address 02:fa:fa:03:04:00',
    'address 250.3.4.1/24 on fan-250-3-4',
    'link    tunl0 up mtu 1480',
    'fanmap  tunl0 fan-map 250.0.0.0/8:172.16.0.0/16 (rtnetlink IFLA_IPTUN_FAN_MAP, read back)',
    'route   250.0.0.0/8 dev tunl0 src 250.3.4.1',
  ]);
});

test('two fans share tunl0 (one map each); teardown removes both, the last one through its EINVAL, and restores tunl0', async (t) => {
  const { host, kernel } = fanHost();
  const { created } = await up(host, [fan, fan2]);
  t.deepEqual(maps(kernel), [text(fan.map), text(fan2.map)]);
  t.deepEqual(host.applied.filter((c) => c[0] === 'route'), [
    ['route', 'replace', '250.0.0.0/8', 'dev', 'tunl0', 'src', '250.3.4.1'],
    ['route', 'replace', '100.64.0.0/10', 'dev', 'tunl0', 'src', '100.65.0.1'],
  ]);
  t.true(host.applied.some((c) => c.join(' ') === 'link set dev tunl0 mtu 1480 up'));
  host.applied.length = 0;
  const logs: string[] = [];
  t.deepEqual(await teardown(host, created, (m) => logs.push(m)), [], 'no teardown error, though the kernel answered EINVAL');
  t.deepEqual(maps(kernel), [], 'no map left (read back)');
  t.true(logs.some((l) => /removed fan-map 250\.0\.0\.0\/8:172\.16\.0\.0\/16 from tunl0 \(its last map: the kernel answers EINVAL/.test(l)), logs.join('\n'));
  t.true(host.applied.some((c) => c.join(' ') === 'link set dev tunl0 mtu 1480 down'), 'tunl0 back down');
});

test('a map fanctl left on tunl0 is used and left in place; a conflicting one is an error naming both', async (t) => {
  const { host, kernel } = fanHost();
  kernel.devs.get('tunl0')!.maps.push({ overlay: fan.map.overlay, underlay: fan.map.underlay });
  const { created, logs } = await up(host, [fan]);
  t.false(created.some((c) => c.resource.kind === 'fan-map'), 'not recorded as fand\'s');
  t.true(logs.some((l) => /already on tunl0 \(not fand's: it stays when fand stops\)/.test(l)));
  t.deepEqual(await teardown(host, created, () => undefined), []);
  t.deepEqual(maps(kernel), [text(fan.map)]);

  const other = fanHost();
  other.kernel.devs.get('tunl0')!.maps.push({ overlay: fan.map.overlay, underlay: { network: ip('10.9.0.0'), prefix: 16 } });
  await t.throwsAsync(up(other.host, [fan]), { message: /tunl0 already maps 250\.0\.0\.0\/8 to underlay 10\.9\.0\.0\/16, not 172\.16\.0\.0\/16/ });
});

test('restart after kill -9: the map fand left is adopted, not added twice (no EEXIST)', async (t) => {
  const { host, kernel } = fanHost();
  const first = await up(host, [fan]);
  const owned = new Map(first.created.map((c) => [c.resource.id, c]));
  const second = await up(host, [fan], owned);
  t.true(second.created.some((c) => c.resource.kind === 'fan-map'));
  t.deepEqual(maps(kernel), [text(fan.map)]);
  t.deepEqual(await teardown(host, second.created, () => undefined), []);
  t.deepEqual(maps(kernel), []);
});

test('a kernel without the patch refuses the map on tunl0, and the error says so', async (t) => {
  const { host } = fanHost(false);
  await t.throwsAsync(up(host, [fan]), { message: /fan-map 250\.0\.0\.0\/8:172\.16\.0\.0\/16 on tunl0: the kernel refused it: EINVAL/ });
});

test('teardown reports a map the kernel kept', async (t) => {
  const { host, kernel } = fanHost();
  const { created } = await up(host, [fan]);
  const real = kernel.request.bind(kernel);
  // A kernel that acknowledges the removal but keeps the map.
  kernel.request = (m: Uint8Array) => (new DataView(m.buffer, m.byteOffset).getUint16(4, true) === 16 ? probeAck(m) : real(m));
  const errors = await teardown(host, created.filter((c) => c.resource.kind === 'fan-map'), () => undefined);
  t.is(errors.length, 1);
  t.regex(errors[0]!, /fan-map:tunl0:250\.0\.0\.0\/8: fan-map 250\.0\.0\.0\/8:172\.16\.0\.0\/16 on tunl0: still there after removal \(kernel answered success\)/);
});

/** An ACK for any request (for the kernel that lies above). */
function probeAck(m: Uint8Array): Uint8Array {
  const b = new Uint8Array(36);
  const v = new DataView(b.buffer);
  v.setUint32(0, 36, true); v.setUint16(4, 2, true); v.setUint32(8, new DataView(m.buffer, m.byteOffset).getUint32(8, true), true);
  return b;
}

// ---------------------------------------------------------------------------
// The probe

function probeIo(kernel: FanKernelModel, version?: string, alive: number[] = []): FanProbeIo {
  return {
    request: (m) => kernel.request(m),
    linkNames: async () => [...kernel.devs.keys()],
    fanVersion: async () => version,
    pidAlive: (pid) => alive.includes(pid),
  };
}

test('probe: a patched kernel reads the map back, in a namespace without /proc/sys/net/fan; nothing is left', async (t) => {
  const k = new FanKernelModel(true);
  const f = await probeFanKernel(probeIo(k), { pid: 4242, mayCreate: true });
  t.true(f.proven);
  t.regex(f.evidence, /^an ipip device created with fan-map 240\.0\.0\.0\/8:192\.0\.2\.0\/24 read it back \(RTM_GETLINK, IFLA_IPTUN_FAN_MAP\): Fan kernel$/);
  t.regex(f.hint, /version absent/);
  t.deepEqual([...k.devs.keys()], ['tunl0']);
  t.deepEqual(k.log, ['NEWLINK fanprobe4242', 'GETLINK fanprobe4242', 'DELLINK fanprobe4242']);
  t.deepEqual(k.devs.get('tunl0')!.maps, [], 'tunl0 untouched');
});

test('probe: a stock kernel creates the device silently without the map: not a Fan kernel', async (t) => {
  const k = new FanKernelModel(false);
  const f = await probeFanKernel(probeIo(k, '3'), { pid: 7, mayCreate: true });
  t.false(f.proven);
  t.regex(f.evidence, /created an ipip device but dropped its fan-map .* no kernel Fan patch/);
  t.is(f.hint, '/proc/sys/net/fan/version = 3');
  t.deepEqual([...k.devs.keys()], ['tunl0']);
});

test('probe: no ipip in the kernel is the reason given; plan does not create where that would load a module', async (t) => {
  const k = new FanKernelModel(false, false);
  const f = await probeFanKernel(probeIo(k), { pid: 7, mayCreate: true });
  t.false(f.proven);
  t.regex(f.evidence, /^creating an ipip device failed: EOPNOTSUPP \(no ipip support in this kernel\)$/);
  const k2 = new FanKernelModel(true);
  const g = await probeFanKernel(probeIo(k2), { pid: 7, mayCreate: false, whyNot: 'the ipip module is not loaded' });
  t.false(g.proven);
  t.is(g.evidence, 'not probed: the ipip module is not loaded');
  t.deepEqual(k2.log, []);
});

test('probe: the device goes even when reading it back fails; probe devices of dead fands are removed, live ones kept', async (t) => {
  const k = new FanKernelModel(true);
  k.devs.set('fanprobe11', { index: 90, kind: 'ipip', maps: [PROBE_MAP], link: 1, local: 1, fallback: false });
  k.devs.set('fanprobe12', { index: 91, kind: 'ipip', maps: [PROBE_MAP], link: 1, local: 2, fallback: false });
  const io = probeIo(k, undefined, [12]);
  const real = io.request;
  io.request = (m) => { if (new DataView(m.buffer, m.byteOffset).getUint16(4, true) === 18) throw new Error('netlink: recv: timed out'); return real(m); };
  const f = await probeFanKernel(io, { pid: 99, mayCreate: true });
  t.false(f.proven);
  t.regex(f.evidence, /reading the probe device fanprobe99 back failed: netlink: recv: timed out/);
  t.deepEqual(f.staleRemoved, ['fanprobe11']);
  t.deepEqual([...k.devs.keys()].sort(), ['fanprobe12', 'tunl0']);
  t.deepEqual(f.leftovers, []);
});

test('probe: a device that cannot be removed is reported as left over', async (t) => {
  const k = new FanKernelModel(true);
  const io = probeIo(k);
  const real = io.request;
  io.request = (m) => (new DataView(m.buffer, m.byteOffset).getUint16(4, true) === 17 ? probeErr(m, -1) : real(m));
  const f = await probeFanKernel(io, { pid: 5, mayCreate: true });
  t.true(f.proven);
  t.deepEqual(f.leftovers, ['fanprobe5 (RTM_DELLINK: EPERM)']);
});

test('readFanMaps: a missing tunl0 says how it appears', async (t) => {
  const k = new FanKernelModel(true, false);
  const host = new FakeHost([]);
  host.kernel = k;
  await t.throwsAsync(readFanMaps(host, 'tunl0'), { message: 'tunl0: no such device (it appears once the ipip module is loaded)' });
});

function probeErr(m: Uint8Array, err: number): Uint8Array {
  const b = probeAck(m);
  new DataView(b.buffer).setInt32(16, err, true);
  return b;
}

test('this machine\'s kernel (no ipip): plan and a forced kernel-fan say creating an ipip device failed, and leave no device', async (t) => {
  const ns = await tempNetns(t, 'fprobe');
  await run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  await run('ip', ['-n', ns, 'addr', 'add', '172.16.3.4/16', 'dev', 'eth0']);
  const before = (await run('ip', ['-n', ns, '-o', 'link', 'show'])).stdout;
  const plan = await fand(['plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--json'], ns);
  t.is(plan.code, 0, plan.stderr);
  const p = JSON.parse(plan.stdout) as { dataplane: { mode: string; reason: string; fanEvidence: string } };
  t.regex(p.dataplane.fanEvidence, /^(creating an ipip device failed: EOPNOTSUPP|not probed: the ipip module is not loaded)/);
  t.regex(p.dataplane.fanEvidence, /\/proc\/sys\/net\/fan\/version absent/);
  t.regex(p.dataplane.reason, /^no kernel Fan: /);
  const forced = await fand(['run', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--dataplane', 'kernel-fan', '--no-nat'], ns);
  t.is(forced.code, 2);
  t.regex(forced.stderr, /--dataplane kernel-fan: this host cannot run it: no kernel Fan: creating an ipip device failed: EOPNOTSUPP/);
  t.is((await run('ip', ['-n', ns, '-o', 'link', 'show'])).stdout, before, 'no device left behind');
});
