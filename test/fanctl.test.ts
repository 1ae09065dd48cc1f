// Hosts configured by Ubuntu's fanctl: its bridge names, and fand refusing
// to build a second gateway next to the bridge fanctl left (on a real host
// in a namespace, through `fand plan`).
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { checkGatewaysFree, fanctlBridgeNames } from '../src/fan/fanctl.js';
import { makeFanMap, parseNetwork, sliceFor } from '../src/fan/fanmap.js';
import type { ResolvedFan } from '../src/fan/resolved.js';
import { ip } from './helpers/packets.js';
import { tempNetns } from './helpers/netns.js';
import { fand } from './helpers/fand-cli.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { checkFans, parseFanFile } from '../src/config/fanfile.js';
import { formatCidr } from '../src/fan/ipv4.js';

const run = promisify(execFile);
const net = (t: string) => parseNetwork(t, 'test');

test('fanctl 0.12 names the bridge after the overlay, fanctl 0.3 after the slice without trailing zero octets', (t) => {
  t.deepEqual(fanctlBridgeNames(net('250.0.0.0/8'), net('250.3.4.0/24')), { current: 'fan-250', legacy: 'fan-250-3-4' });
  t.deepEqual(fanctlBridgeNames(net('250.0.0.0/8'), net('250.3.0.0/24')), { current: 'fan-250', legacy: 'fan-250-3' });
  t.deepEqual(fanctlBridgeNames(net('10.0.0.0/8'), net('10.16.80.0/20')), { current: 'fan-10', legacy: 'fan-10-16-80' });
  t.deepEqual(fanctlBridgeNames(net('100.64.0.0/10'), net('100.66.192.0/18')), { current: 'fan-100-64', legacy: 'fan-100-66-192' });
});

function fanAt(host: string, bridge?: string): ResolvedFan {
  const map = makeFanMap(net('250.0.0.0/8'), net('172.16.0.0/16'));
  const slice = sliceFor(map, ip(host));
  return {
    spec: { overlay: map.overlay, underlay: { kind: 'iface', name: 'eth0', prefix: 16, text: 'eth0/16' }, dhcp: false, hostReserve: 1, off: false, source: '/etc/network/fan:2', ...(bridge ? { bridge } : {}) },
    map, iface: 'eth0', localUnderlay: ip(host), slice, bridge: bridge ?? 'fan-250-3-4', tun: 'ftun-250', mtu: 1480, encap: { encap: 'ipip' }, bridgePrefix: 24,
  };
}

test('a gateway already on fanctl\'s bridge is an error naming the bridge and the fix; fand\'s own or a named bridge is not', (t) => {
  const addrs = [{ name: 'eth0', addresses: [{ address: ip('172.16.3.4'), prefix: 16 }] }, { name: 'fan-250', addresses: [{ address: ip('250.3.4.1'), prefix: 24 }] }];
  t.throws(() => checkGatewaysFree([fanAt('172.16.3.4')], addrs), {
    message: 'fan 250.0.0.0/8 (/etc/network/fan:2): its gateway 250.3.4.1/24 is already on fan-250 (the name fanctl gives this fan\'s bridge); '
      + 'to take that bridge over with its containers, name it on the fan\'s line (bridge fan-250) or with --bridge fan-250; otherwise remove the address from fan-250',
  });
  t.notThrows(() => checkGatewaysFree([fanAt('172.16.3.4', 'fan-250')], addrs));
  t.notThrows(() => checkGatewaysFree([fanAt('172.16.3.4')], [{ name: 'fan-250-3-4', addresses: [{ address: ip('250.3.4.1'), prefix: 24 }] }]));
});

test('fand plan on a host fanctl configured: exit 2 naming fanctl\'s bridge; with bridge NAME it plans to adopt it', async (t) => {
  const ns = await tempNetns(t, 'fanctl');
  await run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  await run('ip', ['-n', ns, 'addr', 'add', '172.16.3.4/16', 'dev', 'eth0']);
  await run('ip', ['-n', ns, 'link', 'add', 'fan-250', 'type', 'bridge']);
  await run('ip', ['-n', ns, 'addr', 'add', '250.3.4.1/24', 'dev', 'fan-250']);
  const refused = await fand(['plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16'], ns);
  t.is(refused.code, 2, refused.stdout);
  t.regex(refused.stderr, /its gateway 250\.3\.4\.1\/24 is already on fan-250 \(the name fanctl gives this fan's bridge\); .*\(bridge fan-250\) or with --bridge fan-250/);
  const adopted = await fand(['plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--bridge', 'fan-250'], ns);
  t.is(adopted.code, 0, adopted.stderr);
  t.regex(adopted.stdout, /bridge fan-250 250\.3\.4\.1/);
});

// Ubuntu's files, as Ubuntu wrote them.
// cloud-init's fan module writes its `config` text verbatim to /etc/network/fan; this is the example of its docs.
const CLOUD_INIT = `# fan 240
10.0.0.0/8 eth0/16 dhcp
10.0.0.0/8 eth1/16 dhcp off
# fan 241
241.0.0.0/8 eth0/16 dhcp
`;

test('the example of cloud-init\'s fan module reads as written: two fans, the alternative one off', (t) => {
  const specs = parseFanFile(CLOUD_INIT, '/etc/network/fan');
  t.deepEqual(specs.map((s) => [formatCidr(s.overlay), s.underlay.text, s.dhcp, s.off, s.source]), [
    ['10.0.0.0/8', 'eth0/16', true, false, '/etc/network/fan:2'],
    ['10.0.0.0/8', 'eth1/16', true, true, '/etc/network/fan:3'],
    ['241.0.0.0/8', 'eth0/16', true, false, '/etc/network/fan:5'],
  ]);
  t.notThrows(() => checkFans(specs), 'the same overlay twice is fine when one is off');
});

test('fanctl\'s own forms: the overlay as its first octet, a bare host address, auto; debug is refused with why', (t) => {
  const specs = parseFanFile([
    '250 172.16.3.4 dhcp',                                  // fanctl 0.3: overlay 250 = 250.0.0.0/8, underlay /16
    '\t10.0.0.0/8\tdefault/20   host-reserve 3 bridge fan-10 auto',
    '  241 eth1 off',
  ].join('\n'), 'fan');
  t.deepEqual(specs.map((s) => [formatCidr(s.overlay), s.underlay.text, s.underlay.prefix, s.dhcp, s.hostReserve, s.bridge, s.off]), [
    ['250.0.0.0/8', '172.16.3.4', 16, true, 1, undefined, false],
    ['10.0.0.0/8', 'default/20', 20, false, 3, 'fan-10', false],
    ['241.0.0.0/8', 'eth1', 16, false, 1, undefined, true],
  ]);
  t.throws(() => parseFanFile('250.0.0.0/8 eth0/16 debug\n', 'fan'), { message: /^fan:1: option 'debug' is fanctl's dry run .*remove it from the line$/ });
  t.throws(() => parseFanFile('256 eth0/16\n', 'fan'), { message: /^fan:1: overlay .*256/ });
});

test('fand plan reads cloud-init\'s file on a host with eth0 (the off line needs no eth1)', async (t) => {
  const ns = await tempNetns(t, 'ci-fan');
  await run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
  await run('ip', ['-n', ns, 'addr', 'add', '172.16.3.4/16', 'dev', 'eth0']);
  const file = join(mkdtempSync(join(tmpdir(), 'fand-ci-')), 'fan');
  writeFileSync(file, CLOUD_INIT);
  t.teardown(() => rmSync(dirname(file), { recursive: true, force: true }));
  const r = await fand(['plan', '--config', file, '--json', '--no-nat'], ns);
  t.is(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { fans: { overlay: string; slice: string; bridge: string; dhcp: boolean }[] };
  t.deepEqual(plan.fans.map((f) => [f.overlay, f.slice, f.bridge, f.dhcp]), [
    ['10.0.0.0/8', '10.3.4.0/24', 'fan-10-3-4', true],
    ['241.0.0.0/8', '241.3.4.0/24', 'fan-241-3-4', true],
  ]);
});
