// What the running daemon tells about itself: `fand show` over the control
// socket, the Prometheus snapshot, and systemd's STATUS= line. Read-only.
import type { Choice } from '../dataplane/select.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { MetricsSnapshot } from '../metrics.js';
import type { Plan } from '../plan.js';
import type { KeptFan } from './state.js';
import { nameCounts } from '../dataplane/counter-names.js';

export interface ReloadOutcome {
  readonly time: number; // unix seconds
  readonly ok: boolean;
  readonly trigger: string;
  readonly error?: string;
}

/** The parts of the running daemon that status reads. */
export interface StatusSource {
  readonly plan: Plan;
  readonly dp: Dataplane;
  readonly lastReload: ReloadOutcome | undefined;
  /** Fans no longer configured that fand keeps because containers are attached. */
  readonly retained: readonly KeptFan[];
}

export function metricsSnapshot(s: StatusSource): MetricsSnapshot {
  const h = s.dp.health();
  const counters = s.dp.counters();
  return {
    mode: s.plan.dataplane.mode,
    workersAlive: h.alive,
    workersConfigured: h.configured,
    lastReload: s.lastReload ? { time: s.lastReload.time, ok: s.lastReload.ok } : undefined,
    fans: s.plan.fans.map((f, i) => ({ bridge: f.bridge, overlay: f.overlay, encapsulation: f.encapsulation, perWorker: counters[i]?.perWorker ?? [], total: counters[i]?.total ?? {} })),
  };
}

export function statusLine(choice: Choice, plan: Plan, lastReload?: ReloadOutcome): string {
  const fans = plan.fans.map((f) => `${f.bridge} ${f.slice}${f.encapsulation === 'vxlan' ? ` vxlan ${f.vni}` : ''} mtu ${f.mtu}`).join(', ');
  const failed = lastReload?.ok === false ? ` (last reload failed: ${lastReload.error})` : '';
  return `${choice.mode}${choice.mode === 'userspace' ? ` (${plan.workers} workers)` : ''}: ${fans}${failed}`;
}

/**
 * `fand show --json`: per fan its counters and its drops by reason, in
 * total and per worker, named as counter-names.ts says (the metrics use the
 * same names).
 */
export function show(s: StatusSource): object {
  const counters = s.dp.counters();
  return {
    pid: process.pid,
    dataplane: s.plan.dataplane,
    workers: s.dp.health(),
    lastReload: s.lastReload,
    retained: s.retained,
    fans: s.plan.fans.map((f, i) => ({
      ...f,
      ...nameCounts(counters[i]?.total ?? {}),
      perWorker: (counters[i]?.perWorker ?? []).map(nameCounts),
    })),
  };
}
