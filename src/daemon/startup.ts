// Start-up, after `prepare`: take over what an earlier fand left (repair
// after kill -9, adopt what a clean stop kept for containers), make the host
// match the plan, start the dataplane, DHCP, metrics and the control socket.
// Nothing here is READY yet: index.ts says so only when this returns.
import { mkdir } from 'node:fs/promises';
import { ensure, teardown } from '../host/ensure.js';
import { listenControl } from '../control/server.js';
import { sweepRuntimeDir } from '../control/sweep.js';
import { startMetrics } from '../metrics.js';
import type { Daemon } from './context.js';
import { createdOf, type PreviousState } from './state.js';
import { bridgesOf, describeKept, fanOf, planRetirement } from './retire.js';
import { metricsSnapshot, show } from './status.js';

/** Says what the state file found means, in words. */
export function logPrevious(d: Daemon, p: PreviousState): void {
  switch (p.kind) {
    case 'none': return;
    case 'unreadable':
      d.log.warn(`ignoring unreadable state file ${p.path}: anything an earlier fand left on the host is not known to this one`);
      return;
    case 'killed':
      d.log.warn({ previousPid: p.pid, resources: p.created.length }, `found the state of an earlier fand (pid ${p.pid}) that did not stop cleanly: repairing`);
      return;
    case 'kept':
      d.log.info({ previousPid: p.pid, stoppedAt: p.at, kept: p.kept }, `adopting what the last fand (pid ${p.pid}, stopped ${p.at}) kept for its containers: ${describeKept(p.kept) || 'nothing'}`);
  }
}

/** What an earlier fand created and this configuration no longer wants goes first (unless containers hold it). */
async function retireStale(d: Daemon, previous: PreviousState): Promise<void> {
  const owned = createdOf(previous);
  const wanted = new Set(d.plan.resources.map((r) => r.id));
  const stale = owned.filter((c) => !wanted.has(c.resource.id));
  if (stale.length === 0) return;
  // A fan that is still configured keeps its containers whatever happens to
  // its old resources: what it no longer uses (another dataplane's TUN, route
  // or tc hooks, after a restart in another mode) goes, or it would stand in
  // the new dataplane's way. Only fans no longer configured are kept for
  // their containers.
  const configured = new Set(d.plan.fans.map((f) => f.bridge));
  const replaced = stale.filter((c) => { const f = fanOf(c.resource); return f !== undefined && configured.has(f); });
  if (replaced.length) {
    d.log.warn({ stale: replaced.map((c) => c.resource.id) }, 'removing what an earlier fand set up for fans this one serves differently');
    for (const e of await teardown(d.host, replaced, (m) => d.log.info(m))) d.log.error(`teardown: ${e}`);
  }
  const r = await planRetirement(d.host, stale.filter((c) => !replaced.includes(c)), owned, false);
  if (r.remove.length) {
    d.log.warn({ stale: r.remove.map((c) => c.resource.id) }, 'removing what an earlier fand created and this configuration does not use');
    for (const e of await teardown(d.host, r.remove, (m) => d.log.info(m))) d.log.error(`teardown: ${e}`);
    await d.dhcp.forget(bridgesOf(r.remove));
  }
  if (r.kept.length) {
    d.created.push(...r.retain);
    d.retained = [...r.kept];
    await d.saveState();
    d.log.warn({ retained: r.kept }, `no longer configured, but containers are attached, so left in place: ${describeKept(r.kept)}; `
      + 'detach them and reload, or stop fand and run `fand down --force`');
  }
}

export async function startUp(d: Daemon, previous: PreviousState, stopRequested: () => boolean): Promise<void> {
  await mkdir(d.paths.dir, { recursive: true, mode: 0o700 });
  await sweepRuntimeDir(d.paths.dir, d.log);
  await retireStale(d, previous);
  const wanted = new Set(d.plan.resources.map((r) => r.id));
  const owned = new Map(createdOf(previous).filter((c) => wanted.has(c.resource.id)).map((c) => [c.resource.id, c]));
  await ensure(d.host, d.plan.resources, {
    owned,
    onCreated: async (c) => { d.created.push(c); await d.saveState(); },
    ...d.ensureLog,
  });
  await d.saveState();
  if (stopRequested()) throw new Error('stopped during start-up');
  await d.dp.start(d.fans, d.log);
  d.dataplaneStarted = true;
  await d.dhcp.sync(d.fans);
  if (d.opts.metrics) {
    d.metrics = await startMetrics(d.opts.metrics, { snapshot: () => metricsSnapshot(d) }, d.log);
  }
  d.server = await listenControl(d.paths.socket, d.paths.dir, (req) => control(d, req.cmd));
}

function control(d: Daemon, cmd: string): unknown {
  if (cmd === 'show') return show(d);
  if (process.env['FAND_TEST_HOOKS'] === '1') {
    if ((cmd === 'wedge' || cmd === 'unwedge') && d.dp.wedge) { d.dp.wedge(cmd === 'wedge'); return { ok: true }; }
    if (cmd === 'crash-worker' && d.dp.crashWorker) { d.dp.crashWorker(0); return { ok: true }; }
  }
  throw new Error(`unknown command ${JSON.stringify(cmd)}`);
}
