// The encapsulation choice of a fan, where a user meets it: /etc/network/fan
// (`type vxlan`, `vxlan-port N`, `vni N`), the command line (--encap,
// --vxlan-port, --vni), `fand map`, `fand plan` (the VXLAN fan's bridge with
// the overlay's prefix, MTU underlay - 50, the TAP on the bridge, no route),
// the dataplane choice (kernel-ipip carries no VXLAN), DHCP's netmask, and
// `fand integrate` (containers in the overlay's subnet).
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkFans, ConfigError, parseFanFile } from '../src/config/fanfile.js';
import { chooseDataplane, DataplaneError } from '../src/dataplane/select.js';
import { defaultVni, encapSettings } from '../src/fan/encap.js';
import { resolveFans } from '../src/fan/resolve.js';
import { hostResources, summarize } from '../src/plan.js';
import { describe } from '../src/host/resources.js';
import { UserspaceVxlanDataplane } from '../src/dataplane/userspace-vxlan/index.js';
import { allowedOffloads, chooseOffloads } from '../src/dataplane/userspace-vxlan/offload.js';
import { dnsmasqArgs } from '../src/dhcp/dnsmasq.js';
import { cniConflist, dockerNetwork } from '../src/integrate/index.js';
import { Lab } from '../src/demo/lab.js';
import { fand } from './helpers/fand-cli.js';
import { FakeHost, link } from './helpers/fake-host.js';
import { ip } from './helpers/packets.js';

const F = '/etc/network/fan';

test('config: type vxlan, vxlan-port and vni on a fan line; ipip stays the default', (t) => {
  const [a, b, c] = parseFanFile([
    '240.0.0.0/8 eth0/16 dhcp type vxlan',
    '250.0.0.0/8 eth0/16 type vxlan vxlan-port 4789 vni 42',
    '10.0.0.0/8 eth0/16',
  ].join('\n'), F);
  t.like(a, { encap: 'vxlan', dhcp: true });
  t.deepEqual(encapSettings({ encap: a!.encap!, vxlanPort: a!.vxlanPort, vni: a!.vni }, a!.overlay), { encap: 'vxlan', vni: 15728640, port: 8472 });
  t.like(b, { encap: 'vxlan', vxlanPort: 4789, vni: 42 });
  t.is(c!.encap, undefined);
  t.deepEqual(encapSettings({ encap: 'ipip' }, c!.overlay), { encap: 'ipip' });
});

const bad: [string, RegExp][] = [
  ['240.0.0.0/8 eth0/16 type gre', /:1: type 'gre': must be ipip or vxlan/],
  ['240.0.0.0/8 eth0/16 type', /:1: option 'type' needs a value \(type ipip\|vxlan\)/],
  ['240.0.0.0/8 eth0/16 type vxlan vni 16777216', /:1: vni 16777216: a VNI is 0\.\.16777215/],
  ['240.0.0.0/8 eth0/16 type vxlan vxlan-port 0', /:1: vxlan-port 0: a UDP port is 1\.\.65535/],
  ['240.0.0.0/8 eth0/16 type vxlan vxlan-port 8472x', /:1: vxlan-port '8472x' must be a whole number/],
  ['240.0.0.0/8 eth0/16 vni 5', /:1: a VNI and a VXLAN port only apply to VXLAN fans/],
  ['240.0.0.0/8 eth0/16 type vxlan type ipip', /:1: duplicate option 'type'/],
];
for (const [line, message] of bad) {
  test(`config: rejects "${line}"`, (t) => {
    const e = t.throws(() => parseFanFile(line, F), { instanceOf: ConfigError });
    t.regex(e!.message, message);
  });
}

test('config: two VXLAN fans on one VNI and port are an error naming both lines; another VNI is fine', (t) => {
  const same = parseFanFile('240.0.0.0/8 eth0/16 type vxlan vni 7\n250.0.0.0/8 eth0/16 type vxlan vni 7\n', F);
  t.throws(() => checkFans(same), { message: /VXLAN fans 240\.0\.0\.0\/8 \(.*:1\) and 250\.0\.0\.0\/8 \(.*:2\) both use VNI 7 on port 8472; give one another vni/ });
  t.notThrows(() => checkFans(parseFanFile('240.0.0.0/8 eth0/16 type vxlan\n250.0.0.0/8 eth0/16 type vxlan\n', F)));
});

test('resolve and plan: the VXLAN fan as LXD sets it up, bridge /8, MTU underlay - 50, a TAP port, no route', async (t) => {
  const host = new FakeHost([link('lo', 1), link('eth0', 2, undefined, 9000)], [{ name: 'eth0', addresses: [{ address: ip('172.16.3.4'), prefix: 16 }] }]);
  const [fan] = await resolveFans(parseFanFile('240.0.0.0/8 eth0/16 type vxlan dhcp', F), host);
  t.like(fan, { tun: 'fvx-240', mtu: 8950, bridgePrefix: 8, bridge: 'fan-240-3-4', encap: { encap: 'vxlan', vni: 15728640, port: 8472 } });
  t.like(summarize(fan!), { subnet: '240.0.0.0/8', encapsulation: 'vxlan', vni: 15728640, port: 8472, bridgeAddress: '240.3.4.1', containers: '240.3.4.2-240.3.4.254' });
  t.deepEqual(hostResources([fan!], new UserspaceVxlanDataplane(2)).map(describe), [
    'sysctl  net.ipv4.ip_forward = 1',
    'bridge  fan-240-3-4 mtu 8950 address 02:fa:f0:03:04:00',
    'address 240.3.4.1/8 on fan-240-3-4',
    'tap     fvx-240 mtu 65000 multi-queue txqueuelen 4096 vnet_hdr, port of fan-240-3-4',
  ]);
  // DHCP: the slice's range, the overlay's netmask, the fan MTU
  const args = dnsmasqArgs({ bridge: fan!.bridge, first: '240.3.4.2', last: '240.3.4.254', prefixLen: fan!.bridgePrefix, router: '240.3.4.1', mtu: fan!.mtu, leaseFile: '/tmp/x' });
  t.true(args.includes('--dhcp-range=240.3.4.2,240.3.4.254,255.0.0.0,1h'), args.join(' '));
  t.true(args.includes('--dhcp-option-force=option:mtu,8950'));
});

test('dataplane: kernel-ipip carries no VXLAN fans; kernel-fan needs the vxlan fan map proven; userspace carries both', (t) => {
  const facts = { fanPatch: false, fanEvidence: 'the kernel created an ipip device but dropped its fan-map', ipip: true, tun: true, ebpf: 'not here', notes: [] };
  t.like(chooseDataplane('auto', facts, ['ipip']), { mode: 'kernel-ipip', carries: ['ipip'] });
  // ebpf carries IPIP only: a VXLAN fan passes it by
  t.like(chooseDataplane('auto', { ...facts, ebpf: undefined }, ['ipip']), { mode: 'ebpf', carries: ['ipip'] });
  t.regex(chooseDataplane('auto', { ...facts, ebpf: undefined }, ['ipip', 'vxlan']).reason, /ebpf carries no VXLAN fans; kernel-ipip carries no VXLAN fans: userspace/);
  const c = chooseDataplane('auto', facts, ['ipip', 'vxlan']);
  t.is(c.mode, 'userspace');
  t.regex(c.reason, /kernel-ipip carries no VXLAN fans: userspace/);
  t.throws(() => chooseDataplane('kernel-ipip', facts, ['vxlan']), { instanceOf: DataplaneError, message: /--dataplane kernel-ipip: this host cannot run it: kernel-ipip carries no VXLAN fans/ });
  const fan = { ...facts, fanPatch: true };
  t.regex(chooseDataplane('auto', fan, ['vxlan']).reason, /no vxlan fan map on this kernel .*; ebpf: not here; kernel-ipip carries no VXLAN fans: userspace/);
  t.like(chooseDataplane('auto', { ...fan, fanVxlan: true }, ['vxlan']), { mode: 'kernel-fan', carries: ['ipip', 'vxlan'] });
});

test('UDP offloads: chosen per feature, each saying why', (t) => {
  const all = chooseOffloads({ gso: 0, gro: 0, groGet: 0 });
  t.like(all, { gso: true, gro: true });
  t.regex(all.notes.join(' '), /UDP_SEGMENT on.*UDP_GRO on \(read back with getsockopt\)/);
  const old = chooseOffloads({ gso: 92, gro: 92, groGet: 92 });
  t.like(old, { gso: false, gro: false });
  t.regex(old.notes.join(' '), /UDP_SEGMENT unavailable \(ENOPROTOOPT; needs Linux 4\.18\).*UDP_GRO unavailable \(ENOPROTOOPT; needs Linux 5\.0\)/);
  const mid = chooseOffloads({ gso: 0, gro: 0, groGet: 92 });
  t.like(mid, { gso: true, gro: true });
  t.regex(mid.notes.join(' '), /not readable back \(getsockopt: ENOPROTOOPT; needs Linux 5\.12\)/);
  const off = chooseOffloads({ gso: 0, gro: 0, groGet: 0, uso: 0 }, { gso: false, gro: true, uso: false });
  t.like(off, { gso: false, gro: true, uso: false });
  t.regex(off.notes.join(' '), /UDP_SEGMENT turned off.*TAP USO turned off/);
  t.like(chooseOffloads({ gso: 0, gro: 0, groGet: 0, uso: 0 }), { uso: true });
  t.regex(chooseOffloads({ gso: 0, gro: 0, groGet: 0, uso: 22 }).notes.join(' '), /TAP USO unavailable \(TUNSETOFFLOAD: EINVAL; needs Linux 6\.2\)/);
  t.false(all.uso, 'not probed: off');
  t.deepEqual(allowedOffloads({ FAND_UDP_OFFLOAD: 'gso,uso' }), { gso: true, gro: false, uso: true });
  t.deepEqual(allowedOffloads({ FAND_UDP_OFFLOAD: 'none' }), { gso: false, gro: false, uso: false });
  t.throws(() => allowedOffloads({ FAND_UDP_OFFLOAD: 'tso' }), { message: /some of gso,gro,uso/ });
});

test('integrate: a VXLAN fan\'s containers are addressed in the overlay (/8), from the slice\'s range', async (t) => {
  const host = new FakeHost([link('lo', 1), link('eth0', 2)], [{ name: 'eth0', addresses: [{ address: ip('172.16.3.4'), prefix: 16 }] }]);
  const [fan] = await resolveFans(parseFanFile('240.0.0.0/8 eth0/16 type vxlan', F), host);
  const s = summarize(fan!);
  const cni = cniConflist(s);
  t.deepEqual(cni.plugins[0].ipam.ranges, [[{ subnet: '240.0.0.0/8', rangeStart: '240.3.4.2', rangeEnd: '240.3.4.254', gateway: '240.3.4.1' }]]);
  t.is(cni.plugins[0].mtu, 1450);
  const d = dockerNetwork(s);
  const arg = (name: string) => d.args[d.args.indexOf(name) + 1];
  t.is(arg('--subnet'), '240.0.0.0/8');
  t.is(arg('--ip-range'), '240.3.4.0/24');
  // Docker skips only the /8's network and broadcast: the slice's edges are reserved
  t.deepEqual(d.args.filter((a) => a.includes('=240.3.4.')).map((a) => a.split('=')[1]), ['240.3.4.0', '240.3.4.255']);
  t.regex(d.notes[0]!, /VXLAN, VNI 15728640, UDP port 8472/);
});

test('cli: --encap vxlan, --vxlan-port, --vni; errors name the option', async (t) => {
  const m = await fand(['map', '--overlay', '240.0.0.0/8', '--underlay', '172.16.0.0/16', '--encap', 'vxlan', '172.16.5.6']);
  t.is(m.code, 0, m.stderr);
  t.is(m.stdout, 'slice   240.5.6.0/24\nbridge  fan-240-5-6\naddress 240.5.6.1/8\nvxlan   vni 15728640 port 8472\n');
  const j = await fand(['map', '--overlay', '240.0.0.0/8', '--underlay', '172.16.0.0/16', '--encap', 'vxlan', '--vni', '9', '--vxlan-port', '4789', '--json', '240.5.6.7']);
  t.like(JSON.parse(j.stdout), { host: '172.16.5.6', encapsulation: 'vxlan', vni: 9, port: 4789, bridgePrefix: 8 });
  const ipipMap = JSON.parse((await fand(['map', '--overlay', '240.0.0.0/8', '--underlay', '172.16.0.0/16', '--json', '172.16.5.6'])).stdout) as Record<string, unknown>;
  t.like(ipipMap, { encapsulation: 'ipip', bridgePrefix: 24 });
  for (const [args, message] of [
    [['--encap', 'gre'], /--encap gre: must be ipip or vxlan/],
    [['--vni', '5'], /--vni applies to VXLAN fans only: add --encap vxlan/],
    [['--encap', 'vxlan', '--vni', '16777216'], /--vni 16777216: must be between 0 and 16777215/],
    [['--encap', 'vxlan', '--vxlan-port', '70000'], /--vxlan-port 70000: must be between 1 and 65535/],
  ] as const) {
    const r = await fand(['plan', '--overlay', '240.0.0.0/8', '--underlay', '172.16.0.0/16', ...args]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message);
  }
});

test('plan on a test host: a VXLAN fan from the command line and from a config file', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('vxp'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  const r = await fand(['plan', '--overlay', '240.0.0.0/8', '--underlay', 'eth0/16', '--encap', 'vxlan', '--json'], h.ns);
  t.is(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { dataplane: { mode: string }; fans: Record<string, unknown>[]; resources: { id: string }[] };
  t.is(plan.dataplane.mode, 'userspace');
  t.like(plan.fans[0], { slice: '240.1.10.0/24', subnet: '240.0.0.0/8', encapsulation: 'vxlan', vni: defaultVni({ network: ip('240.0.0.0'), prefix: 8 }), port: 8472, mtu: 1450 });
  t.deepEqual(plan.resources.map((x) => x.id), ['sysctl:net.ipv4.ip_forward', 'bridge:fan-240-1-10', 'address:fan-240-1-10:240.1.10.1/8', 'tap:fvx-240', 'nat']);
  const dir = mkdtempSync(join(tmpdir(), 'fand-vxlan-'));
  const file = join(dir, 'fan');
  writeFileSync(file, '240.0.0.0/8 eth0/16 type vxlan dhcp\n250.0.0.0/8 eth0/16\n');
  const human = await fand(['plan', '--config', file], h.ns);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /fan 240\.0\.0\.0\/8 over 172\.16\.1\.10\/16 on eth0: vxlan \(vni 15728640, udp port 8472\), slice 240\.1\.10\.0\/24, bridge fan-240-1-10 240\.1\.10\.1\/8, mtu 1450/);
  t.regex(human.stdout, /dhcp: dnsmasq on fan-240-1-10 hands out 240\.1\.10\.2-240\.1\.10\.254, netmask \/8/);
  t.regex(human.stdout, /fan 250\.0\.0\.0\/8 over 172\.16\.1\.10\/16 on eth0: ipip, slice 250\.1\.10\.0\/24, bridge fan-250-1-10 250\.1\.10\.1\/24, mtu 1480/);
  t.regex(human.stdout, /tap     fvx-240 mtu 65000/);
  t.regex(human.stdout, /tun     ftun-250 mtu 1480/);
});
