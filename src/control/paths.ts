// Where a daemon keeps its control socket and state file. Daemons in
// different network namespaces on one machine share /run, so the names carry
// the namespace's inode number: `ip netns exec hostA fand show` computes the
// same name as the daemon running in hostA, and never another's.
import { statSync } from 'node:fs';
import { join } from 'node:path';

export interface RuntimePaths {
  readonly dir: string;
  readonly socket: string;
  readonly state: string;
}

export function netnsId(): string {
  return String(statSync('/proc/self/ns/net').ino);
}

export function runtimePaths(dir = process.env['RUNTIME_DIRECTORY'] ?? '/run/fand'): RuntimePaths {
  const id = netnsId();
  return { dir, socket: join(dir, `fand-${id}.sock`), state: join(dir, `fand-${id}.state.json`) };
}
