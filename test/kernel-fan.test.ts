// kernel-fan cannot run on any kernel here (no Canonical Fan patch), so its
// setup is tested against a recording host: the exact rtnetlink message, the
// route, and the teardown.
import test from 'ava';
import { KernelFanDataplane } from '../src/dataplane/kernel-fan/index.js';
import { fanLinkMessage } from '../src/dataplane/kernel-fan/netlink.js';
import { ensure, teardown, type Created } from '../src/host/ensure.js';
import { hostResources } from '../src/plan.js';
import { makeFanMap, parseNetwork, sliceFor } from '../src/fan/fanmap.js';
import type { ResolvedFan } from '../src/fan/resolved.js';
import { describe } from '../src/host/resources.js';
import { FakeHost, link } from './helpers/fake-host.js';
import { hex, ip } from './helpers/packets.js';

const map = makeFanMap(parseNetwork('250.0.0.0/8', 'overlay'), parseNetwork('172.16.0.0/16', 'underlay'));
const fan: ResolvedFan = {
  spec: { overlay: map.overlay, underlay: { kind: 'iface', name: 'eth0', prefix: 16, text: 'eth0/16' }, dhcp: false, hostReserve: 1, off: false, source: 'test' },
  map, iface: 'eth0', localUnderlay: ip('172.16.3.4'), slice: sliceFor(map, ip('172.16.3.4')), bridge: 'fan-250-3-4', tun: 'ftun-250', mtu: 1480,
  encap: { encap: 'ipip' }, bridgePrefix: 24,
};

test('kernel-fan plans an ipip fan tunnel and the overlay route through it', (t) => {
  const rs = hostResources([fan], new KernelFanDataplane());
  t.deepEqual(rs.map(describe), [
    'sysctl  net.ipv4.ip_forward = 1',
    'bridge  fan-250-3-4 mtu 1480 address 02:fa:fa:03:04:00',
    'address 250.3.4.1/24 on fan-250-3-4',
    'tunnel  ftun-250 type ipip dev eth0 fan-map 250.0.0.0/8:172.16.0.0/16 mtu 1480 (rtnetlink IFLA_IPTUN_FAN_MAP)',
    'route   250.0.0.0/8 dev ftun-250 src 250.3.4.1',
  ]);
});

test('kernel-fan sends exactly the fan RTM_NEWLINK, brings the tunnel up, routes the overlay, and tears it all down', async (t) => {
  const host = new FakeHost([link('lo', 1), link('eth0', 2)], [], []);
  const created: Created[] = [];
  await ensure(host, hostResources([fan], new KernelFanDataplane()), { owned: new Map(), onCreated: (c) => { created.push(c); }, log: () => undefined });
  t.is(host.netlinkSent.length, 1);
  const expected = fanLinkMessage({ op: 'new', name: 'ftun-250', overlay: map.overlay, underlay: map.underlay, underlayDev: 2, mtu: 1480, seq: 1 });
  t.is(hex(host.netlinkSent[0]!), hex(expected));
  // the mapping struct inside it: underlay 172.16.0.0, overlay 250.0.0.0 (network order), prefixes 16 and 8 (host order)
  t.true(hex(host.netlinkSent[0]!).includes('ac100000' + 'fa000000' + '1000' + '0800'));
  t.deepEqual(host.applied, [
    ['link', 'add', 'fan-250-3-4', 'address', '02:fa:fa:03:04:00', 'type', 'bridge'],
    ['link', 'set', 'dev', 'fan-250-3-4', 'mtu', '1480', 'up'],
    ['addr', 'add', '250.3.4.1/24', 'dev', 'fan-250-3-4'],
    ['link', 'set', 'dev', 'ftun-250', 'up'],
    ['route', 'replace', '250.0.0.0/8', 'dev', 'ftun-250', 'src', '250.3.4.1'],
  ]);
  t.is(host.sysctls.get('net.ipv4.ip_forward'), '1');
  host.applied.length = 0;
  t.deepEqual(await teardown(host, created, () => undefined), []);
  t.deepEqual(host.applied, [
    ['route', 'del', '250.0.0.0/8', 'dev', 'ftun-250'],
    ['link', 'del', 'dev', 'ftun-250'],
    ['addr', 'del', '250.3.4.1/24', 'dev', 'fan-250-3-4'],
    ['link', 'del', 'dev', 'fan-250-3-4'],
  ]);
  t.is(host.sysctls.get('net.ipv4.ip_forward'), '0');
});

test('a kernel that refuses the fan map is an error naming the tunnel and the errno', async (t) => {
  const host = new FakeHost([link('lo', 1), link('eth0', 2)]);
  host.netlinkErrno = 22;
  await t.throwsAsync(ensure(host, hostResources([fan], new KernelFanDataplane()), { owned: new Map(), onCreated: () => undefined, log: () => undefined }),
    { message: /fan tunnel ftun-250 \(fan-map 250\.0\.0\.0\/8:172\.16\.0\.0\/16\): the kernel refused it: errno 22/ });
});
