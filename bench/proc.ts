// Child processes of the benchmark (servers, tunnel daemons): each one is
// bounded in time, and whatever is still running when the benchmark exits —
// normally, on an error, or on Ctrl-C — is killed. Deleting a namespace does
// not kill the processes inside it, so this has to be done by pid.
import { spawn, type ChildProcess } from 'node:child_process';

const LIVE = new Set<ChildProcess>();
process.once('exit', () => { for (const c of LIVE) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

export interface Background {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * `cmd args` inside a namespace, killed after `timeoutMs` whatever happens.
 * Resolves once its output matches `ready` (rejects if it exits first or is
 * not ready within `readyMs`).
 */
export async function startIn(ns: string, cmd: string, args: readonly string[], ready: RegExp, timeoutMs: number, readyMs = 5000): Promise<Background> {
  // `ip netns exec` execs the command in place: the pid is the command's.
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  LIVE.add(child);
  let out = '';
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => { clearTimeout(killer); LIVE.delete(child); r(code); }));
  const bg: Background = {
    child, exited,
    output: () => out,
    async stop(graceMs = 2000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  await new Promise<void>((resolve, reject) => {
    const fail = (why: string) => { clearTimeout(timer); void bg.stop(0); reject(new Error(`${cmd} in ${ns} ${why}: ${out.trim().split('\n').slice(-3).join(' / ')}`)); };
    const timer = setTimeout(() => fail(`not ready within ${readyMs} ms`), readyMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) { clearTimeout(timer); resolve(); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (e) => fail(e.message));
    void exited.then((code) => fail(`exited with ${code}`));
  });
  return bg;
}
