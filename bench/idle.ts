// What an idle fand costs and how fast it reacts (issue 15). Two hosts in
// network namespaces on one underlay bridge, fand on both (one fan, no
// traffic); on host 1:
//   - CPU over a minute, children included: /proc/PID/stat utime + stime +
//     cutime + cstime (reaped children) + the times of children still
//     running, before and after;
//   - processes started in that minute, counted by the kernel's proc
//     connector (bench/forks.ts), so none is missed however short-lived;
//   - reaction to a neighbour change: host 1's entry for host 2 is given
//     another Ethernet address while a container pings every millisecond;
//     the time until the first IPIP frame to the new address leaves eth0
//     (tcpdump), from the moment the kernel announced the change (seen by
//     this process's own rtnetlink listener in that namespace);
//   - reaction to an underlay address change (a DHCP renewal): the time
//     from the kernel announcing the new address to fand logging "reload
//     done" with the fan on the new slice.
// With --compare BIN, a second fand (another checkout's bin/fand.js) is
// measured the same way in the same run, and the ratios are printed.
//   npm run build && node dist/bench/idle.js [--seconds 60] [--dataplane userspace]
//        [--repeat 5] [--compare /path/to/other/bin/fand.js] [--json FILE]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { FAND_BIN, Lab } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { NetlinkEvents, type HostEvent } from '../src/host/netlink/events.js';
import { formatIpv4 } from '../src/fan/ipv4.js';
import { ForkCounter } from './forks.js';
import { cpuTicks, startFand, stopFand, TICK_MS, waitFor } from './daemon.js';

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string' }, dataplane: { type: 'string' }, repeat: { type: 'string' },
    compare: { type: 'string' }, json: { type: 'string' },
  },
});
const SECONDS = Number(opts.seconds ?? 60);
const REPEAT = Number(opts.repeat ?? 5);
const DATAPLANE = opts.dataplane ?? 'userspace';

interface Result { cpuSecondsPer30s: number; processes: number; threads: number; neighbourMs: number[]; underlayMs: number[] }

async function measure(bin: string, label: string): Promise<Result> {
  const lab = new Lab(Lab.uniquePrefix('idle'));
  try {
    await lab.build(2, 1);
    const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
    const d2 = await startFand(bin, h2.ns, DATAPLANE);
    const d1 = await startFand(bin, h1.ns, DATAPLANE);
    for (const h of lab.hosts) await lab.attachContainers(h);
    if (!await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 3, 3)) throw new Error('no traffic through the fan');
    const pid = d1.child.pid!;
    // Idle: what start-up and the pings above started is over.
    await new Promise((r) => setTimeout(r, 3000));
    const forks = new ForkCounter(pid);
    await new Promise((r) => setTimeout(r, 300));
    forks.reset();
    const c0 = cpuTicks(pid);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const seconds = (performance.now() - t0) / 1000;
    const ticks = cpuTicks(pid) - c0;
    const count = { ...forks.count };
    forks.close();
    const cpuSecondsPer30s = (ticks * TICK_MS / 1000) * 30 / seconds;
    console.log(`${label}: idle ${seconds.toFixed(0)} s: ${(ticks * TICK_MS / 1000).toFixed(2)} s CPU (${cpuSecondsPer30s.toFixed(3)} s per 30 s), ${count.processes} processes started, ${count.threads} threads`);

    const events = new NetlinkEvents(h1.ns);
    const seen: { e: HostEvent; at: number }[] = [];
    const unsub = events.subscribe(['neighbour', 'address'], (batch) => { const at = Date.now(); for (const e of batch) seen.push({ e, at }); });
    const neighbourMs: number[] = [];
    const underlayMs: number[] = [];
    try {
      const real = (JSON.parse((await run('ip', ['-n', h2.ns, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[])[0]!.address;
      for (let i = 0; i < REPEAT; i++) {
        const mac = `02:00:00:00:9${i}:99`;
        const r = await neighbourReaction(h1.ns, h1.containers[0]!.ns, h2.containers[0]!.address, mac, seen);
        neighbourMs.push(r);
        await run('ip', ['-n', h1.ns, 'neigh', 'replace', '172.16.2.10', 'lladdr', real, 'dev', 'eth0', 'nud', 'reachable']);
        await new Promise((r) => setTimeout(r, 300));
      }
      console.log(`${label}: neighbour change -> first direct frame to the new address: ${neighbourMs.map((x) => x.toFixed(1)).join(', ')} ms`);
      // Underlay address changes, back and forth between two addresses.
      let from = '172.16.1.10';
      for (let i = 0; i < REPEAT; i++) {
        const to = i % 2 === 0 ? '172.16.1.77' : '172.16.1.10';
        const n0 = d1.logs.length;
        seen.length = 0;
        await run('ip', ['-n', h1.ns, 'addr', 'del', `${from}/16`, 'dev', 'eth0']);
        await run('ip', ['-n', h1.ns, 'addr', 'add', `${to}/16`, 'dev', 'eth0']);
        await run('ip', ['-n', h1.ns, 'route', 'replace', 'default', 'via', '172.16.0.1', 'dev', 'eth0']);
        const announced = await waitFor('the new address event', 10_000, () => seen.find((s) => s.e.kind === 'address' && s.e.op === 'new' && formatIpv4(s.e.address.address) === to)?.at);
        const done = await waitFor('fand moving the fan', 30_000, () => d1.logs.slice(n0).find((l) => /^reload done/.test(String(l['msg'])) && String(l['trigger']).startsWith('underlay address changed')));
        underlayMs.push(Number(done['time']) - announced);
        from = to;
        await new Promise((r) => setTimeout(r, 500));
      }
      console.log(`${label}: underlay address change -> fan on the new slice: ${underlayMs.map((x) => x.toFixed(0)).join(', ')} ms`);
    } finally {
      unsub();
      events.close();
    }
    await stopFand(d1);
    await stopFand(d2);
    return { cpuSecondsPer30s, processes: count.processes, threads: count.threads, neighbourMs, underlayMs };
  } finally {
    await lab.destroy();
  }
}

async function neighbourReaction(hostNs: string, containerNs: string, to: string, mac: string, seen: { e: HostEvent; at: number }[]): Promise<number> {
  const dump = spawn('ip', ['netns', 'exec', hostNs, 'tcpdump', '-i', 'eth0', '-l', '-n', '-tt', '-e', '-c', '1', `ether dst ${mac} and ip proto 4`], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let err = '';
    let out = '';
    dump.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    dump.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor('tcpdump listening', 20_000, () => (/listening on/.test(err) ? true : undefined));
    const ping = inNs(containerNs, 'ping', ['-i', '0.001', '-c', '3000', '-q', '-W', '1', to], 30_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    seen.length = 0;
    await run('ip', ['-n', hostNs, 'neigh', 'replace', '172.16.2.10', 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
    const want = mac.split(':').map((h) => parseInt(h, 16));
    const announced = await waitFor('the neighbour event', 10_000, () => seen.find((s) => s.e.kind === 'neighbour' && s.e.neighbour.lladdr && [...s.e.neighbour.lladdr].every((b, i) => b === want[i]))?.at);
    const frame = await waitFor('a frame to the new address', 20_000, () => { const m = /^(\d+\.\d+) /m.exec(out); return m ? Number(m[1]) * 1000 : undefined; });
    dump.kill('SIGKILL');
    await ping;
    return frame - announced;
  } finally {
    dump.kill('SIGKILL');
  }
}

const cur = await measure(FAND_BIN, 'this fand');
const base = opts.compare ? await measure(opts.compare, 'compared fand') : undefined;
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)]! : NaN; };
console.log(`\nmachine: ${cpus().length} CPUs, load ${loadavg().map((x) => x.toFixed(1)).join(' ')}; dataplane ${DATAPLANE}; idle ${SECONDS} s`);
const row = (name: string, r: Result) => `| ${name} | ${r.cpuSecondsPer30s.toFixed(3)} | ${r.processes} | ${median(r.neighbourMs).toFixed(1)} | ${median(r.underlayMs).toFixed(0)} |`;
console.log('| fand | idle CPU s per 30 s (children included) | processes started per idle minute | neighbour change -> direct sends, ms (median) | underlay address change -> fan moved, ms (median) |');
console.log('|---|---|---|---|---|');
console.log(row('this checkout', cur));
if (base) {
  console.log(row(opts.compare!, base));
  console.log(`ratios (this / compared): CPU ${(cur.cpuSecondsPer30s / base.cpuSecondsPer30s).toFixed(3)}, neighbour ${(median(cur.neighbourMs) / median(base.neighbourMs)).toFixed(3)}, underlay ${(median(cur.underlayMs) / median(base.underlayMs)).toFixed(3)}`);
}
if (opts.json) writeFileSync(opts.json, JSON.stringify({ seconds: SECONDS, dataplane: DATAPLANE, load: loadavg(), current: cur, compared: base }, null, 2));
process.exit(0);
