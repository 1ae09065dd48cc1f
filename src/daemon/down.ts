// `fand down [--force]`: removes what fand keeps on the host after a clean
// stop (the fans that had containers attached, retire.ts) or after a crash.
// Refuses while a daemon runs here (stop it first: it owns the host), and
// while a fan's bridge has ports, naming them, unless forced — as `fanctl
// down` refused while a bridge had ports.
import { rm } from 'node:fs/promises';
import { teardown } from '../host/ensure.js';
import type { HostNet } from '../host/ip.js';
import type { RuntimePaths } from '../control/paths.js';
import { createdOf, readState, removeState, runningPid } from './state.js';
import { bridgePorts, describeKept } from './retire.js';
import { leaseFilesOf } from '../dhcp/supervisor.js';

export class DownRefused extends Error {}

export interface DownResult {
  /** One line per change, as teardown logged it. */
  readonly removed: readonly string[];
  readonly errors: readonly string[];
}

export async function down(host: HostNet, paths: RuntimePaths, force: boolean): Promise<DownResult> {
  const pid = await runningPid(paths);
  if (pid !== undefined) {
    throw new DownRefused(`fand is running in this network namespace (pid ${pid || '?'}): stop it first (systemctl stop fand), then run fand down`);
  }
  const previous = await readState(paths.state);
  if (previous.kind === 'unreadable') throw new DownRefused(`the state file ${paths.state} is unreadable: fand cannot tell what it created; remove the fan bridges by hand`);
  const created = createdOf(previous);
  if (created.length === 0) return { removed: [], errors: [] };
  const ports = bridgePorts(await host.links(), created);
  const busy = [...ports].filter(([, p]) => p.length > 0).map(([bridge, p]) => ({ bridge, ports: p }));
  if (busy.length > 0 && !force) {
    throw new DownRefused(`containers are attached: ${describeKept(busy)}; detach them (ip link set PORT nomaster, or stop the containers), or run fand down --force to cut them off`);
  }
  const removed: string[] = [];
  const errors = await teardown(host, created, (m) => removed.push(m));
  if (errors.length === 0) {
    await removeState(paths.state);
    await rm(paths.socket, { force: true });
    for (const f of await leaseFilesOf(paths)) await rm(f, { force: true });
  }
  return { removed, errors };
}
