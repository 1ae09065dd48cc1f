// Leftovers in the runtime directory: the state file, control socket and
// DHCP lease files of a daemon whose network namespace no longer exists.
//
// Every daemon's files carry its network namespace's inode number
// (paths.ts), and nothing else ever removes the files of a namespace that
// was deleted while its daemon ran (or after it was killed): they would stay
// forever. So a daemon sweeps them as it starts.
//
// It must never remove the files of a namespace that still exists: after a
// kill -9 the state file is how the next daemon there repairs the host. A
// network namespace lives as long as anything holds it (namespaces(7)):
//   - a process in it (/proc/PID/ns/net),
//   - a bind mount of it, in /run/netns (`ip netns add`) or anywhere else, in
//     any mount namespace (an `nsfs` line in /proc/PID/mountinfo, whose root
//     field is `net:[INODE]`),
//   - an open file descriptor on it (a readlink of /proc/PID/fd/N gives
//     `net:[INODE]`).
// All three are checked, in every process and mount namespace. What cannot
// be seen from /proc is a namespace held only by a socket that a process in
// another namespace created there; a daemon cannot run in such a namespace,
// so at worst the files of a daemon killed there are swept.
//
// Outside the initial PID namespace (fand in a container) /proc does not
// show every process, so nothing is swept. A namespace created while the
// sweep runs may get the inode of a dead one (the kernel reuses them), and
// its daemon may write its files meanwhile: only files older than the sweep
// are removed.
import { readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';

/** PROC_PID_INIT_INO (include/linux/proc_ns.h): the inode of the initial PID namespace. */
const INITIAL_PID_NS = 0xeffffffc;

const NET_REF = /^net:\[(\d+)\]$/;
const FILE = /^(?:fand-(\d+)\.(?:state\.json|sock)|dhcp-(\d+)-.+\.leases)$/;

async function pids(): Promise<string[]> {
  return (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
}

async function netRef(path: string): Promise<string | undefined> {
  return NET_REF.exec(await readlink(path).catch(() => ''))?.[1];
}

/**
 * The inodes of every network namespace something holds: a process, a bind
 * mount in any mount namespace, an open descriptor. Undefined when this
 * process cannot see them all (not in the initial PID namespace).
 */
export async function liveNetworkNamespaces(): Promise<Set<string> | undefined> {
  if (statSync('/proc/self/ns/pid').ino !== INITIAL_PID_NS) return undefined;
  const live = new Set<string>();
  const mountNamespaces = new Map<string, string>(); // mnt inode -> a pid in it
  for (const pid of await pids()) {
    const net = await netRef(`/proc/${pid}/ns/net`);
    if (net) live.add(net);
    const mnt = /^mnt:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/ns/mnt`).catch(() => ''))?.[1];
    if (mnt && !mountNamespaces.has(mnt)) mountNamespaces.set(mnt, pid);
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const held = await netRef(`/proc/${pid}/fd/${fd}`);
      if (held) live.add(held);
    }
  }
  for (const pid of mountNamespaces.values()) {
    const lines = (await readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '')).split('\n');
    for (const line of lines) {
      // ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE OPTIONS (proc(5))
      const fields = line.split(' ');
      const fstype = fields[fields.indexOf('-') + 1];
      const net = NET_REF.exec(fields[3] ?? '')?.[1];
      if (fstype === 'nsfs' && net) live.add(net);
    }
  }
  return live;
}

export interface SweepLog {
  info(o: object, m: string): void;
  debug(o: object, m: string): void;
}

/** Removes the files of daemons whose network namespace is gone; returns their paths. */
export async function sweepRuntimeDir(dir: string, log: SweepLog): Promise<string[]> {
  const started = Date.now();
  const names = await readdir(dir).catch(() => [] as string[]);
  const candidates = names.map((n) => ({ n, m: FILE.exec(n) })).filter((x) => x.m);
  if (candidates.length === 0) return [];
  const live = await liveNetworkNamespaces();
  if (!live) {
    log.debug({ dir }, 'not in the initial PID namespace: files of daemons in deleted network namespaces are not swept');
    return [];
  }
  const removed: string[] = [];
  const gone = new Set<string>();
  for (const { n, m } of candidates) {
    const ino = m![1] ?? m![2]!;
    if (live.has(ino)) continue;
    const path = join(dir, n);
    const st = await stat(path).catch(() => undefined);
    if (!st || st.mtimeMs >= started) continue; // written since the sweep began: a new namespace's
    await rm(path, { force: true });
    removed.push(path);
    gone.add(ino);
  }
  for (const ino of gone) {
    const files = removed.filter((p) => FILE.exec(p.slice(dir.length + 1))?.slice(1).includes(ino));
    log.info({ netns: Number(ino), removed: files }, `removed the files of a fand whose network namespace (inode ${ino}) no longer exists: ${files.join(', ')}`);
  }
  return removed;
}
