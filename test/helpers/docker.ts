// A real Docker engine (Debian's docker.io) inside a lab host's network
// namespace, for the Docker tier (test/docker.test.ts).
//
// One dockerd per host namespace, each with its own --data-root,
// --exec-root, --pidfile and unix socket, so two run side by side without
// touching the machine's own Docker (if any). `ip netns exec` gives the
// daemon a private mount namespace with a fresh /sys for the network
// namespace, in which /sys/fs/cgroup is empty: the cgroup2 hierarchy is
// mounted there again before dockerd starts (runc needs it to place the
// containers; without controllers delegated, Docker only warns that it
// cannot set limits). Storage is vfs: plain directories, no overlay mounts
// to undo; the busybox image is a few MiB. Images come from `docker import`
// of a busybox-static root file system made here: no registry, no network.
//
// Cleanup, also when the test fails or its process dies: containers go
// under a cgroup of their own (--cgroup-parent), which `cgroup.kill` ends
// in one write; dockerd, containerd and the shims run in the lab host's
// network namespace, where every process is killed; a detached watchdog
// does both if the test process disappears, then removes the data roots.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, rmdir, symlink, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PATIENCE_MS } from '../../src/demo/lab.js';
import type { ExecResult } from '../../src/demo/exec.js';

/** Debian's docker.io; /usr/local/bin may hold another docker CLI first on PATH. */
export const DOCKER = '/usr/bin/docker';
export const DOCKERD = '/usr/sbin/dockerd';
export const BUSYBOX = '/bin/busybox';
export const IMAGE = 'fandtest/busybox:1';

/** Throws, naming the Debian packages, when the Docker tier cannot run here. */
export function checkDocker(): void {
  const missing = [[DOCKER, 'docker.io'], [DOCKERD, 'docker.io'], [BUSYBOX, 'busybox-static']].filter(([p]) => !existsSync(p!));
  if (missing.length) {
    throw new Error(`the Docker tier needs ${missing.map(([p, pkg]) => `${p} (Debian package ${pkg})`).join(' and ')}: apt-get install -y docker.io busybox-static`);
  }
}

/** Where this mount namespace has the cgroup2 hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host). */
export function cgroup2Root(): string {
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, where, type] = line.split(' ');
    if (type === 'cgroup2' && where) return where;
  }
  throw new Error('no cgroup2 hierarchy is mounted: the Docker tier needs one (mount -t cgroup2 none /sys/fs/cgroup/unified)');
}

function exec(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = PATIENCE_MS): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 64 << 20, env }, (err, stdout, stderr) => {
      if (err) {
        const e = new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`) as Error & ExecResult;
        e.stdout = stdout; e.stderr = stderr;
        reject(e);
      } else resolve({ stdout, stderr });
    });
  });
}

/** A tar of a busybox root file system: /bin/busybox and a link per applet. */
export async function busyboxRootfsTar(dir: string): Promise<string> {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) await mkdir(join(root, d), { recursive: true });
  await copyFile(BUSYBOX, join(root, 'bin/busybox'));
  const applets = (await exec(BUSYBOX, ['--list'], process.env)).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) await symlink('busybox', join(root, 'bin', a)).catch(() => undefined);
  await mkdir(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  const tar = join(dir, 'rootfs.tar');
  await exec('tar', ['-C', root, '-cf', tar, '.'], process.env);
  return tar;
}

/** Inode of a namespace file, as `net:[N]` links name it. */
const inodeOf = (path: string): string => String(statSync(path).ino);

/** Pids of the processes whose network namespace is `ino`. */
function processesIn(ino: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try { if (readlinkSync(`/proc/${p}/ns/net`) === `net:[${ino}]`) out.push(Number(p)); } catch { /* gone */ }
  }
  return out;
}

export class Dockerd {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly socket: string;
  readonly cgroupParent: string;
  private readonly env: NodeJS.ProcessEnv;

  private constructor(readonly ns: string, readonly base: string, readonly tag: string) {
    this.socket = join(base, 'docker.sock');
    this.cgroupParent = `/fandtest-${tag}`;
    // the docker CLI's own config (~/.docker) stays untouched
    this.env = { PATH: '/usr/bin:/usr/sbin:/bin:/sbin', HOME: base, DOCKER_CONFIG: join(base, 'cli'), DOCKER_HOST: `unix://${this.socket}` };
  }

  /** The environment under which `docker` talks to this daemon (for scripts `fand integrate docker` prints). */
  get dockerEnv(): NodeJS.ProcessEnv { return this.env; }

  get pid(): number | undefined { return this.child?.pid; }

  /** The daemon's log so far (for a failing test's report). */
  log(): string {
    try { return readFileSync(join(this.base, 'dockerd.log'), 'utf8'); } catch { return ''; }
  }

  /**
   * Starts dockerd in `ns` and waits until it answers. `base` must be a short
   * path (containerd's socket lives under the exec root, and unix socket
   * paths are limited to 108 bytes).
   */
  static async start(ns: string, base: string, tag: string): Promise<Dockerd> {
    const d = new Dockerd(ns, base, tag);
    await d.launch();
    return d;
  }

  private async launch(): Promise<void> {
    const b = this.base;
    const args = [
      `--data-root=${join(b, 'data')}`, `--exec-root=${join(b, 'x')}`, `--pidfile=${join(b, 'docker.pid')}`,
      `-H`, `unix://${this.socket}`, '--storage-driver=vfs', `--cgroup-parent=${this.cgroupParent}`,
      '--bridge=none', '--userland-proxy=false', '--log-level=warn',
    ];
    const log = join(b, 'dockerd.log');
    const script = 'mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@" >>"$FAND_DOCKERD_LOG" 2>&1';
    const child = spawn('ip', ['netns', 'exec', this.ns, 'sh', '-c', script, DOCKERD, ...args], {
      stdio: 'ignore', env: { ...this.env, FAND_DOCKERD_LOG: log }, detached: true,
    });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    for (const end = Date.now() + PATIENCE_MS; ;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd in ${this.ns} exited at start: ${this.log().slice(-3000)}`);
      try { await this.docker(['version', '--format', '{{.Server.Version}}'], 10_000); return; } catch (e) {
        if (Date.now() > end) throw new Error(`dockerd in ${this.ns} did not answer on ${this.socket} within ${PATIENCE_MS} ms: ${(e as Error).message}; ${this.log().slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  docker(args: readonly string[], timeoutMs = PATIENCE_MS): Promise<ExecResult> {
    return exec(DOCKER, args, this.env, timeoutMs);
  }

  /** dockerd stops (SIGTERM: it stops its containers, then containerd) and starts again with the same data. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** SIGTERM and wait; SIGKILL after PATIENCE_MS. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM'); // `ip netns exec` and `sh -c exec` exec in place: this is dockerd
    const late = setTimeout(() => c.kill('SIGKILL'), PATIENCE_MS);
    await this.exited;
    clearTimeout(late);
  }
}

/**
 * Starts what cleans up after the Docker tier: `destroy()` does it now; a
 * detached watchdog does it if this process dies first (a runner killing a
 * timed-out worker). It kills every process in the given network
 * namespaces (dockerd, containerd, shims: fand too, which the lab would stop
 * anyway), every container (cgroup.kill on each daemon's cgroup parent),
 * and removes `base`.
 */
export class DockerCleanup {
  private readonly watchdog: ChildProcess;
  private readonly inodes: string[];

  /**
   * @param namespaces the lab hosts' namespaces, where the engines run
   * @param cgroups the engines' cgroup parents (as this mount namespace sees the cgroup2 hierarchy)
   * @param netnsPrefix every /run/netns name starting with it is deleted if this process dies (the lab's own exit hook cannot run then)
   */
  constructor(private readonly base: string, namespaces: readonly string[], private readonly cgroups: readonly string[], netnsPrefix: string) {
    const inodes = namespaces.map((ns) => inodeOf(`/run/netns/${ns}`));
    this.inodes = inodes;
    // Engines first, containers second, repeatedly: a dockerd still alive
    // restarts the containers of --restart=always (new shims) while they die.
    const round = `${cgroups.map((c) => `[ -e '${c}/cgroup.kill' ] && echo 1 > '${c}/cgroup.kill'; `).join('')}`
      + `for p in /proc/[0-9]*; do case "$(readlink $p/ns/net)" in ${inodes.map((i) => `'net:[${i}]'`).join('|')}) kill -9 "\${p#/proc/}";; esac; done 2>/dev/null`;
    const sh = `while kill -0 ${process.pid} 2>/dev/null && [ -e '${base}' ]; do sleep 1; done; [ -e '${base}' ] || exit 0; `
      + `for i in 1 2 3 4 5; do ${round}; sleep 0.5; done; `
      + `for c in ${cgroups.map((c) => `'${c}'`).join(' ')}; do for d in "$c"/*/; do rmdir "$d"; done; rmdir "$c"; done 2>/dev/null; `
      + `for n in /run/netns/${netnsPrefix}*; do ip netns del "\${n##*/}"; done 2>/dev/null; rm -rf '${base}'`;
    this.watchdog = spawn('/bin/sh', ['-c', sh], { detached: true, stdio: 'ignore' });
    this.watchdog.unref();
  }

  /** Kills what is left of the engines and their containers, and removes their files. */
  async destroy(): Promise<void> {
    const engineProcs = () => this.inodes.flatMap(processesIn)
      .filter((p) => /^(dockerd|containerd|containerd-shim|docker-proxy|runc)/.test(readFileSafe(`/proc/${p}/comm`)));
    for (const end = Date.now() + PATIENCE_MS; ;) {
      const left = engineProcs();
      const busy = this.cgroups.filter((c) => existsSync(join(c, 'cgroup.kill')));
      if (left.length === 0 && busy.every((c) => readFileSafe(join(c, 'cgroup.events')).includes('populated 0'))) break;
      for (const pid of left) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      for (const c of busy) { try { writeFileSync(join(c, 'cgroup.kill'), '1'); } catch { /* gone */ } }
      if (Date.now() > end) throw new Error(`Docker processes left after ${PATIENCE_MS} ms: ${left.join(' ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const c of this.cgroups) await removeCgroupTree(c);
    await rm(this.base, { recursive: true, force: true });
    this.watchdog.kill('SIGKILL');
  }
}

function readFileSafe(p: string): string {
  try { return readFileSync(p, 'utf8').trim(); } catch { return ''; }
}

/** rmdir a cgroup and its children, deepest first, once their processes are gone. */
async function removeCgroupTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  for (const end = Date.now() + PATIENCE_MS; existsSync(dir);) {
    try { await rmdir(dir); } catch (e) { if (Date.now() > end) throw new Error(`cgroup ${dir} not removable: ${(e as Error).message}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A short base directory for one tier run (unix socket paths are short). */
export function dockerBase(): Promise<string> {
  return mkdtemp('/tmp/fdk');
}
