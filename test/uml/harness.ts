// Runs a Node script inside User-Mode Linux: a real Linux kernel (Debian's
// `user-mode-linux`) as an ordinary process, with the modules fand's kernel
// dataplanes need (ipip, veth, bridge, tun) even when the machine's own
// kernel has none of them.
//
// The guest's root is the host's root through hostfs, read-only (`ro`: a
// read-write hostfs root would write straight into the host's files), so the
// host's node, ip and this checkout are visible at the same paths. One fresh
// host directory is mounted writable for results; test/uml/init.sh is PID 1
// in the guest and documents what it leaves there. linux.uml exits 0 whatever
// happens inside, so the verdict is only result.json.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const UML_KERNEL = '/usr/bin/linux.uml';
export const UML_MODULES = '/usr/lib/uml/modules';
export const BUSYBOX = '/bin/busybox';
const INIT_SH = fileURLToPath(new URL('../../../test/uml/init.sh', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** Guest paths that init.sh mounts over: the host's files there are not visible inside. */
const HIDDEN_IN_GUEST = ['/run/', '/dev/', '/proc/', '/sys/'];
const MAX_CAPTURE = 4 << 20;

export interface UmlOptions {
  /** Absolute path of a JS file to run with node inside the guest. */
  script: string;
  args?: string[];
  /** Boot to power-off; the whole UML process group is killed after it. Default 120 s. */
  timeoutMs?: number;
  /** Guest memory. Default 512 MiB (sparse file in the temp dir, used as touched). */
  memMb?: number;
  /**
   * Another UML kernel than Debian's (e.g. FAN_KERNEL). It has everything
   * built in: init.sh loads no modules. A missing file is an error.
   */
  kernel?: string;
}

/**
 * ../shared/kernels beside the checkout (see its README). In a linked git
 * worktree (`git worktree add`), beside the main checkout when the worktree
 * has no ../shared of its own.
 */
function sharedKernels(): string {
  const own = join(REPO, '..', 'shared', 'kernels');
  if (existsSync(own)) return own;
  try {
    const gitdir = /^gitdir: (.*)$/m.exec(readFileSync(join(REPO, '.git'), 'utf8'))?.[1]?.trim();
    const main = gitdir && /^(.*)\/\.git\/worktrees\/[^/]+$/.exec(gitdir)?.[1];
    if (main && existsSync(join(main, '..', 'shared', 'kernels'))) return join(main, '..', 'shared', 'kernels');
  } catch { /* not a linked worktree */ }
  return own;
}
/** The UML kernel with Ubuntu's Fan patch, ../shared/kernels/linux-fan.uml. */
export const FAN_KERNEL = join(sharedKernels(), 'linux-fan.uml');
/** The reference Fan client written from the patch (sets maps as Ubuntu's fanctl does). */
export const FANMAP_PY = join(sharedKernels(), 'fanmap.py');

export interface UmlRun {
  /** result.json was written and the script exited 0. */
  ok: boolean;
  /** The last line the script printed that starts with "{", parsed; or why there is none. */
  result: unknown;
  /** The guest console (kernel and init), then the script's own output. */
  console: string;
  /** Wall time from launching linux.uml to its exit. */
  seconds: number;
  /** Script exit status (null when it never finished). */
  status: number | null;
  /** Guest uptime in seconds at: init's mounts done, node started, node exited. */
  uptime: number[] | null;
  timedOut: boolean;
}

/** Throws, naming the Debian package to install, when UML cannot run here. */
export function checkUml(): void {
  const missing: string[] = [];
  if (!existsSync(UML_KERNEL)) missing.push(`${UML_KERNEL} (Debian package user-mode-linux)`);
  else if (!existsSync(UML_MODULES) || readdirSync(UML_MODULES).length === 0) missing.push(`${UML_MODULES}/<version> (Debian package user-mode-linux)`);
  if (!existsSync(BUSYBOX)) missing.push(`${BUSYBOX} (Debian package busybox-static)`);
  if (missing.length > 0) {
    throw new Error(`User-Mode Linux tests need ${missing.join(' and ')}: apt-get install -y user-mode-linux busybox-static`);
  }
  if (!existsSync(INIT_SH)) throw new Error(`UML init script ${INIT_SH} is missing`);
}

function canExec(dir: string): Promise<boolean> {
  const probe = join(dir, 'exec-probe.sh');
  return writeFile(probe, '#!/bin/sh\nexit 0\n', { mode: 0o755 })
    .then(() => new Promise<boolean>((resolve) => execFile(probe, [], { timeout: 5000 }, (err) => resolve(!err))))
    .catch(() => false);
}

/** A fresh directory on an exec-capable file system (UML maps its memory file executable). */
async function tempDir(): Promise<string> {
  const tried: string[] = [];
  for (const base of [tmpdir(), '/var/tmp', join(REPO, '.uml-tmp')]) {
    let dir: string;
    try {
      await mkdir(base, { recursive: true });
      dir = await mkdtemp(join(base, 'fand-uml-'));
    } catch (e) { tried.push(`${base}: ${(e as Error).message}`); continue; }
    if (await canExec(dir)) return dir;
    tried.push(`${base}: mounted noexec`);
    await rm(dir, { recursive: true, force: true });
  }
  throw new Error(`no exec-capable temp dir for UML (tried ${tried.join('; ')})`);
}

// linux.uml calls setsid() as it starts, and the host processes it forks (I/O
// helpers, one process per guest address space) stay in its process group.
// Killing only the main process leaves helpers behind, still holding our
// stdout pipe, so the group is what gets signalled.
function groupAlive(pgid: number): boolean {
  try { process.kill(-pgid, 0); return true; } catch { return false; }
}

function killUml(child: ChildProcess): void {
  try { process.kill(-child.pid!, 'SIGKILL'); } catch {
    // No group (yet): UML has not reached setsid(). ChildProcess.kill does
    // nothing once the child has exited, so this cannot hit a reused pid.
    child.kill('SIGKILL');
  }
}

/** Kills what is left of the group and waits (bounded) until it is gone. */
async function reap(child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 50 && groupAlive(child.pid!); i++) {
    killUml(child);
    await new Promise((r) => setTimeout(r, 100));
  }
  return !groupAlive(child.pid!);
}

/**
 * A detached shell that SIGKILLs the UML group if this process dies without
 * doing it (ava killing a worker that timed out, say) or after `limitS`, and
 * then, if this process is gone, removes the temp dir. It stops on its own
 * once UML's main process is gone; the harness kills it when done.
 */
function watchdog(umlPid: number, limitS: number, dir: string): ChildProcess {
  const sh = 'n=$3; while [ "$n" -gt 0 ] && kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; n=$((n-1)); done; '
    + 'kill -9 -"$2" 2>/dev/null; kill -0 "$1" 2>/dev/null || { sleep 1; rm -rf "$4"; }';
  const w = spawn('/bin/sh', ['-c', sh, 'uml-watchdog', String(process.pid), String(umlPid), String(limitS), dir], { detached: true, stdio: 'ignore' });
  w.unref();
  return w;
}

export async function runInUml(opts: UmlOptions): Promise<UmlRun> {
  checkUml();
  const kernel = opts.kernel ?? UML_KERNEL;
  if (!existsSync(kernel)) throw new Error(`UML kernel ${kernel}: no such file`);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const memMb = opts.memMb ?? 512;
  const argv = [opts.script, ...(opts.args ?? [])];
  if (!opts.script.startsWith('/')) throw new Error(`UML script ${opts.script}: must be an absolute path`);
  if (!existsSync(opts.script)) throw new Error(`UML script ${opts.script}: no such file (run \`npx tsc -p .\` first?)`);
  const hidden = HIDDEN_IN_GUEST.find((p) => opts.script.startsWith(p));
  if (hidden) throw new Error(`UML script ${opts.script}: the guest mounts its own ${hidden}, so the host's file is not visible there`);
  if (argv.some((a) => a.includes('\n'))) throw new Error('UML script arguments cannot contain newlines');

  const dir = await tempDir();
  let child: ChildProcess | undefined;
  let guard: ChildProcess | undefined;
  const running = (c: ChildProcess | undefined): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null;
  const onExit = (): void => { if (running(child)) killUml(child); };
  try {
    const umlDir = join(dir, 'uml');
    const out = join(dir, 'out');
    const init = join(dir, 'init.sh');
    await mkdir(umlDir);
    await mkdir(out);
    await copyFile(INIT_SH, init);
    await chmod(init, 0o755);
    await writeFile(join(out, 'argv'), argv.map((a) => `${a}\n`).join(''));

    const umid = `fand-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
    const kernelArgs = [
      `mem=${memMb}M`, `uml_dir=${umlDir}`, `umid=${umid}`,
      'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro',
      `init=${init}`, 'con0=fd:0,fd:1', 'con=null', 'quiet',
      `FAND_UML_OUT=${out}`,
      ...(opts.kernel ? ['FAND_UML_MODULES=builtin'] : []),
    ];
    const started = process.hrtime.bigint();
    const uml = spawn(kernel, kernelArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: umlDir } });
    child = uml;
    process.on('exit', onExit);
    if (uml.pid !== undefined) guard = watchdog(uml.pid, Math.ceil(timeoutMs / 1000) + 10, dir);
    let consoleText = '';
    const capture = (d: Buffer): void => { if (consoleText.length < MAX_CAPTURE) consoleText += d.toString(); };
    uml.stdout!.on('data', capture);
    uml.stderr!.on('data', capture);
    const closed = new Promise<void>((r) => uml.on('close', () => r()));
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; killUml(uml); }, timeoutMs);
    await new Promise<void>((resolve, reject) => {
      uml.on('error', reject);
      uml.on('exit', () => resolve());
    }).finally(() => clearTimeout(timer));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    guard?.kill('SIGKILL');
    if (!(await reap(uml))) consoleText += `\numl-harness: processes of group ${uml.pid} still alive after SIGKILL\n`;
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
    if (timedOut) consoleText += `\numl-harness: killed after ${timeoutMs} ms\n`;

    const log = await readFile(join(out, 'script.log'), 'utf8').catch(() => '');
    const text = `${consoleText}\n--- node ${argv.join(' ')} (script.log) ---\n${log}`;
    let raw: string;
    try {
      raw = await readFile(join(out, 'result.json'), 'utf8');
    } catch {
      return { ok: false, result: { error: timedOut ? `timed out after ${timeoutMs} ms` : 'the guest wrote no result.json' }, console: text, seconds, status: null, uptime: null, timedOut };
    }
    try {
      const r = JSON.parse(raw) as { status: number; uptime: number[]; result: unknown };
      return { ok: r.status === 0, result: r.result, console: text, seconds, status: r.status, uptime: r.uptime, timedOut };
    } catch {
      // The script's last "{" line was not JSON; the status is still in there.
      const status = Number(/"status":(\d+)/.exec(raw)?.[1] ?? NaN);
      return { ok: false, result: { error: 'result.json is not JSON (the script\'s last "{" line is not)', raw }, console: text, seconds, status: Number.isNaN(status) ? null : status, uptime: null, timedOut };
    }
  } finally {
    if (running(child)) killUml(child);
    guard?.kill('SIGKILL');
    process.off('exit', onExit);
    await rm(dir, { recursive: true, force: true });
  }
}
