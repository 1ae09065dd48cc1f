// A fand daemon started from any checkout (bin/fand.js) in a lab namespace,
// for the idle measurements (bench/idle.ts, bench/uml-idle.ts), and what it
// costs: CPU ticks of a process and of its children.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { OVERLAY } from '../src/demo/lab.js';

/** USER_HZ = 100 on Linux (sysconf(_SC_CLK_TCK)): /proc times are in 10 ms ticks. */
export const TICK_MS = 10;

/** `logs[i].time` is epoch ms (fand writes ISO 8601; older checkouts wrote epoch ms). */
export interface Daemon { child: ChildProcess; logs: Record<string, unknown>[] }

/** Starts fand and resolves once it is up (300 s cap: kernel-ipip in UML installs thousands of routes). */
export async function startFand(bin: string, ns: string, dataplane: string, extra: readonly string[] = [], underlayPrefix = 16): Promise<Daemon> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, bin, 'run', '--overlay', OVERLAY, '--underlay', `eth0/${underlayPrefix}`,
    '--dataplane', dataplane, '--workers', '1', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let buf = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fand (${bin}) in ${ns} not up in 300 s: ${err}`)), 300_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        try { const o = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>; if (typeof o['time'] === 'string') o['time'] = Date.parse(o['time']); logs.push(o); if (o['msg'] === 'fand is up') { clearTimeout(timer); resolve(); } } catch { /* not JSON */ }
        buf = buf.slice(nl + 1);
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`fand (${bin}) exited ${code}: ${err}`)); });
  });
  return { child, logs };
}

export async function stopFand(d: Daemon): Promise<void> {
  if (d.child.exitCode !== null) return;
  const gone = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  const t = setTimeout(() => d.child.kill('SIGKILL'), 15_000);
  await gone;
  clearTimeout(t);
}

/** CPU ticks of a process: its own, its reaped children's, and (recursively) its live children's. */
export function cpuTicks(pid: number, withReaped = true): number {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return 0; }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after "(comm) ": state=0 ... utime=11 stime=12 cutime=13 cstime=14
  let ticks = Number(f[11]) + Number(f[12]) + (withReaped ? Number(f[13]) + Number(f[14]) : 0);
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let kids = '';
    try { kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8'); } catch { continue; }
    for (const k of kids.split(' ').filter(Boolean)) ticks += cpuTicks(Number(k));
  }
  return ticks;
}

export async function waitFor<T>(what: string, capMs: number, f: () => T | undefined): Promise<T> {
  const until = Date.now() + capMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not within ${capMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

