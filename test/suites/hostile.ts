// Reliability and security end to end, as root, in network namespaces: two
// hosts running fand (2 workers) with two containers
// each, plus a rogue underlay peer 172.16.9.9 that runs no fand (its own
// slice, 250.9.9.0/24, is a legitimate inner source for it).
//   - a 10 s junk flood (IPIP, or VXLAN) while real traffic flows
//   - an inner datagram larger than the underlay MTU, arriving as fragments
//   - the control socket refuses non-root users
//   - path-MTU discovery for containers that keep MTU 1500
//   - TTL inside the overlay (IPIP: each host routes and decrements it;
//     VXLAN: one Ethernet segment, nothing decrements it)
// The same suite runs for each encapsulation (hostile.test.ts: ipip,
// hostile-vxlan.test.ts: vxlan) and each IPIP dataplane (userspace, and
// ebpf: hostile-ebpf.test.ts); what differs on the wire comes from
// helpers/wire.ts.
import test from 'ava';
import { defaultVni, type Encap } from '../../src/fan/encap.js';
import { wireFor } from '../helpers/wire.js';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Lab, OVERLAY, runNodeScript, tcpTransfer, FAND_BIN, PATIENCE_MS, type LabContainer, type LabHost } from '../../src/demo/lab.js';
import { inNs, run, type ExecResult } from '../../src/demo/exec.js';
import { hex, inetChecksum, ip, ipv4Packet } from '../helpers/packets.js';

const FLOOD = fileURLToPath(new URL('../helpers/flood.js', import.meta.url));
const IPIP_SEND = fileURLToPath(new URL('../helpers/ipip-send.js', import.meta.url));
const VXLAN_SEND = fileURLToPath(new URL('../helpers/vxlan-send.js', import.meta.url));
const UDP_SINK = fileURLToPath(new URL('../helpers/udp-sink.js', import.meta.url));
const ROGUE = '172.16.9.9';
const WORKERS = 2;


/** A fan's counts as `fand show --json` names them: counters by key, drops by reason. */
type Counters = { counters: Record<string, number>; drops: Record<string, number> };
type Show = { pid: number; workers: { alive: number; configured: number }; fans: ({ bridge: string; mtu: number } & Counters)[] };

async function show(h: LabHost): Promise<Show> {
  return JSON.parse((await inNs(h.ns, process.execPath, [FAND_BIN, 'show', '--json'], PATIENCE_MS)).stdout) as Show;
}

async function counters(h: LabHost): Promise<Counters> {
  const f = (await show(h)).fans[0]!;
  return { counters: f.counters, drops: f.drops };
}

/** All drops of one direction: reasons `in.*` or `out.*`. */
const dropsOf = (c: Counters, dir: 'in' | 'out'): number =>
  Object.entries(c.drops).filter(([r]) => r.startsWith(`${dir}.`)).reduce((s, [, v]) => s + v, 0);
const delta = (after: Counters, before: Counters, key: string): number => (after.counters[key] ?? 0) - (before.counters[key] ?? 0);
const dropDelta = (after: Counters, before: Counters, reason: string): number => (after.drops[reason] ?? 0) - (before.drops[reason] ?? 0);

/** Counters once they stop moving (the workers write them as packets drain), waiting at most PATIENCE_MS. */
async function settledCounters(h: LabHost): Promise<Counters> {
  let last = await counters(h);
  const until = Date.now() + PATIENCE_MS;
  for (;;) {
    await sleep(300);
    const now = await counters(h);
    if ((now.counters['in.received'] === last.counters['in.received'] && now.counters['out.read'] === last.counters['out.read']) || Date.now() > until) return now;
    last = now;
  }
}

/** A field of /proc/net/snmp (e.g. Ip ReasmOKs, Icmp OutDestUnreachs) in a namespace. */
async function snmp(ns: string, group: string, field: string): Promise<number> {
  const lines = (await inNs(ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith(`${group}:`));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf(field)]);
}

/** VmRSS of a process in bytes. `ip netns exec` execs in place, so the child's pid is fand's. */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a command that may fail; resolves with its exit code and combined output. */
async function attempt(ns: string, cmd: string, args: readonly string[], timeoutMs = PATIENCE_MS): Promise<{ ok: boolean; output: string }> {
  try {
    const r = await inNs(ns, cmd, args, timeoutMs);
    return { ok: true, output: r.stdout + r.stderr };
  } catch (e) {
    const r = e as Partial<ExecResult> & Error;
    return { ok: false, output: `${r.stdout ?? ''}${r.stderr ?? ''}` || r.message };
  }
}

/** IPv4 + UDP with a correct UDP checksum; DF as given. */
function udpPacket(src: number, dst: number, sport: number, dport: number, payload: Uint8Array, df: boolean): Uint8Array {
  const udp = new Uint8Array(8 + payload.length);
  const v = new DataView(udp.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, udp.length);
  udp.set(payload, 8);
  const pseudo = new Uint8Array(12 + udp.length);
  const pv = new DataView(pseudo.buffer);
  pv.setUint32(0, src);
  pv.setUint32(4, dst);
  pv.setUint16(8, 17);
  pv.setUint16(10, udp.length);
  pseudo.set(udp, 12);
  v.setUint16(6, inetChecksum(pseudo) || 0xffff);
  return ipv4Packet({ src, dst, proto: 17, df, id: 0x4242, payload: udp });
}

async function setContainerMtu(c: LabContainer, mtu: number): Promise<void> {
  const port = `c${c.host.containers.indexOf(c) + 1}`;
  await run('ip', ['-n', c.host.ns, 'link', 'set', port, 'mtu', String(mtu)]);
  await run('ip', ['-n', c.ns, 'link', 'set', 'eth0', 'mtu', String(mtu)]);
}

/** @param dataplane the IPIP dataplane it runs with (VXLAN fans: userspace only). */
export function hostileSuite(encap: Encap, dataplane: 'userspace' | 'ebpf' = 'userspace'): void {
  const wire = wireFor(encap);
  const vni = defaultVni({ network: ip(OVERLAY.split('/')[0]!), prefix: Number(OVERLAY.split('/')[1]) });
  const lab = new Lab(Lab.uniquePrefix(encap === 'vxlan' ? 'hv' : dataplane === 'ebpf' ? 'hb' : 'hx'), 16, { encap, dataplane });
  let rogue = '';

  test.before(async () => {
    await lab.build(2, 2);
    for (const h of lab.hosts) {
      await lab.startFand(h, ['--workers', String(WORKERS)]);
      await lab.attachContainers(h);
    }
    rogue = await lab.addUnderlayPeer('rogue', ROGUE);
  });

  test.after.always(async () => {
    await lab.destroy();
  });

  test.serial(`a 10 s junk-${encap} flood is dropped and counted; the daemon, its memory and real traffic survive`, async (t) => {
    const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
    const pid = h1.fand!.child.pid!;
    // warm up: the daemon has forwarded real packets before the RSS baseline
    t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 3));
    const rssBefore = rss(pid);
    const before = await counters(h1);
    const icmpBefore = await snmp(h1.ns, 'Icmp', 'OutDestUnreachs');
    const reasmBefore = await snmp(h1.ns, 'Ip', 'ReasmOKs');

    const floodMs = 10_000;
    const flood = runNodeScript(rogue, FLOOD, [ROGUE, h1.underlay, String(floodMs), encap, String(vni)], floodMs + 30_000);
    let rssMax = rssBefore;
    let sampling = true;
    t.teardown(() => { sampling = false; });
    const sampler = (async () => {
      // stops when the test ends, or when fand is gone (asserted below)
      while (sampling) { try { rssMax = Math.max(rssMax, rss(pid)); } catch { return; } await sleep(250); }
    })();
    await sleep(1000); // the flood is running
    // Real traffic meanwhile: 8 MiB TCP into host 1's container (through the
    // same raw sockets the junk arrives on) and pings the other way.
    const from = h2.containers[0]!;
    const to = h1.containers[0]!;
    const transfer = tcpTransfer(from.ns, to.ns, to.address, 8 << 20, 5401, 120_000);
    const pings = attempt(h1.containers[1]!.ns, 'ping', ['-c', '30', '-i', '0.25', '-W', '1', '-q', h2.containers[1]!.address], 30_000);

    const [floodOut] = await flood.done;
    const x = await transfer;
    await pings; // their loss under the flood is not asserted: it depends on CPU
    sampling = false;
    await sampler;
    t.log('flood', JSON.stringify(floodOut));
    t.true(Number(floodOut!['processed']) > Number(floodOut!['failed']), 'the rogue sent nothing');

    // the transfer arrived intact
    t.is(x.received.bytes, 8 << 20);
    t.is(x.received.sha256, x.sent.sha256);
    // the daemon is up, answers, and still has all its workers
    t.is(h1.fand!.child.exitCode, null);
    t.is(h1.fand!.child.signalCode, null);
    const s = await show(h1);
    t.is(s.workers.configured, WORKERS);
    t.is(s.workers.alive, s.workers.configured);
    t.true(await lab.ping(to.ns, from.address, 1), 'ping after the flood');
    // memory: bounded, and no growth that a leak per packet would show
    const rssAfter = rss(pid);
    rssMax = Math.max(rssMax, rssAfter);
    t.log(`RSS before ${(rssBefore / 2 ** 20).toFixed(1)} MiB, max ${(rssMax / 2 ** 20).toFixed(1)} MiB, after ${(rssAfter / 2 ** 20).toFixed(1)} MiB`);
    t.true(rssMax < 300 * 2 ** 20, `RSS reached ${rssMax} bytes`);
    t.true(rssAfter - rssBefore < 100 * 2 ** 20, `RSS grew by ${rssAfter - rssBefore} bytes`);

    // every kind of junk was dropped under its own reason
    const after = await settledCounters(h1);
    t.log('drops', JSON.stringify(Object.fromEntries(Object.keys(after.drops).filter((r) => r.startsWith('in.')).map((r) => [r, dropDelta(after, before, r)]))));
    t.true(dropsOf(after, 'in') > dropsOf(before, 'in'), 'no inbound drops counted');
    // IPIP junk is mostly an inner packet that is not one; VXLAN junk mostly a header that is not one
    const reasons = encap === 'vxlan' ? ['in.truncated', 'in.outer-source', 'in.vxlan-header', 'in.vni'] : ['in.truncated', 'in.outer-source', 'in.inner-not-ipv4', 'in.inner-malformed'];
    for (const reason of reasons) {
      t.true(dropDelta(after, before, reason) > 0, `${reason} did not rise`);
    }
    // every packet received is accounted for, and so is every packet read from the TUN
    t.is(after.counters['in.received'], (after.counters['rx.packets'] ?? 0) + dropsOf(after, 'in'));
    t.is(after.counters['out.read'], (after.counters['tx.packets'] ?? 0) + dropsOf(after, 'out'));
    // the junk drew no ICMP from host 1 (fand's raw IPIP sockets, or its UDP sockets, take it all)
    t.is(await snmp(h1.ns, 'Icmp', 'OutDestUnreachs'), icmpBefore, `junk ${encap} drew ICMP destination-unreachable`);
    // the oversized junk really arrived as fragments and was reassembled
    if (Number(floodOut!['oversizeSent']) > 0) {
      t.true(await snmp(h1.ns, 'Ip', 'ReasmOKs') > reasmBefore, 'no oversized packet was reassembled');
      // ebpf: the program cannot reassemble; it hands fragments to the stack and fand's raw socket
      if (dataplane === 'ebpf') t.true(delta(after, before, 'slow-path.in') > 0, 'no fragment went to the slow path');
    }
  });

  test.serial('an inner datagram larger than the underlay MTU, sent without DF, arrives intact as fragments', async (t) => {
    const h1 = lab.hosts[0]!;
    const c = h1.containers[0]!;
    const payload = randomBytes(3000 - 28);
    // The rogue's own slice is 250.9.9.0/24: a legitimate inner source for it.
    const inner = udpPacket(ip('250.9.9.5'), ip(c.address), 40000, 7001, payload, false);
    t.is(inner.length, 3000);
    const sink = runNodeScript(c.ns, UDP_SINK, ['7001'], PATIENCE_MS);
    await sink.first;
    const before = await counters(h1);
    const fragsBefore = await snmp(rogue, 'Ip', 'FragCreates');
    const reasmBefore = await snmp(h1.ns, 'Ip', 'ReasmOKs');
    // VXLAN: the frame goes to the container's MAC (the rogue would know it as any host of the segment does, by ARP)
    const mac = String((JSON.parse((await inNs(c.ns, 'ip', ['-j', 'link', 'show', 'dev', 'eth0'])).stdout) as { address: string }[])[0]!.address);
    const sender = encap === 'vxlan' ? [VXLAN_SEND, h1.underlay, String(vni), mac, hex(inner)] : [IPIP_SEND, h1.underlay, hex(inner)];
    const sent = JSON.parse((await inNs(rogue, process.execPath, sender)).stdout) as { sent: number; failed: number; errno: number };
    t.deepEqual(sent, { sent: 1, failed: 0, errno: 0 });
    const got = (await sink.done)[1]!;
    t.is(got['bytes'], payload.length);
    t.is(got['sha256'], createHash('sha256').update(payload).digest('hex'));
    t.is(got['from'], '250.9.9.5');
    // the outer packet (IPIP 3020 bytes, VXLAN 3058) left the rogue as fragments and host 1 reassembled it
    t.true(await snmp(rogue, 'Ip', 'FragCreates') - fragsBefore >= 3, 'the outer packet was not fragmented');
    t.true(await snmp(h1.ns, 'Ip', 'ReasmOKs') > reasmBefore, 'host 1 reassembled nothing');
    const after = await settledCounters(h1);
    t.true(delta(after, before, 'rx.packets') >= 1, 'no rx counted');
    t.true(delta(after, before, 'rx.bytes') >= 3000, `rx.bytes rose by ${delta(after, before, 'rx.bytes')}`);
    // ebpf: each fragment was passed up by the program and the whole came through the slow path
    if (dataplane === 'ebpf') t.true(delta(after, before, 'slow-path.in') >= 3, `slow-path.in rose by ${delta(after, before, 'slow-path.in')}`);
  });

  test.serial('the control socket answers root only', async (t) => {
    const h1 = lab.hosts[0]!;
    // as root, the same command answers
    t.is((await show(h1)).fans[0]!.bridge, h1.bridge);
    // util-linux: setpriv where it exists, else runuser
    const asNobody = existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv')
      ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--']
      : ['runuser', '-u', 'nobody', '--'];
    const r = await attempt(h1.ns, asNobody[0]!, [...asNobody.slice(1), process.execPath, FAND_BIN, 'show']);
    t.log(r.output.trim());
    t.false(r.ok, `fand show as nobody succeeded: ${r.output}`);
    t.regex(r.output, /permission denied/i);
    t.regex(r.output, /root/);
  });

  test.serial(`path MTU: containers that keep MTU 1500 learn ${wire.mtu} and move 8 MiB of TCP`, async (t) => {
    const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
    // Both ends at 1500: each side advertises MSS 1460, so TCP only fits the
    // 1480-byte fan if "fragmentation needed" reaches the sender. (With one end
    // at 1480 its MSS alone would keep the segments small.)
    const a = h1.containers[1]!;
    const b = h2.containers[1]!;
    await setContainerMtu(a, 1500);
    await setContainerMtu(b, 1500);
    t.teardown(async () => { await setContainerMtu(a, wire.mtu).catch(() => undefined); await setContainerMtu(b, wire.mtu).catch(() => undefined); });
    t.is((await show(h1)).fans[0]!.mtu, wire.mtu);
    // A 1500-byte DF packet: host 1 cannot forward it into the 1480-byte TUN
    // and says so ("From 250.1.10.1 ... Frag needed and DF set (mtu = 1480)");
    // once the route cache holds 1480, ping fails locally ("message too long,
    // mtu=1480"). Either is the 1480 we want.
    const big = await attempt(a.ns, 'ping', ['-M', 'do', '-s', '1472', '-c', '1', '-w', '60', b.address]);
    t.log(big.output.trim());
    t.false(big.ok, big.output);
    // IPIP: host 1 routes the packet and answers; VXLAN: fand answers for the destination (from its
    // address, "From 250.2.10.12 ... mtu = 1450"), as Linux's bridged vxlan devices do
    t.regex(big.output, new RegExp(`mtu\\s*=\\s*${wire.mtu}`, 'i'));
    // and 1480 bytes fit
    const fits = await attempt(a.ns, 'ping', ['-M', 'do', '-s', String(wire.mtu - 28), '-c', '1', '-w', '60', b.address]);
    t.true(fits.ok, fits.output);
    // Host 1 to host 2 uses the 1480 that the ping above put in a's route
    // cache; the way back learns it from host 2's own "fragmentation needed".
    // Without those ICMP messages (tried: an nft rule dropping them on host 1)
    // the transfer hangs: the assertions below can fail.
    const there = await tcpTransfer(a.ns, b.ns, b.address, 8 << 20, 5402, 120_000);
    t.is(there.received.bytes, 8 << 20);
    t.is(there.received.sha256, there.sent.sha256);
    const back = await tcpTransfer(b.ns, a.ns, a.address, 8 << 20, 5403, 120_000);
    t.is(back.received.bytes, 8 << 20);
    t.is(back.received.sha256, back.sent.sha256);
  });

  test.serial(encap === 'vxlan' ? 'TTL on a VXLAN fan: one Ethernet segment, no host decrements it' : 'TTL inside the overlay: it expires at the receiving host, which says so from its bridge address', async (t) => {
    const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
    const a = h1.containers[0]!;
    const b = h2.containers[0]!;
    if (encap === 'vxlan') {
      // Nothing routes between the containers of a VXLAN fan: TTL 1 reaches a container on another host.
      const one = await attempt(a.ns, 'ping', ['-t', '1', '-c', '1', '-w', '60', '-n', b.address]);
      t.true(one.ok, one.output);
      t.regex(one.output, /1 received/);
      t.regex(one.output, /ttl=64/, 'the reply arrives with the TTL it left with');
      return;
    }
    // Hops: container -> host 1 (forwards into the TUN: TTL 2 -> 1; fand does
    // not decrement, and the outer header inherits TTL 1 but crosses only the
    // underlay bridge) -> host 2 (fand decapsulates; forwarding from the TUN to
    // the bridge needs TTL > 1, so the kernel answers "time exceeded" from the
    // address of its route back, src 250.2.10.1) -> never reaches the container.
    // -w: keep probing until the first answer (ping stops at the first ICMP error too), so a probe lost on a busy machine is not the verdict.
    const dies = await attempt(a.ns, 'ping', ['-t', '2', '-c', '1', '-w', '60', '-n', b.address]);
    t.log(dies.output.trim());
    t.false(dies.ok, dies.output);
    t.regex(dies.output, new RegExp(`From ${h2.slice.gateway.replaceAll('.', '\\.')}\\b.*Time to live exceeded`, 'i'));
    // one hop more and the container answers
    const lives = await attempt(a.ns, 'ping', ['-t', '3', '-c', '1', '-w', '60', '-n', b.address]);
    t.true(lives.ok, lives.output);
    t.regex(lives.output, /1 received/);
  });
}
