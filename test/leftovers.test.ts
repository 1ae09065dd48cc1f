// Leftovers in the runtime directory (issue 11, finding 6): the files of a
// daemon whose network namespace is gone are removed when a daemon starts;
// those of a namespace that still exists are never touched, however it is
// kept alive (a bind mount in /run/netns or elsewhere, a process in it, a
// descriptor on it), because a killed daemon's state file is how the next
// start repairs the host.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, PATIENCE_MS } from '../src/demo/lab.js';
import { run } from '../src/demo/exec.js';
import { liveNetworkNamespaces, sweepRuntimeDir } from '../src/control/sweep.js';

interface Line { o: object; m: string }
const recorder = () => {
  const lines: Line[] = [];
  return { lines, info: (o: object, m: string) => { lines.push({ o, m }); }, debug: () => undefined };
};

/** A process in a network namespace of its own (unshare -n); resolves with it and the namespace's inode. */
async function unshared(): Promise<{ child: ChildProcess; ino: string }> {
  const child = spawn('unshare', ['-n', 'sleep', '600'], { stdio: 'ignore' });
  for (const end = Date.now() + PATIENCE_MS; Date.now() < end;) {
    try {
      const ino = String(statSync(`/proc/${child.pid}/ns/net`).ino);
      if (ino !== String(statSync('/proc/self/ns/net').ino)) return { child, ino }; // unshare has run
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('unshare -n did not start');
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => { child.once('exit', () => r()); child.kill('SIGKILL'); });
}

/** A daemon's files, as it leaves them, written a minute ago. */
async function daemonFiles(dir: string, ino: string): Promise<string[]> {
  const files = [`fand-${ino}.state.json`, `fand-${ino}.sock`, `dhcp-${ino}-fan-250-1-10.leases`].map((f) => join(dir, f));
  const old = new Date(Date.now() - 60_000);
  for (const f of files) { await writeFile(f, '{}'); await utimes(f, old, old); }
  return files;
}

test('the sweep removes the files of deleted namespaces only, whatever keeps a namespace alive', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fand-sweep-'));
  const prefix = Lab.uniquePrefix('sw');
  const held: ChildProcess[] = [];
  const mountPoint = join(dir, 'netns-ref');
  t.teardown(async () => {
    for (const c of held) await kill(c);
    await run('umount', [mountPoint]).catch(() => undefined);
    for (const ns of [`${prefix}-dead`, `${prefix}-bound`]) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  // alive through /run/netns (ip netns add)
  await run('ip', ['netns', 'add', `${prefix}-bound`]);
  const boundIno = String(statSync(`/run/netns/${prefix}-bound`).ino);
  // alive through a process in it
  const proc = await unshared();
  held.push(proc.child);
  // alive through a bind mount elsewhere, once its process is gone
  const mounted = await unshared();
  held.push(mounted.child);
  await writeFile(mountPoint, '');
  await run('mount', ['--bind', `/proc/${mounted.child.pid}/ns/net`, mountPoint]);
  await kill(mounted.child);
  // alive through an open descriptor only (a shell holding fd 3 on it, in this namespace)
  const viaFd = await unshared();
  held.push(viaFd.child);
  const holder = spawn('sh', ['-c', `exec 3</proc/${viaFd.child.pid}/ns/net; echo ready; exec sleep 600`], { stdio: ['ignore', 'pipe', 'ignore'] });
  held.push(holder);
  await new Promise((r) => holder.stdout!.once('data', r));
  await kill(viaFd.child);

  const alive = [boundIno, proc.ino, mounted.ino, viaFd.ino];
  t.is(new Set(alive).size, 4, 'four distinct namespaces');
  const kept: string[] = [];
  for (const ino of alive) kept.push(...await daemonFiles(dir, ino));
  await writeFile(join(dir, 'unrelated.txt'), 'not a daemon file');

  // gone: created, its inode noted, deleted, last (the kernel hands a freed
  // inode to the next namespace created: another test's may take it before
  // the sweep, which then rightly keeps the files; try again then)
  let deadIno = '';
  let dead: string[] = [];
  let removed: string[] = [];
  const log = recorder();
  for (let attempt = 1; attempt <= 5; attempt++) {
    await run('ip', ['netns', 'add', `${prefix}-dead`]);
    deadIno = String(statSync(`/run/netns/${prefix}-dead`).ino);
    await run('ip', ['netns', 'del', `${prefix}-dead`]);
    dead = await daemonFiles(dir, deadIno);
    log.lines.length = 0;
    removed = await sweepRuntimeDir(dir, log);
    if (removed.length > 0 || !(await liveNetworkNamespaces())!.has(deadIno)) break;
    t.log(`inode ${deadIno} was reused by another namespace before the sweep; again`);
    for (const f of dead) await rm(f, { force: true });
  }
  t.deepEqual(removed.sort(), dead.sort());
  for (const f of dead) t.false(existsSync(f), `${f} left behind`);
  for (const f of kept) t.true(existsSync(f), `${f} of a namespace that still exists was removed`);
  t.true(existsSync(join(dir, 'unrelated.txt')));
  t.is(log.lines.length, 1);
  t.regex(log.lines[0]!.m, new RegExp(`^removed the files of a fand whose network namespace \\(inode ${deadIno}\\) no longer exists`));

  // a file written after the sweep began is never removed, even for a gone inode (the kernel reuses them)
  const fresh = join(dir, `fand-${deadIno}.state.json`);
  await writeFile(fresh, '{}');
  await utimes(fresh, new Date(Date.now() + 60_000), new Date(Date.now() + 60_000));
  t.deepEqual(await sweepRuntimeDir(dir, recorder()), []);
  t.true(existsSync(fresh));
});

test('a starting daemon sweeps what a daemon killed in a since deleted namespace left', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fand-sweep-'));
  const lab = new Lab(Lab.uniquePrefix('swd'));
  t.teardown(async () => { await lab.destroy(); await rm(dir, { recursive: true, force: true }); });
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  // As in the test above: another test's new namespace may take the freed
  // inode before the sweep, which then rightly keeps the files; try again.
  for (let attempt = 1; ; attempt++) {
    const gone = new Lab(Lab.uniquePrefix('swg'));
    let ino = '';
    try {
      await gone.build(1, 0);
      ino = String(statSync(`/run/netns/${gone.hosts[0]!.ns}`).ino);
      await gone.startFand(gone.hosts[0]!, ['--workers', '1', '--runtime-dir', dir]);
      await gone.stopFand(gone.hosts[0]!, 'SIGKILL');
    } finally {
      await gone.destroy(); // deletes its namespaces; the files in `dir` stay
    }
    t.deepEqual(readdirSync(dir).filter((f) => f.includes(ino)).sort(), [`fand-${ino}.sock`, `fand-${ino}.state.json`]);
    const f = await lab.startFand(h, ['--workers', '1', '--runtime-dir', dir]);
    t.is(await lab.stopFand(h), 0);
    const swept = f.logs.find((l) => /^removed the files of a fand whose network namespace/.test(String(l['msg'])));
    if (!swept && (await liveNetworkNamespaces())!.has(ino) && attempt < 5) {
      t.log(`inode ${ino} was reused by another namespace before the sweep; again`);
      continue;
    }
    t.truthy(swept, JSON.stringify(f.logs.map((l) => l['msg'])));
    t.is(swept!['netns'], Number(ino));
    t.deepEqual(readdirSync(dir).filter((x) => x.includes(ino)), []);
    break;
  }
});
