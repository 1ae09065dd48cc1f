// The README's first command runs `fand demo`: it must work and clean up.
import test from 'ava';
import { execFile } from 'node:child_process';
import { FAND_BIN } from '../src/demo/lab.js';

test('fand demo builds a fan of 2 hosts, every container reaches every other, and removes it all', async (t) => {
  const before = await new Promise<string>((r) => execFile('ip', ['netns', 'list'], (_e, o) => r(o)));
  // a cap for a hung demo, not an expectation: on a busy machine it takes minutes
  const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [FAND_BIN, 'demo', '--hosts', '2', '--workers', '1'], { timeout: 600_000 }, (e, stdout) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout }));
  });
  t.is(out.code, 0, out.stdout);
  t.regex(out.stdout, /All containers reach each other through the Fan\./);
  t.regex(out.stdout, /TCP 8 MiB 250\.1\.10\.11 -> 250\.2\.10\.11: intact/);
  t.notRegex(out.stdout, /FAIL/);
  // Only this demo's namespaces: another test may run a demo of its own at the same time.
  const prefix = /\(namespaces (\S+)-\*\)/.exec(out.stdout)?.[1];
  t.truthy(prefix, out.stdout);
  const after = await new Promise<string>((r) => execFile('ip', ['netns', 'list'], (_e, o) => r(o)));
  t.false(after.split('\n').some((l) => l.startsWith(`${prefix}-`) && !before.includes(l)), 'demo namespaces left behind');
});
