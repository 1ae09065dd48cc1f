// End to end, as root, in network namespaces: three hosts on one underlay
// bridge, each running fand with two containers. The same suite runs for
// each encapsulation (e2e.test.ts: ipip, e2e-vxlan.test.ts: vxlan) and each
// IPIP dataplane (userspace, and ebpf: e2e-ebpf.test.ts); what differs on
// the wire comes from helpers/wire.ts.
import test from 'ava';
import type { Encap } from '../../src/fan/encap.js';
import { wireFor, type Wire } from '../helpers/wire.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fand } from '../helpers/fand-cli.js';
import { Lab, tcpTransfer, udpTransfer, FAND_BIN, PATIENCE_MS, type LabHost } from '../../src/demo/lab.js';
import { inNs, run } from '../../src/demo/exec.js';
import { systemCommand } from '../../src/host/nat.js';
import { hex, ip, ipv4Packet } from '../helpers/packets.js';
import { capture } from '../helpers/capture.js';
import { fileURLToPath } from 'node:url';

/** Ethernet + IPv4 + UDP headers: a captured frame longer than this plus two datagrams' payloads carries several. */
const ETH_IP_UDP = 14 + 20 + 8;
const INJECT = fileURLToPath(new URL('../helpers/inject.js', import.meta.url));

type Counts = { counters: Record<string, number>; drops: Record<string, number> };
type Show = { pid: number; dataplane: { mode: string }; workers: { alive: number; configured: number }; fans: ({ bridge: string; perWorker: Counts[] } & Counts)[] };

async function show(h: LabHost): Promise<Show> {
  return JSON.parse((await inNs(h.ns, process.execPath, [FAND_BIN, 'show', '--json'])).stdout) as Show;
}

/** Where datagrams to a container can be lost, as the kernel and fand count it. */
async function lossPlaces(c: { ns: string; host: LabHost }, wire: Wire): Promise<Record<string, number>> {
  const snmp = (await inNs(c.ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const field = (n: string) => Number(snmp[1]!.split(/\s+/)[snmp[0]!.split(/\s+/).indexOf(n)]);
  const drops = Object.values((await show(c.host)).fans[0]!.drops).reduce((s, v) => s + v, 0);
  const tun = (JSON.parse((await run('ip', ['-n', c.host.ns, '-s', '-j', 'link', 'show', wire.device])).stdout) as { stats64: { tx: { dropped: number } } }[])[0]!;
  return { receiverRcvbufErrors: field('RcvbufErrors'), receiverHostFandDrops: drops, receiverHostTunTxDropped: tun.stats64.tx.dropped };
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

async function snmpIcmp(ns: string, field: string): Promise<number> {
  const lines = (await inNs(ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf(field)]);
}

async function hostLinkJson(ns: string, dev: string): Promise<Record<string, unknown>> {
  return (JSON.parse((await run('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])).stdout) as Record<string, unknown>[])[0]!;
}

async function hostState(ns: string): Promise<{ links: string[]; routes: string[]; addrs: string[]; forward: string; eth0Qdiscs: string[]; eth0Filters: string }> {
  const links = (JSON.parse((await run('ip', ['-n', ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
  const routes = (JSON.parse((await run('ip', ['-n', ns, '-j', 'route', 'show'])).stdout) as { dst: string; dev: string }[]).map((r) => `${r.dst} ${r.dev}`);
  const addrs = (JSON.parse((await run('ip', ['-n', ns, '-j', '-4', 'addr', 'show'])).stdout) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[])
    .flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`));
  const forward = (await inNs(ns, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim();
  // tc: the ebpf dataplane's hook on the underlay (fand_ingress on a clsact qdisc)
  const eth0Qdiscs = (JSON.parse((await inNs(ns, 'tc', ['-j', 'qdisc', 'show', 'dev', 'eth0'])).stdout) as { kind: string }[]).map((q) => q.kind);
  const eth0Filters = eth0Qdiscs.includes('clsact') ? (await inNs(ns, 'tc', ['filter', 'show', 'dev', 'eth0', 'ingress'])).stdout : '';
  return { links, routes, addrs, forward, eth0Qdiscs, eth0Filters };
}

/** @param dataplane the IPIP dataplane it runs with (VXLAN fans: userspace only). */
export function e2eSuite(encap: Encap, dataplane: 'userspace' | 'ebpf' = 'userspace'): void {
  const wire = wireFor(encap);
  const lab = new Lab(Lab.uniquePrefix(encap === 'vxlan' ? 'e2v' : dataplane === 'ebpf' ? 'e2b' : 'e2e'), 16, { encap, dataplane });

  test.before(async () => {
    await lab.build(3, 2);
    for (const h of lab.hosts) {
      await lab.startFand(h, ['--workers', '2']);
      await lab.attachContainers(h);
    }
  });

  test.after.always(async () => {
    await lab.destroy();
  });

  test.serial('every container pings every other container across the fan', async (t) => {
    const all = lab.containers();
    const failed: string[] = [];
    for (const a of all) {
      for (const b of all) {
        if (a !== b && !(await lab.ping(a.ns, b.address, 1))) failed.push(`${a.address} -> ${b.address}`);
      }
    }
    t.deepEqual(failed, []);
    // The host itself reaches remote containers from its bridge address.
    t.true(await lab.ping(lab.hosts[0]!.ns, lab.hosts[2]!.containers[1]!.address));
  });

  test.serial('TCP: 24 MiB each way between hosts arrive byte-identical', async (t) => {
    const a = lab.hosts[0]!.containers[0]!;
    const b = lab.hosts[1]!.containers[1]!;
    const there = await tcpTransfer(a.ns, b.ns, b.address, 24 << 20, 5301);
    t.is(there.received.bytes, 24 << 20);
    t.is(there.received.sha256, there.sent.sha256);
    const back = await tcpTransfer(b.ns, a.ns, a.address, 24 << 20, 5302);
    t.is(back.received.bytes, 24 << 20);
    t.is(back.received.sha256, back.sent.sha256);
  });

  test.serial('UDP: numbered datagrams arrive intact, once, at the right socket; loss is counted and reported', async (t) => {
    const a = lab.hosts[1]!.containers[0]!;
    const b = lab.hosts[2]!.containers[0]!;
    const before = await lossPlaces(b, wire);
    const r = await udpTransfer(a.ns, b.ns, b.address, 2000, 1400, 4, 5303, a.address);
    const where = delta(await lossPlaces(b, wire), before);
    // Loss is what a busy machine's queues do to UDP: reported, with where it
    // was counted. What fand must never do is deliver something else.
    t.log(`UDP: ${r.received} of ${r.sent} arrived, ${r.lost} lost; counted on the way: ${JSON.stringify(where)}`);
    t.is(r.bad, 0, 'datagrams arrived corrupted');
    t.is(r.duplicates, 0, 'datagrams arrived twice');
    t.is(r.misdelivered, 0, 'datagrams arrived at the wrong socket or from the wrong source');
    t.is(r.received + r.lost, r.sent);
    t.true(r.received > 0, 'nothing arrived: the path is broken, this is not loss');
  });

  if (encap === 'vxlan') {
    test.serial('VXLAN: datagrams of one flow reach the bridge joined (TAP USO on this kernel) and still arrive intact and once', async (t) => {
      const a = lab.hosts[0]!.containers[0]!;
      const b = lab.hosts[2]!.containers[1]!;
      const h = lab.hosts[2]!;
      t.regex(String(h.fand!.logs.find((l) => /VXLAN UDP offloads/.test(String(l['msg'])))?.['msg']), /TAP USO on/);
      // A UDP super-packet on the TAP: one write carrying several 200-byte datagrams of one flow.
      const joined = await capture(h.ns, wire.device, `udp and dst port 5305 and greater ${ETH_IP_UDP + 2 * 200}`, 1);
      const r = await udpTransfer(a.ns, b.ns, b.address, 3000, 200, 1, 5305, a.address);
      joined.stop();
      const seen = await joined.done;
      t.log(`UDP: ${r.received} of ${r.sent} arrived, ${r.lost} lost; joined on the TAP: ${seen.trim() || 'none seen'}`);
      t.is(r.bad, 0);
      t.is(r.duplicates, 0);
      t.is(r.misdelivered, 0);
      t.true(r.received > 0);
      t.regex(seen, /length \d+/, 'no UDP super-packet written to the TAP');
    });
  }

  test.serial('TCP with ECN: CE marks on the path, CWR crosses the underlay, transfer intact, nothing refused', async (t) => {
    const h1 = lab.hosts[0]!;
    const a = h1.containers[1]!;
    const b = lab.hosts[2]!.containers[1]!;
    // Both ends negotiate ECN; the receiving container marks 0.3 % of the data packets CE, so the
    // receiver echoes ECE and the sender's TCP sets CWR on its next segment. (The TUN offers
    // TSO_ECN, so a CWR super-packet would reach fand with the ECN gso flag; this kernel was
    // not seen to build one: its CWR segments came alone. tso.test.ts covers the cutting.)
    for (const ns of [a.ns, b.ns]) await inNs(ns, 'sysctl', ['-qw', 'net.ipv4.tcp_ecn=1']);
    await inNs(b.ns, 'nft', ['add table ip ecnmark; add chain ip ecnmark pre { type filter hook prerouting priority 0; }; ' +
      'add rule ip ecnmark pre tcp dport 5306 ip ecn ect0 numgen random mod 1000 < 3 ip ecn set ce']);
    const before = (await show(h1)).fans[0]!.drops;
    // inner TCP flags of an IPIP packet without options: 20 (outer) + 20 (inner) + 13
    const cap = await capture(h1.ns, 'eth0', `${wire.cwrFilter} and dst host ${lab.hosts[2]!.underlay}`, 1, undefined, wire.tcpdumpArgs);
    const r = await tcpTransfer(a.ns, b.ns, b.address, 24 << 20, 5306);
    t.is(r.received.bytes, 24 << 20);
    t.is(r.received.sha256, r.sent.sha256);
    cap.stop(); // the transfer is over: a CWR segment has crossed by now, or never will
    t.regex(await cap.done, /Flags \[[^\]]*W/, 'a segment with CWR crossed the underlay');
    const after = (await show(h1)).fans[0]!.drops;
    t.is((after['out.malformed'] ?? 0) - (before['out.malformed'] ?? 0), 0, 'no super-packet refused');
  });

  test.serial(`the underlay carries plain ${encap} between the hosts' underlay addresses`, async (t) => {
    const h1 = lab.hosts[0]!;
    const h2 = lab.hosts[1]!;
    const cap = await capture(h1.ns, 'eth0', wire.filter(), 4, undefined, wire.tcpdumpArgs);
    t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 2));
    const out = await cap.done; // 2 requests out and 2 replies in have crossed eth0: tcpdump exits
    t.regex(out, wire.line(h1.underlay, h2.underlay, `${h1.containers[0]!.address} > ${h2.containers[0]!.address}: ICMP echo request`));
    t.regex(out, wire.line(h2.underlay, h1.underlay, `${h2.containers[0]!.address} > ${h1.containers[0]!.address}: ICMP echo reply`));
  });

  test.serial(`injected hostile ${encap} is dropped and counted by reason; no ICMP; daemon keeps running`, async (t) => {
    const h1 = lab.hosts[0]!;
    const rogue = await lab.addUnderlayPeer('rogue', '172.16.9.9');
    const me = ip(h1.underlay);
    const rogueIp = ip('172.16.9.9');
    const target = ip(h1.containers[0]!.address);
    const udp = new Uint8Array(16).fill(7);
    const inner = (src: string, dst: number) => ipv4Packet({ src: ip(src), dst, payload: udp });
    const cases: [string, Uint8Array][] = [
      // the rogue speaks for host 2's containers
      ['in.spoofed-source', wire.packet(rogueIp, me, inner(lab.hosts[1]!.containers[0]!.address, target))],
      // inner destination in host 3's slice, sent to host 1
      ['in.inner-destination', wire.packet(rogueIp, me, inner('250.9.9.5', ip(lab.hosts[2]!.containers[0]!.address)))],
      // outer source outside the underlay
      ['in.outer-source', wire.packet(ip('192.168.77.7'), me, inner('250.9.9.5', target))],
      ['in.truncated', wire.truncated(rogueIp, me, inner('250.9.9.5', target))],
      ['in.inner-not-ipv4', wire.packet(rogueIp, me, (() => { const p = inner('250.9.9.5', target); p[0] = 0x60; return p; })())],
      ['in.inner-malformed', wire.packet(rogueIp, me, (() => { const p = inner('250.9.9.5', target); p[3] = p[3]! + 9; return p; })())],
      ['in.inner-checksum', wire.packet(rogueIp, me, (() => { const p = inner('250.9.9.5', target); p[10] = p[10]! ^ 0xff; return p; })())],
      // what only this encapsulation has (VXLAN: wrong VNI, bad header, malformed or spoofed ARP)
      ...wire.own(rogueIp, me, inner('250.9.9.5', target), ip(lab.hosts[1]!.containers[0]!.address), target),
    ];
    const before = (await show(h1)).fans[0]!;
    const icmpBefore = await snmpIcmp(h1.ns, 'OutDestUnreachs');
    const per = 5;
    const expected = new Map<string, number>();
    for (const [reason] of cases) expected.set(reason, (expected.get(reason) ?? 0) + per);
    const hexes = cases.flatMap(([, p]) => Array<string>(per).fill(hex(p)));
    const sent = JSON.parse((await inNs(rogue, process.execPath, [INJECT, h1.underlay, ...hexes])).stdout) as { sent: number; failed: number };
    t.is(sent.sent, hexes.length);
    t.is(sent.failed, 0);
    // The workers count as they drain their sockets: wait until every packet is counted (in.received), then judge.
    let after = await show(h1);
    for (const until = Date.now() + PATIENCE_MS; after.fans[0]!.counters['in.received']! - before.counters['in.received']! < hexes.length && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 100));
      after = await show(h1);
    }
    for (const [reason, n] of expected) {
      t.is((after.fans[0]!.drops[reason] ?? 0) - (before.drops[reason] ?? 0), n, reason);
    }
    // every packet is accounted for: what came in is what went out plus what was dropped
    const c = after.fans[0]!.counters;
    const dropsOf = (dir: string) => Object.entries(after.fans[0]!.drops).filter(([r]) => r.startsWith(`${dir}.`)).reduce((s, [, v]) => s + v, 0);
    t.is(c['in.received'], (c['rx.packets'] ?? 0) + dropsOf('in'));
    t.is(c['out.read'], (c['tx.packets'] ?? 0) + dropsOf('out'));
    t.is(after.workers.alive, 2);
    t.is(h1.fand!.child.exitCode, null);
    t.is(await snmpIcmp(h1.ns, 'OutDestUnreachs'), icmpBefore, `inbound ${encap} drew ICMP destination-unreachable`);
    // and good traffic still flows
    t.true(await lab.ping(h1.containers[0]!.ns, lab.hosts[1]!.containers[0]!.address));
  });

  test.serial('fand show in a namespace shows that namespace\'s daemon', async (t) => {
    for (const h of lab.hosts) {
      const s = await show(h);
      t.is(s.fans[0]!.bridge, h.bridge);
      t.is(s.dataplane.mode, dataplane);
      t.is(s.pid > 0, true);
    }
    const human = (await inNs(lab.hosts[1]!.ns, process.execPath, [FAND_BIN, 'show'])).stdout;
    t.regex(human, /^Bridge\s+Overlay\s+Underlay\s+Flags\s+Dataplane\s+Encap\s+MTU/m);
    t.regex(human, new RegExp(`fan-250-2-10\\s+250\\.0\\.0\\.0\\/8\\s+172\\.16\\.2\\.10\\/16\\s+host-reserve 1\\s+${dataplane}\\s+${wire.showEncap}\\s+${wire.mtu}`));
    // the control socket and its directory are root-only
    const mode = (await run('stat', ['-c', '%a', '/run/fand'])).stdout.trim();
    t.is(mode, '700');
  });

  test.serial('with 4 workers every inbound packet reaches the container exactly once', async (t) => {
    const h2 = lab.hosts[1]!;
    await lab.stopFand(h2);
    await lab.startFand(h2, ['--workers', '4']);
    await lab.attachContainers(h2);
    const a = lab.hosts[0]!.containers[1]!;
    const b = h2.containers[1]!;
    const r = await udpTransfer(a.ns, b.ns, b.address, 3000, 200, 16, 5304, a.address);
    t.log(`UDP: ${r.received} of ${r.sent} arrived, ${r.lost} lost`);
    t.is(r.duplicates, 0);
    t.is(r.bad, 0);
    t.is(r.misdelivered, 0);
    t.true(r.received > 0, 'nothing arrived');
    const s = await show(h2);
    t.is(s.workers.alive, 4);
    if (dataplane === 'userspace') {
      const busy = s.fans[0]!.perWorker.filter((w) => (w.counters['rx.packets'] ?? 0) > 0).length;
      t.true(busy >= 2, `inbound spread over ${busy} worker(s)`);
      const rx = s.fans[0]!.perWorker.reduce((n, w) => n + (w.counters['rx.packets'] ?? 0), 0);
      t.true(rx >= r.received, `workers wrote ${rx} packets to the TUN for ${r.received} datagrams`);
    } else {
      // The program decapsulates; the slow path's 4 workers saw none of it.
      const rx = s.fans[0]!.counters['rx.packets'] ?? 0;
      t.true(rx >= r.received, `the program delivered ${rx} packets for ${r.received} datagrams`);
      t.is(s.fans[0]!.counters['slow-path.in'], 0);
    }
  });

  /** The ports of a fan bridge other than the fan's own device (a VXLAN fan's TAP is a port too). */
  async function portsOf(ns: string, bridge: string): Promise<string[]> {
    return (JSON.parse((await run('ip', ['-n', ns, '-j', 'link', 'show', 'master', bridge])).stdout) as { ifname: string }[])
      .map((l) => l.ifname).filter((n) => n !== wire.device).sort();
  }

  test.serial('kill -9 and restart recovers without duplicates', async (t) => {
    const h3 = lab.hosts[2]!;
    // kill -9: everything stays behind...
    await lab.stopFand(h3, 'SIGKILL');
    let st = await hostState(h3.ns);
    t.true(st.links.includes(h3.bridge) && st.links.includes(wire.device));
    // ...and a new daemon adopts and repairs it, without touching the containers
    const f = await lab.startFand(h3, ['--workers', '2']);
    t.true(f.logs.some((l) => String(l['msg']).includes('did not stop cleanly')));
    t.deepEqual(await portsOf(h3.ns, h3.bridge), ['c1', 'c2']);
    t.true(await lab.ping(lab.hosts[0]!.containers[0]!.ns, h3.containers[0]!.address, 1));
    st = await hostState(h3.ns);
    t.is(st.routes.filter((r) => r.startsWith('250.0.0.0/8')).length, 1);
    t.is(st.addrs.filter((a) => a.startsWith(h3.bridge)).length, 1);
    // one filter of fand's on the underlay in ebpf mode (the killed daemon's was replaced), none otherwise
    t.is((st.eth0Filters.match(/handle 0xfa fand_ingress/g) ?? []).length, dataplane === 'ebpf' ? 1 : 0, st.eth0Filters);
  });

  test.serial('a clean stop keeps the fan for attached containers; a restart adopts it without re-attaching them; down removes it', async (t) => {
    const h3 = lab.hosts[2]!;
    const [c1, c2] = h3.containers as [typeof h3.containers[0], typeof h3.containers[0]];
    const remote = lab.hosts[0]!.containers[0]!;
    const ino = statSync(`/run/netns/${h3.ns}`).ino;
    const mac = (await hostLinkJson(h3.ns, h3.bridge))['address'];
    t.is(mac, '02:fa:fa:03:0a:00', 'the bridge address is derived from the slice 250.3.10.0/24');

    t.is(await lab.stopFand(h3), 0);
    let st = await hostState(h3.ns);
    t.true(st.links.includes(h3.bridge), 'SIGTERM removed the bridge under its containers');
    t.deepEqual(await portsOf(h3.ns, h3.bridge), ['c1', 'c2'], 'the containers were detached');
    t.is(st.addrs.filter((a) => a.startsWith(h3.bridge)).length, 1, 'the gateway address went');
    t.is(st.forward, '1', 'ip_forward went back to 0 under the containers');
    t.is((await hostLinkJson(h3.ns, h3.bridge))['address'], mac);
    t.true(await lab.ping(c1.ns, h3.slice.gateway), 'a container lost its gateway while fand was stopped');
    t.true(await lab.ping(c1.ns, c2.address), 'local traffic stopped while fand was stopped');
    if (dataplane === 'ebpf') {
      // the kernel keeps running the programs: cross-host traffic goes on with fand stopped (port map
      // emptied, so inbound packets take the TUN and the bridge)
      t.true(await lab.ping(remote.ns, c1.address, 1), 'ebpf: cross-host traffic stopped with fand');
      t.true(await lab.ping(c2.ns, remote.address, 1), 'ebpf: cross-host traffic stopped with fand');
    }
    const state = JSON.parse(readFileSync(`/run/fand/fand-${ino}.state.json`, 'utf8')) as { stopped?: { kept: { bridge: string; ports: string[] }[] } };
    t.deepEqual(state.stopped?.kept, [{ bridge: h3.bridge, ports: ['c1', 'c2'] }]);
    t.false(existsSync(`/run/fand/fand-${ino}.sock`), 'control socket left behind');

    // down refuses while containers are attached, and says which
    const refused = await fand(['down'], h3.ns);
    t.is(refused.code, 1);
    t.regex(refused.stderr, new RegExp(`containers are attached: ${h3.bridge} \\(ports: c1, c2\\)`));

    // a restart adopts everything: no re-attachment, traffic to other hosts is back
    const f = await lab.startFand(h3, ['--workers', '2']);
    t.true(f.logs.some((l) => /^adopting what the last fand/.test(String(l['msg']))), JSON.stringify(f.logs.map((l) => l['msg'])));
    t.false(f.logs.some((l) => /^(created|added)/.test(String(l['msg']))), 'a restart re-created what it adopted');
    t.true(await lab.ping(remote.ns, c1.address, 1), 'cross-host traffic did not resume after the restart');
    t.true(await lab.ping(c2.ns, remote.address, 1));
    t.deepEqual(await portsOf(h3.ns, h3.bridge), ['c1', 'c2']);
    st = await hostState(h3.ns);
    t.is(st.routes.filter((r) => r.startsWith('250.0.0.0/8')).length, 1);

    // stop again, then remove it all by force
    t.is(await lab.stopFand(h3), 0);
    const forced = await fand(['down', '--force'], h3.ns);
    t.is(forced.code, 0, forced.stderr);
    t.regex(forced.stdout, new RegExp(`removed bridge ${h3.bridge}`));
    st = await hostState(h3.ns);
    t.deepEqual(st.links.sort(), ['c1', 'c2', 'eth0', 'lo']);
    t.deepEqual(st.routes.filter((r) => r.startsWith('250.')), []);
    t.deepEqual(st.addrs.filter((a) => a.includes(' 250.')), []);
    t.is(st.forward, '0');
    t.false(st.eth0Qdiscs.includes('clsact'), `qdiscs left on eth0: ${st.eth0Qdiscs.join(', ')}`);
    t.is((await inNs(h3.ns, systemCommand('nft'), ['list', 'tables'])).stdout.trim(), '', 'nft table left behind');
    t.false(existsSync(`/run/fand/fand-${ino}.state.json`), 'state file left behind');
    t.is((await fand(['down'], h3.ns)).stdout, 'nothing of fand\'s is configured in this network namespace\n');
  });

  test.serial('a clean stop with no container attached removes everything fand created', async (t) => {
    const h3 = lab.hosts[2]!;
    await lab.startFand(h3, ['--workers', '1']);
    t.is(await lab.stopFand(h3), 0);
    const st = await hostState(h3.ns);
    t.deepEqual(st.links.sort(), ['c1', 'c2', 'eth0', 'lo']);
    t.deepEqual(st.routes.filter((r) => r.startsWith('250.')), []);
    t.is(st.forward, '0');
    t.false(st.eth0Qdiscs.includes('clsact'), `qdiscs left on eth0: ${st.eth0Qdiscs.join(', ')}`);
    const ino = statSync(`/run/netns/${h3.ns}`).ino;
    t.false(existsSync(`/run/fand/fand-${ino}.state.json`), 'state file left behind');
    t.false(existsSync(`/run/fand/fand-${ino}.sock`), 'control socket left behind');
  });
}
