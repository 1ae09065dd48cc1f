import test from 'ava';
import { readFileSync } from 'node:fs';
import { ConfigError, ConfigErrors, FAN_LINE_OPTIONS, type FanSpec, checkFans, eachError, parseFanFile, readFanFile } from '../src/config/fanfile.js';
import {
  type InterfaceAddrs,
  type UnderlaySpec,
  parseUnderlay,
  resolveUnderlay,
  resolveUnderlayOffline,
} from '../src/config/underlay.js';
import { FanError } from '../src/fan/fanmap.js';
import { formatCidr, formatIpv4, parseIpv4 } from '../src/fan/ipv4.js';

function ip(text: string): number {
  const a = parseIpv4(text);
  if (a === undefined) throw new Error(`bad test address ${text}`);
  return a;
}

// ---------------------------------------------------------------- parseUnderlay

const underlays: [string, UnderlaySpec][] = [
  ['172.16.3.4/16', { kind: 'cidr', address: ip('172.16.3.4'), prefix: 16, hostGiven: true, text: '172.16.3.4/16' }],
  ['172.16.0.0/16', { kind: 'cidr', address: ip('172.16.0.0'), prefix: 16, hostGiven: false, text: '172.16.0.0/16' }],
  ['192.168.16.7/20', { kind: 'cidr', address: ip('192.168.16.7'), prefix: 20, hostGiven: true, text: '192.168.16.7/20' }],
  ['172.16.3.4', { kind: 'cidr', address: ip('172.16.3.4'), prefix: 16, hostGiven: true, text: '172.16.3.4' }],
  ['10.1.0.0', { kind: 'cidr', address: ip('10.1.0.0'), prefix: 16, hostGiven: false, text: '10.1.0.0' }],
  ['eth0', { kind: 'iface', name: 'eth0', prefix: 16, text: 'eth0' }],
  ['eth0/24', { kind: 'iface', name: 'eth0', prefix: 24, text: 'eth0/24' }],
  ['br-lan.100/20', { kind: 'iface', name: 'br-lan.100', prefix: 20, text: 'br-lan.100/20' }],
  ['default', { kind: 'default', prefix: 16, text: 'default' }],
  ['default/20', { kind: 'default', prefix: 20, text: 'default/20' }],
];
for (const [text, spec] of underlays) {
  test(`parseUnderlay ${text}`, (t) => {
    t.deepEqual(parseUnderlay(text), spec);
  });
}

const badUnderlays: [string, RegExp][] = [
  ['', /^underlay is empty/],
  ['172.16.3/16', /^underlay 172\.16\.3\/16: '172\.16\.3' is not an IPv4 address/],
  ['256.1.1.1', /^underlay 256\.1\.1\.1: '256\.1\.1\.1' is not an IPv4 address/],
  ['172.16.3.4/33', /^underlay 172\.16\.3\.4\/33: prefix length '33' must be a number 0\.\.32$/],
  ['eth0/', /^underlay eth0\/: prefix length '' must be/],
  ['eth0/x', /^underlay eth0\/x: prefix length 'x' must be/],
  ['eth0/16/2', /prefix length '16\/2' must be/],
  ['fd00::1/64', /^underlay fd00::1\/64: IPv6 is not supported/],
  ['fe80::1', /^underlay fe80::1: IPv6 is not supported/],
  ['averyveryverylongname', /^underlay 'averyveryverylongname': interface name is 21 bytes; Linux allows at most 15$/],
  ['eth0:1', /interface names may not contain/],
];
for (const [text, message] of badUnderlays) {
  test(`parseUnderlay rejects ${JSON.stringify(text)}`, (t) => {
    t.throws(() => parseUnderlay(text), { instanceOf: FanError, message });
  });
}

test('resolveUnderlayOffline: address forms only', (t) => {
  const c = resolveUnderlayOffline(parseUnderlay('172.16.3.4/16'));
  t.is(c && formatCidr(c), '172.16.0.0/16');
  const d = resolveUnderlayOffline(parseUnderlay('10.1.2.3'));
  t.is(d && formatCidr(d), '10.1.0.0/16');
  t.is(resolveUnderlayOffline(parseUnderlay('eth0/16')), undefined);
  t.is(resolveUnderlayOffline(parseUnderlay('default')), undefined);
});

// ---------------------------------------------------------------- resolveUnderlay

const ifaces: InterfaceAddrs[] = [
  { name: 'lo', addresses: [{ address: ip('127.0.0.1'), prefix: 8 }] },
  { name: 'eth0', addresses: [{ address: ip('172.16.3.4'), prefix: 16 }] },
  { name: 'eth1', addresses: [] },
  {
    name: 'eth2',
    addresses: [
      { address: ip('10.0.0.5'), prefix: 24 },
      { address: ip('10.0.0.6'), prefix: 24 },
    ],
  },
];
const HAVE = 'lo 127.0.0.1/8, eth0 172.16.3.4/16, eth1 (no IPv4), eth2 10.0.0.5/24, eth2 10.0.0.6/24';

const resolutions: [string, string | undefined, string, string, string][] = [
  // spec, default route iface, -> iface, address, underlay
  ['172.16.3.4/16', undefined, 'eth0', '172.16.3.4', '172.16.0.0/16'],
  ['172.16.3.4/12', undefined, 'eth0', '172.16.3.4', '172.16.0.0/12'],
  ['172.16.3.4', undefined, 'eth0', '172.16.3.4', '172.16.0.0/16'],
  ['172.16.0.0/16', undefined, 'eth0', '172.16.3.4', '172.16.0.0/16'],
  ['10.0.0.6/16', undefined, 'eth2', '10.0.0.6', '10.0.0.0/16'],
  ['eth0', undefined, 'eth0', '172.16.3.4', '172.16.0.0/16'],
  ['eth0/24', undefined, 'eth0', '172.16.3.4', '172.16.3.0/24'],
  ['eth2/20', undefined, 'eth2', '10.0.0.5', '10.0.0.0/20'],
  ['default', 'eth0', 'eth0', '172.16.3.4', '172.16.0.0/16'],
  ['default/24', 'eth2', 'eth2', '10.0.0.5', '10.0.0.0/24'],
];
for (const [text, dflt, iface, address, underlay] of resolutions) {
  test(`resolveUnderlay ${text} (default route ${dflt ?? 'none'})`, (t) => {
    const r = resolveUnderlay(parseUnderlay(text), ifaces, dflt);
    t.is(r.iface, iface);
    t.is(formatIpv4(r.address), address);
    t.is(formatCidr(r.underlay), underlay);
  });
}

const badResolutions: [string, string | undefined, RegExp | string][] = [
  ['172.16.3.5/16', undefined, `underlay 172.16.3.5/16: 172.16.3.5 is not configured on any interface (have: ${HAVE})`],
  ['192.168.0.0/16', undefined, `underlay 192.168.0.0/16: no local address in it (have: ${HAVE})`],
  [
    '10.0.0.0/16',
    undefined,
    'underlay 10.0.0.0/16: several local addresses in it (eth2 10.0.0.5, eth2 10.0.0.6); give the host address, e.g. 10.0.0.5/16',
  ],
  ['eth9', undefined, 'underlay eth9: no such interface (have: lo, eth0, eth1, eth2)'],
  ['eth1', undefined, 'underlay eth1: interface has no IPv4 address'],
  ['eth1/24', undefined, 'underlay eth1/24: interface has no IPv4 address'],
  ['default', undefined, /^underlay default: there is no IPv4 default route; name the interface \(e\.g\. eth0\/16\) or the address \(A\.B\.C\.D\/16\)$/],
  ['default/24', undefined, /there is no IPv4 default route; name the interface \(e\.g\. eth0\/24\)/],
  ['default', 'wlan0', 'underlay default: default route interface wlan0: no such interface (have: lo, eth0, eth1, eth2)'],
  ['default', 'eth1', 'underlay default: default route interface eth1: interface has no IPv4 address'],
];
for (const [text, dflt, message] of badResolutions) {
  test(`resolveUnderlay rejects ${text} (default route ${dflt ?? 'none'})`, (t) => {
    t.throws(() => resolveUnderlay(parseUnderlay(text), ifaces, dflt), { instanceOf: FanError, message });
  });
}

test('resolveUnderlay with no interfaces at all', (t) => {
  t.throws(() => resolveUnderlay(parseUnderlay('eth0'), [], undefined), {
    message: 'underlay eth0: no such interface (have: none)',
  });
  t.throws(() => resolveUnderlay(parseUnderlay('172.16.0.0/16'), [], undefined), {
    message: 'underlay 172.16.0.0/16: no local address in it (have: none)',
  });
});

// ---------------------------------------------------------------- parseFanFile

const F = '/etc/network/fan';

test('parseFanFile: comments, blank lines, options in any order, CRLF', (t) => {
  const text = [
    '# fan configuration', // 1
    '', // 2
    '250.0.0.0/8 172.16.0.0/16 dhcp', // 3
    '   # indented comment', // 4
    '240.0.0.0/8\teth0/20   bridge fanbr0 host-reserve 5 dhcp # trailing', // 5
    '10.0.0.0/8 default off', // 6
    '100.64.0.0/10 192.168.1.7/24 off host-reserve 2#no space before comment\r', // 7
    '\t', // 8
  ].join('\n');
  const got = parseFanFile(text, F);
  const want: FanSpec[] = [
    {
      overlay: { network: ip('250.0.0.0'), prefix: 8 },
      underlay: { kind: 'cidr', address: ip('172.16.0.0'), prefix: 16, hostGiven: false, text: '172.16.0.0/16' },
      dhcp: true,
      hostReserve: 1,
      off: false,
      source: `${F}:3`,
    },
    {
      overlay: { network: ip('240.0.0.0'), prefix: 8 },
      underlay: { kind: 'iface', name: 'eth0', prefix: 20, text: 'eth0/20' },
      dhcp: true,
      hostReserve: 5,
      bridge: 'fanbr0',
      off: false,
      source: `${F}:5`,
    },
    {
      overlay: { network: ip('10.0.0.0'), prefix: 8 },
      underlay: { kind: 'default', prefix: 16, text: 'default' },
      dhcp: false,
      hostReserve: 1,
      off: true,
      source: `${F}:6`,
    },
    {
      overlay: { network: ip('100.64.0.0'), prefix: 10 },
      underlay: { kind: 'cidr', address: ip('192.168.1.7'), prefix: 24, hostGiven: true, text: '192.168.1.7/24' },
      dhcp: false,
      hostReserve: 2,
      off: true,
      source: `${F}:7`,
    },
  ];
  t.deepEqual(got, want);
});

test('parseFanFile: empty and comment-only files give no fans', (t) => {
  t.deepEqual(parseFanFile('', F), []);
  t.deepEqual(parseFanFile('# nothing\n\n   \n#250.0.0.0/8 eth0/16\n', F), []);
});

const badFiles: [string, number, string | RegExp][] = [
  ['250.0.0.0/8 eth0/16 dhcpp', 1, `${F}:1: unknown option 'dhcpp' (known: dhcp, host-reserve N, bridge NAME, off, type ipip|vxlan, vxlan-port N, vni N)`],
  ['250.0.0.0/8 eth0/16 dhcp dhcp', 1, `${F}:1: duplicate option 'dhcp'`],
  ['250.0.0.0/8 eth0/16 bridge a bridge b', 1, `${F}:1: duplicate option 'bridge'`],
  ['250.0.0.0/8 eth0/16 host-reserve 2 host-reserve 3', 1, `${F}:1: duplicate option 'host-reserve'`],
  ['250.0.0.0/8 eth0/16 off off', 1, `${F}:1: duplicate option 'off'`],
  ['250.0.0.0/8 eth0/16 bridge', 1, `${F}:1: option 'bridge' needs a value (bridge NAME)`],
  ['250.0.0.0/8 eth0/16 host-reserve # five', 1, `${F}:1: option 'host-reserve' needs a value (host-reserve N)`],
  ['250.0.0.0/8 eth0/16 host-reserve 0', 1, `${F}:1: host-reserve '0' must be a whole number ≥ 1`],
  ['250.0.0.0/8 eth0/16 host-reserve -1', 1, `${F}:1: host-reserve '-1' must be a whole number ≥ 1`],
  ['250.0.0.0/8 eth0/16 host-reserve 1.5', 1, /host-reserve '1\.5' must be a whole number/],
  ['250.0.0.0/8 eth0/16 host-reserve 05', 1, /host-reserve '05' must be a whole number/],
  ['250.0.0.0/8 eth0/16 host-reserve five', 1, /host-reserve 'five' must be a whole number/],
  ['250.0.0.0/8 eth0/16 host-reserve dhcp', 1, /host-reserve 'dhcp' must be a whole number/],
  ['250.0.0.0/8 172.16.0.0/16 host-reserve 254', 1, `${F}:1: host-reserve 254 leaves no address for containers in a /24 slice (at most 253)`],
  ['250.0.0.0/8 eth0/24 host-reserve 65534', 1, /^\/etc\/network\/fan:1: host-reserve 65534 leaves no address for containers in a \/16 slice \(at most 65533\)$/],
  ['250.0.0.0/8 eth0/16 bridge this-name-is-too-long', 1, `${F}:1: bridge 'this-name-is-too-long': interface name is 21 bytes; Linux allows at most 15`],
  ['250.0.0.0/8 eth0/16 bridge fan:0', 1, /^\/etc\/network\/fan:1: bridge 'fan:0': interface names may not contain/],
  ['\n\n250.1.0.0/8 eth0/16', 3, `${F}:3: overlay 250.1.0.0/8 has host bits set; did you mean 250.0.0.0/8?`],
  ['250.0.0/8 eth0/16', 1, /^\/etc\/network\/fan:1: overlay '250\.0\.0\/8': '250\.0\.0' is not an IPv4 address/],
  ['250.0.0.0/8', 1, `${F}:1: expected OVERLAY UNDERLAY [options], e.g. 250.0.0.0/8 eth0/16`],
  ['250.0.0.0/8 # eth0/16', 1, /^\/etc\/network\/fan:1: expected OVERLAY UNDERLAY/],
  ['250.0.0.0/8 eth0/33', 1, /^\/etc\/network\/fan:1: underlay eth0\/33: prefix length '33'/],
  ['250.0.0.0/8 eth0/8', 1, `${F}:1: overlay /8 over underlay /8 gives /32 slices; a slice must be /30 or shorter (need underlay prefix ≥ 10)`],
  ['250.0.0.0/8 250.1.0.0/16', 1, /^\/etc\/network\/fan:1: overlay 250\.0\.0\.0\/8 and underlay 250\.1\.0\.0\/16 overlap/],
  ['127.0.0.0/8 eth0/16', 1, /^\/etc\/network\/fan:1: overlay 127\.0\.0\.0\/8 intersects 127\.0\.0\.0\/8/],
  ['# ok\n250.0.0.0/8 eth0/16\n\n240.0.0.0/8 eth0 bogus', 4, /^\/etc\/network\/fan:4: unknown option 'bogus'/],
];
for (const [text, line, message] of badFiles) {
  test(`parseFanFile rejects ${JSON.stringify(text)}`, (t) => {
    const e = t.throws(() => parseFanFile(text, F), { instanceOf: ConfigError, message });
    t.is(e?.file, F);
    t.is(e?.line, line);
  });
}

// ---------------------------------------------------------------- checkFans

test('checkFans: different overlays over the same underlay are fine', (t) => {
  const fans = parseFanFile('250.0.0.0/8 eth0/16\n240.0.0.0/8 eth0/16\n10.0.0.0/8 eth1/16 bridge fanbr1\n', F);
  t.notThrows(() => checkFans(fans));
  t.is(fans.length, 3);
});

test('checkFans: overlapping overlays name both sources', (t) => {
  const fans = parseFanFile('250.0.0.0/8 eth0/16\n\n250.7.0.0/16 eth1/24\n', F);
  const e = t.throws(() => checkFans(fans), {
    instanceOf: ConfigError,
    message: `${F}:3: overlay 250.7.0.0/16 overlaps overlay 250.0.0.0/8 (${F}:1); each fan needs its own overlay`,
  });
  t.is(e?.file, F);
  t.is(e?.line, 3);
});

test('checkFans: identical overlays over different underlays', (t) => {
  const fans = parseFanFile('250.0.0.0/8 eth0/16\n250.0.0.0/8 eth1/16\n', F);
  t.throws(() => checkFans(fans), { instanceOf: ConfigError, message: /^.*:2: overlay 250\.0\.0\.0\/8 overlaps overlay 250\.0\.0\.0\/8 \(.*:1\)/ });
});

test('checkFans: same bridge name', (t) => {
  const fans = parseFanFile('250.0.0.0/8 eth0/16 bridge fanbr\n240.0.0.0/8 eth1/16 bridge fanbr\n', F);
  const e = t.throws(() => checkFans(fans), {
    instanceOf: ConfigError,
    message: `${F}:2: bridge fanbr is also the bridge of ${F}:1; give each fan its own bridge name`,
  });
  t.is(e?.line, 2);
});

test('checkFans: fans marked off are not checked', (t) => {
  const fans = parseFanFile('250.0.0.0/8 eth0/16 bridge fanbr\n250.0.0.0/8 eth1/16 bridge fanbr off\n', F);
  t.notThrows(() => checkFans(fans));
});

test('checkFans: command-line source has no file/line', (t) => {
  const [a] = parseFanFile('250.0.0.0/8 eth0/16', F);
  const b: FanSpec = { ...a!, overlay: { network: ip('250.1.0.0'), prefix: 16 }, source: 'command line' };
  const e = t.throws(() => checkFans([a!, b]), {
    instanceOf: ConfigError,
    message: `overlay 250.1.0.0/16 (command line) overlaps overlay 250.0.0.0/8 (${F}:1); each fan needs its own overlay`,
  });
  t.is(e?.file, undefined);
  t.is(e?.line, undefined);
});

// ---------------------------------------------------------------- every error at once

test('parseFanFile reports every bad line at once, in order, each with its line', (t) => {
  const text = '250.0.0.0/8 eth0/16 dhcpp\n# fine:\n240.0.0.0/8 eth1/16\n10.0.0.0/8 eth0/33\n\n100.64.0.0/10 eth2/16 bridge\n';
  const e = t.throws(() => parseFanFile(text, F), { instanceOf: ConfigErrors });
  t.deepEqual(eachError(e!).map((x) => [x.file, x.line]), [[F, 1], [F, 4], [F, 6]]);
  t.is(e!.message, [
    `${F}:1: unknown option 'dhcpp' (known: dhcp, host-reserve N, bridge NAME, off, type ipip|vxlan, vxlan-port N, vni N)`,
    `${F}:4: underlay eth0/33: prefix length '33' must be a number 0..32`,
    `${F}:6: option 'bridge' needs a value (bridge NAME)`,
  ].join('\n'));
  // the good line is still read
  const { specs, errors } = readFanFile(text, F);
  t.is(errors.length, 3);
  t.deepEqual(specs.map((s) => s.source), [`${F}:3`]);
});

test('checkFans reports every clash at once', (t) => {
  const fans = parseFanFile('250.0.0.0/8 eth0/16 bridge b\n250.0.0.0/8 eth1/16\n240.0.0.0/8 eth1/16 bridge b\n', F);
  const e = t.throws(() => checkFans(fans), { instanceOf: ConfigErrors });
  t.deepEqual(eachError(e!).map((x) => x.message), [
    `${F}:2: overlay 250.0.0.0/8 overlaps overlay 250.0.0.0/8 (${F}:1); each fan needs its own overlay`,
    `${F}:3: bridge b is also the bridge of ${F}:1; give each fan its own bridge name`,
  ]);
});

test('fand.conf(5) documents every option a fan line takes', (t) => {
  const page = readFileSync(new URL('../../man/man5/fand.conf.5', import.meta.url), 'utf8');
  for (const o of FAN_LINE_OPTIONS) t.true(page.split('\n').some((l) => /^\.(B|BI|BR) /.test(l) && l.split(' ')[1] === o.replace(/-/g, '\\-')), `fand.conf.5 lacks ${o}`);
});
