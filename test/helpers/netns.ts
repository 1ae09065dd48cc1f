// A fresh network namespace for one test, deleted on teardown (also when the test fails).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';

const run = promisify(execFile);
let counter = 0;

export async function tempNetns(t: ExecutionContext, tag: string): Promise<string> {
  const ns = `${tag}-${process.pid}-${counter++}`;
  await run('ip', ['netns', 'add', ns], { timeout: 5000 });
  t.teardown(async () => {
    await run('ip', ['netns', 'del', ns], { timeout: 5000 }).catch(() => undefined);
  });
  return ns;
}
