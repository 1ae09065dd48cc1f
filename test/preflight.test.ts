// The preflight check as a pure function: a plan and the host's links and
// routes in, every conflict out. (test/cli.test.ts runs the same check
// through `fand plan` and `fand run` against real namespaces.)
import test from 'ava';
import { preflight, type HostView } from '../src/host/preflight.js';
import { address, bridge, fanTunnel, route, sysctl, tap, tun, type Resource } from '../src/host/resources.js';
import type { FanSummary } from '../src/plan.js';
import type { LinkInfo } from '../src/host/ip.js';

function fan(over: Partial<FanSummary> = {}): FanSummary {
  return {
    overlay: '250.0.0.0/8', underlay: '172.16.1.10/16', iface: 'eth0', slice: '250.1.10.0/24', bridge: 'fan-250-1-10',
    bridgeAddress: '250.1.10.1', tun: 'ftun-250', mtu: 1480, hostReserve: 1, containers: '250.1.10.2-250.1.10.254',
    dhcp: false, source: 'command line', subnet: '250.1.10.0/24', encapsulation: 'ipip', ...over,
  };
}

function planFor(fans: FanSummary[]): { fans: FanSummary[]; resources: Resource[] } {
  const resources: Resource[] = [sysctl('net.ipv4.ip_forward', '1')];
  for (const f of fans) {
    resources.push(bridge(f.bridge, f.mtu), address(f.bridge, `${f.bridgeAddress}/24`), tun(f.tun, f.mtu, 4096, true), route(f.overlay, f.tun, f.bridgeAddress));
  }
  return { fans, resources };
}

function link(name: string, kind?: string): LinkInfo {
  return { name, index: 1, kind, mtu: 1500, up: true, master: undefined, tun: undefined };
}

const HOST: HostView = {
  links: [link('lo'), link('eth0', 'veth'), link('docker0', 'bridge'), link('v1', 'veth')],
  routes: [{ dst: 'default', dev: 'eth0', gateway: '172.16.0.1', prefsrc: undefined }, { dst: '172.16.0.0/16', dev: 'eth0', gateway: undefined, prefsrc: '172.16.1.10' }],
};

test('a plan that fits the host: no conflicts', (t) => {
  t.deepEqual(preflight(planFor([fan()]), HOST), []);
});

test('what a running or killed fand left (same kinds, its own route) is no conflict', (t) => {
  const host: HostView = {
    links: [...HOST.links, link('fan-250-1-10', 'bridge'), link('ftun-250', 'tun')],
    routes: [...HOST.routes, { dst: '250.0.0.0/8', dev: 'ftun-250', gateway: undefined, prefsrc: '250.1.10.1' }],
  };
  t.deepEqual(preflight(planFor([fan()]), host), []);
});

test('an existing bridge fand did not create may be named (it is reused, never removed)', (t) => {
  t.deepEqual(preflight(planFor([fan({ bridge: 'docker0' })]), HOST), []);
});

const clashes: [string, Partial<FanSummary>, string][] = [
  ['the underlay interface', { bridge: 'eth0' },
    'bridge eth0: eth0 is the underlay interface of 250.0.0.0/8, which fand does not create or change; choose another --bridge name'],
  ['the loopback device', { bridge: 'lo' }, 'bridge lo: lo is the loopback device, and fand will not take it over; choose another --bridge name'],
  ['a veth', { bridge: 'v1' }, 'bridge v1: v1 is a veth device that fand did not create, and fand will not take it over; choose another --bridge name'],
  ['a veth, from a file', { bridge: 'v1', source: '/etc/network/fan:3' },
    "/etc/network/fan:3: bridge v1: v1 is a veth device that fand did not create, and fand will not take it over; choose another name with 'bridge NAME' on /etc/network/fan:3"],
];
for (const [name, over, message] of clashes) {
  test(`a bridge named like ${name} is a conflict that names it and the fix`, (t) => {
    const c = preflight(planFor([fan(over)]), HOST);
    t.deepEqual(c.map((x) => x.message), [message]);
    t.is(c[0]!.resource, `bridge:${over.bridge}`);
    t.notRegex(c[0]!.message, /ip link del|delete|remove it/);
  });
}

test('a TUN name held by another kind of device', (t) => {
  const host = { ...HOST, links: [...HOST.links, link('ftun-250', 'veth')] };
  const c = preflight(planFor([fan()]), host);
  t.is(c.length, 1);
  t.regex(c[0]!.message, /^tun ftun-250: ftun-250 is a veth device that fand did not create, and fand will not take it over; fand names the overlay's TUN after the overlay/);
});

test('a VXLAN fan\'s TAP name held by another kind of device', (t) => {
  const plan = { fans: [fan({ encapsulation: 'vxlan' })], resources: [tap('ftun-250', 'fan-250-1-10', 1500, 4096)] };
  t.deepEqual(preflight(plan, { ...HOST, links: [...HOST.links, link('ftun-250', 'tun')] }), []);
  const c = preflight(plan, { ...HOST, links: [...HOST.links, link('ftun-250', 'veth')] });
  t.regex(c[0]!.message, /^tap ftun-250: ftun-250 is a veth device that fand did not create, and fand will not take it over; fand names the overlay's TAP after the overlay/);
});

test('a kernel Fan tunnel name held by a non-ipip device', (t) => {
  const plan = { fans: [fan()], resources: [fanTunnel('ftun-250', '250.0.0.0/8', '172.16.0.0/16', 'eth0', 1480)] };
  t.deepEqual(preflight(plan, { ...HOST, links: [...HOST.links, link('ftun-250', 'ipip')] }), []);
  const c = preflight(plan, { ...HOST, links: [...HOST.links, link('ftun-250', 'bridge')] });
  t.regex(c[0]!.message, /^fan-tunnel ftun-250: ftun-250 is a bridge device that fand did not create/);
});

test('a route for the overlay through another device: a conflict, unless an earlier fand added it', (t) => {
  const host = { ...HOST, routes: [...HOST.routes, { dst: '250.0.0.0/8', dev: 'eth0', gateway: '172.16.0.254', prefsrc: undefined }] };
  const c = preflight(planFor([fan()]), host);
  t.deepEqual(c.map((x) => x.message), [
    'route 250.0.0.0/8: the host already routes it via 172.16.0.254 dev eth0, and fand did not add that route; choose another overlay, or remove that route if nothing needs it',
  ]);
  t.deepEqual(preflight(planFor([fan()]), host, new Set(['route:250.0.0.0/8'])), []);
});

test('two fans whose bridge and TUN would share a name; every conflict is listed', (t) => {
  const a = fan();
  const b = fan({ overlay: '10.0.0.0/8', bridge: 'ftun-250', tun: 'ftun-10', bridgeAddress: '10.1.10.1', source: 'f:2' });
  const c = preflight(planFor([a, b]), { ...HOST, links: [...HOST.links, link('ftun-10', 'veth')] });
  t.deepEqual(c.map((x) => x.resource), ['bridge:ftun-250', 'tun:ftun-10']);
  t.is(c[0]!.message, "f:2: bridge ftun-250: the same name is planned for the tun of another fan; choose another name with 'bridge NAME' on f:2");
});
