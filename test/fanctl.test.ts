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
