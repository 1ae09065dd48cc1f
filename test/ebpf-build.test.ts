// bpf/fan.bpf.o is committed so that hosts need no compiler; this checks it
// is exactly what bpf/fan.bpf.c compiles to (scripts/build-bpf.mjs), so the
// object never drifts from its source. Needs clang (Debian: clang); without
// it this fails and says so.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('bpf/fan.bpf.o is what bpf/fan.bpf.c compiles to', async (t) => {
  const { buildBpf } = (await import(join(ROOT, 'scripts', 'build-bpf.mjs'))) as { buildBpf(out: string): string };
  const dir = mkdtempSync(join(tmpdir(), 'fand-bpf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'fan.bpf.o');
  const clang = buildBpf(out);
  const committedWith = readFileSync(join(ROOT, 'bpf', 'fan.bpf.o.clang'), 'utf8').trim();
  const same = Buffer.compare(readFileSync(out), readFileSync(join(ROOT, 'bpf', 'fan.bpf.o'))) === 0;
  t.true(same, same ? '' : clang === committedWith
    ? 'bpf/fan.bpf.o differs from what bpf/fan.bpf.c compiles to: run `node scripts/build-bpf.mjs` and commit the object'
    : `bpf/fan.bpf.o was built with ${committedWith}, this is ${clang}, and the bytes differ: build and check with that clang (Debian 12's clang package)`);
});
