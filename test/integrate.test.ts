// `fand integrate`: exact output for Docker, LXD and CNI from a fan summary,
// each checked against what its engine requires, and the verb end to end.
import test from 'ava';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { run } from '../src/demo/exec.js';
import { Lab } from '../src/demo/lab.js';
import type { FanSummary } from '../src/plan.js';
import { contains, formatCidr, lastOf, maskOf, parseIpv4, type Cidr } from '../src/fan/ipv4.js';
import { maxHostReserve } from '../src/fan/fanmap.js';
import {
  cniConflist, dockerNetwork, dockerPool, formatIntegration, lxdProfile, MAX_AUX_ADDRESSES, type CniConflist,
} from '../src/integrate/index.js';
import { shellQuote } from '../src/integrate/common.js';
import { fand } from './helpers/fand-cli.js';

// 250.0.0.0/8 over 172.16.0.0/16, host 172.16.3.4 (the CLI test below
// shows fand computes exactly this summary on such a host).
const FAN: FanSummary = {
  overlay: '250.0.0.0/8',
  underlay: '172.16.3.4/16',
  iface: 'eth0',
  slice: '250.3.4.0/24',
  bridge: 'fan-250-3-4',
  bridgeAddress: '250.3.4.1',
  subnet: '250.3.4.0/24',
  encapsulation: 'ipip',
  tun: 'ftun-250',
  mtu: 1480,
  hostReserve: 1,
  containers: '250.3.4.2-250.3.4.254',
  dhcp: false,
  source: 'test',
};

function ip(text: string): number {
  const a = parseIpv4(text);
  if (a === undefined) throw new Error(`bad test address ${text}`);
  return a;
}

function cidr(text: string): Cidr {
  const [a, p] = text.split('/');
  return { network: ip(a!), prefix: Number(p) };
}

// --- Docker ---------------------------------------------------------------

const DOCKER_ARGS = [
  'docker', 'network', 'create', '--driver', 'bridge',
  '--subnet', '250.3.4.0/24', '--gateway', '250.3.4.1', '--ip-range', '250.3.4.0/24',
  '-o', 'com.docker.network.bridge.name=fan-250-3-4',
  '-o', 'com.docker.network.driver.mtu=1480',
  '-o', 'com.docker.network.bridge.enable_ip_masquerade=false',
  '-o', 'com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected',
  'fan-250-3-4',
];

test('docker: the network create command, as argv and as a shell line', (t) => {
  const d = dockerNetwork(FAN);
  t.is(d.name, 'fan-250-3-4');
  t.deepEqual(d.args, DOCKER_ARGS);
  t.is(d.command, DOCKER_ARGS.join(' '));
  // Every option once; every -o key once.
  for (const opt of ['--driver', '--subnet', '--gateway', '--ip-range']) t.is(d.args.filter((x) => x === opt).length, 1, opt);
  const keys = d.args.flatMap((x, i) => (d.args[i - 1] === '-o' ? [x.split('=')[0]] : []));
  t.is(keys.length, 4);
  t.is(new Set(keys).size, keys.length);
  t.true(d.notes.some((n) => /adopts fand's bridge fan-250-3-4/.test(n)));
  t.is(dockerNetwork(FAN, 'fan').args.at(-1), 'fan');
});

test('docker: host-reserve addresses become --aux-address, or the range shrinks past the limit', (t) => {
  const d3 = dockerNetwork({ ...FAN, hostReserve: 3, containers: '250.3.4.4-250.3.4.254' });
  t.deepEqual(d3.args.slice(9, 15), [
    '--ip-range', '250.3.4.0/24',
    '--aux-address', 'fand-reserved-250-3-4-2=250.3.4.2',
    '--aux-address', 'fand-reserved-250-3-4-3=250.3.4.3',
  ]);
  // Exactly a CIDR (with Docker's own exclusion of the broadcast address): no aux.
  const d127 = dockerNetwork({ ...FAN, hostReserve: 127, containers: '250.3.4.128-250.3.4.254' });
  t.deepEqual(d127.args.slice(9, 12), ['--ip-range', '250.3.4.128/25', '-o']);
  // 99 reserved addresses would be unreadable: the largest CIDR inside the range.
  const d100 = dockerNetwork({ ...FAN, hostReserve: 100, containers: '250.3.4.101-250.3.4.254' });
  t.deepEqual(d100.args.slice(9, 12), ['--ip-range', '250.3.4.128/25', '-o']);
  t.true(d100.notes.some((n) => /27 container addresses .* left out/.test(n)));
});

/** What Docker's IPAM may hand out: the ip-range minus network, gateway, broadcast and aux addresses. */
function dockerUsable(slice: Cidr, gateway: number, pool: ReturnType<typeof dockerPool>): number[] {
  const skip = new Set([slice.network, gateway, lastOf(slice), ...pool.reserved]);
  const out: number[] = [];
  for (let x = pool.ipRange.network; x <= lastOf(pool.ipRange); x++) if (!skip.has(x)) out.push(x);
  return out;
}

test('docker: the pool is exactly the container range, or a contiguous part of it when it says so (ipip and VXLAN subnets)', (t) => {
  fc.assert(fc.property(
    fc.integer({ min: 16, max: 30 }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 1 << 16 }), fc.boolean(),
    (prefix, seed, r, vxlan) => {
      const slice = { network: (seed & maskOf(prefix)) >>> 0, prefix };
      // A VXLAN fan's containers are addressed in the whole overlay (here the slice's /8).
      const subnet = vxlan ? { network: (slice.network & maskOf(8)) >>> 0, prefix: 8 } : slice;
      const hostReserve = 1 + (r % maxHostReserve(prefix));
      const a = { slice, sliceText: formatCidr(slice), subnet, subnetText: formatCidr(subnet), gateway: slice.network + 1, first: slice.network + hostReserve + 1, last: lastOf(slice) - 1 };
      const pool = dockerPool(a);
      t.true(pool.reserved.length <= MAX_AUX_ADDRESSES);
      t.true(contains(slice, pool.ipRange.network) && pool.ipRange.prefix >= prefix);
      const usable = dockerUsable(subnet, a.gateway, pool);
      const total = a.last - a.first + 1;
      t.is(usable.length, total - pool.leftOut);
      t.true(usable.every((x, i) => x >= a.first && x <= a.last && (i === 0 || x === usable[i - 1]! + 1)));
      if (pool.leftOut === 0) t.is(usable[0], a.first);
    },
  ), { numRuns: 300 });
});

test('shell quoting leaves plain words alone and quotes the rest', (t) => {
  t.is(shellQuote('com.docker.network.bridge.name=fan-250-3-4'), 'com.docker.network.bridge.name=fan-250-3-4');
  t.is(shellQuote('a b'), `'a b'`);
  t.is(shellQuote(`it's`), `'it'\\''s'`);
});

// --- LXD ------------------------------------------------------------------

const LXD_YAML = `# LXD profile for fan 250.0.0.0/8 over 172.16.3.4/16: slice 250.3.4.0/24 on bridge fan-250-3-4.
#   lxc profile create fan-250-3-4 && lxc profile edit fan-250-3-4 < THIS-FILE
#   lxc launch IMAGE NAME --profile default --profile fan-250-3-4
# The bridge is fand's, not LXD-managed: LXD hands out no addresses on it.
# Give each instance a static address in 250.3.4.2-250.3.4.254, /24, gateway 250.3.4.1.
name: fan-250-3-4
description: "fand: fan 250.0.0.0/8 over 172.16.3.4/16: slice 250.3.4.0/24 on bridge fan-250-3-4"
config: {}
devices:
  eth0:
    type: nic
    nictype: bridged
    parent: fan-250-3-4
    mtu: "1480"
`;

test('lxd: the profile as YAML and as an object, and the YAML parses back to the object', (t) => {
  const l = lxdProfile(FAN);
  t.is(l.yaml, LXD_YAML);
  t.deepEqual(l.profile, {
    name: 'fan-250-3-4',
    description: 'fand: fan 250.0.0.0/8 over 172.16.3.4/16: slice 250.3.4.0/24 on bridge fan-250-3-4',
    config: {},
    devices: { eth0: { type: 'nic', nictype: 'bridged', parent: 'fan-250-3-4', mtu: '1480' } },
  });
  t.deepEqual(parseYaml(l.yaml), l.profile);
  // Names that YAML would read as something else stay strings.
  for (const bridge of ['true', '1480', 'null', 'fan-0x10', 'no']) {
    const p = lxdProfile({ ...FAN, bridge }, 'p');
    t.deepEqual(parseYaml(p.yaml), p.profile, bridge);
  }
  t.is(lxdProfile(FAN, 'fan').profile.name, 'fan');
});

// --- CNI ------------------------------------------------------------------

const CNI: CniConflist = {
  cniVersion: '1.0.0',
  name: 'fan-250-3-4',
  plugins: [
    {
      type: 'bridge',
      bridge: 'fan-250-3-4',
      isGateway: false,
      ipMasq: false,
      mtu: 1480,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '250.3.4.0/24', rangeStart: '250.3.4.2', rangeEnd: '250.3.4.254', gateway: '250.3.4.1' }]],
        routes: [{ dst: '0.0.0.0/0' }],
      },
    },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
};

/** The CNI 1.0.0 conflist requirements (SPEC.md, "Configuration format") and host-local's range rules. */
function cniProblems(c: unknown): string[] {
  const p: string[] = [];
  const o = c as Record<string, unknown>;
  if (typeof o['cniVersion'] !== 'string' || !/^\d+\.\d+\.\d+$/.test(o['cniVersion'])) p.push('cniVersion is not a semver string');
  if (typeof o['name'] !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/.test(o['name'])) p.push('name does not match the spec');
  const plugins = o['plugins'];
  if (!Array.isArray(plugins) || plugins.length === 0) return [...p, 'plugins is not a non-empty array'];
  for (const [i, pl] of plugins.entries()) {
    if (typeof pl !== 'object' || pl === null || Array.isArray(pl)) { p.push(`plugin ${i} is not an object`); continue; }
    if (typeof (pl as Record<string, unknown>)['type'] !== 'string') p.push(`plugin ${i} has no string type`);
    const ipam = (pl as { ipam?: { ranges?: { subnet: string; rangeStart: string; rangeEnd: string; gateway: string }[][] } }).ipam;
    for (const set of ipam?.ranges ?? []) {
      for (const r of set) {
        const subnet = cidr(r.subnet);
        const [start, end, gw] = [ip(r.rangeStart), ip(r.rangeEnd), ip(r.gateway)];
        if (!contains(subnet, start) || !contains(subnet, end) || start > end) p.push(`range ${r.rangeStart}-${r.rangeEnd} not inside ${r.subnet}`);
        if (start === subnet.network || end === lastOf(subnet)) p.push('range includes the network or broadcast address');
        if (!contains(subnet, gw)) p.push(`gateway ${r.gateway} outside ${r.subnet}`);
        if (gw >= start && gw <= end) p.push(`gateway ${r.gateway} inside the range`);
      }
    }
  }
  return p;
}

test('cni: the conflist, valid per the spec and host-local', (t) => {
  const c = cniConflist(FAN);
  t.deepEqual(c, CNI);
  t.deepEqual(cniProblems(c), []);
  t.deepEqual(cniProblems(JSON.parse(JSON.stringify(c))), [], 'survives JSON');
  // the checker does catch what it claims to
  t.true(cniProblems({ ...c, name: '-x' }).length > 0);
  t.true(cniProblems({ ...c, cniVersion: '1.0' }).length > 0);
  t.true(cniProblems({ ...c, plugins: [] }).length > 0);
  t.true(cniProblems({ ...c, plugins: [{ type: 1 }] }).length > 0);
  // host-reserve moves rangeStart; other slices work the same way
  const wide = cniConflist({ ...FAN, slice: '10.37.16.0/20', subnet: '10.37.16.0/20', bridge: 'fan-10-37-16', bridgeAddress: '10.37.16.1', hostReserve: 9, containers: '10.37.16.10-10.37.31.254' });
  t.deepEqual(wide.plugins[0].ipam.ranges, [[{ subnet: '10.37.16.0/20', rangeStart: '10.37.16.10', rangeEnd: '10.37.31.254', gateway: '10.37.16.1' }]]);
  t.deepEqual(cniProblems(wide), []);
});

test('names outside the engines\' rules are refused; a bad summary is named', (t) => {
  t.throws(() => cniConflist(FAN, 'my net'), { message: /name 'my net'/ });
  t.throws(() => dockerNetwork(FAN, '-x'), { message: /name '-x'/ });
  t.throws(() => lxdProfile(FAN, ''), { message: /name ''/ });
  t.throws(() => dockerNetwork({ ...FAN, containers: '250.3.4.9' }), { message: /container range '250.3.4.9'/ });
});

test('formatIntegration: text for people and scripts, JSON on request', (t) => {
  const docker = formatIntegration('docker', FAN, false).trimEnd().split('\n');
  t.true(docker.slice(0, -1).every((l) => l.startsWith('# ')), 'notes are shell comments');
  t.is(docker.at(-1), DOCKER_ARGS.join(' '));
  t.like(JSON.parse(formatIntegration('docker', FAN, true)), { name: 'fan-250-3-4', args: DOCKER_ARGS });
  t.is(formatIntegration('lxd', FAN, false), LXD_YAML);
  t.deepEqual(JSON.parse(formatIntegration('lxd', FAN, true)), lxdProfile(FAN).profile);
  t.deepEqual(JSON.parse(formatIntegration('cni', FAN, false)), CNI);
  t.is(formatIntegration('cni', FAN, true), formatIntegration('cni', FAN, false));
});

// --- the verb -------------------------------------------------------------


test('fand integrate on a host with 172.16.3.4/16 prints the fan\'s conflist, profile and command', async (t) => {
  const ns = `fint-${process.pid}`;
  await run('ip', ['netns', 'add', ns]);
  t.teardown(() => run('ip', ['netns', 'del', ns]).catch(() => undefined));
  await run('ip', ['-n', ns, 'link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under1']);
  await run('ip', ['-n', ns, 'addr', 'add', '172.16.3.4/16', 'dev', 'under0']);
  await run('ip', ['-n', ns, 'link', 'set', 'under0', 'up']);
  const fan = ['--overlay', '250.0.0.0/8', '--underlay', 'under0/16'];

  const cni = await fand(['integrate', 'cni', ...fan], ns);
  t.is(cni.code, 0, cni.stderr);
  t.deepEqual(JSON.parse(cni.stdout), CNI); // veth MTU 1500 - 20 = 1480
  t.deepEqual(cniProblems(JSON.parse(cni.stdout)), []);

  const docker = await fand(['integrate', 'docker', '--json', ...fan], ns);
  t.is(docker.code, 0, docker.stderr);
  t.deepEqual(JSON.parse(docker.stdout).args, DOCKER_ARGS);

  const lxd = await fand(['integrate', 'lxd', ...fan], ns);
  t.is(lxd.code, 0, lxd.stderr);
  t.is(lxd.stdout, LXD_YAML);
});

test('fand integrate with an unknown or missing kind exits 2 and lists the kinds', async (t) => {
  const fan = ['--overlay', '250.0.0.0/8', '--underlay', '172.16.0.0/16'];
  const r = await fand(['integrate', 'podman', ...fan]);
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown kind 'podman' \(kinds: docker, lxd, cni\)/);
  const none = await fand(['integrate', ...fan]);
  t.is(none.code, 2);
  t.regex(none.stderr, /docker, lxd, cni/);
});

test('fand integrate describes the running daemon: its host-reserve without being told, and the options that differ named', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('intr'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  await lab.startFand(h, ['--workers', '1', '--host-reserve', '3']);
  // no options at all: the running daemon's fan, host-reserve 3 included
  const bare = await fand(['integrate', 'docker', '--json'], h.ns);
  t.is(bare.code, 0, bare.stderr);
  const args = (JSON.parse(bare.stdout) as { args: string[] }).args;
  t.true(args.includes('fand-reserved-250-1-10-2=250.1.10.2') && args.includes('fand-reserved-250-1-10-3=250.1.10.3'), args.join(' '));
  t.is(bare.stderr, '');
  // the options without --host-reserve: still the running daemon's, and the difference is named
  const typed = await fand(['integrate', 'cni', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16'], h.ns);
  t.is(typed.code, 0, typed.stderr);
  t.regex(typed.stderr, /fan 250\.0\.0\.0\/8: hostReserve is 3 in the running daemon but 1 in the options given; using the running daemon's/);
  const range = (JSON.parse(typed.stdout) as CniConflist).plugins[0]!.ipam.ranges[0]![0]!;
  t.is(range.rangeStart, '250.1.10.4');
  // no daemon: computed, and said so
  await lab.stopFand(h);
  const cold = await fand(['integrate', 'docker', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16'], h.ns);
  t.is(cold.code, 0, cold.stderr);
  t.regex(cold.stdout, /^# NOTE: fand is not running in this network namespace/m);
});
