// The benchmark: two hosts in network namespaces joined by one veth pair,
// measured in the same run and in turn — bare underlay (the veth pair), kernel
// VXLAN between the same hosts (the in-kernel overlay reference), fand's
// userspace dataplane between containers over an IPIP fan, the same over a
// VXLAN fan (a second pair of hosts, alike, running fand --encap vxlan),
// fand's ebpf dataplane over an IPIP fan (a third pair; `fand-ebpf-bridge`,
// the same without the port redirect, on request), and OpenVPN without
// crypto between
// the hosts (a userspace tunnel for reference). For each path: iperf3 TCP
// with 1 and 4 streams, UDP 64-byte datagrams per second and 1400-byte
// goodput, round-trip latency, the machine's CPU time per Gbit, and the
// daemons' resident memory. Reports medians, ranges and ratios to kernel
// VXLAN. Nothing here is a pass/fail test.
//   npm run bench -- [--seconds N] [--repeat N] [--quick] [--workers N]
//                    [--json FILE] [--no-reference] [--latency sockperf|node]
//                    [--paths bare,vxlan,fand,fand-ebpf,fand-vxlan,openvpn,fand-ebpf-bridge] [--fand-args="OPTIONS"]
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { parseArgs } from 'node:util';
import { Lab } from '../src/demo/lab.js';
import { barePath, fandPath, OpenVpnPath, vxlanPath, type BenchPath } from './paths.js';
import { nodeRtt, RssSampler, sockperfRtt, tcp, udp, type LatencyResult } from './measure.js';
import { tables, summarize, ratio, type Metric, type Samples } from './report.js';
import { ensureTool } from './tools.js';

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string' }, repeat: { type: 'string' }, quick: { type: 'boolean' }, workers: { type: 'string' },
    json: { type: 'string' }, 'no-reference': { type: 'boolean' }, latency: { type: 'string' }, paths: { type: 'string' },
    'fand-args': { type: 'string' },
  },
});
const SECONDS = Number(opts.seconds ?? (opts.quick ? 2 : 5));
const REPEAT = Number(opts.repeat ?? (opts.quick ? 1 : 3));
const WORKERS = opts.workers ?? '2';
const REFERENCE = 'vxlan';
const ONLY = opts.paths?.split(',');
/** Extra options for both fand daemons (e.g. --no-direct-send, to measure what a technique brings). */
const FAND_ARGS = opts['fand-args']?.split(/\s+/).filter(Boolean) ?? [];

const METRICS: Metric[] = [
  { key: 'tcp1', label: 'TCP 1 stream, Gbit/s', digits: 2, ratio: true },
  { key: 'tcp4', label: 'TCP 4 streams, Gbit/s', digits: 2, ratio: true },
  { key: 'udp64', label: 'UDP 64 B, kpps received', digits: 0, ratio: true },
  { key: 'udp1400', label: 'UDP 1400 B, Gbit/s received', digits: 2, ratio: true },
  { key: 'udp1400loss', label: 'UDP 1400 B, loss %', digits: 1, ratio: false },
  { key: 'rttAvg', label: 'UDP RTT average, µs', digits: 1, ratio: true },
  { key: 'rttP99', label: 'UDP RTT p99, µs', digits: 1, ratio: true },
  { key: 'cpu', label: 'CPU core-s per Gbit (TCP 1 stream)', digits: 2, ratio: true },
  { key: 'rss', label: 'daemon RSS, MiB (largest)', digits: 1, ratio: false },
];

/** One measurement on one path, filling the metrics it names. */
interface Test { readonly name: string; readonly metrics: readonly string[]; run(p: BenchPath): Promise<Record<string, number>> }

function testsWith(rtt: (p: BenchPath, seconds: number) => Promise<LatencyResult>): Test[] {
  return [
    { name: 'TCP 1 stream', metrics: ['tcp1', 'cpu'], run: async (p) => { const r = await tcp(p, SECONDS, 1); return { tcp1: r.gbit, cpu: r.coreSecondsPerGbit }; } },
    { name: 'TCP 4 streams', metrics: ['tcp4'], run: async (p) => ({ tcp4: (await tcp(p, SECONDS, 4)).gbit }) },
    { name: 'UDP 64 B', metrics: ['udp64'], run: async (p) => ({ udp64: (await udp(p, SECONDS, 64)).pps / 1e3 }) },
    // 1400 B fits every path: fand's MTU 1480 - 28, VXLAN's and OpenVPN's 1450 - 28.
    { name: 'UDP 1400 B', metrics: ['udp1400', 'udp1400loss'], run: async (p) => { const r = await udp(p, SECONDS, 1400); return { udp1400: r.gbit, udp1400loss: r.lossPercent }; } },
    { name: 'RTT', metrics: ['rttAvg', 'rttP99'], run: async (p) => { const r = await rtt(p, SECONDS); return { rttAvg: r.avgUs, rttP99: r.p99Us }; } },
  ];
}

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const fmt = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k}=${v.toPrecision(4)}`).join(' ');

/** Why the path cannot be measured (it does not start, or carries no ping), or undefined if it can. */
async function preflight(lab: Lab, p: BenchPath): Promise<string | undefined> {
  try {
    await p.start();
    return (await lab.ping(p.clientNs, p.address, 3, 2)) ? undefined : `${p.address} does not answer ping from ${p.clientNs}.`;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await p.stop();
  }
}

interface Results { samples: Samples; rssPerDaemonMiB: Record<string, number[][]>; errors: string[] }

/** Every test on every path in turn, REPEAT times; a failed measurement is recorded as null and its error kept. */
async function measureAll(paths: readonly BenchPath[], tests: readonly Test[]): Promise<Results> {
  const samples: Samples = Object.fromEntries(METRICS.map((m) => [m.key, Object.fromEntries(paths.map((p) => [p.key, []]))]));
  const rssPerDaemonMiB: Record<string, number[][]> = {};
  const errors: string[] = [];
  for (let rep = 1; rep <= REPEAT; rep++) {
    const rss = new Map(paths.map((p) => [p.key, new RssSampler()]));
    for (const t of tests) {
      for (const p of paths) {
        const sampler = rss.get(p.key)!;
        try {
          await p.start();
          sampler.start(p.pids());
          const r = await t.run(p);
          for (const k of t.metrics) samples[k]![p.key]!.push(r[k] ?? null);
          log(`${rep}/${REPEAT} ${t.name}, ${p.label}: ${fmt(r)}`);
        } catch (e) {
          for (const k of t.metrics) samples[k]![p.key]!.push(null);
          errors.push(`${rep}/${REPEAT} ${t.name}, ${p.label}: ${(e as Error).message}`);
          log(errors[errors.length - 1]!);
        } finally {
          sampler.stop();
          await p.stop();
        }
      }
    }
    for (const [key, sampler] of rss) {
      const maxima = [...sampler.max.values()].map((b) => b / (1 << 20));
      if (maxima.length === 0) continue; // no userspace daemon on this path
      samples['rss']![key]!.push(Math.max(...maxima));
      (rssPerDaemonMiB[key] ??= []).push(maxima);
    }
  }
  return { samples, rssPerDaemonMiB, errors };
}

async function main(): Promise<void> {
  if (!(await ensureTool('iperf3', 'iperf3'))) throw new Error('iperf3 is needed: apt-get install iperf3');
  const useSockperf = opts.latency !== 'node' && (await ensureTool('sockperf', 'sockperf'));
  if (!useSockperf && opts.latency !== 'node') log('sockperf unavailable; latency from bench/pingpong.js (Node) instead');
  const latencyTool = useSockperf ? 'sockperf ping-pong' : 'bench/pingpong.js';
  const notes: string[] = [];
  if (FAND_ARGS.length) notes.push(`fand started with ${FAND_ARGS.join(' ')}.`);
  const wantReference = !opts['no-reference'] && (!ONLY || ONLY.includes('openvpn'));
  const haveOpenVpn = wantReference && (await ensureTool('openvpn', 'openvpn'));
  if (opts['no-reference']) notes.push('OpenVPN reference skipped: --no-reference.');
  else if (wantReference && !haveOpenVpn) notes.push('OpenVPN reference skipped: openvpn is not installed and apt-get could not install it.');

  const lab = new Lab(Lab.uniquePrefix('bench'));
  // The VXLAN fan's hosts: the same veth pair and addresses, in namespaces of their own.
  const vlab = !ONLY || ONLY.includes('fand-vxlan') ? new Lab(Lab.uniquePrefix('benchv'), 16, { encap: 'vxlan' }) : undefined;
  // The ebpf dataplane's hosts (and, on request, the same without the port
  // redirect, to measure what it pays): the same veth pair, their own namespaces.
  const elab = !ONLY || ONLY.includes('fand-ebpf') ? new Lab(Lab.uniquePrefix('benche'), 16, { dataplane: 'ebpf' }) : undefined;
  const blab = ONLY?.includes('fand-ebpf-bridge') ? new Lab(Lab.uniquePrefix('benchb'), 16, { dataplane: 'ebpf' }) : undefined;
  const labs = [lab, vlab, elab, blab].filter((l): l is Lab => l !== undefined);
  let ovpn: OpenVpnPath | undefined;
  const onSig = () => { ovpn?.dispose(); void Promise.all(labs.map((l) => l.destroy())).then(() => process.exit(130)); };
  process.once('SIGINT', onSig);
  const started = new Date();
  const loadBefore = loadavg()[0]!;
  let paths: BenchPath[] = [];
  let results: Results;
  try {
    await lab.build(2, 1, 1500, true); // one veth pair, as the issue's setup: no bridge between the hosts
    const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
    // The userspace dataplane by name: auto takes ebpf where the kernel has it.
    for (const h of lab.hosts) { await lab.startFand(h, ['--dataplane', 'userspace', '--workers', WORKERS, ...FAND_ARGS]); await lab.attachContainers(h); }
    paths = [barePath(h1, h2), await vxlanPath(h1, h2), fandPath(h1, h2, WORKERS)];
    for (const [l, variant, args] of [[elab, 'ebpf', []], [blab, 'ebpf-bridge', ['--no-port-redirect']]] as const) {
      if (!l) continue;
      await l.build(2, 1, 1500, true);
      for (const h of l.hosts) { await l.startFand(h, ['--workers', WORKERS, ...args, ...FAND_ARGS]); await l.attachContainers(h); }
      paths.push(fandPath(l.hosts[0]!, l.hosts[1]!, WORKERS, 'ipip', variant));
    }
    if (vlab) {
      await vlab.build(2, 1, 1500, true);
      for (const h of vlab.hosts) { await vlab.startFand(h, ['--workers', WORKERS, ...FAND_ARGS]); await vlab.attachContainers(h); }
      paths.push(fandPath(vlab.hosts[0]!, vlab.hosts[1]!, WORKERS, 'vxlan'));
    }
    if (haveOpenVpn) paths.push(ovpn = new OpenVpnPath(lab, h1, h2));
    paths = paths.filter((p) => !ONLY || ONLY.includes(p.key));
    for (const p of [...paths]) {
      const why = await preflight(p.key === 'fand-vxlan' ? vlab! : p.key === 'fand-ebpf' ? elab! : p.key === 'fand-ebpf-bridge' ? blab! : lab, p);
      if (why) { notes.push(`${p.label} skipped: ${why}`); paths = paths.filter((x) => x !== p); }
    }
    results = await measureAll(paths, testsWith(useSockperf ? sockperfRtt : nodeRtt));
  } finally {
    for (const l of labs) await l.destroy();
    ovpn?.dispose();
    process.off('SIGINT', onSig);
  }

  const { samples, errors } = results;
  const header = [
    `fand benchmark, ${started.toISOString()}: ${SECONDS} s per run, median (min–max) of ${REPEAT}; ` +
      `${cpus().length} CPUs, Linux ${release()}, load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after.`,
    `TCP/UDP: iperf3 (UDP -b 0: the sender as fast as it can; what the receiver got). RTT: ${latencyTool}, 64-byte UDP, full round trip. ` +
      'CPU: user+nice+system+irq+softirq of all CPUs while the TCP 1-stream client ran. RSS: max VmRSS of each userspace daemon (fand per host; OpenVPN per end).',
    ...notes,
  ];
  const pathInfo = paths.map((p) => ({ key: p.key, label: p.label }));
  process.stdout.write(`${header.join('\n')}\n\n${tables(samples, METRICS, pathInfo, REFERENCE)}\n`);
  if (errors.length) process.stdout.write(`\n${errors.length} measurement(s) failed:\n${errors.map((e) => `- ${e}`).join('\n')}\n`);
  if (opts.json) {
    const perMetric = Object.fromEntries(METRICS.map((m) => [m.key, Object.fromEntries(paths.map((p) => {
      const values = samples[m.key]![p.key]!;
      return [p.key, { values, ...summarize(values), ratioToVxlan: ratio(samples, m, p.key, REFERENCE) ?? null }];
    }))]));
    writeFileSync(opts.json, JSON.stringify({
      date: started.toISOString(), seconds: SECONDS, repeat: REPEAT, workers: Number(WORKERS), latencyTool,
      machine: { cpus: cpus().length, kernel: release(), loadBefore }, notes, paths: pathInfo, metrics: METRICS,
      results: perMetric, rssPerDaemonMiB: results.rssPerDaemonMiB, errors,
    }, null, 2) + '\n');
  }
}

main().catch((e: Error) => { process.stderr.write(`bench: ${e.message}\n`); process.exit(1); });
