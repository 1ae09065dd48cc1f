// The benchmark: two hosts in network namespaces on one underlay bridge,
// measured in the same run and in turn — bare underlay (veth + bridge), kernel
// VXLAN between the same hosts (the in-kernel overlay reference), and fand's
// userspace dataplane between containers. Reports ratios to kernel VXLAN.
// Nothing here is a pass/fail test.
//   npm run bench -- [--seconds N] [--repeat N] [--workers N] [--json FILE]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Lab } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, repeat: { type: 'string' }, workers: { type: 'string' }, json: { type: 'string' } } });
const SECONDS = Number(values.seconds ?? 5);
const REPEAT = Number(values.repeat ?? 3);
const WORKERS = values.workers ?? '2';

interface Row { name: string; gbit: number[] }

async function iperf(clientNs: string, serverNs: string, address: string, streams: number): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-B', address], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 400));
    const out = await inNs(clientNs, 'iperf3', ['-c', address, '-t', String(SECONDS), '-P', String(streams), '-J'], (SECONDS + 20) * 1000);
    const j = JSON.parse(out.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill('SIGKILL');
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  await run('which', ['iperf3']).catch(() => { throw new Error('iperf3 is not installed: apt-get install iperf3'); });
  const lab = new Lab(Lab.uniquePrefix('bench'));
  const onSig = () => { void lab.destroy().then(() => process.exit(130)); };
  process.once('SIGINT', onSig);
  const rows: Row[] = [];
  try {
    await lab.build(2, 1);
    const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
    // Kernel VXLAN between the same two host namespaces, MTU 1450 (1500 - 50).
    for (const [h, peer, addr] of [[h1, h2, '10.200.0.1'], [h2, h1, '10.200.0.2']] as const) {
      await run('ip', ['-n', h.ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'remote', peer.underlay, 'local', h.underlay, 'dstport', '4789', 'dev', 'eth0']);
      await run('ip', ['-n', h.ns, 'addr', 'add', `${addr}/24`, 'dev', 'vx0']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'vx0', 'up']);
    }
    for (const h of lab.hosts) { await lab.startFand(h, ['--workers', WORKERS]); await lab.attachContainers(h); }
    const c1 = h1.containers[0]!;
    const c2 = h2.containers[0]!;
    const cases: [string, string, string, string, number][] = [
      ['bare underlay (veth+bridge), 1 stream', h1.ns, h2.ns, h2.underlay, 1],
      ['kernel VXLAN, 1 stream', h1.ns, h2.ns, '10.200.0.2', 1],
      [`fand userspace (${WORKERS} workers), 1 stream`, c1.ns, c2.ns, c2.address, 1],
      ['kernel VXLAN, 4 streams', h1.ns, h2.ns, '10.200.0.2', 4],
      [`fand userspace (${WORKERS} workers), 4 streams`, c1.ns, c2.ns, c2.address, 4],
    ];
    for (const [name] of cases) rows.push({ name, gbit: [] });
    for (let r = 0; r < REPEAT; r++) {
      for (const [i, [, from, to, addr, streams]] of cases.entries()) rows[i]!.gbit.push(await iperf(from, to, addr, streams));
    }
  } finally {
    await lab.destroy();
    process.off('SIGINT', onSig);
  }
  const ref1 = median(rows[1]!.gbit);
  const ref4 = median(rows[3]!.gbit);
  const lines = [`iperf3 TCP, ${SECONDS} s per run, median of ${REPEAT} (min-max), ${new Date().toISOString()}`, ''];
  lines.push('| path | Gbit/s | range | ratio to kernel VXLAN |', '|---|---|---|---|');
  for (const [i, row] of rows.entries()) {
    const ref = i === 3 || i === 4 ? ref4 : ref1;
    lines.push(`| ${row.name} | ${median(row.gbit).toFixed(2)} | ${Math.min(...row.gbit).toFixed(2)}-${Math.max(...row.gbit).toFixed(2)} | ${(median(row.gbit) / ref).toFixed(2)} |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  if (values.json) writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, repeat: REPEAT, rows }, null, 2));
}

main().catch((e: Error) => { process.stderr.write(`bench: ${e.message}\n`); process.exit(1); });
