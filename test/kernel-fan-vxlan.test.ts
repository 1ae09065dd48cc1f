// kernel-fan for VXLAN fans against a model of three kernels' rtnetlink
// answers (helpers/vxlan-fan-kernel.ts: the Fan patch, mainline before 6.12
// which skips attribute 33, and 6.12+ where 33 is IFLA_VXLAN_RESERVED_BITS).
// Above all: attribute 33 never goes to a kernel that has not proven the
// patch. The real Fan kernel runs the vxlan fan in the UML tier
// (test/uml-vxlan.test.ts).
import test from 'ava';
import fc from 'fast-check';
import { endianness } from 'node:os';
import {
  forgetVxlanFanProof, getLink, heldVxlanFanProof, parseVxlanLink, probeVxlanFan, vxlanFanLinkMessage, VXLAN_PROBE_MAP, type VxlanProbeIo, type VxlanFanProof,
} from '../src/dataplane/kernel-fan/vxlan.js';
import { KernelFanDataplane } from '../src/dataplane/kernel-fan/index.js';
import { chooseDataplane, type KernelFacts } from '../src/dataplane/select.js';
import { ensure, teardown, type Created } from '../src/host/ensure.js';
import { hostResources } from '../src/plan.js';
import { describe } from '../src/host/resources.js';
import { makeFanMap, parseNetwork, sliceFor, vxlanNameFor } from '../src/fan/fanmap.js';
import type { ResolvedFan } from '../src/fan/resolved.js';
import { FakeHost, link } from './helpers/fake-host.js';
import { VxlanKernelModel } from './helpers/vxlan-fan-kernel.js';
import { ip } from './helpers/packets.js';
import { tempNetns } from './helpers/netns.js';
import { fand } from './helpers/fand-cli.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const LE = endianness() === 'LE';

function vxlanFan(overlay = '250.0.0.0/8', underlay = '172.16.0.0/16', host = '172.16.3.4'): ResolvedFan {
  const map = makeFanMap(parseNetwork(overlay, 'overlay'), parseNetwork(underlay, 'underlay'));
  return {
    spec: { overlay: map.overlay, underlay: { kind: 'iface', name: 'eth0', prefix: map.underlay.prefix, text: `eth0/${map.underlay.prefix}` }, dhcp: false, hostReserve: 1, off: false, source: 'test', encap: 'vxlan' },
    map, iface: 'eth0', localUnderlay: ip(host), slice: sliceFor(map, ip(host)), bridge: 'fan-250-3-4', tun: vxlanNameFor(map.overlay), mtu: 1450,
    encap: { encap: 'vxlan', vni: map.overlay.network >>> 8, port: 8472 }, bridgePrefix: map.overlay.prefix,
  } as ResolvedFan;
}

function io(k: VxlanKernelModel, names: string[] = [], alive: number[] = []): VxlanProbeIo & { sent: number } {
  const o = {
    sent: 0,
    request: (m: Uint8Array) => { o.sent++; return k.request(m); },
    linkNames: async () => [...names, ...k.devs.keys()],
    fanVxlanVersion: async () => undefined,
    pidAlive: (pid: number) => alive.includes(pid),
  };
  return o;
}

test.serial.beforeEach(() => forgetVxlanFanProof());

test.serial('probe: nothing reaches a kernel whose ipip fan map is not proven (attribute 33 would mean something else on mainline)', async (t) => {
  const k = new VxlanKernelModel('6.12');
  const i = io(k);
  const r = await probeVxlanFan(i, { pid: 4242, ipip: { proven: false }, mayCreate: true });
  t.false(r.proven);
  t.is(i.sent, 0, 'not one request');
  t.regex(r.evidence, /never sent to a kernel without the Fan patch/);
  t.is(heldVxlanFanProof(), undefined);
});

test.serial('probe: the patched kernel reads the vxlan map back; the device is gone afterwards and the proof is held', async (t) => {
  const k = new VxlanKernelModel('patched');
  const r = await probeVxlanFan(io(k), { pid: 4242, ipip: { proven: true }, mayCreate: true });
  t.true(r.proven, r.evidence);
  t.regex(r.evidence, /read it back \(RTM_GETLINK, IFLA_VXLAN_FAN_MAP\)/);
  t.deepEqual(k.log, ['NEWLINK fanvxp4242 attr33', 'GETLINK fanvxp4242', 'DELLINK fanvxp4242']);
  t.is(k.devs.size, 0);
  t.truthy(heldVxlanFanProof());
  t.deepEqual(r.leftovers, []);
});

test.serial('probe: a kernel that skips attribute 33 creates a plain vxlan device: not proven, and removed', async (t) => {
  const k = new VxlanKernelModel('old');
  const r = await probeVxlanFan(io(k), { pid: 7, ipip: { proven: true }, mayCreate: true });
  t.false(r.proven);
  t.regex(r.evidence, /kept no fan-map 241\.0\.0\.0\/8:198\.51\.100\.0\/24 \(read back: 0 maps\)/);
  t.is(k.devs.size, 0);
  t.is(heldVxlanFanProof(), undefined);
});

test.serial('probe: 6.12+ refuses the 12-byte map as its reserved bits (ERANGE): not proven, nothing left', async (t) => {
  const k = new VxlanKernelModel('6.12');
  const r = await probeVxlanFan(io(k), { pid: 7, ipip: { proven: true }, mayCreate: true });
  t.false(r.proven);
  t.regex(r.evidence, /ERANGE/);
  t.is(k.devs.size, 0);
});

test.serial('probe: probe devices of dead fands are removed, a live one kept; `plan` without the module does not create', async (t) => {
  const k = new VxlanKernelModel('patched');
  k.add('fanvxp11', { vni: 1 });
  k.add('fanvxp12', { vni: 2 });
  const r = await probeVxlanFan(io(k, [], [12]), { pid: 13, ipip: { proven: true }, mayCreate: true });
  t.true(r.proven);
  t.deepEqual(r.staleRemoved, ['fanvxp11']);
  t.deepEqual([...k.devs.keys()], ['fanvxp12']);
  const k2 = new VxlanKernelModel('patched');
  const i2 = io(k2);
  const r2 = await probeVxlanFan(i2, { pid: 13, ipip: { proven: true }, mayCreate: false, whyNot: 'the vxlan module is not loaded' });
  t.false(r2.proven);
  t.is(i2.sent, 0);
  t.regex(r2.evidence, /not probed: the vxlan module is not loaded/);
});

test.serial('the message: IFLA_VXLAN_ID, LINK, LOCAL (be32), PORT (be16) and 33 nesting one 12-byte IFLA_FAN_MAPPING; refused without a proof', (t) => {
  t.throws(() => vxlanFanLinkMessage(undefined as unknown as VxlanFanProof, {
    name: 'fvx-250', vni: 1, port: 8472, link: 3, local: ip('172.16.3.4'), map: VXLAN_PROBE_MAP,
  }, 1), { message: /never sent to a kernel that has not proven it/ });
  const proof = { evidence: 'test' } as VxlanFanProof;
  const f = vxlanFan();
  const msg = vxlanFanLinkMessage(proof, { name: 'fvx-250', vni: 16384000, port: 8472, link: 3, local: ip('172.16.3.4'), map: f.map, mtu: 1450 }, 9);
  // Read back through the model of the patched kernel: what it stores is what was sent.
  const k = new VxlanKernelModel('patched');
  t.is(new DataView(k.request(msg).buffer).getInt32(16, LE), 0);
  const back = parseVxlanLink(k.request(getLinkOf('fvx-250')));
  t.like(back, { kind: 'vxlan', vni: 16384000, port: 8472, local: ip('172.16.3.4'), link: 3 });
  t.deepEqual(back.fanMaps, [{ overlay: { ...f.map.overlay }, underlay: { ...f.map.underlay } }]);
  // The struct: underlay be32, overlay be32, prefixes in host order.
  const at = [...msg].findIndex((_, i) => i + 16 <= msg.length && new DataView(msg.buffer, i).getUint16(0, LE) === 16 && new DataView(msg.buffer, i).getUint16(2, LE) === 1
    && new DataView(msg.buffer, i + 4).getUint32(0, false) === f.map.underlay.network);
  t.true(at > 0);
  t.is(new DataView(msg.buffer, at + 8).getUint32(0, false), f.map.overlay.network);
  t.is(new DataView(msg.buffer, at + 12).getUint16(0, LE), 16);
  t.is(new DataView(msg.buffer, at + 14).getUint16(0, LE), 8);
});

function getLinkOf(name: string): Uint8Array { return getLink(name, 1); }

test.serial('parseVxlanLink: 6.12\'s reserved bits in attribute 33 are not a fan map; no input makes it read outside its bytes', (t) => {
  const k = new VxlanKernelModel('6.12');
  k.add('vx0', { vni: 5 });
  const back = parseVxlanLink(k.request(getLinkOf('vx0')));
  t.like(back, { kind: 'vxlan', vni: 5 });
  t.deepEqual(back.fanMaps, []);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
    try { parseVxlanLink(b); } catch (e) { if (!(e instanceof Error) || e instanceof RangeError) throw e; }
  }), { numRuns: 2000 });
});

function host(kernel: VxlanKernelModel): FakeHost {
  const h = new FakeHost([link('lo', 1), link('eth0', 3)]);
  h.kernel = kernel;
  h.sysctls.set('net.ipv6.conf.fvx-250.disable_ipv6', '0');
  return h;
}
async function up(h: FakeHost, fans: ResolvedFan[], owned = new Map<string, Created>()) {
  const created: Created[] = [];
  const logs: string[] = [];
  await ensure(h, hostResources(fans, new KernelFanDataplane()), { owned, onCreated: (c) => { created.push(c); }, log: (m) => { logs.push(m); } });
  return { created, logs };
}

test.serial('kernel-fan plans a VXLAN fan as LXD built it: bridge with the overlay\'s /8, a vxlan device with the map as its port, no route', (t) => {
  t.deepEqual(hostResources([vxlanFan()], new KernelFanDataplane()).map(describe), [
    'sysctl  net.ipv4.ip_forward = 1',
    'bridge  fan-250-3-4 mtu 1450 address 02:fa:fa:03:04:00',
    'address 250.3.4.1/8 on fan-250-3-4',
    'vxlan   fvx-250 type vxlan id 16384000 dev eth0 dstport 8472 local 172.16.3.4 fan-map 250.0.0.0/8:172.16.0.0/16 master fan-250-3-4 mtu 1450 (rtnetlink IFLA_VXLAN_FAN_MAP, read back)',
  ]);
});

test.serial('ensure on the patched kernel: created with the map, read back, made a bridge port; teardown removes it', async (t) => {
  const k = new VxlanKernelModel('patched');
  await probeVxlanFan(io(k), { pid: 1, ipip: { proven: true }, mayCreate: true });
  const h = host(k);
  const { created, logs } = await up(h, [vxlanFan()]);
  t.true(logs.some((l) => /created vxlan fan fvx-250: VNI 16384000 port 8472 fan-map 250\.0\.0\.0\/8:172\.16\.0\.0\/16 \(read back\)/.test(l)), logs.join('\n'));
  t.like(k.devs.get('fvx-250'), { vni: 16384000, port: 8472, local: ip('172.16.3.4'), link: 3 });
  t.true(h.applied.some((c) => c.join(' ') === 'link set dev fvx-250 master fan-250-3-4 mtu 1450 up'));
  t.is(h.sysctls.get('net.ipv6.conf.fvx-250.disable_ipv6'), '1');
  t.true(created.some((c) => c.resource.kind === 'fan-vxlan'));
  // Again, as a restart finds it: kept, not recreated.
  k.log.length = 0;
  h.linkList.push({ ...link('fvx-250', k.devs.get('fvx-250')!.index, 'vxlan', 1450) });
  await up(h, [vxlanFan()], new Map(created.map((c) => [c.resource.id, c])));
  t.deepEqual(k.log.filter((l) => l.startsWith('NEWLINK') || l.startsWith('DELLINK')), []);
  const tlogs: string[] = [];
  t.deepEqual(await teardown(h, created, (m) => tlogs.push(m)), []);
  t.true(h.applied.some((c) => c.join(' ') === 'link del dev fvx-250'));
});

test.serial('ensure without the proof refuses before sending anything with attribute 33', async (t) => {
  const k = new VxlanKernelModel('6.12');
  const h = host(k);
  await t.throwsAsync(up(h, [vxlanFan()]), { message: /vxlan fan map is not proven \(fand never sends IFLA_VXLAN_FAN_MAP unproven\)/ });
  t.false(k.log.some((l) => l.includes('attr33')));
});

test.serial('a vxlan device fand did not create, with other settings, is an error naming the differences', async (t) => {
  const k = new VxlanKernelModel('patched');
  await probeVxlanFan(io(k), { pid: 1, ipip: { proven: true }, mayCreate: true });
  k.add('fvx-250', { vni: 42, port: 4789 });
  const h = host(k);
  h.linkList.push(link('fvx-250', k.devs.get('fvx-250')!.index, 'vxlan'));
  await t.throwsAsync(up(h, [vxlanFan()]), { message: /fvx-250: a vxlan device of that name exists with other settings \(VNI 42 \(want 16384000\); port 4789 \(want 8472\).*fan maps none.*\) and fand did not create it/ });
});

test.serial('auto picks kernel-fan for VXLAN fans only where the vxlan map is proven', (t) => {
  const k: KernelFacts = { fanPatch: true, fanEvidence: 'ipip read back', ipip: true, tun: true, ebpf: 'not here', notes: [] };
  t.is(chooseDataplane('auto', k, ['vxlan']).mode, 'userspace');
  t.is(chooseDataplane('auto', { ...k, fanVxlan: false, fanVxlanEvidence: 'kept no fan-map' }, ['vxlan']).mode, 'userspace');
  const c = chooseDataplane('auto', { ...k, fanVxlan: true, fanVxlanEvidence: 'a vxlan device read it back' }, ['vxlan', 'ipip']);
  t.is(c.mode, 'kernel-fan');
  t.deepEqual(c.carries, ['ipip', 'vxlan']);
  t.regex(c.fanEvidence ?? '', /vxlan fan map: a vxlan device read it back/);
});

test.serial('this machine\'s kernel (mainline, where 33 is IFLA_VXLAN_RESERVED_BITS): plan says the vxlan map was not probed; a forced kernel-fan is refused; no device made', async (t) => {
  const ns = await tempNetns(t, 'fvxprobe');
  await run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  await run('ip', ['-n', ns, 'addr', 'add', '172.16.3.4/16', 'dev', 'eth0']);
  const before = (await run('ip', ['-n', ns, '-o', 'link', 'show'])).stdout;
  const plan = await fand(['plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--encap', 'vxlan', '--json'], ns);
  t.is(plan.code, 0, plan.stderr);
  const p = JSON.parse(plan.stdout) as { dataplane: { mode: string; fanEvidence: string } };
  t.is(p.dataplane.mode, 'userspace');
  t.regex(p.dataplane.fanEvidence, /vxlan fan map: not probed: the ipip fan map is not proven here, and IFLA_VXLAN_FAN_MAP \(33\) is never sent/);
  const forced = await fand(['run', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--encap', 'vxlan', '--dataplane', 'kernel-fan', '--no-nat'], ns);
  t.is(forced.code, 2);
  t.regex(forced.stderr, /--dataplane kernel-fan: this host cannot run it: no kernel Fan/);
  t.is((await run('ip', ['-n', ns, '-o', 'link', 'show'])).stdout, before, 'no device left behind');
});

test.serial('this machine\'s kernel: a plain vxlan device (made by ip, never with 33) reads back with whatever 33 holds here, and no fan map', async (t) => {
  const ns = await tempNetns(t, 'fvxread');
  await run('ip', ['-n', ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '77', 'dstport', '8472', 'local', '127.0.0.1']);
  const mod = new URL('../src/dataplane/kernel-fan/vxlan.js', import.meta.url).pathname;
  const nat = new URL('../src/native/index.js', import.meta.url).pathname;
  const js = `import { getLink, parseVxlanLink } from '${mod}'; import { native } from '${nat}';
    const raw = native.netlinkRequest(getLink('vx0', 1), 5000);
    const r = parseVxlanLink(raw);
    process.stdout.write(JSON.stringify({ kind: r.kind, vni: r.vni, port: r.port, maps: r.fanMaps.length }));`;
  const out = await run('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', js]);
  t.deepEqual(JSON.parse(out.stdout), { kind: 'vxlan', vni: 77, port: 8472, maps: 0 });
});
