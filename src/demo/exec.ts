// Running commands for the lab (demo and tests): errors carry the command
// and its stderr, and every call is bounded in time.
import { execFile } from 'node:child_process';

export interface ExecResult { stdout: string; stderr: string }

export function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const e = new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`) as Error & { stdout: string; stderr: string; code: unknown };
        e.stdout = stdout; e.stderr = stderr; e.code = (err as NodeJS.ErrnoException).code;
        reject(e);
      } else resolve({ stdout, stderr });
    });
  });
}

/** `ip netns exec NS cmd args...` */
export function inNs(ns: string, cmd: string, args: readonly string[], timeoutMs?: number): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
}
