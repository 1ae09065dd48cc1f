// Runs the fand CLI (optionally inside a network namespace) and reports its
// exit status and output, for tests of what a user sees.
import { execFile } from 'node:child_process';
import { FAND_BIN, PATIENCE_MS } from '../../src/demo/lab.js';

export function fand(args: string[], ns?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, argv] = ns ? ['ip', ['netns', 'exec', ns, process.execPath, FAND_BIN, ...args]] : [process.execPath, [FAND_BIN, ...args]];
  return new Promise((resolve) => {
    execFile(cmd as string, argv as string[], { timeout: PATIENCE_MS }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
