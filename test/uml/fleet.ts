// Guest side of the mixed-fleet tier: runs inside linux-fan.uml (Linux 6.1
// with Ubuntu's Fan patch, test/uml-fan.test.ts boots it). One guest, hosts
// as network namespaces on one underlay bridge, every host with containers:
//
//   u1, u2  reference Ubuntu hosts, built as fanctl builds them with the
//           reference client fanmap.py (argv[2]): maps on tunl0, tunl0 up,
//           a bridge with the slice's .1, `ip route add OVERLAY dev tunl0
//           src BRIDGE_ADDRESS`. No fand.
//   k       fand in `auto`: must prove the Fan kernel inside its namespace
//           (where /proc/sys/net/fan is absent) and pick kernel-fan
//   s       fand --dataplane userspace
//   i       fand --dataplane kernel-ipip
//
// Two fans: alpha = 250.0.0.0/8 over 172.16.0.0/16 (Ubuntu's default; u1,
// u2, k, s) and beta = 100.64.0.0/10 over 192.168.1.0/24 (/18 slices, from
// fand's widths table in test/fan.test.ts; u1, k, s, i: kernel-ipip cannot
// join a /16 underlay in UML, whose 65,533 routes exhaust its host mappings).
// Containers have MTU 1500 over a 1480 fan, so every TCP transfer relies on
// path MTU discovery. Checked: every container pings every other of its fan
// with ECT(0) and with CE (the receiving container and the underlay see the
// marks), TCP byte-identical between every pair of modes both ways, PMTU
// answers, spoofed inner sources (dropped and counted by the userspace host,
// delivered by the kernel modes), and that stopping fand restores each host.
// Prints one JSON line; exit 0 when everything held.
import { writeFileSync, mkdirSync } from 'node:fs';
import { FAND_BIN, Lab, type LabHost } from '../../src/demo/lab.js';
import { inNs, run } from '../../src/demo/exec.js';
import { bridgeNameFor, makeFanMap, parseNetwork, sliceFor } from '../../src/fan/fanmap.js';
import { formatIpv4, parseIpv4 } from '../../src/fan/ipv4.js';
import { Guest, fandDrops, inEchos, ping } from './guest.js';

const FANMAP = process.argv[2] ?? '';
const PY = '/usr/bin/python3';
const TMP = '/run/tmp/fleet';
const BYTES = 1 << 20;
const PORT = 7000;

type Mode = 'ubuntu' | 'kernel-fan' | 'userspace' | 'kernel-ipip';
type FanName = 'alpha' | 'beta';
const FANS: Record<FanName, { overlay: string; underlay: string; addr: (n: number) => string }> = {
  alpha: { overlay: '250.0.0.0/8', underlay: '172.16.0.0/16', addr: (n) => `172.16.${n}.10` },
  beta: { overlay: '100.64.0.0/10', underlay: '192.168.1.0/24', addr: (n) => `192.168.1.${10 + n}` },
};
interface Host { name: string; mode: Mode; n: number; fans: FanName[]; args?: string[] }
const HOSTS: Host[] = [
  { name: 'u1', mode: 'ubuntu', n: 1, fans: ['alpha', 'beta'] },
  { name: 'u2', mode: 'ubuntu', n: 2, fans: ['alpha'] },
  { name: 'k', mode: 'kernel-fan', n: 3, fans: ['alpha', 'beta'], args: [] },
  { name: 's', mode: 'userspace', n: 4, fans: ['alpha', 'beta'], args: ['--dataplane', 'userspace', '--workers', '1'] },
  { name: 'i', mode: 'kernel-ipip', n: 5, fans: ['beta'], args: ['--dataplane', 'kernel-ipip'] },
];
interface Container { ns: string; host: Host; fan: FanName; address: string; prefix: number; gateway: string; bridge: string }

const out: Record<string, unknown> = {};
const g = new Guest(TMP);
const check = (ok: boolean, what: string) => g.check(ok, what);
const stamp = (what: string) => g.stamp(what);
const addNs = (name: string) => g.addNs(name);
const lab = new Lab('fleet');
/** Lab runs fand for us; it needs only the namespace (and keeps the process on the object). */
const fandOf = new Map<string, LabHost>();
const labHost = (name: string): LabHost => { if (!fandOf.has(name)) fandOf.set(name, { ns: name } as unknown as LabHost); return fandOf.get(name)!; };

function sliceOf(h: Host, fan: FanName) {
  const f = FANS[fan];
  const map = makeFanMap(parseNetwork(f.overlay, 'overlay'), parseNetwork(f.underlay, 'underlay'));
  return sliceFor(map, parseIpv4(f.addr(h.n))!);
}

/** fanctl's bridge for a fan is named after the overlay (fan-250); fand's after the slice. */
function bridgeOf(h: Host, fan: FanName): string {
  if (h.mode === 'ubuntu') return fan === 'alpha' ? 'fan-250' : 'fan-100-64';
  return bridgeNameFor(sliceOf(h, fan));
}

async function build(): Promise<Container[]> {
  await addNs('ul');
  await run('ip', ['-n', 'ul', 'link', 'add', 'br0', 'type', 'bridge']);
  await run('ip', ['-n', 'ul', 'link', 'set', 'br0', 'up']);
  const containers: Container[] = [];
  for (const h of HOSTS) {
    await addNs(h.name);
    await run('ip', ['-n', 'ul', 'link', 'add', `u${h.n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.name]);
    await run('ip', ['-n', 'ul', 'link', 'set', `u${h.n}`, 'master', 'br0', 'up']);
    await run('ip', ['-n', h.name, 'addr', 'add', `${FANS.alpha.addr(h.n)}/16`, 'dev', 'eth0']);
    await run('ip', ['-n', h.name, 'addr', 'add', `${FANS.beta.addr(h.n)}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', h.name, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', h.name, 'route', 'add', 'default', 'via', '172.16.0.1', 'dev', 'eth0']);
    await inNs(h.name, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 1 > /proc/sys/net/ipv4/conf/default/rp_filter']);
    for (const fan of h.fans) {
      const s = sliceOf(h, fan);
      const c: Container = {
        ns: `${h.name}${fan[0]}`, host: h, fan, address: formatIpv4(s.network + 2), prefix: s.prefix,
        gateway: formatIpv4(s.bridgeAddress), bridge: bridgeOf(h, fan),
      };
      await addNs(c.ns);
      const port = `v${fan[0]}`;
      await run('ip', ['-n', h.name, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c.ns]);
      await run('ip', ['-n', h.name, 'link', 'set', port, 'mtu', '1500', 'up']);
      await run('ip', ['-n', c.ns, 'link', 'set', 'eth0', 'mtu', '1500', 'up']);
      await run('ip', ['-n', c.ns, 'addr', 'add', `${c.address}/${c.prefix}`, 'dev', 'eth0']);
      containers.push(c);
    }
    if (h.mode === 'ubuntu') await ubuntuHost(h, containers.filter((c) => c.host === h));
  }
  return containers;
}

/** A host as Ubuntu's fanctl configures it, through the reference client. */
async function ubuntuHost(h: Host, cs: Container[]): Promise<void> {
  await inNs(h.name, PY, [FANMAP, 'set', 'tunl0', ...h.fans.map((f) => `${FANS[f].overlay}:${FANS[f].underlay}`)]);
  await run('ip', ['-n', h.name, 'link', 'set', 'tunl0', 'up']);
  for (const c of cs) {
    await run('ip', ['-n', h.name, 'link', 'add', c.bridge, 'type', 'bridge']);
    await run('ip', ['-n', h.name, 'link', 'set', c.bridge, 'mtu', '1480', 'up']);
    await run('ip', ['-n', h.name, 'addr', 'add', `${c.gateway}/${c.prefix}`, 'dev', c.bridge]);
    await run('ip', ['-n', h.name, 'route', 'add', FANS[c.fan].overlay, 'dev', 'tunl0', 'src', c.gateway]);
  }
  await inNs(h.name, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
  await attach(cs);
}

async function attach(cs: Container[]): Promise<void> {
  for (const c of cs) {
    await run('ip', ['-n', c.host.name, 'link', 'set', `v${c.fan[0]}`, 'master', c.bridge, 'up']);
    await run('ip', ['-n', c.ns, 'route', 'replace', 'default', 'via', c.gateway]);
  }
}

/** What "the host as it was" means: links, addresses, routes, rules, nexthops, forwarding, tunl0's maps. */
async function snapshot(ns: string): Promise<string> {
  const j = async (args: string[]) => JSON.parse((await run('ip', ['-n', ns, '-j', ...args])).stdout || '[]') as Record<string, unknown>[];
  const links = (await j(['-d', 'link', 'show'])).map((l) => ({
    name: l['ifname'], kind: (l['linkinfo'] as { info_kind?: string } | undefined)?.info_kind, mtu: l['mtu'], mac: l['address'],
    up: (l['flags'] as string[]).includes('UP'), master: l['master'],
  }));
  const addrs = (await j(['addr', 'show'])).map((l) => [l['ifname'], (l['addr_info'] as { local: string; prefixlen: number }[]).map((a) => `${a.local}/${a.prefixlen}`)]);
  const routes = (await j(['-4', 'route', 'show', 'table', 'all'])).map((r) => `${String(r['type'] ?? '')} ${String(r['dst'])} ${String(r['gateway'] ?? '')} ${String(r['dev'] ?? '')} ${String(r['table'] ?? 'main')} ${String(r['prefsrc'] ?? '')}`).sort();
  const rules = (await j(['-4', 'rule', 'show'])).map((r) => JSON.stringify(r));
  const nexthops = (await j(['nexthop', 'show'])).length;
  const forward = (await inNs(ns, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim();
  const maps = JSON.parse((await inNs(ns, PY, [FANMAP, 'show', 'tunl0'])).stdout) as { fan_maps: unknown[] };
  return JSON.stringify({ links, addrs, routes, rules, nexthops, forward, tunl0Maps: maps.fan_maps });
}

function diff(a: string, b: string): string {
  const x = JSON.parse(a) as Record<string, unknown>;
  const y = JSON.parse(b) as Record<string, unknown>;
  return Object.keys(x).filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k])).map((k) => `${k}: before ${JSON.stringify(x[k])} after ${JSON.stringify(y[k])}`).join('; ');
}

const pairs = (cs: Container[]) => cs.flatMap((a) => cs.filter((b) => b.host !== a.host).map((b) => [a, b] as const));
const label = (c: Container) => `${c.host.name}(${c.host.mode})`;

try {
  mkdirSync(TMP, { recursive: true });
  const containers = await build();
  stamp('hosts, containers and Ubuntu reference hosts built');
  const fandHosts = HOSTS.filter((h) => h.mode !== 'ubuntu');
  const before = new Map<string, string>();
  for (const h of fandHosts) before.set(h.name, await snapshot(h.name));

  const evidence: Record<string, unknown> = {};
  for (const h of fandHosts) {
    const conf = `${TMP}/${h.name}.fan`;
    writeFileSync(conf, h.fans.map((f) => `${FANS[f].overlay} ${FANS[f].underlay}\n`).join(''));
    // --no-nat: NAT is tested on the machine's own kernel; the fleet is about the fan.
    const f = await lab.startFand(labHost(h.name), ['--config', conf, '--no-nat', ...(h.args ?? [])], 180_000);
    const chosen = f.logs.find((l) => typeof l['dataplane'] === 'string');
    evidence[h.name] = { mode: chosen?.['dataplane'], reason: chosen?.['reason'], fanEvidence: chosen?.['fanEvidence'] };
    check(chosen?.['dataplane'] === h.mode, `${h.name}: fand chose ${String(chosen?.['dataplane'])}, expected ${h.mode}`);
    check(/read it back/.test(String(chosen?.['fanEvidence'])), `${h.name}: the probe did not prove the Fan kernel in its namespace: ${String(chosen?.['fanEvidence'])}`);
    check(/version absent/.test(String(chosen?.['fanEvidence'])), `${h.name}: /proc/sys/net/fan visible in a namespace?`);
    await attach(containers.filter((c) => c.host === h));
    stamp(`fand up on ${h.name} (${String(chosen?.['dataplane'])})`);
  }
  out['evidence'] = evidence;
  const leftover = (await run('ip', ['-n', 'k', '-o', 'link', 'show'])).stdout.split('\n').filter((l) => /fanprobe/.test(l));
  check(leftover.length === 0, `probe devices left: ${leftover.join(' ')}`);

  await g.startAgents(containers.map((c) => c.ns), PORT);
  stamp('agents ready');

  // Reachability and ECN: every ordered pair of its fan, once with ECT(0), once with CE.
  const dumps = new Map<string, { text: () => string; stop: () => Promise<string> }>();
  for (const c of containers) dumps.set(c.ns, await g.capture(c.ns, ['-i', 'eth0', 'icmp[icmptype] == icmp-echo']));
  // outer header (20 bytes, no options) then the inner one: inner protocol ICMP, type echo request
  const wire = await g.capture('ul', ['-i', 'br0', 'ip proto 4 and ip[29] = 1 and ip[40] = 8']);
  const pingRows: string[] = [];
  for (const fan of ['alpha', 'beta'] as const) {
    for (const [a, b] of pairs(containers.filter((c) => c.fan === fan))) {
      for (const tos of ['0x02', '0x03']) {
        let r = await ping(a.ns, b.address, ['-Q', tos]);
        if (!r.ok) r = await ping(a.ns, b.address, ['-Q', tos]);
        pingRows.push(`${fan} ${label(a)} -> ${label(b)} tos ${tos}: ${r.ok ? 'ok' : 'FAIL'}`);
        check(r.ok, `ping ${fan} ${label(a)} ${a.address} -> ${label(b)} ${b.address} (tos ${tos})`);
      }
    }
  }
  out['pings'] = pingRows;
  stamp('ping matrix done');
  // "IP (tos 0x3,CE, ttl 62, ...)\n    100.66.192.2 > 100.65.0.2: ICMP echo request"
  const seenBy = (text: string) => [...text.matchAll(/tos (0x[0-9a-f]+)[^\n]*\n\s+(\d+\.\d+\.\d+\.\d+) > [\d.]+: ICMP echo request/g)].map((m) => `${m[2]} ${m[1]}`);
  const peersOf = (c: Container) => containers.filter((x) => x.fan === c.fan && x.host !== c.host);
  const complete = (c: Container) => { const seen = seenBy(dumps.get(c.ns)!.text()); return peersOf(c).every((a) => seen.includes(`${a.address} 0x2`) && seen.includes(`${a.address} 0x3`)); };
  // The captures see each echo request a moment after the ping returned: wait for all of them (capped), then stop.
  for (let w = 0; w < 300 && !containers.every(complete); w++) await new Promise((r) => setTimeout(r, 100));
  const ecn: string[] = [];
  for (const c of containers) {
    const seen = seenBy(await dumps.get(c.ns)!.stop());
    for (const a of peersOf(c)) {
      const got = seen.filter((s) => s.startsWith(`${a.address} `)).map((s) => s.split(' ')[1]);
      const ok = got.includes('0x2') && got.includes('0x3') && got.every((t) => t === '0x2' || t === '0x3');
      ecn.push(`${label(a)} -> ${label(c)}: ${ok ? 'ECT(0) and CE arrived unchanged' : `saw ${got.join(',') || 'nothing'}`}`);
      check(ok, `ECN ${label(a)} -> ${label(c)}: inner ECN marks changed or lost (${got.join(',') || 'nothing'})`);
    }
  }
  out['ecn'] = ecn;
  // On the wire: inner CE is carried under an outer ECT(0), inner ECT(0) under ECT(0) (RFC 6040 / INET_ECN_encapsulate), from every mode.
  const senders = () => new Set([...wire.text().matchAll(/proto IPIP[^\n]*\n\s+([\d.]+) >/g)].map((m) => HOSTS.find((x) => FANS.alpha.addr(x.n) === m[1] || FANS.beta.addr(x.n) === m[1])?.name)).size;
  for (let w = 0; w < 100 && senders() < HOSTS.length; w++) await new Promise((r) => setTimeout(r, 100));
  const wireText = await wire.stop();
  const outer = [...wireText.matchAll(/IP \(tos (0x[0-9a-f]+)[^\n]*proto IPIP[^\n]*\n\s+([\d.]+) > [\d.]+: IP \(tos (0x[0-9a-f]+)/g)]
    .map((m) => ({ src: m[2]!, outer: m[1]!, inner: m[3]! }));
  const bySender: Record<string, string[]> = {};
  for (const o of outer) {
    const h = HOSTS.find((x) => FANS.alpha.addr(x.n) === o.src || FANS.beta.addr(x.n) === o.src);
    const key = `${h?.name}(${h?.mode})`;
    const seen = `inner ${o.inner} -> outer ${o.outer}`;
    if (!(bySender[key] ??= []).includes(seen)) bySender[key]!.push(seen);
    const want = o.inner === '0x2' || o.inner === '0x3' ? '0x2' : undefined;
    check(want === undefined || o.outer === want, `ECN on the wire from ${key}: inner ${o.inner} sent under outer ${o.outer}`);
  }
  out['ecnOnWire'] = bySender;
  check(Object.keys(bySender).length === HOSTS.length, `the underlay capture saw IPIP from ${Object.keys(bySender).join(', ')} only`);
  stamp('ECN checked');

  // Path MTU: a 1500-byte DF packet from a container meets the 1480 fan at its host.
  const pmtu: string[] = [];
  for (const fan of ['alpha', 'beta'] as const) {
    const cs = containers.filter((c) => c.fan === fan);
    for (const [i, a] of cs.entries()) {
      const b = cs[(i + 1) % cs.length]!;
      const big = await ping(a.ns, b.address, ['-M', 'do', '-s', '1472']);
      const fits = await ping(a.ns, b.address, ['-M', 'do', '-s', '1452']);
      const told = /mtu ?=? ?1480/.test(big.text);
      pmtu.push(`${fan} ${label(a)} -> ${label(b)}: 1500 DF ${told ? 'answered mtu 1480' : `NOT answered (${big.text.slice(0, 120)})`}, 1480 DF ${fits.ok ? 'crossed' : 'FAILED'}`);
      check(told && !big.ok && fits.ok, `PMTU ${fan} ${label(a)} -> ${label(b)}`);
    }
  }
  out['pmtu'] = pmtu;
  stamp('PMTU checked');

  // TCP, byte-identical, every ordered pair of hosts of different modes on each fan (and u1 <-> u2: Ubuntu with Ubuntu).
  const tcp: string[] = [];
  const matrix: Record<string, string> = {};
  for (const fan of ['alpha', 'beta'] as const) {
    const cs = containers.filter((c) => c.fan === fan && !(fan === 'alpha' && c.host.name === 'u1'));
    for (const [a, b] of pairs(cs)) {
      const s0 = Date.now();
      const { ok, detail } = await g.tcp(a.ns, b.ns, b.address, PORT, BYTES, a.address);
      tcp.push(`${fan} ${label(a)} -> ${label(b)}: ${detail} (${Date.now() - s0} ms)`);
      matrix[`${a.host.mode} -> ${b.host.mode} (${fan})`] = ok ? 'identical' : 'FAILED';
      check(ok, `TCP ${fan} ${label(a)} -> ${label(b)}: ${detail}`);
    }
  }
  out['tcp'] = tcp;
  out['tcpMatrix'] = matrix;
  stamp('TCP matrix done');

  // Spoofed inner sources: a host sends, from its own underlay address, a packet whose
  // inner source is in another host's slice. Only the userspace dataplane checks.
  const beta = (n: string) => containers.find((c) => c.fan === 'beta' && c.host.name === n)!;
  const spoofs: { from: string; as: string; to: string; expect: 'dropped' | 'delivered' }[] = [
    { from: 'k', as: 'u1', to: 's', expect: 'dropped' },
    { from: 'u1', as: 'k', to: 's', expect: 'dropped' },
    { from: 'i', as: 'u1', to: 'k', expect: 'delivered' },
    { from: 'k', as: 'u1', to: 'i', expect: 'delivered' },
    { from: 'k', as: 'i', to: 'u1', expect: 'delivered' },
  ];
  const spoofRows: string[] = [];
  const sHost = HOSTS.find((h) => h.name === 's')!;
  for (const sp of spoofs) {
    const fake = formatIpv4(parseIpv4(beta(sp.as).address)! + 97);
    await run('ip', ['-n', sp.from, 'addr', 'add', `${fake}/32`, 'dev', 'lo']);
    const target = beta(sp.to);
    const echos0 = await inEchos(target.ns);
    const drops0 = await fandDrops(sHost.name, 'in.spoofed-source');
    await inNs(sp.from, 'ping', ['-n', '-c', '3', '-i', '0.3', '-W', '1', '-I', fake, target.address], 30_000).catch(() => undefined);
    await run('ip', ['-n', sp.from, 'addr', 'del', `${fake}/32`, 'dev', 'lo']);
    let echos = 0;
    let drops = 0;
    for (let w = 0; w < 50; w++) { // counters settle within a moment; wait for the expected change, capped
      echos = (await inEchos(target.ns)) - echos0;
      drops = (await fandDrops(sHost.name, 'in.spoofed-source')) - drops0;
      if ((sp.expect === 'dropped' ? drops >= 3 : echos >= 3)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const ok = sp.expect === 'dropped' ? echos === 0 && drops >= 3 : echos >= 3;
    spoofRows.push(`${sp.from}(${HOSTS.find((h) => h.name === sp.from)!.mode}) as ${fake} -> ${sp.to}(${target.host.mode}): ${echos} delivered, userspace spoof drops +${drops} (${sp.expect} expected)`);
    check(ok, `spoof ${sp.from} as ${fake} -> ${sp.to}: expected ${sp.expect}, got ${echos} delivered, ${drops} counted`);
  }
  out['spoof'] = spoofRows;
  stamp('spoofing checked');

  // Moving off fanctl: fand takes over an Ubuntu host as it is (u2: fanctl's bridge
  // fan-250 with a container on it, the map on tunl0, the route), configured with
  // `bridge fan-250`. Its containers must not notice: nothing on the host changes,
  // the gateway keeps its MAC, traffic crosses; and stopping fand leaves it all.
  const u2 = HOSTS.find((h) => h.name === 'u2')!;
  const u2a = containers.find((c) => c.host === u2)!;
  // The container's neighbour entry for its gateway: the MAC only (its state moves from REACHABLE to STALE by itself).
  const gatewayMac = async () => (JSON.parse((await run('ip', ['-n', u2a.ns, '-j', 'neigh', 'show', u2a.gateway])).stdout) as { lladdr?: string }[])[0]?.lladdr ?? 'none';
  await ping(u2a.ns, containers.find((c) => c.host.name === 'k' && c.fan === 'alpha')!.address, []);
  const u2before = await snapshot('u2');
  const macBefore = await gatewayMac();
  check(/^[0-9a-f:]{17}$/.test(macBefore), `u2's container has no neighbour entry for its gateway (${macBefore})`);
  const migrate: string[] = [];
  writeFileSync(`${TMP}/u2.fan`, `# as fanctl had it, with its bridge name\n${FANS.alpha.overlay} ${FANS.alpha.underlay} bridge ${u2a.bridge}\n`);
  const mf = await lab.startFand(labHost('u2'), ['--config', `${TMP}/u2.fan`, '--no-nat'], 180_000);
  const mchoice = mf.logs.find((l) => typeof l['dataplane'] === 'string');
  migrate.push(`fand on a fanctl host: ${String(mchoice?.['dataplane'])}`);
  const during = diff(u2before, await snapshot('u2'));
  const crosses = await ping(u2a.ns, containers.find((c) => c.host.name === 's' && c.fan === 'alpha')!.address, []);
  migrate.push(`host while fand runs: ${during || 'unchanged'}; gateway MAC ${(await gatewayMac()) === macBefore ? 'unchanged' : 'CHANGED'}; ping to userspace host ${crosses.ok ? 'crosses' : 'FAILED'}`);
  check(during === '' && crosses.ok && (await gatewayMac()) === macBefore && mchoice?.['dataplane'] === 'kernel-fan', `fand taking over the fanctl host u2 changed it: ${migrate.join('; ')}`);
  const mcode = await lab.stopFand(labHost('u2'), 'SIGTERM', 120_000);
  const after = diff(u2before, await snapshot('u2'));
  migrate.push(`after stop (exit ${mcode}): ${after || 'unchanged'}`);
  check(mcode === 0 && after === '', `stopping fand on the former fanctl host u2: exit ${mcode}, ${after}`);
  out['migration'] = migrate;
  stamp('fanctl host taken over and given back');
  // Stopping fand restores each host. A fan with containers attached is kept
  // on a clean stop (daemon/retire.ts) and the kernel keeps forwarding: shown
  // on the kernel-fan host, which `fand down` then restores once its
  // containers are detached. The other hosts' containers are detached first.
  const restore: string[] = [];
  const detach = async (h: Host) => { for (const c of containers.filter((x) => x.host === h)) await run('ip', ['-n', h.name, 'link', 'set', `v${c.fan[0]}`, 'nomaster']); };
  for (const h of fandHosts) {
    if (h.mode !== 'kernel-fan') await detach(h);
    const code = await lab.stopFand(labHost(h.name), 'SIGTERM', 120_000);
    restore.push(`${h.name}: exit ${code}`);
    check(code === 0, `fand on ${h.name} exited ${code} on SIGTERM`);
  }
  const kb = containers.find((c) => c.host.name === 'k' && c.fan === 'beta')!;
  const ub = containers.find((c) => c.host.name === 'u1' && c.fan === 'beta')!;
  const kept = await ping(kb.ns, ub.address, []);
  const keptMaps = JSON.parse((await inNs('k', PY, [FANMAP, 'show', 'tunl0'])).stdout) as { fan_maps: unknown[] };
  restore.push(`k stopped with containers attached: ${keptMaps.fan_maps.length} maps kept on tunl0, ping kernel-fan -> Ubuntu ${kept.ok ? 'crosses' : 'FAILED'}`);
  check(kept.ok && keptMaps.fan_maps.length === 2, 'kernel-fan host stopped with containers attached: the kernel should keep forwarding');
  await detach(HOSTS.find((h) => h.name === 'k')!);
  const down = await inNs('k', process.execPath, [FAND_BIN, 'down'], 120_000).then(() => 0, (e: { code?: unknown; stderr?: string }) => `${String(e.code)} ${e.stderr ?? ''}`);
  restore.push(`k: fand down: ${down}`);
  check(down === 0, `fand down on k failed: ${down}`);
  for (const h of fandHosts) {
    const d = diff(before.get(h.name)!, await snapshot(h.name));
    restore.push(`${h.name}: ${d || 'as before'}`);
    check(d === '', `${h.name} not restored: ${d}`);
  }
  out['restore'] = restore;
  const u1maps = JSON.parse((await inNs('u1', PY, [FANMAP, 'show', 'tunl0'])).stdout) as { fan_maps: unknown[] };
  check(u1maps.fan_maps.length === 2, 'the Ubuntu host lost its maps');
  stamp('fand stopped, hosts restored');
} catch (e) {
  g.problems.push(`error: ${(e as Error).stack ?? String(e)}`);
} finally {
  for (const c of g.children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  for (const h of fandOf.values()) await lab.stopFand(h, 'SIGKILL', 10_000).catch(() => undefined);
  await lab.destroy().catch(() => undefined);
  await g.cleanup();
}
out['timeline'] = g.timeline;
out['problems'] = g.problems;
out['ok'] = g.problems.length === 0;
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(g.problems.length === 0 ? 0 : 1);
