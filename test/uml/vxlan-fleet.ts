// Guest side of the VXLAN fan tier: runs inside linux-fan.uml (Linux 6.1 with
// Ubuntu's Fan patch, vxlan fan map included; test/uml-vxlan.test.ts boots
// it). One guest, hosts as network namespaces on one underlay bridge, one
// container each, all in the fan 250.0.0.0/8 over 172.16.0.0/16 with VXLAN
// (VNI 16384000 = 250.0.0.0 >> 8, port 8472):
//
//   r1, r2  reference hosts as LXD built them for `fan.type: vxlan`, with the
//           reference client fanmap.py (argv[2]): a vxlan device with the fan
//           map (`fanmap.py vxlan-add`, no port given: the kernel's 8472), a
//           bridge with the slice's .1 and the overlay's prefix (/8), the
//           vxlan device its port, MTU 1450. No fand.
//   k       fand in `auto`: must prove the ipip and then the vxlan fan map
//           inside its namespace and pick kernel-fan (a vxlan device with the map)
//   s       fand --dataplane userspace: the userspace VXLAN dataplane (TAP)
//
// Containers have the slice's .2 with the overlay's netmask (/8, one
// Ethernet segment), MTU 1450. Checked: every container pings every other;
// each resolved every other's address by ARP across hosts (its neighbour
// table holds the other container's own MAC); the wire carries VXLAN with the
// VNI from every host; TCP byte-identical between every ordered pair of
// hosts; frames with a spoofed inner source from a reference host (an ARP
// request, and an IPv4 packet to a known MAC) are dropped and counted by the
// userspace host, and delivered by kernel-fan (the kernel checks nothing);
// stopping fand leaves k and s as they were. Prints one JSON line; exit 0
// when everything held.
import { writeFileSync, mkdirSync } from 'node:fs';
import { Lab, type LabHost } from '../../src/demo/lab.js';
import { inNs, run } from '../../src/demo/exec.js';
import { bridgeNameFor, makeFanMap, parseNetwork, sliceFor } from '../../src/fan/fanmap.js';
import { formatIpv4, parseIpv4 } from '../../src/fan/ipv4.js';
import { Guest, fandDrops, inEchos, ping, until } from './guest.js';

const FANMAP = process.argv[2] ?? '';
const PY = '/usr/bin/python3';
const TMP = '/run/tmp/vxfleet';
const BYTES = 1 << 20;
const PORT = 7000;
const OVERLAY = '250.0.0.0/8';
const UNDERLAY = '172.16.0.0/16';
const VNI = 16384000;
const MTU = 1450;

type Mode = 'lxd' | 'kernel-fan' | 'userspace';
interface Host { name: string; mode: Mode; n: number; args?: string[] }
const HOSTS: Host[] = [
  { name: 'r1', mode: 'lxd', n: 1 },
  { name: 'r2', mode: 'lxd', n: 2 },
  { name: 'k', mode: 'kernel-fan', n: 3, args: [] },
  { name: 's', mode: 'userspace', n: 4, args: ['--dataplane', 'userspace', '--workers', '1'] },
];
interface Container { ns: string; host: Host; address: string; gateway: string; bridge: string; mac: string }

const g = new Guest(TMP);
const out: Record<string, unknown> = {};
const lab = new Lab('vxfleet');
const fandOf = new Map<string, LabHost>();
const labHost = (name: string): LabHost => { if (!fandOf.has(name)) fandOf.set(name, { ns: name } as unknown as LabHost); return fandOf.get(name)!; };
const underlayOf = (h: Host) => `172.16.${h.n}.10`;
const sliceOf = (h: Host) => sliceFor(makeFanMap(parseNetwork(OVERLAY, 'overlay'), parseNetwork(UNDERLAY, 'underlay')), parseIpv4(underlayOf(h))!);
/** LXD's bridge is the user's (lxdfan0 by convention) and its vxlan device BRIDGE-fan; fand's are named from the slice and overlay. */
const bridgeOf = (h: Host) => (h.mode === 'lxd' ? 'lxdfan0' : bridgeNameFor(sliceOf(h)));
const label = (c: Container) => `${c.host.name}(${c.host.mode})`;

async function build(): Promise<Container[]> {
  await g.addNs('ul');
  await run('ip', ['-n', 'ul', 'link', 'add', 'br0', 'type', 'bridge']);
  await run('ip', ['-n', 'ul', 'link', 'set', 'br0', 'up']);
  const cs: Container[] = [];
  for (const h of HOSTS) {
    await g.addNs(h.name);
    await run('ip', ['-n', 'ul', 'link', 'add', `u${h.n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.name]);
    await run('ip', ['-n', 'ul', 'link', 'set', `u${h.n}`, 'master', 'br0', 'up']);
    await run('ip', ['-n', h.name, 'addr', 'add', `${underlayOf(h)}/16`, 'dev', 'eth0']);
    await run('ip', ['-n', h.name, 'link', 'set', 'eth0', 'up']);
    const s = sliceOf(h);
    const ns = `${h.name}c`;
    await g.addNs(ns);
    await run('ip', ['-n', h.name, 'link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run('ip', ['-n', h.name, 'link', 'set', 'vc', 'mtu', String(MTU), 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', String(MTU), 'up']);
    const address = formatIpv4(s.network + 2);
    await run('ip', ['-n', ns, 'addr', 'add', `${address}/8`, 'dev', 'eth0']);
    const mac = (JSON.parse((await run('ip', ['-n', ns, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[])[0]!.address;
    const c: Container = { ns, host: h, address, gateway: formatIpv4(s.bridgeAddress), bridge: bridgeOf(h), mac };
    cs.push(c);
    if (h.mode === 'lxd') await lxdHost(h, c);
  }
  return cs;
}

/** A host as LXD configured a `fan.type: vxlan` network, through the reference client. */
async function lxdHost(h: Host, c: Container): Promise<void> {
  const tunnel = `${c.bridge}-fan`;
  await inNs(h.name, PY, [FANMAP, 'vxlan-add', tunnel, `${OVERLAY}:${UNDERLAY}`, '--id', String(VNI), '--dev', 'eth0', '--local', underlayOf(h)]);
  await run('ip', ['-n', h.name, 'link', 'add', c.bridge, 'type', 'bridge']);
  await run('ip', ['-n', h.name, 'link', 'set', c.bridge, 'mtu', String(MTU), 'up']);
  await run('ip', ['-n', h.name, 'addr', 'add', `${c.gateway}/8`, 'dev', c.bridge]);
  await run('ip', ['-n', h.name, 'link', 'set', tunnel, 'master', c.bridge, 'mtu', String(MTU), 'up']);
  await inNs(h.name, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
  await attach(c);
}

async function attach(c: Container): Promise<void> {
  await run('ip', ['-n', c.host.name, 'link', 'set', 'vc', 'master', c.bridge, 'up']);
  await run('ip', ['-n', c.ns, 'route', 'replace', 'default', 'via', c.gateway]);
}

/** The host's links (name, kind, master, up) and addresses: what fand must leave as it found it. */
async function snapshot(ns: string): Promise<string> {
  const j = async (args: string[]) => JSON.parse((await run('ip', ['-n', ns, '-j', ...args])).stdout || '[]') as Record<string, unknown>[];
  const links = (await j(['-d', 'link', 'show'])).map((l) => `${String(l['ifname'])} ${String((l['linkinfo'] as { info_kind?: string } | undefined)?.info_kind)} ${String(l['master'])} ${(l['flags'] as string[]).includes('UP') ? 'up' : 'down'} ${String(l['mtu'])}`).sort();
  const addrs = (await j(['addr', 'show'])).flatMap((l) => (l['addr_info'] as { local: string; prefixlen: number }[]).map((a) => `${String(l['ifname'])} ${a.local}/${a.prefixlen}`)).sort();
  const routes = (await j(['-4', 'route', 'show', 'table', 'all'])).map((r) => `${String(r['dst'])} ${String(r['dev'] ?? '')}`).sort();
  return JSON.stringify({ links, addrs, routes });
}

const pairs = (cs: Container[]) => cs.flatMap((a) => cs.filter((b) => b !== a).map((b) => [a, b] as const));

try {
  mkdirSync(TMP, { recursive: true });
  const containers = await build();
  g.stamp('hosts, containers and LXD-style reference hosts built');
  const fandHosts = HOSTS.filter((h) => h.mode !== 'lxd');
  const before = new Map<string, string>();
  for (const h of fandHosts) before.set(h.name, await snapshot(h.name));

  const evidence: Record<string, unknown> = {};
  for (const h of fandHosts) {
    const conf = `${TMP}/${h.name}.fan`;
    writeFileSync(conf, `${OVERLAY} ${UNDERLAY} type vxlan\n`);
    const f = await lab.startFand(labHost(h.name), ['--config', conf, '--no-nat', ...(h.args ?? [])], 180_000);
    const chosen = f.logs.find((l) => typeof l['dataplane'] === 'string');
    evidence[h.name] = { mode: chosen?.['dataplane'], reason: chosen?.['reason'], fanEvidence: chosen?.['fanEvidence'] };
    g.check(chosen?.['dataplane'] === h.mode, `${h.name}: fand chose ${String(chosen?.['dataplane'])}, expected ${h.mode}`);
    g.check(/vxlan fan map: a vxlan device created with fan-map .* read it back/.test(String(chosen?.['fanEvidence'])),
      `${h.name}: the vxlan fan map was not proven in its namespace: ${String(chosen?.['fanEvidence'])}`);
    await attach(containers.find((c) => c.host === h)!);
    g.stamp(`fand up on ${h.name} (${String(chosen?.['dataplane'])})`);
  }
  out['evidence'] = evidence;
  const kLinks = (await run('ip', ['-n', 'k', '-d', '-j', 'link', 'show'])).stdout;
  const kv = (JSON.parse(kLinks) as { ifname: string; master?: string; linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> } }[]).find((l) => l.linkinfo?.info_kind === 'vxlan');
  out['kernelFanDevice'] = kv ? { name: kv.ifname, master: kv.master, id: kv.linkinfo?.info_data?.['id'], port: kv.linkinfo?.info_data?.['port'] } : 'none';
  g.check(kv?.linkinfo?.info_data?.['id'] === VNI && kv?.master === bridgeOf(HOSTS[2]!), `k: no vxlan fan device with VNI ${VNI} on its bridge: ${JSON.stringify(out['kernelFanDevice'])}`);
  for (const h of fandHosts) {
    const left = (await run('ip', ['-n', h.name, '-o', 'link', 'show'])).stdout.split('\n').filter((l) => /fanprobe|fanvxp/.test(l));
    g.check(left.length === 0, `${h.name}: probe devices left: ${left.join(' ')}`);
  }

  await g.startAgents(containers.map((c) => c.ns), PORT);
  g.stamp('agents ready');

  // Reachability, and VXLAN on the wire from every host with the LXD VNI.
  // -T vxlan: tcpdump decodes 8472 as OTV otherwise.
  const wire = await g.capture('ul', ['-i', 'br0', '-T', 'vxlan', 'udp port 8472']);
  const pingRows: string[] = [];
  for (const [a, b] of pairs(containers)) {
    let r = await ping(a.ns, b.address);
    if (!r.ok) r = await ping(a.ns, b.address);
    pingRows.push(`${label(a)} -> ${label(b)}: ${r.ok ? 'ok' : 'FAIL'}`);
    g.check(r.ok, `ping ${label(a)} ${a.address} -> ${label(b)} ${b.address}: ${r.text.slice(0, 200)}`);
  }
  out['pings'] = pingRows;
  g.stamp('ping matrix done');
  const vnis = () => {
    const by: Record<string, string[]> = {};
    for (const m of wire.text().matchAll(/(\d+\.\d+\.\d+\.\d+)\.\d+ > [\d.]+\.8472: [^\n]*?VXLAN, flags \[I\] \(0x08\), vni (\d+)/g)) {
      const h = HOSTS.find((x) => underlayOf(x) === m[1]);
      const key = `${h?.name}(${h?.mode})`;
      if (!(by[key] ??= []).includes(m[2]!)) by[key]!.push(m[2]!);
    }
    return by;
  };
  await until(() => Object.keys(vnis()).length === HOSTS.length, 100);
  await wire.stop();
  out['vniOnWire'] = vnis();
  g.check(Object.keys(vnis()).length === HOSTS.length && Object.values(vnis()).every((v) => v.length === 1 && v[0] === String(VNI)),
    `VXLAN on the wire: ${JSON.stringify(vnis())}`);

  // ARP across hosts: on one /8 segment each container resolved every other's address itself.
  const arp: string[] = [];
  for (const [a, b] of pairs(containers)) {
    const n = JSON.parse((await run('ip', ['-n', a.ns, '-j', 'neigh', 'show', b.address, 'dev', 'eth0'])).stdout) as { lladdr?: string; state?: string[] }[];
    const ok = n[0]?.lladdr === b.mac;
    arp.push(`${label(a)} knows ${label(b)} ${b.address} at ${n[0]?.lladdr ?? 'nothing'}${ok ? '' : ` (its MAC is ${b.mac})`}`);
    g.check(ok, `ARP ${label(a)} -> ${label(b)}: ${n[0]?.lladdr ?? 'unresolved'}, expected ${b.mac}`);
  }
  out['arp'] = arp;
  g.stamp('ARP checked');

  // TCP, byte-identical, every ordered pair of hosts.
  const tcp: string[] = [];
  const matrix: Record<string, string> = {};
  for (const [a, b] of pairs(containers)) {
    const s0 = Date.now();
    const r = await g.tcp(a.ns, b.ns, b.address, PORT, BYTES);
    tcp.push(`${label(a)} -> ${label(b)}: ${r.detail} (${Date.now() - s0} ms)`);
    matrix[`${a.host.name}(${a.host.mode}) -> ${b.host.name}(${b.host.mode})`] = r.ok ? 'identical' : 'FAILED';
    g.check(r.ok, `TCP ${label(a)} -> ${label(b)}: ${r.detail}`);
  }
  out['tcp'] = tcp;
  out['tcpMatrix'] = matrix;
  g.stamp('TCP matrix done');

  // Spoofed inner sources from the reference host r1, as an address of r2's slice:
  // an ARP request (sender address spoofed) and an IPv4 packet to a MAC r1 was
  // told by hand. The userspace host drops and counts both; kernel-fan delivers.
  const byName = (n: string) => containers.find((c) => c.host.name === n)!;
  const r1 = byName('r1');
  const fake = formatIpv4(parseIpv4(byName('r2').address)! + 95);
  await run('ip', ['-n', 'r1', 'addr', 'add', `${fake}/32`, 'dev', 'lo']);
  const spoofRows: string[] = [];
  for (const sp of [
    { to: 's', how: 'arp', expect: 'dropped' }, { to: 's', how: 'ipv4', expect: 'dropped' }, { to: 'k', how: 'ipv4', expect: 'delivered' },
  ] as const) {
    const target = byName(sp.to);
    if (sp.how === 'ipv4') await run('ip', ['-n', 'r1', 'neigh', 'replace', target.address, 'lladdr', target.mac, 'dev', r1.bridge, 'nud', 'permanent']);
    else await run('ip', ['-n', 'r1', 'neigh', 'flush', 'dev', r1.bridge]);
    const echos0 = await inEchos(target.ns);
    const drops0 = await fandDrops('s', 'in.spoofed-source');
    await inNs('r1', 'ping', ['-n', '-c', '3', '-i', '0.3', '-W', '1', '-I', fake, target.address], 30_000).catch(() => undefined);
    let echos = 0;
    let drops = 0;
    await until(async () => {
      echos = (await inEchos(target.ns)) - echos0;
      drops = (await fandDrops('s', 'in.spoofed-source')) - drops0;
      return sp.expect === 'dropped' ? drops >= 1 : echos >= 3;
    }, 50);
    if (sp.how === 'ipv4') await run('ip', ['-n', 'r1', 'neigh', 'del', target.address, 'dev', r1.bridge]).catch(() => undefined);
    const ok = sp.expect === 'dropped' ? echos === 0 && drops >= 1 : echos >= 3;
    spoofRows.push(`r1(lxd) as ${fake} -> ${label(target)} (${sp.how}): ${echos} echo requests delivered, userspace spoof drops +${drops} (${sp.expect} expected)`);
    g.check(ok, `spoof ${sp.how} r1 as ${fake} -> ${label(target)}: expected ${sp.expect}, got ${echos} delivered, ${drops} counted`);
  }
  await run('ip', ['-n', 'r1', 'addr', 'del', `${fake}/32`, 'dev', 'lo']);
  out['spoof'] = spoofRows;
  g.stamp('spoofing checked');

  // Stopping fand (containers detached first) leaves each host as it was.
  const restore: string[] = [];
  for (const h of fandHosts) {
    await run('ip', ['-n', h.name, 'link', 'set', 'vc', 'nomaster']);
    const code = await lab.stopFand(labHost(h.name), 'SIGTERM', 120_000);
    const d = before.get(h.name) === (await snapshot(h.name)) ? 'as before' : `CHANGED: before ${before.get(h.name)} after ${await snapshot(h.name)}`;
    restore.push(`${h.name}: exit ${code}, ${d}`);
    g.check(code === 0 && d === 'as before', `stopping fand on ${h.name}: exit ${code}, ${d}`);
  }
  out['restore'] = restore;
  g.stamp('fand stopped, hosts restored');
} catch (e) {
  g.problems.push(`error: ${(e as Error).stack ?? String(e)}`);
} finally {
  for (const h of fandOf.values()) await lab.stopFand(h, 'SIGKILL', 10_000).catch(() => undefined);
  await lab.destroy().catch(() => undefined);
  await g.cleanup();
}
out['timeline'] = g.timeline;
out['problems'] = g.problems;
out['ok'] = g.problems.length === 0;
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(g.problems.length === 0 ? 0 : 1);
