// One small interface for every dataplane (flannel's backend pattern): the
// daemon asks the chosen one for the host resources it needs, starts it once
// the host is set up, reads its counters, and stops it before teardown.
import type { Resource } from '../host/resources.js';
import type { ResolvedFan } from '../fan/resolved.js';
import type { Logger } from '../log.js';

export type DataplaneMode = 'kernel-fan' | 'ebpf' | 'kernel-ipip' | 'userspace';
export const DATAPLANE_MODES: readonly DataplaneMode[] = ['kernel-fan', 'ebpf', 'kernel-ipip', 'userspace'];

export interface FanCounters {
  readonly fan: string;                       // the bridge name
  readonly perWorker: Record<string, number>[];
  readonly total: Record<string, number>;
}

export interface Dataplane {
  readonly mode: DataplaneMode;
  /** Host resources this dataplane needs beyond the bridge every mode has. */
  resources(fan: ResolvedFan): Resource[];
  start(fans: readonly ResolvedFan[], log: Logger): Promise<void>;
  /** Reload: the fans changed (their host resources are already in place). */
  update(fans: readonly ResolvedFan[]): Promise<void>;
  counters(): FanCounters[];
  /** Workers alive / configured (1/1 for kernel modes). */
  health(): { alive: number; configured: number };
  stop(): Promise<void>;
  /** True when the dataplane sends systemd's WATCHDOG=1 itself (from the threads that forward). */
  readonly watchdogFromWorkers?: boolean;
  /** Test hook: make the forwarding threads stall. */
  wedge?(on: boolean): void;
  /** Test hook: kill one forwarding thread. */
  crashWorker?(index: number): void;
}
