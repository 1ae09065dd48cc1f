// The running daemon's state, shared by its phases (startup.ts, reload.ts,
// watch.ts, shutdown.ts). Each phase is a function over this object; this
// file holds no behaviour beyond keeping the state file in step.
import type { Server } from 'node:net';
import type { Created } from '../host/ensure.js';
import type { HostNet } from '../host/ip.js';
import type { Choice } from '../dataplane/select.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { Plan } from '../plan.js';
import type { ResolvedFan } from '../fan/resolved.js';
import type { FanSpec } from '../config/fanfile.js';
import type { RuntimePaths } from '../control/paths.js';
import type { MetricsServer } from '../metrics.js';
import type { Logger } from '../log.js';
import { DhcpSupervisor } from '../dhcp/supervisor.js';
import type { DaemonOptions } from './options.js';
import type { Prepared } from './prepare.js';
import type { ReloadOutcome, StatusSource } from './status.js';
import { writeState, type KeptFan } from './state.js';

export class Daemon implements StatusSource {
  readonly choice: Choice;
  readonly dp: Dataplane;
  readonly dhcp: DhcpSupervisor;
  /** The fan specifications being served (the configuration as last applied). */
  specs: readonly FanSpec[];
  fans: ResolvedFan[];
  plan: Plan;
  /** Everything fand owns on the host now, in creation order (teardown reverses it). */
  created: Created[] = [];
  /** Fans no longer configured that stay because containers are attached (retire.ts). */
  retained: KeptFan[] = [];
  lastReload: ReloadOutcome | undefined;
  dataplaneStarted = false;
  metrics: MetricsServer | undefined;
  server: Server | undefined;
  private serial: Promise<void> = Promise.resolve();

  constructor(readonly opts: DaemonOptions, readonly host: HostNet, readonly paths: RuntimePaths, readonly log: Logger, p: Prepared) {
    this.choice = p.choice;
    this.dp = p.dp;
    this.fans = p.fans;
    this.plan = p.plan;
    this.specs = opts.specs;
    this.dhcp = new DhcpSupervisor(paths, log);
  }

  /** Persists `created` (before and after every change: the next fand repairs from it). */
  saveState(): Promise<void> {
    return writeState(this.paths.state, { pid: process.pid, created: this.created });
  }

  /** Runs host changes one at a time, in order (reloads, underlay moves). */
  exclusive(f: () => Promise<void>): Promise<void> {
    const next = this.serial.then(f, f);
    this.serial = next.catch(() => undefined);
    return next;
  }

  /** Waits for the change in progress, if any. */
  settled(): Promise<void> {
    return this.serial;
  }

  /** The callbacks `ensure` reports through: changes at info, what was already right at debug. */
  get ensureLog(): { log: (m: string, f?: object) => void; debug: (m: string, f?: object) => void } {
    return { log: (m, f) => this.log.info(f ?? {}, m), debug: (m, f) => this.log.debug(f ?? {}, m) };
  }

  logFans(): void {
    for (const f of this.plan.fans) {
      this.log.info({ fan: f }, `fan ${f.overlay} over ${f.underlay} (${f.iface}): slice ${f.slice}, bridge ${f.bridge} ${f.bridgeAddress}, mtu ${f.mtu}`);
    }
  }
}
