import test from 'ava';
import fc from 'fast-check';
import {
  FanError,
  IFNAMSIZ_MAX,
  bridgeNameFor,
  makeFanMap,
  maxHostReserve,
  parseCidr,
  parseNetwork,
  sliceFor,
  sliceLenFor,
  sliceNetworkOf,
  tunNameFor,
  underlayFor,
  underlayHostOf,
  validateIfName,
} from '../src/fan/fanmap.js';
import { type Cidr, formatCidr, formatIpv4, parseIpv4 } from '../src/fan/ipv4.js';

function ip(text: string): number {
  const a = parseIpv4(text);
  if (a === undefined) throw new Error(`bad test address ${text}`);
  return a;
}

function net(text: string): Cidr {
  const [a, p] = text.split('/');
  return { network: ip(a!), prefix: Number(p) };
}

function map(overlay: string, underlay: string) {
  return makeFanMap(net(overlay), net(underlay));
}

// ---------------------------------------------------------------- parsing

test('parseCidr keeps host bits', (t) => {
  t.deepEqual(parseCidr('172.16.3.4/16', 'underlay'), { address: ip('172.16.3.4'), prefix: 16 });
  t.deepEqual(parseCidr('0.0.0.0/0', 'x'), { address: 0, prefix: 0 });
  t.deepEqual(parseCidr('255.255.255.255/32', 'x'), { address: 0xffffffff, prefix: 32 });
});

test('parseNetwork accepts networks', (t) => {
  t.deepEqual(parseNetwork('250.0.0.0/8', 'overlay'), { network: 0xfa000000, prefix: 8 });
  t.deepEqual(parseNetwork('100.64.0.0/10', 'overlay'), { network: 0x64400000, prefix: 10 });
});

const badCidrs: [string, RegExp][] = [
  ['250.0.0.0', /^overlay '250\.0\.0\.0': expected A\.B\.C\.D\/len/],
  ['250.0.0/8', /^overlay '250\.0\.0\/8': '250\.0\.0' is not an IPv4 address/],
  ['256.0.0.0/8', /'256\.0\.0\.0' is not an IPv4 address/],
  ['010.0.0.0/8', /'010\.0\.0\.0' is not an IPv4 address/],
  [' 250.0.0.0/8', /is not an IPv4 address/],
  ['250.0.0.0/33', /^overlay '250\.0\.0\.0\/33': prefix length '33' must be a number 0\.\.32$/],
  ['250.0.0.0/08', /prefix length '08' must be/],
  ['250.0.0.0/', /prefix length '' must be/],
  ['250.0.0.0/-1', /prefix length '-1' must be/],
  ['250.0.0.0/8/8', /prefix length '8\/8' must be/],
  ['fd00::/64', /^overlay fd00::\/64: IPv6 is not supported/],
  ['fd00::1', /^overlay fd00::1: IPv6 is not supported/],
];
for (const [text, message] of badCidrs) {
  test(`parseCidr rejects ${JSON.stringify(text)}`, (t) => {
    t.throws(() => parseCidr(text, 'overlay'), { instanceOf: FanError, message });
  });
}

test('parseNetwork rejects host bits and suggests the network', (t) => {
  t.throws(() => parseNetwork('250.1.0.0/8', 'overlay'), {
    instanceOf: FanError,
    message: 'overlay 250.1.0.0/8 has host bits set; did you mean 250.0.0.0/8?',
  });
  t.throws(() => parseNetwork('172.16.3.4/16', 'underlay'), {
    message: 'underlay 172.16.3.4/16 has host bits set; did you mean 172.16.0.0/16?',
  });
});

// ---------------------------------------------------------------- worked examples

interface Example {
  overlay: string;
  underlay: string;
  sliceLen: number;
  host: string;
  slice: string;
  bridge: string;
  tun: string;
  /** overlay address -> underlay host */
  reverse: [string, string][];
}

const examples: Example[] = [
  {
    overlay: '250.0.0.0/8', underlay: '172.16.0.0/16', sliceLen: 24,
    host: '172.16.3.4', slice: '250.3.4.0/24', bridge: 'fan-250-3-4', tun: 'ftun-250',
    reverse: [['250.5.6.7', '172.16.5.6'], ['250.3.4.1', '172.16.3.4'], ['250.3.4.254', '172.16.3.4'], ['250.255.254.0', '172.16.255.254']],
  },
  {
    overlay: '10.0.0.0/8', underlay: '192.168.16.0/20', sliceLen: 20,
    host: '192.168.17.5', slice: '10.16.80.0/20', bridge: 'fan-10-16-80', tun: 'ftun-10',
    reverse: [['10.16.80.1', '192.168.17.5'], ['10.16.95.255', '192.168.17.5'], ['10.32.0.9', '192.168.18.0'], ['10.255.239.0', '192.168.31.254']],
  },
  {
    overlay: '10.0.0.0/8', underlay: '192.168.16.0/20', sliceLen: 20,
    host: '192.168.16.1', slice: '10.0.16.0/20', bridge: 'fan-10-0-16', tun: 'ftun-10',
    reverse: [['10.0.16.77', '192.168.16.1']],
  },
  {
    overlay: '100.64.0.0/10', underlay: '192.168.1.0/24', sliceLen: 18,
    host: '192.168.1.2', slice: '100.64.128.0/18', bridge: 'fan-100-64-128', tun: 'ftun-100-64',
    reverse: [['100.64.128.3', '192.168.1.2'], ['100.66.128.1', '192.168.1.10'], ['100.127.128.0', '192.168.1.254']],
  },
  {
    overlay: '250.1.0.0/16', underlay: '10.1.2.0/24', sliceLen: 24,
    host: '10.1.2.3', slice: '250.1.3.0/24', bridge: 'fan-250-1-3', tun: 'ftun-250-1',
    reverse: [['250.1.7.9', '10.1.2.7'], ['250.1.3.200', '10.1.2.3']],
  },
  {
    // /26 underlay: 6 host bits land in bits 15..10 of the overlay.
    overlay: '250.1.0.0/16', underlay: '10.1.2.0/26', sliceLen: 22,
    host: '10.1.2.5', slice: '250.1.20.0/22', bridge: 'fan-250-1-20', tun: 'ftun-250-1',
    reverse: [['250.1.23.255', '10.1.2.5'], ['250.1.248.1', '10.1.2.62']],
  },
  {
    // /28 slices; the dotted name is exactly 15 bytes and still fits.
    overlay: '250.0.0.0/8', underlay: '172.16.0.0/12', sliceLen: 28,
    host: '172.16.48.79', slice: '250.3.4.240/28', bridge: 'fan-250-3-4-240', tun: 'ftun-250',
    reverse: [['250.3.4.241', '172.16.48.79']],
  },
  {
    // /28 slice whose dotted name (fan-250-255-255-224, 19 bytes) is too long: hex.
    overlay: '250.0.0.0/8', underlay: '172.16.0.0/12', sliceLen: 28,
    host: '172.31.255.254', slice: '250.255.255.224/28', bridge: 'fan-faffffe0', tun: 'ftun-250',
    reverse: [['250.255.255.238', '172.31.255.254']],
  },
  {
    overlay: '10.0.0.0/8', underlay: '172.16.0.0/12', sliceLen: 28,
    host: '172.16.0.1', slice: '10.0.0.16/28', bridge: 'fan-10-0-0-16', tun: 'ftun-10',
    reverse: [['10.0.0.17', '172.16.0.1']],
  },
];

for (const ex of examples) {
  test(`${ex.overlay} over ${ex.underlay}: host ${ex.host} owns ${ex.slice}`, (t) => {
    const m = map(ex.overlay, ex.underlay);
    t.is(m.sliceLen, ex.sliceLen);
    t.is(m.sliceShift, 32 - ex.sliceLen);
    const s = sliceFor(m, ip(ex.host));
    t.is(formatCidr(s), ex.slice);
    t.is(bridgeNameFor(s), ex.bridge);
    t.true(Buffer.byteLength(bridgeNameFor(s)) <= IFNAMSIZ_MAX);
    t.is(tunNameFor(m.overlay), ex.tun);
    t.is(formatIpv4(sliceNetworkOf(m, ip(ex.host))), ex.slice.split('/')[0]!);
    for (const [o, u] of ex.reverse) {
      t.is(formatIpv4(underlayFor(m, ip(o))), u, `${o} -> ${u}`);
      t.is(formatIpv4(underlayHostOf(m, ip(o))), u, `hot path ${o} -> ${u}`);
    }
  });
}

test('FanMap precomputed masks for 250.0.0.0/8 over 172.16.0.0/16', (t) => {
  const m = map('250.0.0.0/8', '172.16.0.0/16');
  t.deepEqual(
    { ...m },
    {
      overlay: { network: 0xfa000000, prefix: 8 },
      underlay: { network: 0xac100000, prefix: 16 },
      sliceLen: 24,
      overlayMask: 0xff000000,
      underlayMask: 0xffff0000,
      sliceShift: 8,
      sliceMask: 0xffffff00,
      hostBitsMask: 0x0000ffff,
    },
  );
});

test('slice address plan, default and custom host-reserve', (t) => {
  const m = map('250.0.0.0/8', '172.16.0.0/16');
  t.deepEqual({ ...sliceFor(m, ip('172.16.3.4')) }, {
    network: ip('250.3.4.0'),
    prefix: 24,
    bridgeAddress: ip('250.3.4.1'),
    firstUsable: ip('250.3.4.1'),
    lastUsable: ip('250.3.4.254'),
    broadcast: ip('250.3.4.255'),
    dhcpFirst: ip('250.3.4.2'),
    dhcpLast: ip('250.3.4.254'),
    hostReserve: 1,
    underlayHost: ip('172.16.3.4'),
  });
  const s = sliceFor(m, ip('172.16.3.4'), 10);
  t.is(formatIpv4(s.dhcpFirst), '250.3.4.11');
  t.is(s.hostReserve, 10);
  // The largest reserve leaves exactly one address.
  const last = sliceFor(m, ip('172.16.3.4'), 253);
  t.is(last.dhcpFirst, last.dhcpLast);
  t.is(maxHostReserve(24), 253);
  t.is(maxHostReserve(30), 1);
});

test('/30 slices: one container address', (t) => {
  // 250.0.0.0/8 over 10.0.0.0/10 -> /30
  const m = map('250.0.0.0/8', '10.0.0.0/10');
  t.is(m.sliceLen, 30);
  const s = sliceFor(m, ip('10.0.0.1'));
  t.is(formatCidr(s), '250.0.0.4/30');
  t.is(formatIpv4(s.bridgeAddress), '250.0.0.5');
  t.is(formatIpv4(s.dhcpFirst), '250.0.0.6');
  t.is(formatIpv4(s.dhcpLast), '250.0.0.6');
  t.is(formatIpv4(s.broadcast), '250.0.0.7');
});

test('top-bit overlays stay unsigned', (t) => {
  const m = map('128.0.0.0/2', '10.0.0.0/16');
  t.is(m.overlayMask, 0xc0000000);
  const s = sliceFor(m, ip('10.0.255.254'));
  t.is(formatCidr(s), '191.255.128.0/18');
  t.is(s.broadcast, ip('191.255.191.255'));
  t.is(underlayHostOf(m, s.broadcast), ip('10.0.255.254'));
});

// ---------------------------------------------------------------- rejections

const badMaps: [string, string, RegExp][] = [
  ['0.0.0.0/0', '172.16.0.0/16', /^overlay \/0 covers the whole address space; an overlay must be \/1 or longer/],
  ['250.0.0.0/8', '172.16.3.0/31', /^underlay \/31 has no room for hosts; the underlay prefix must be \/30 or shorter/],
  ['250.0.0.0/8', '172.16.3.4/32', /^underlay \/32 has no room for hosts/],
  ['250.0.0.0/8', '172.0.0.0/9', /^overlay \/8 over underlay \/9 gives \/31 slices; a slice must be \/30 or shorter \(need underlay prefix ≥ 10\)$/],
  ['250.0.0.0/16', '172.16.0.0/16', /^overlay \/16 over underlay \/16 gives \/32 slices; .*need underlay prefix ≥ 18/],
  ['0.0.0.0/8', '172.16.0.0/16', /^overlay 0\.0\.0\.0\/8 intersects 0\.0\.0\.0\/8 \("this network", not routable\); choose an overlay outside/],
  ['127.0.0.0/8', '172.16.0.0/16', /^overlay 127\.0\.0\.0\/8 intersects 127\.0\.0\.0\/8 \(loopback\)/],
  ['96.0.0.0/3', '172.16.0.0/16', /^overlay 96\.0\.0\.0\/3 intersects 127\.0\.0\.0\/8 \(loopback\)/],
  ['224.0.0.0/8', '172.16.0.0/16', /^overlay 224\.0\.0\.0\/8 intersects 224\.0\.0\.0\/4 \(multicast\)/],
  ['192.0.0.0/2', '172.16.0.0/16', /^overlay 192\.0\.0\.0\/2 intersects 224\.0\.0\.0\/4 \(multicast\)/],
  ['255.0.0.0/8', '172.16.0.0/16', /^overlay 255\.0\.0\.0\/8 contains 255\.255\.255\.255 \(limited broadcast\)/],
  ['250.0.0.0/8', '0.0.0.0/16', /^underlay 0\.0\.0\.0\/16 intersects 0\.0\.0\.0\/8 .*; the underlay must be the network the hosts share/],
  ['250.0.0.0/8', '127.0.0.0/16', /^underlay 127\.0\.0\.0\/16 intersects 127\.0\.0\.0\/8 \(loopback\)/],
  ['250.0.0.0/8', '239.1.0.0/16', /^underlay 239\.1\.0\.0\/16 intersects 224\.0\.0\.0\/4 \(multicast\)/],
  ['10.0.0.0/8', '255.255.0.0/16', /^underlay 255\.255\.0\.0\/16 contains 255\.255\.255\.255/],
  ['250.0.0.0/8', '250.1.0.0/16', /^overlay 250\.0\.0\.0\/8 and underlay 250\.1\.0\.0\/16 overlap/],
  ['10.0.0.0/8', '10.0.0.0/16', /^overlay 10\.0\.0\.0\/8 and underlay 10\.0\.0\.0\/16 overlap/],
];
for (const [o, u, message] of badMaps) {
  test(`makeFanMap rejects ${o} over ${u}`, (t) => {
    t.throws(() => map(o, u), { instanceOf: FanError, message });
  });
}

test('makeFanMap rejects Cidrs with host bits or bad prefixes', (t) => {
  t.throws(() => makeFanMap({ network: ip('250.1.0.0'), prefix: 8 }, net('172.16.0.0/16')), {
    instanceOf: FanError,
    message: 'overlay 250.1.0.0/8 has host bits set; did you mean 250.0.0.0/8?',
  });
  t.throws(() => makeFanMap(net('250.0.0.0/8'), { network: ip('172.16.3.4'), prefix: 16 }), {
    message: /^underlay 172\.16\.3\.4\/16 has host bits set; did you mean 172\.16\.0\.0\/16\?/,
  });
  t.throws(() => makeFanMap({ network: 0xfa000000, prefix: 33 }, net('172.16.0.0/16')), {
    message: 'overlay prefix /33 must be 0..32',
  });
  t.throws(() => makeFanMap({ network: 0xfa000000, prefix: 8.5 }, net('172.16.0.0/16')), {
    message: 'overlay prefix /8.5 must be 0..32',
  });
});

test('sliceLenFor works on prefixes alone', (t) => {
  t.is(sliceLenFor(8, 16), 24);
  t.is(sliceLenFor(10, 24), 18);
  t.is(sliceLenFor(28, 30), 30);
  t.throws(() => sliceLenFor(28, 29), { message: /gives \/31 slices.*≥ 30/ });
});

test('sliceFor rejects hosts outside the underlay and its network/broadcast addresses', (t) => {
  const m = map('250.0.0.0/8', '172.16.0.0/16');
  t.throws(() => sliceFor(m, ip('10.0.0.1')), {
    instanceOf: FanError,
    message: 'underlay host 10.0.0.1 is not in underlay 172.16.0.0/16',
  });
  t.throws(() => sliceFor(m, ip('172.16.0.0')), {
    message: /^underlay host 172\.16\.0\.0 is the network address of underlay 172\.16\.0\.0\/16; give the host's own address/,
  });
  t.throws(() => sliceFor(m, ip('172.16.255.255')), {
    message: /^underlay host 172\.16\.255\.255 is the broadcast address of underlay 172\.16\.0\.0\/16/,
  });
});

test('sliceFor rejects bad host-reserve', (t) => {
  const m = map('250.0.0.0/8', '172.16.0.0/16');
  const h = ip('172.16.3.4');
  t.throws(() => sliceFor(m, h, 0), { instanceOf: FanError, message: /^host-reserve 0 must be a whole number ≥ 1/ });
  t.throws(() => sliceFor(m, h, 1.5), { message: /^host-reserve 1\.5 must be a whole number ≥ 1/ });
  t.throws(() => sliceFor(m, h, 254), {
    message: 'host-reserve 254 leaves no address for containers in a /24 slice (at most 253)',
  });
  const m30 = map('250.0.0.0/8', '10.0.0.0/10');
  t.throws(() => sliceFor(m30, ip('10.0.0.1'), 2), { message: /in a \/30 slice \(at most 1\)/ });
});

test('underlayFor rejects addresses outside the overlay or in no host\'s slice', (t) => {
  const m = map('250.0.0.0/8', '172.16.0.0/16');
  t.throws(() => underlayFor(m, ip('10.3.4.5')), {
    instanceOf: FanError,
    message: '10.3.4.5 is not in overlay 250.0.0.0/8',
  });
  t.throws(() => underlayFor(m, ip('250.0.0.7')), {
    message: /^250\.0\.0\.7 maps to 172\.16\.0\.0, the network address of underlay 172\.16\.0\.0\/16; no host owns it/,
  });
  t.throws(() => underlayFor(m, ip('250.255.255.7')), {
    message: /^250\.255\.255\.7 maps to 172\.16\.255\.255, the broadcast address/,
  });
  t.is(formatIpv4(underlayFor(m, ip('250.0.1.0'))), '172.16.0.1');
});

// ---------------------------------------------------------------- names

const bridgeNames: [string, string][] = [
  ['250.3.4.0/24', 'fan-250-3-4'],
  ['10.16.0.0/20', 'fan-10-16-0'], // ceil(20/8) = 3 octets
  ['10.16.0.0/16', 'fan-10-16'],
  ['100.64.128.0/18', 'fan-100-64-128'],
  ['255.255.255.0/24', 'fan-255-255-255'], // 15 bytes: the longest dotted 3-octet name
  ['10.1.2.240/28', 'fan-10-1-2-240'],
  ['250.3.4.240/28', 'fan-250-3-4-240'], // exactly 15
  ['250.30.4.240/28', 'fan-fa1e04f0'], // 16 as dotted
  ['250.3.4.252/30', 'fan-250-3-4-252'], // exactly 15
  ['250.30.4.252/30', 'fan-fa1e04fc'],
  ['10.0.0.0/8', 'fan-10'],
];
for (const [slice, name] of bridgeNames) {
  test(`bridgeNameFor ${slice} = ${name}`, (t) => {
    t.is(bridgeNameFor(net(slice)), name);
  });
}

const tunNames: [string, string][] = [
  ['250.0.0.0/8', 'ftun-250'],
  ['100.64.0.0/10', 'ftun-100-64'],
  ['250.1.0.0/16', 'ftun-250-1'],
  ['10.1.2.0/24', 'ftun-10-1-2'],
  ['250.250.250.0/24', 'ftun-fafafa00'],
  ['100.64.128.0/17', 'ftun-100-64-128'], // exactly 15
  ['100.164.128.0/17', 'ftun-64a48000'],
];
for (const [overlay, name] of tunNames) {
  test(`tunNameFor ${overlay} = ${name}`, (t) => {
    t.is(tunNameFor(net(overlay)), name);
  });
}

test('validateIfName accepts real names', (t) => {
  for (const n of ['eth0', 'fan-250-3-4', 'a', 'x'.repeat(15), 'br.100', 'wlp2s0', 'é'.repeat(7)]) {
    t.notThrows(() => validateIfName(n, 'bridge'), n);
  }
});

const badIfNames: [string, RegExp][] = [
  ['', /^bridge: interface name is empty$/],
  ['x'.repeat(16), /^bridge 'x{16}': interface name is 16 bytes; Linux allows at most 15$/],
  ['é'.repeat(8), /interface name is 16 bytes/],
  ['.', /^bridge '\.': not a valid interface name$/],
  ['..', /^bridge '\.\.': not a valid interface name$/],
  ['a/b', /may not contain '\/', ':', whitespace or NUL/],
  ['eth0:1', /may not contain/],
  ['a b', /may not contain/],
  ['a\tb', /may not contain/],
  ['a\0b', /may not contain/],
];
for (const [name, message] of badIfNames) {
  test(`validateIfName rejects ${JSON.stringify(name)}`, (t) => {
    t.throws(() => validateIfName(name, 'bridge'), { instanceOf: FanError, message });
  });
}

// ---------------------------------------------------------------- properties

const NEVER: [number, number][] = [
  [0x00000000, 0x00ffffff],
  [0x7f000000, 0x7fffffff],
  [0xe0000000, 0xefffffff],
];

function range(c: Cidr): [number, number] {
  return [c.network, c.network + 2 ** (32 - c.prefix) - 1];
}

function disjoint([a0, a1]: [number, number], [b0, b1]: [number, number]): boolean {
  return a1 < b0 || b1 < a0;
}

/** Independent statement of makeFanMap's rules, by interval arithmetic. */
function refValid(o: Cidr, u: Cidr): boolean {
  if (o.prefix < 1 || u.prefix > 30 || u.prefix < o.prefix + 2) return false;
  for (const c of [o, u]) {
    const r = range(c);
    if (r[1] === 0xffffffff) return false;
    if (NEVER.some((n) => !disjoint(r, n))) return false;
  }
  return disjoint(range(o), range(u));
}

const bits = (a: number) => a.toString(2).padStart(32, '0');

/** The Fan by its definition, on bit strings. */
function refSlice(o: Cidr, u: Cidr, host: number): number {
  const s = bits(o.network).slice(0, o.prefix) + bits(host).slice(u.prefix);
  return parseInt(s.padEnd(32, '0'), 2);
}
function refUnderlay(o: Cidr, u: Cidr, a: number): number {
  return parseInt(bits(u.network).slice(0, u.prefix) + bits(a).slice(o.prefix, o.prefix + 32 - u.prefix), 2);
}

const cidrPair = fc
  .integer({ min: 0, max: 29 })
  .chain((o) =>
    fc.tuple(
      fc.constant(o),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
    ),
  )
  .map(([op, up, oa, ua]) => {
    const clear = (a: number, p: number) => Math.floor(a / 2 ** (32 - p)) * 2 ** (32 - p);
    return { o: { network: clear(oa, op), prefix: op }, u: { network: clear(ua, up), prefix: up } };
  });

test('property: makeFanMap accepts exactly the valid pairs', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(cidrPair, ({ o, u }) => {
      const expected = refValid(o, u);
      let got: boolean;
      try {
        makeFanMap(o, u);
        got = true;
      } catch (e) {
        if (!(e instanceof FanError)) throw e;
        got = false;
      }
      if (got) accepted++;
      return got === expected;
    }),
    { numRuns: 3000 },
  );
  t.true(accepted > 100, `only ${accepted} valid pairs generated`);
});

const validTriple = cidrPair
  .filter(({ o, u }) => refValid(o, u))
  .chain(({ o, u }) => {
    const hosts = 2 ** (32 - u.prefix);
    const sliceSize = 2 ** (u.prefix - o.prefix);
    return fc.record({
      o: fc.constant(o),
      u: fc.constant(u),
      h1: fc.integer({ min: 1, max: hosts - 2 }),
      h2: fc.integer({ min: 1, max: hosts - 2 }),
      offset: fc.integer({ min: 0, max: sliceSize - 1 }),
    });
  });

test('property: slice -> any address -> underlay host round-trips, and matches the definition', (t) => {
  fc.assert(
    fc.property(validTriple, ({ o, u, h1, offset }) => {
      const m = makeFanMap(o, u);
      const host = u.network + h1;
      const s = sliceFor(m, host);
      if (s.network !== refSlice(o, u, host)) return false;
      if (s.prefix !== o.prefix + 32 - u.prefix) return false;
      if (s.broadcast - s.network + 1 !== 2 ** (32 - s.prefix)) return false;
      if (s.network < o.network || s.broadcast > range(o)[1]) return false;
      const a = s.network + offset;
      return (
        underlayFor(m, a) === host &&
        underlayHostOf(m, a) === host &&
        refUnderlay(o, u, a) === host &&
        sliceNetworkOf(m, host) === s.network
      );
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('property: different hosts get disjoint slices', (t) => {
  fc.assert(
    fc.property(validTriple, ({ o, u, h1, h2 }) => {
      fc.pre(h1 !== h2);
      const m = makeFanMap(o, u);
      const a = sliceFor(m, u.network + h1);
      const b = sliceFor(m, u.network + h2);
      return disjoint([a.network, a.broadcast], [b.network, b.broadcast]);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('property: names are valid interface names and differ between distinct slices', (t) => {
  fc.assert(
    fc.property(validTriple, ({ o, u, h1, h2 }) => {
      fc.pre(h1 !== h2);
      const m = makeFanMap(o, u);
      const a = bridgeNameFor(sliceFor(m, u.network + h1));
      const b = bridgeNameFor(sliceFor(m, u.network + h2));
      validateIfName(a, 'bridge');
      validateIfName(tunNameFor(o), 'tunnel');
      return a !== b;
    }),
    { numRuns: 1000 },
  );
  t.pass();
});
