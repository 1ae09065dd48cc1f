// The state file: what fand created on this host, written before and after
// every change, so that whoever comes next knows what is fand's.
//
// Three situations, told apart by the file alone:
// - a daemon is running: `pid` is its pid and `stopped` is absent;
// - the last daemon was killed (kill -9, a crash, power to the process):
//   same as running, but nobody answers on the control socket; the next
//   start repairs from `created`;
// - the last daemon stopped cleanly but kept fans that had containers
//   attached (shutdown.ts): `stopped` says when and which; the next start
//   adopts them, and `fand down` removes them.
// The file is removed when nothing of fand's is left on the host.
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { Created } from '../host/ensure.js';
import type { RuntimePaths } from '../control/paths.js';
import { request } from '../control/server.js';

/** A fan a clean stop left in place because containers were attached to its bridge. */
export interface KeptFan {
  readonly bridge: string;
  readonly ports: readonly string[];
}

export interface StateFile {
  readonly pid: number;
  readonly created: readonly Created[];
  readonly stopped?: { readonly at: string; readonly kept: readonly KeptFan[] };
}

export class AlreadyRunning extends Error {}

export type PreviousState =
  | { readonly kind: 'none' }
  | { readonly kind: 'unreadable'; readonly path: string }
  | { readonly kind: 'killed'; readonly pid: number; readonly created: readonly Created[] }
  | { readonly kind: 'kept'; readonly pid: number; readonly at: string; readonly kept: readonly KeptFan[]; readonly created: readonly Created[] };

export async function readState(path: string): Promise<PreviousState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { kind: 'none' };
  }
  try {
    const s = JSON.parse(text) as StateFile;
    if (!Array.isArray(s.created)) return { kind: 'unreadable', path };
    if (s.stopped) return { kind: 'kept', pid: s.pid, at: s.stopped.at, kept: s.stopped.kept ?? [], created: s.created };
    return { kind: 'killed', pid: s.pid, created: s.created };
  } catch {
    return { kind: 'unreadable', path };
  }
}

export function createdOf(p: PreviousState): readonly Created[] {
  return p.kind === 'killed' || p.kind === 'kept' ? p.created : [];
}

export async function writeState(path: string, s: StateFile): Promise<void> {
  // Written whole and small; a torn write is caught by readState as 'unreadable'.
  await writeFile(path, JSON.stringify(s), { mode: 0o600 });
}

export async function removeState(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** Throws AlreadyRunning when a daemon answers on this namespace's control socket. */
export async function refuseIfRunning(paths: RuntimePaths): Promise<void> {
  const pid = await runningPid(paths);
  if (pid !== undefined) {
    throw new AlreadyRunning(`fand is already running in this network namespace (pid ${pid || '?'}, control socket ${paths.socket})`);
  }
}

/** The pid of the daemon answering on this namespace's control socket (0 if it did not say), or undefined. */
export async function runningPid(paths: RuntimePaths): Promise<number | undefined> {
  try {
    const r = (await request(paths.socket, { cmd: 'show' }, 1000)) as { pid?: number };
    return r.pid ?? 0;
  } catch {
    return undefined; // nobody answers: any socket file is stale
  }
}
