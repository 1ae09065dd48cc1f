// Runs inside User-Mode Linux (bench/uml-idle.ts): two lab hosts, fand on
// host 1 with the dataplane asked for (kernel-ipip needs the guest's ipip
// module), no traffic; then for SECONDS: fand's CPU (children included),
// the guest's CPU busy share (/proc/stat), and the processes the guest
// started (/proc/stat "processes": nothing else runs in the guest). Prints
// one JSON line.
//   node uml-idle-guest.js BIN DATAPLANE SECONDS
import { readFileSync } from 'node:fs';
import { Lab } from '../src/demo/lab.js';
import { cpuTicks, startFand, stopFand, TICK_MS } from './daemon.js';

const [bin, dataplane, secondsArg] = process.argv.slice(2) as [string, string, string];
const seconds = Number(secondsArg);

function procStat(): { busy: number; total: number; processes: number } {
  const s = readFileSync('/proc/stat', 'utf8');
  const cpu = s.split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  const idle = cpu[3]! + (cpu[4] ?? 0);
  return { busy: total - idle, total, processes: Number(/^processes (\d+)/m.exec(s)![1]) };
}

const out: Record<string, unknown> = { ok: false, bin, dataplane, seconds };
// A /20 underlay, as the UML interop test: kernel-ipip routes each of its 4,093 remote slices.
const lab = new Lab(Lab.uniquePrefix('ui'), 20);
try {
  await lab.build(2, 1);
  const h1 = lab.hosts[0]!;
  const t0 = performance.now();
  const d = await startFand(bin, h1.ns, dataplane, ['--no-nat'], 20);  // the guest has no nftables
  out['startMs'] = Math.round(performance.now() - t0);
  await lab.attachContainers(h1);
  await new Promise((r) => setTimeout(r, 3000));
  const c0 = cpuTicks(d.child.pid!);
  const s0 = procStat();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const s1 = procStat();
  out['fandCpuSeconds'] = (cpuTicks(d.child.pid!) - c0) * TICK_MS / 1000;
  out['guestBusyPercent'] = Math.round(1000 * (s1.busy - s0.busy) / (s1.total - s0.total)) / 10;
  out['processesStarted'] = s1.processes - s0.processes;
  await stopFand(d);
  out['ok'] = true;
} catch (e) {
  out['error'] = String((e as Error).stack ?? e);
} finally {
  await lab.destroy().catch(() => undefined);
}
console.log(JSON.stringify(out));
process.exit(out['ok'] ? 0 : 1);
