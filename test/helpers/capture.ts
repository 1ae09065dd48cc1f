// tcpdump in a namespace, ready before the traffic it must see: `capture`
// resolves once tcpdump says it is listening (it prints "listening on IFACE"
// to stderr when its socket is bound), not after a guessed delay, which a
// busy machine overruns.
import { spawn } from 'node:child_process';
import { PATIENCE_MS } from '../../src/demo/lab.js';

export interface Capture {
  /** tcpdump's stdout once it exits: after `count` packets, stop(), or the cap. */
  readonly done: Promise<string>;
  /** Ends the capture now (tcpdump prints what it has). */
  stop(): void;
}

/** @param args more tcpdump options (e.g. `-T vxlan` to decode VXLAN on a port tcpdump does not know for it) */
export function capture(ns: string, iface: string, filter: string, count: number, capMs = PATIENCE_MS, args: readonly string[] = []): Promise<Capture> {
  const child = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-n', '-l', ...args, '-i', iface, '-c', String(count), filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  const cap = setTimeout(() => child.kill('SIGTERM'), capMs);
  const done = new Promise<string>((resolve) => child.on('close', () => { clearTimeout(cap); resolve(stdout); }));
  const stop = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); };
  return new Promise<Capture>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/listening on/.test(stderr)) resolve({ done, stop });
    });
    void done.then(() => reject(new Error(`tcpdump in ${ns} exited before listening: ${stderr.trim()}`)));
  });
}
