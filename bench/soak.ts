// The soak test: N hosts in network namespaces, two containers each, fand
// (userspace, 2 workers) everywhere, and for a given time continuous mixed
// traffic between containers on different hosts — TCP transfers checked by
// sha256, numbered UDP datagrams checked one by one, pings — while the daemon
// of one host after another is restarted, alternating SIGKILL (the next fand
// must repair the host from its state file) and SIGTERM (a clean stop keeps
// the fan for the attached containers, and the next start adopts it). Neither
// may need the containers re-attached. It measures how long each daemon takes
// to come back and for traffic through its host to flow again, samples every
// daemon's RSS, and at the end checks each daemon's counters (in.received =
// rx.packets + in.* drops, out.read = tx.packets + out.* drops).
//
// A failed transfer is "interrupted" when one of its endpoints' hosts was
// being restarted while it ran (expected); otherwise it is a failure. Loss of
// UDP datagrams is reported, never a failure; a datagram that arrives
// corrupted, twice or at the wrong socket always is. Timings (how long a
// restart took, how long until traffic flowed) are measured and reported
// against TARGETS, never a failure: on a busy machine they only say how busy
// it was. What must happen at all is waited for with the lab's patience
// (PATIENCE_MS) and is a failure when it does not.
//   npm run soak -- [--minutes N] [--restart-every S] [--hosts N] [--workers N] [--seed N] [--json FILE]
// Exit status 1 when any check in BOUNDS or the summary's `failures` fails.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FAND_BIN, Lab, PATIENCE_MS, STALL_MS, tcpTransfer, udpTransfer, type LabContainer, type LabHost } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { droppedTotal } from '../src/dataplane/counter-names.js';

const MiB = 1 << 20;

/** What a restart should take on a quiet machine: reported (`slow` in the summary), never a failure. */
export const TARGETS = {
  /** A restarted fand logs "fand is up" within this. */
  upMs: 10_000,
  /** Once it is up, pings through its host flow again within this (the issue: "within about a second"). */
  resumeMs: 2_000,
} as const;

/** What the soak holds fand to; anything beyond is listed in `failures`. */
export const BOUNDS = {
  /** Per daemon: highest RSS sample minus its first sample. */
  rssGrowthMiB: 100,
  /** Any daemon's RSS, any time. */
  rssMaxMiB: 300,
} as const;

export interface SoakOptions {
  /** Traffic time (setup and the final checks come on top). */
  seconds: number;
  /** Seconds between restarts; the first one comes after this long. */
  restartEvery: number;
  hosts: number;
  /** At most this many restarts (default: as many as fit). */
  maxRestarts?: number;
  workers?: number;
  /** TCP lanes: each runs one transfer after another. */
  tcpLanes?: number;
  tcpBytes?: number;
  /** A transfer that moves nothing for this long has failed (default: the lab's STALL_MS). */
  tcpStallS?: number;
  udpCount?: number;
  rssEveryS?: number;
  seed?: number;
  /** Progress lines (restarts, a status line per RSS sample). */
  log?: (line: string) => void;
}

export interface RestartRecord {
  host: string;
  signal: 'SIGKILL' | 'SIGTERM';
  /** Seconds into the soak. */
  at: number;
  /** The old daemon's exit code (null: killed by a signal). */
  exitCode: number | null;
  stopMs: number;
  /** Spawn to "fand is up"; null: it did not come up within PATIENCE_MS. */
  upMs: number | null;
  /** The new daemon logged that it repaired the state of the killed one. */
  repaired: boolean;
  /** The new daemon logged that it adopted what the stopped one kept for its containers. */
  adopted: boolean;
  /** The containers' ports had to be put back on the bridge: a failure (neither a kill nor a clean stop may cut them off). */
  reattached: boolean;
  /** Up to the first ping reply in both directions through the host; null: none within PATIENCE_MS. */
  resumeMs: number | null;
  /** Signal to the first ping reply in both directions: the whole outage as traffic saw it. */
  outageMs: number | null;
  error?: string;
}

export interface SoakSummary {
  ok: boolean;
  failures: string[];
  options: Required<Omit<SoakOptions, 'log' | 'maxRestarts'>> & { maxRestarts: number | null };
  bounds: typeof BOUNDS;
  targets: typeof TARGETS;
  /** Timings over TARGETS: reported, not failures. */
  slow: string[];
  startedAt: string;
  /** Traffic seconds actually run. */
  seconds: number;
  tcp: { ok: number; failed: number; interrupted: number; corrupted: number; mib: number; mibPerS: number; errors: string[] };
  udp: { runs: number; failed: number; interrupted: number; sent: number; received: number; lost: number; lostDuringRestarts: number; bad: number; duplicates: number; misdelivered: number; errors: string[]; lossy: string[] };
  /**
   * Where packets were lost outside fand's own counters: UDP receive-buffer
   * overflows in the containers (a receiver that did not keep up), datagrams
   * that arrived at a closed port (after their receiver had given up), and
   * packets the kernel could not queue to fand's TUN (tx dropped) or fand
   * could not hand to the kernel (rx dropped), on the TUNs of the last daemons.
   */
  kernelDrops: { udpRcvbufErrors: number; udpNoPorts: number; tunTxDropped: number; tunRxDropped: number };
  ping: { ok: number; failed: number; interrupted: number; errors: string[] };
  restarts: RestartRecord[];
  rss: { host: string; samples: number; daemons: number; firstMiB: number; minMiB: number; maxMiB: number; growthMiB: number; ok: boolean }[];
  counters: { host: string; ok: boolean; workers: string; fans: { bridge: string; inReceived: number; rxPackets: number; inDrops: number; outRead: number; txPackets: number; outDrops: number }[]; error?: string }[];
  /** Log lines of level error or worse from any daemon. */
  daemonErrors: { host: string; msg: string }[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round1 = (x: number) => Math.round(x * 10) / 10;

/** mulberry32: the soak's choices are reproducible from --seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rssMiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null; // the daemon is gone (being restarted)
  }
}

/** Time of the first echo reply from `to`, pinging every 50 ms; null when none comes within capMs. */
function firstReply(fromNs: string, to: string, capMs: number): Promise<number | null> {
  return new Promise((done) => {
    const child = spawn('ip', ['netns', 'exec', fromNs, 'ping', '-n', '-i', '0.05', '-W', '1', '-w', String(Math.ceil(capMs / 1000)), to], { stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    let settled = false;
    const finish = (t: number | null) => {
      if (settled) return;
      settled = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      done(t);
    };
    child.stdout!.on('data', (d: Buffer) => { buf += d.toString(); if (buf.includes(' bytes from ')) finish(Date.now()); });
    child.on('exit', () => finish(null));
  });
}

/**
 * Transfer helpers that failed early leave their peer waiting until its own
 * timeout (tcpTransfer does not kill the server when the client fails): end
 * those children of this process, so nothing outlives the soak.
 */
function reapTransfers(): number {
  let n = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid || !readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('transfer.js')) continue;
      process.kill(Number(d), 'SIGKILL');
      n++;
    } catch { /* gone meanwhile */ }
  }
  return n;
}

interface Window { host: number; from: number; to: number }

type ShowJson = { workers: { alive: number; configured: number }; fans: { bridge: string; counters: Record<string, number>; drops: Record<string, number> }[] };

export async function runSoak(opts: SoakOptions): Promise<SoakSummary> {
  const o = {
    seconds: opts.seconds,
    restartEvery: opts.restartEvery,
    hosts: opts.hosts,
    maxRestarts: opts.maxRestarts ?? null,
    workers: opts.workers ?? 2,
    tcpLanes: opts.tcpLanes ?? 3,
    tcpBytes: opts.tcpBytes ?? 4 * MiB,
    tcpStallS: opts.tcpStallS ?? STALL_MS / 1000,
    udpCount: opts.udpCount ?? 2000,
    rssEveryS: opts.rssEveryS ?? 10,
    seed: opts.seed ?? Math.floor(Math.random() * 2 ** 31),
  };
  if (o.hosts < 2) throw new Error(`--hosts ${o.hosts}: the soak needs at least 2 hosts`);
  const log = opts.log ?? (() => undefined);
  const random = prng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const fandArgs = ['--workers', String(o.workers)];

  const tcp = { ok: 0, failed: 0, interrupted: 0, corrupted: 0, bytes: 0, errors: [] as string[] };
  const udp = { runs: 0, failed: 0, interrupted: 0, sent: 0, received: 0, lost: 0, lostDuringRestarts: 0, bad: 0, duplicates: 0, misdelivered: 0, errors: [] as string[], lossy: [] as string[] };
  const ping = { ok: 0, failed: 0, interrupted: 0, errors: [] as string[] };
  const note = (list: string[], msg: string) => { if (list.length < 10) list.push(msg.slice(0, 400)); };
  const restarts: RestartRecord[] = [];
  const windows: Window[] = [];
  const rssSamples = new Map<string, { t: number; pid: number; mib: number }[]>();
  const daemonErrors: { host: string; msg: string }[] = [];
  const retired: { host: string; logs: Record<string, unknown>[] }[] = [];
  const name = (h: LabHost) => `h${h.index}`;

  /** Was a host of these being restarted at any time in [from, to]? */
  const touched = (hosts: number[], from: number, to: number) =>
    windows.some((w) => hosts.includes(w.host) && w.from <= to && w.to >= from);

  let port = 20_000;
  const nextPort = () => (port = port >= 60_000 ? 20_000 : port + 1);

  const lab = new Lab(Lab.uniquePrefix('soak'));
  const startedAt = new Date().toISOString();
  let t0 = Date.now();
  const at = () => round1((Date.now() - t0) / 1000);
  let rssTimer: NodeJS.Timeout | undefined;
  try {
    await lab.build(o.hosts, 2);
    for (const h of lab.hosts) {
      await lab.startFand(h, fandArgs);
      await lab.attachContainers(h);
    }
    const all = lab.containers();
    const pair = (): [LabContainer, LabContainer] => {
      const a = pick(all);
      return [a, pick(all.filter((c) => c.host !== a.host))];
    };

    const sampleRss = () => {
      for (const h of lab.hosts) {
        // A daemon still starting is not sampled: its first sample is the baseline of its growth.
        if (windows.some((w) => w.host === h.index && w.to === Infinity)) continue;
        const pid = h.fand?.child.pid;
        const mib = pid === undefined ? null : rssMiB(pid);
        if (pid === undefined || mib === null) continue;
        const list = rssSamples.get(name(h)) ?? [];
        list.push({ t: at(), pid, mib });
        rssSamples.set(name(h), list);
      }
    };

    t0 = Date.now();
    const endAt = t0 + o.seconds * 1000;
    sampleRss();
    const status = () => {
      const rss = lab.hosts.map((h) => { const s = rssSamples.get(name(h)); return `${name(h)} ${s?.length ? s[s.length - 1]!.mib.toFixed(0) : '-'}`; }).join(' ');
      log(`t=${at()}s tcp ok ${tcp.ok} failed ${tcp.failed} interrupted ${tcp.interrupted} corrupted ${tcp.corrupted}; udp runs ${udp.runs} lost ${udp.lost} bad ${udp.bad} dups ${udp.duplicates}; ping ok ${ping.ok} failed ${ping.failed}; RSS MiB ${rss}`);
    };
    rssTimer = setInterval(() => { sampleRss(); status(); }, o.rssEveryS * 1000);

    const lane = async (body: () => Promise<void>, pauseMs: number) => {
      while (Date.now() < endAt) {
        await body();
        if (pauseMs) await sleep(pauseMs);
      }
    };

    const tcpOnce = async () => {
      const [a, b] = pair();
      const from = Date.now();
      try {
        const r = await tcpTransfer(a.ns, b.ns, b.address, o.tcpBytes, nextPort(), o.tcpStallS * 1000);
        if (r.sent.bytes !== o.tcpBytes || r.received.bytes !== r.sent.bytes || r.received.sha256 !== r.sent.sha256) {
          tcp.corrupted++;
          note(tcp.errors, `t=${at()}s corrupted ${a.address} -> ${b.address}: sent ${r.sent.bytes} B ${r.sent.sha256}, received ${r.received.bytes} B ${r.received.sha256}`);
        } else {
          tcp.ok++;
          tcp.bytes += r.received.bytes;
        }
      } catch (e) {
        if (touched([a.host.index, b.host.index], from, Date.now())) tcp.interrupted++;
        else { tcp.failed++; note(tcp.errors, `t=${at()}s ${a.address} -> ${b.address}: ${(e as Error).message}`); }
      }
    };

    const udpOnce = async () => {
      const [a, b] = pair();
      const from = Date.now();
      try {
        const r = await udpTransfer(a.ns, b.ns, b.address, o.udpCount, 1200, 4, nextPort(), a.address);
        const lost = r.lost;
        udp.runs++;
        udp.sent += o.udpCount;
        udp.received += r.received;
        udp.lost += lost;
        udp.bad += r.bad;
        udp.duplicates += r.duplicates;
        udp.misdelivered += r.misdelivered;
        if (touched([a.host.index, b.host.index], from, Date.now())) udp.lostDuringRestarts += lost;
        const what = `t=${round1((from - t0) / 1000)}-${at()}s ${a.address} -> ${b.address}: ${lost} lost, ${r.bad} bad, ${r.duplicates} duplicated, ${r.misdelivered} misdelivered of ${o.udpCount}`;
        if (r.bad || r.duplicates || r.misdelivered) note(udp.errors, what);
        if (lost > o.udpCount / 10) note(udp.lossy, what);
      } catch (e) {
        if (touched([a.host.index, b.host.index], from, Date.now())) udp.interrupted++;
        else { udp.failed++; note(udp.errors, `t=${at()}s ${a.address} -> ${b.address}: ${(e as Error).message}`); }
      }
    };

    const pingOnce = async () => {
      const [a, b] = pair();
      const from = Date.now();
      if (await lab.ping(a.ns, b.address, 2)) { ping.ok++; return; }
      if (touched([a.host.index, b.host.index], from, Date.now())) ping.interrupted++;
      else { ping.failed++; note(ping.errors, `t=${at()}s ${a.address} -> ${b.address}: no reply to 2 pings`); }
    };

    const restart = async (h: LabHost, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> => {
      const win: Window = { host: h.index, from: Date.now(), to: Infinity };
      windows.push(win);
      const rec: RestartRecord = { host: name(h), signal, at: at(), exitCode: null, stopMs: 0, upMs: null, repaired: false, adopted: false, reattached: false, resumeMs: null, outageMs: null };
      restarts.push(rec);
      log(`t=${rec.at}s restart ${rec.host} with ${signal}`);
      const old = h.fand;
      try {
        rec.exitCode = await lab.stopFand(h, signal);
        rec.stopMs = Date.now() - win.from;
        if (old) retired.push({ host: name(h), logs: old.logs });
        const spawnAt = Date.now();
        try {
          await lab.startFand(h, fandArgs);
          rec.upMs = Date.now() - spawnAt;
        } catch (e) {
          // Recorded as a failure; one more try, so the soak goes on.
          rec.error = (e as Error).message.slice(0, 400);
          if (h.fand) { retired.push({ host: name(h), logs: h.fand.logs }); await lab.stopFand(h, 'SIGKILL'); }
          await lab.startFand(h, fandArgs);
        }
        rec.repaired = h.fand!.logs.some((l) => /did not stop cleanly: repairing/.test(String(l['msg'])));
        rec.adopted = h.fand!.logs.some((l) => /^adopting what the last fand/.test(String(l['msg'])));
        // Both a kill and a clean stop leave the bridge in place, ports and
        // all (a clean stop keeps a fan that has containers attached).
        const ports = (JSON.parse((await run('ip', ['-n', h.ns, '-j', 'link', 'show', 'master', h.bridge]).catch(() => ({ stdout: '[]' }))).stdout) as { ifname: string }[]).map((l) => l.ifname);
        if (!h.containers.every((_, j) => ports.includes(`c${j + 1}`))) {
          await lab.attachContainers(h);
          rec.reattached = true;
        }
        const readyAt = Date.now();
        const other = lab.hosts[h.index % lab.hosts.length]!; // the next host (index is 1-based)
        const here = h.containers[0]!;
        const there = other.containers[0]!;
        const [outT, inT] = await Promise.all([firstReply(here.ns, there.address, PATIENCE_MS), firstReply(there.ns, here.address, PATIENCE_MS)]);
        if (outT !== null && inT !== null) {
          rec.resumeMs = Math.max(outT, inT) - readyAt;
          rec.outageMs = Math.max(outT, inT) - win.from;
        }
      } catch (e) {
        rec.error = (e as Error).message.slice(0, 400);
      } finally {
        win.to = Date.now();
        sampleRss(); // the new daemon's first sample: its growth is measured from here
        log(`t=${at()}s ${rec.host} back: stop ${rec.stopMs} ms (exit ${rec.exitCode}), up ${rec.upMs ?? '-'} ms${rec.repaired ? ' (repaired)' : ''}${rec.adopted ? ' (adopted)' : ''}${rec.reattached ? ', re-attached' : ''}, traffic resumed ${rec.resumeMs ?? 'never'} ms after (outage ${rec.outageMs ?? '-'} ms)${rec.error ? `; ${rec.error}` : ''}`);
      }
    };

    const restarter = async () => {
      let k = 0;
      for (;;) {
        if (o.maxRestarts !== null && k >= o.maxRestarts) return;
        const due = t0 + (k + 1) * o.restartEvery * 1000;
        // A restart and its recovery take seconds: none starts in the last 10 s.
        if (due > endAt - 10_000) return;
        await sleep(due - Date.now());
        await restart(lab.hosts[k % lab.hosts.length]!, k % 2 === 0 ? 'SIGKILL' : 'SIGTERM');
        k++;
      }
    };

    await Promise.all([
      ...Array.from({ length: o.tcpLanes }, () => lane(tcpOnce, 0)),
      lane(udpOnce, 0),
      lane(pingOnce, 200),
      restarter(),
    ]);
    const seconds = round1((Date.now() - t0) / 1000);
    clearInterval(rssTimer);
    sampleRss();
    status();

    // Counters: once traffic has stopped, every packet a worker took in is
    // either forwarded or dropped with a reason. A reading can still catch a
    // worker between its batch's counter updates (or packets still draining
    // on a busy machine), so an imbalance must persist for 30 s.
    const counters: SoakSummary['counters'] = [];
    for (const h of lab.hosts) {
      let entry: SoakSummary['counters'][number] = { host: name(h), ok: false, workers: '', fans: [] };
      for (const until = Date.now() + 30_000; !entry.ok && Date.now() < until;) {
        await sleep(500);
        try {
          const s = JSON.parse((await inNs(h.ns, process.execPath, [FAND_BIN, 'show', '--json'])).stdout) as ShowJson;
          const fans = s.fans.map((f) => {
            const c = f.counters;
            return { bridge: f.bridge, inReceived: c['in.received'] ?? NaN, rxPackets: c['rx.packets'] ?? NaN, inDrops: droppedTotal(f.drops, 'rx'), outRead: c['out.read'] ?? NaN, txPackets: c['tx.packets'] ?? NaN, outDrops: droppedTotal(f.drops, 'tx') };
          });
          const balanced = fans.every((f) => f.inReceived === f.rxPackets + f.inDrops && f.outRead === f.txPackets + f.outDrops);
          entry = { host: name(h), ok: balanced && s.workers.alive === s.workers.configured, workers: `${s.workers.alive}/${s.workers.configured}`, fans };
        } catch (e) {
          entry = { host: name(h), ok: false, workers: '', fans: [], error: (e as Error).message.slice(0, 400) };
        }
      }
      counters.push(entry);
    }

    const kernelDrops = { udpRcvbufErrors: 0, udpNoPorts: 0, tunTxDropped: 0, tunRxDropped: 0 };
    for (const c of all) {
      const snmp = (await inNs(c.ns, 'cat', ['/proc/net/snmp']).catch(() => ({ stdout: '' }))).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
      const names = snmp[0]?.split(/\s+/) ?? [];
      const field = (n: string) => Number(snmp[1]?.split(/\s+/)[names.indexOf(n)] ?? 0);
      kernelDrops.udpRcvbufErrors += field('RcvbufErrors');
      kernelDrops.udpNoPorts += field('NoPorts');
    }
    for (const h of lab.hosts) {
      const links = JSON.parse((await run('ip', ['-n', h.ns, '-s', '-j', 'link', 'show']).catch(() => ({ stdout: '[]' }))).stdout) as { ifname: string; stats64?: { rx: { dropped: number }; tx: { dropped: number } } }[];
      for (const l of links) {
        if (!l.ifname.startsWith('ftun-') || !l.stats64) continue;
        kernelDrops.tunTxDropped += l.stats64.tx.dropped;
        kernelDrops.tunRxDropped += l.stats64.rx.dropped;
      }
    }

    for (const h of lab.hosts) if (h.fand) retired.push({ host: name(h), logs: h.fand.logs });
    for (const r of retired) {
      for (const l of r.logs) if (Number(l['level']) >= 50) daemonErrors.push({ host: r.host, msg: String(l['msg']).slice(0, 300) });
    }

    const rss = lab.hosts.map((h) => {
      const s = rssSamples.get(name(h)) ?? [];
      const pids = [...new Set(s.map((x) => x.pid))];
      const growth = Math.max(0, ...pids.map((p) => { const own = s.filter((x) => x.pid === p); return Math.max(...own.map((x) => x.mib)) - own[0]!.mib; }));
      const mibs = s.map((x) => x.mib);
      const max = mibs.length ? Math.max(...mibs) : NaN;
      return {
        host: name(h), samples: s.length, daemons: pids.length,
        firstMiB: round1(s[0]?.mib ?? NaN), minMiB: round1(mibs.length ? Math.min(...mibs) : NaN), maxMiB: round1(max), growthMiB: round1(growth),
        ok: s.length > 0 && max <= BOUNDS.rssMaxMiB && growth <= BOUNDS.rssGrowthMiB,
      };
    });

    const failures: string[] = [];
    if (tcp.corrupted) failures.push(`tcp: ${tcp.corrupted} completed transfer(s) arrived different from what was sent`);
    if (tcp.failed) failures.push(`tcp: ${tcp.failed} transfer(s) failed while neither endpoint's host was restarting`);
    if (udp.bad) failures.push(`udp: ${udp.bad} datagram(s) arrived corrupted`);
    if (udp.duplicates) failures.push(`udp: ${udp.duplicates} datagram(s) arrived twice`);
    if (udp.misdelivered) failures.push(`udp: ${udp.misdelivered} datagram(s) arrived at the wrong socket or from the wrong source`);
    if (udp.failed) failures.push(`udp: ${udp.failed} run(s) failed while neither endpoint's host was restarting`);
    if (ping.failed) failures.push(`ping: ${ping.failed} ping(s) unanswered while neither endpoint's host was restarting`);
    if (tcp.ok === 0) failures.push('tcp: no transfer completed');
    const slow: string[] = [];
    for (const r of restarts) {
      const what = `restart ${r.host} (${r.signal}, t=${r.at}s)`;
      if (r.upMs === null) failures.push(`${what}: fand was not up within ${PATIENCE_MS} ms${r.error ? `: ${r.error}` : ''}`);
      else if (r.error) failures.push(`${what}: ${r.error}`);
      if (r.signal === 'SIGTERM' && r.exitCode !== 0) failures.push(`${what}: the old daemon exited with ${r.exitCode} (0 expected after SIGTERM)`);
      if (r.signal === 'SIGKILL' && !r.repaired) failures.push(`${what}: the new daemon did not repair the killed one's state`);
      if (r.signal === 'SIGTERM' && !r.adopted) failures.push(`${what}: the new daemon did not adopt the fan the stopped one kept`);
      if (r.reattached) failures.push(`${what}: the containers had to be re-attached to the bridge`);
      if (r.resumeMs === null) failures.push(`${what}: traffic through the host did not resume within ${PATIENCE_MS} ms`);
      if (r.upMs !== null && r.upMs > TARGETS.upMs) slow.push(`${what}: up after ${r.upMs} ms (target ${TARGETS.upMs} ms)`);
      if (r.resumeMs !== null && r.resumeMs > TARGETS.resumeMs) slow.push(`${what}: traffic resumed ${r.resumeMs} ms after fand was up (target ${TARGETS.resumeMs} ms)`);
    }
    for (const r of rss) {
      if (!r.ok) failures.push(`rss ${r.host}: ${r.samples} sample(s), max ${r.maxMiB} MiB (bound ${BOUNDS.rssMaxMiB}), growth ${r.growthMiB} MiB (bound ${BOUNDS.rssGrowthMiB})`);
    }
    for (const c of counters) {
      if (!c.ok) failures.push(`counters ${c.host}: ${c.error ?? `workers ${c.workers}, ${JSON.stringify(c.fans)}`}`);
    }

    return {
      ok: failures.length === 0,
      failures,
      options: o,
      bounds: BOUNDS,
      targets: TARGETS,
      slow,
      startedAt,
      seconds,
      tcp: { ok: tcp.ok, failed: tcp.failed, interrupted: tcp.interrupted, corrupted: tcp.corrupted, mib: round1(tcp.bytes / MiB), mibPerS: round1(tcp.bytes / MiB / seconds), errors: tcp.errors },
      udp,
      kernelDrops,
      ping,
      restarts,
      rss,
      counters,
      daemonErrors,
    };
  } finally {
    clearInterval(rssTimer);
    reapTransfers();
    await lab.destroy();
  }
}

export function formatSummary(s: SoakSummary): string {
  const rows: string[][] = [['check', 'result']];
  rows.push(['traffic', `${s.seconds} s, ${s.options.hosts} hosts x 2 containers, ${s.options.workers} workers each, seed ${s.options.seed}`]);
  rows.push(['tcp transfers', `${s.tcp.ok} ok, ${s.tcp.failed} failed, ${s.tcp.interrupted} interrupted by a restart, ${s.tcp.corrupted} corrupted (${s.tcp.mib} MiB, ${s.tcp.mibPerS} MiB/s)`]);
  rows.push(['udp datagrams', `${s.udp.runs} runs, ${s.udp.received}/${s.udp.sent} received, ${s.udp.lost} lost (${s.udp.lostDuringRestarts} across restarts), ${s.udp.bad} bad, ${s.udp.duplicates} duplicated, ${s.udp.misdelivered} misdelivered; ${s.udp.failed} runs failed, ${s.udp.interrupted} interrupted`]);
  rows.push(['kernel drops', `UDP receive buffers ${s.kernelDrops.udpRcvbufErrors}, UDP closed port ${s.kernelDrops.udpNoPorts}, TUN tx ${s.kernelDrops.tunTxDropped} (kernel to fand), TUN rx ${s.kernelDrops.tunRxDropped}`]);
  rows.push(['pings', `${s.ping.ok} ok, ${s.ping.failed} failed, ${s.ping.interrupted} interrupted by a restart`]);
  for (const r of s.restarts) {
    rows.push([`restart ${r.host} ${r.signal} t=${r.at}s`, `stop ${r.stopMs} ms (exit ${r.exitCode}), up ${r.upMs ?? 'NOT'} ms${r.repaired ? ' repaired' : ''}${r.adopted ? ' adopted' : ''}${r.reattached ? ' re-attached' : ''}, traffic after ${r.resumeMs ?? 'never'} ms (outage ${r.outageMs ?? '-'} ms)`]);
  }
  for (const r of s.rss) rows.push([`rss ${r.host}`, `${r.minMiB}-${r.maxMiB} MiB over ${r.samples} samples of ${r.daemons} daemon(s), growth ${r.growthMiB} MiB${r.ok ? '' : ' OVER BOUND'}`]);
  for (const c of s.counters) {
    const f = c.fans.map((x) => `in ${x.inReceived} = rx ${x.rxPackets} + ${x.inDrops} drops, out ${x.outRead} = tx ${x.txPackets} + ${x.outDrops} drops`).join('; ');
    rows.push([`counters ${c.host}`, `${c.ok ? 'consistent' : 'INCONSISTENT'}, workers ${c.workers}: ${c.error ?? f}`]);
  }
  if (s.daemonErrors.length) rows.push(['daemon errors', s.daemonErrors.map((e) => `${e.host}: ${e.msg}`).join(' | ')]);
  const width = Math.max(...rows.map((r) => r[0]!.length));
  let out = rows.map((r) => `${r[0]!.padEnd(width)}  ${r[1]}`).join('\n') + '\n';
  if (s.slow.length) out += `\nslower than on a quiet machine (reported, not a failure):\n${s.slow.map((l) => `  ${l}\n`).join('')}`;
  if (s.udp.lossy.length) out += `\nudp runs that lost more than 10% (first 10):\n${s.udp.lossy.map((l) => `  ${l}\n`).join('')}`;
  out += s.ok ? '\nsoak: ok\n' : `\nsoak: FAILED\n${s.failures.map((f) => `  - ${f}`).join('\n')}\n`;
  for (const e of [...s.tcp.errors, ...s.udp.errors, ...s.ping.errors]) out += `  ${e}\n`;
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' }, 'restart-every': { type: 'string' }, hosts: { type: 'string' },
      workers: { type: 'string' }, seed: { type: 'string' }, json: { type: 'string' },
    },
  });
  const num = (v: string | undefined, def: number, flag: string, min: number) => {
    const n = v === undefined ? def : Number(v);
    if (!Number.isFinite(n) || n < min) { process.stderr.write(`soak: --${flag} ${v}: expected a number >= ${min}\n`); process.exit(2); }
    return n;
  };
  const opts: SoakOptions = {
    seconds: num(values.minutes, 10, 'minutes', 0.5) * 60,
    restartEvery: num(values['restart-every'], 120, 'restart-every', 15),
    hosts: num(values.hosts, 4, 'hosts', 2),
    workers: num(values.workers, 2, 'workers', 1),
    log: (line) => process.stderr.write(`soak: ${line}\n`),
  };
  if (values.seed !== undefined) opts.seed = num(values.seed, 0, 'seed', 0);
  process.once('SIGINT', () => process.exit(130)); // the lab's exit hook removes the namespaces
  const s = await runSoak(opts);
  process.stdout.write(formatSummary(s));
  if (values.json) writeFileSync(values.json, JSON.stringify(s, null, 2) + '\n');
  process.exit(s.ok ? 0 : 1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: Error) => { process.stderr.write(`soak: ${e.message}\n`); process.exit(1); });
}
