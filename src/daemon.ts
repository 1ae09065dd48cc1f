// The daemon's life: resolve → choose dataplane → check no other daemon runs
// here → repair what a killed predecessor left → ensure host → start the
// dataplane → control socket → READY. On SIGTERM/SIGINT (or any failure
// after the host was touched) everything fand created is removed again.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import type { FanSpec } from './config/fanfile.js';
import { resolveFans } from './fan/resolve.js';
import { formatCidr, formatIpv4 } from './fan/ipv4.js';
import { IpCommand, type HostNet } from './host/ip.js';
import { ensure, teardown, type Created } from './host/ensure.js';
import { chooseDataplane, probeKernel, type Choice, type KernelFacts } from './dataplane/select.js';
import { KernelIpipDataplane } from './dataplane/kernel-ipip/index.js';
import { KernelFanDataplane } from './dataplane/kernel-fan/index.js';
import type { Dataplane, DataplaneMode } from './dataplane/dataplane.js';
import { UserspaceDataplane, watchdogInterval } from './dataplane/userspace/index.js';
import { makePlan, type Plan } from './plan.js';
import { runtimePaths, type RuntimePaths } from './control/paths.js';
import { listenControl, request } from './control/server.js';
import { native } from './native/index.js';
import { startMetrics, type MetricsServer, type MetricsSnapshot } from './metrics.js';
import { DhcpSupervisor } from './dhcp/supervisor.js';
import type { Logger } from './log.js';
import type { ResolvedFan } from './fan/resolved.js';

export interface DaemonOptions {
  readonly specs: readonly FanSpec[];
  readonly dataplane: DataplaneMode | 'auto';
  readonly workers: number;
  readonly mtu?: number;
  readonly runtimeDir?: string;
  readonly checkInnerSource: boolean;
  /** Userspace dataplane: direct sends to resolved next hops (default on; --no-direct-send). */
  readonly directSend?: boolean;
  /** Masquerade traffic leaving the fan (default on; --no-nat). */
  readonly nat?: boolean;
  /** HOST:PORT of the Prometheus endpoint. */
  readonly metrics?: string;
  /** Only look, never load kernel modules (for `fand plan` and `fand integrate`). */
  readonly lookOnly?: boolean;
  readonly log: Logger;
  readonly host?: HostNet;
  /** Reads the configuration again, for SIGHUP; throws on invalid input. */
  readonly reloadSpecs?: () => readonly FanSpec[];
}

interface StateFile {
  readonly pid: number;
  readonly created: Created[];
}

export class AlreadyRunning extends Error {}

/** Builds the dataplane object for a mode (a lookup, not a chain of ifs). */
const DATAPLANES: Record<DataplaneMode, (o: DaemonOptions, k: KernelFacts) => Dataplane> = {
  userspace: (o, k) => new UserspaceDataplane(o.workers, o.checkInnerSource, k.ipip, o.directSend ?? true),
  'kernel-ipip': () => new KernelIpipDataplane(),
  'kernel-fan': () => new KernelFanDataplane(),
};

export async function prepare(opts: DaemonOptions, host: HostNet): Promise<{ fans: ResolvedFan[]; choice: Choice; dp: Dataplane; plan: Plan }> {
  const fans = await resolveFans(opts.specs, host, { mtu: opts.mtu });
  const facts = await probeKernel(!opts.lookOnly);
  const choice = chooseDataplane(opts.dataplane, facts);
  const dp = DATAPLANES[choice.mode](opts, facts);
  return { fans, choice, dp, plan: makePlan(fans, choice, opts.workers, dp, opts.nat ?? true) };
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const log = opts.log;
  const host = opts.host ?? new IpCommand();
  const paths = runtimePaths(opts.runtimeDir);

  let stopRequested = false;
  let shutdown: (() => void) | undefined;
  const onSignal = (sig: string) => {
    log.info({ signal: sig }, `received ${sig}, stopping`);
    stopRequested = true;
    shutdown?.();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  let reloads: Promise<void> = Promise.resolve();
  let reload: (() => Promise<void>) | undefined;
  process.on('SIGHUP', () => {
    if (!reload) { log.warn('SIGHUP before start-up finished: ignored'); return; }
    reloads = reloads.then(reload); // one reload at a time, in order
  });

  // Everything that can be checked without touching the host, first.
  const { fans, choice, dp, plan: firstPlan } = await prepare(opts, host);
  let plan = firstPlan;
  const logFans = (p: Plan) => {
    for (const f of p.fans) {
      log.info({ fan: f }, `fan ${f.overlay} over ${f.underlay} (${f.iface}): slice ${f.slice}, bridge ${f.bridge} ${f.bridgeAddress}, mtu ${f.mtu}`);
    }
  };
  logFans(plan);
  log.info({ dataplane: choice.mode, reason: choice.reason }, `dataplane ${choice.mode}: ${choice.reason}`);

  await refuseIfRunning(paths);
  const previous = await readState(paths.state, log);

  let created: Created[] = [];
  const saveState = () => writeFile(paths.state, JSON.stringify({ pid: process.pid, created } satisfies StateFile), { mode: 0o600 });
  let server: Server | undefined;
  let started = false;
  let lastReload: { time: number; ok: boolean; error?: string } | undefined;
  let metrics: MetricsServer | undefined;
  const dhcp = new DhcpSupervisor(paths, log);

  const cleanup = async () => {
    server?.close();
    await metrics?.close();
    await dhcp.sync([]);
    if (started) await dp.stop();
    const errors = await teardown(host, created, (m) => log.info(m));
    for (const e of errors) log.error(`teardown: ${e}`);
    await rm(paths.state, { force: true });
    await rm(paths.socket, { force: true });
    return errors.length === 0;
  };

  try {
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    // What a killed predecessor created and this configuration no longer wants goes first.
    const wanted = new Set(plan.resources.map((r) => r.id));
    const stale = previous.filter((c) => !wanted.has(c.resource.id));
    if (stale.length) {
      log.warn({ stale: stale.map((c) => c.resource.id) }, 'removing what an earlier run left behind and this configuration does not use');
      for (const e of await teardown(host, stale, (m) => log.info(m))) log.error(`teardown: ${e}`);
    }
    const owned = new Map(previous.filter((c) => wanted.has(c.resource.id)).map((c) => [c.resource.id, c]));
    await ensure(host, plan.resources, {
      owned,
      onCreated: async (c) => { created.push(c); await saveState(); },
      log: (m, f) => log.info(f ?? {}, m),
    });
    if (stopRequested) throw new Error('stopped during start-up');
    await dp.start(fans, log);
    started = true;
    await dhcp.sync(fans);
    if (opts.metrics) {
      metrics = await startMetrics(opts.metrics, { snapshot: () => metricsSnapshot(plan, dp, lastReload) }, log);
      log.info({ metrics: `http://${opts.metrics}/metrics` }, `metrics on http://${opts.metrics}/metrics`);
    }
    const hooks = process.env['FAND_TEST_HOOKS'] === '1';
    server = await listenControl(paths.socket, paths.dir, (req) => {
      if (req.cmd === 'show') return show(plan, dp, lastReload);
      if (hooks && (req.cmd === 'wedge' || req.cmd === 'unwedge') && dp.wedge) { dp.wedge(req.cmd === 'wedge'); return { ok: true }; }
      if (hooks && req.cmd === 'crash-worker' && dp.crashWorker) { dp.crashWorker(0); return { ok: true }; }
      throw new Error(`unknown command ${JSON.stringify(req.cmd)}`);
    });
  } catch (e) {
    log.error({ err: (e as Error).message }, `start-up failed: ${(e as Error).message}`);
    await cleanup();
    throw e;
  }

  // READY only now: the host is set up and the dataplane's loops are turning.
  const sent = safeNotify(log, `READY=1\nSTATUS=${statusLine(choice, plan)}\nMAINPID=${process.pid}`);
  // Kernel dataplanes forward without fand, so the main thread's liveness is
  // what the watchdog can prove; the userspace one sends it from its workers.
  const wdMs = watchdogInterval();
  const wdTimer = wdMs > 0 && !dp.watchdogFromWorkers ? setInterval(() => safeNotify(log, 'WATCHDOG=1'), wdMs) : undefined;
  log.info({ control: paths.socket, notified: sent, watchdogMs: wdMs }, 'fand is up');

  // SIGHUP: the new configuration is validated whole before anything changes;
  // then new fans are set up, the dataplane switches (fans that stay keep
  // forwarding throughout), and the fans that went are torn down.
  reload = async () => {
    safeNotify(log, `RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
    log.info('SIGHUP: reloading the configuration');
    try {
      if (!opts.reloadSpecs) throw new Error('this daemon was started without a way to re-read its configuration');
      const nextFans = await resolveFans(opts.reloadSpecs(), host, { mtu: opts.mtu });
      const next = makePlan(nextFans, choice, opts.workers, dp, opts.nat ?? true);
      const wanted = new Set(next.resources.map((r) => r.id));
      const had = new Map(created.map((c) => [c.resource.id, c]));
      const kept: Created[] = [];
      try {
        await ensure(host, next.resources, {
          owned: had,
          onCreated: async (c) => { kept.push(c); },
          log: (m, f) => log.info(f ?? {}, m),
        });
      } catch (e) {
        // Undo only what this reload added; the running fans stay as they were.
        for (const err of await teardown(host, kept.filter((c) => !had.has(c.resource.id)), (m) => log.info(m))) log.error(`teardown: ${err}`);
        throw e;
      }
      await dp.update(nextFans);
      await dhcp.sync(nextFans);
      const gone = created.filter((c) => !wanted.has(c.resource.id));
      for (const err of await teardown(host, gone, (m) => log.info(m))) log.error(`teardown: ${err}`);
      created = kept;
      await saveState();
      const before = new Set(plan.fans.map((f) => f.bridge));
      const after = new Set(next.fans.map((f) => f.bridge));
      plan = next;
      lastReload = { time: Date.now() / 1000, ok: true };
      log.info({ added: [...after].filter((b) => !before.has(b)), removed: [...before].filter((b) => !after.has(b)) }, 'reload done');
      logFans(plan);
    } catch (e) {
      lastReload = { time: Date.now() / 1000, ok: false, error: (e as Error).message };
      log.error({ err: (e as Error).message }, `reload rejected, the running configuration stays: ${(e as Error).message}`);
    }
    safeNotify(log, `READY=1\nSTATUS=${statusLine(choice, plan)}${lastReload?.ok === false ? ` (last reload failed: ${lastReload.error})` : ''}`);
  };

  // The underlay can change under fand: a DHCP renewal to a new address, an
  // interface that goes away. Every 2 s the configuration is resolved
  // against the host again; a different local underlay address means a
  // different slice, and fand reconfigures as on SIGHUP, loudly, since every
  // container address on the fan changes with it.
  let underlayProblem = '';
  const underlayUp = new Map<string, boolean>();
  let checking = false;
  const underlayWatch = setInterval(() => {
    if (checking || !reload) return;
    checking = true;
    void (async () => {
      try {
        // Link state first: an underlay that is down cuts every fan on it off.
        const links = await host.links();
        for (const iface of new Set(plan.fans.map((f) => f.iface))) {
          const l = links.find((x) => x.name === iface);
          const up = !!l && l.up;
          const was = underlayUp.get(iface) ?? true;
          if (up !== was) {
            if (up) log.warn({ iface }, `underlay ${iface} is up again`);
            else log.error({ iface }, `underlay ${iface} is ${l ? 'down' : 'gone'}: the fans on it cannot reach other hosts until it is back`);
            underlayUp.set(iface, up);
          }
        }
        const now = await resolveFans(opts.reloadSpecs ? opts.reloadSpecs() : opts.specs, host, { mtu: opts.mtu });
        underlayProblem = '';
        const moved = now.filter((f) => {
          const was = plan.fans.find((p) => p.overlay === formatCidr(f.map.overlay));
          return was && was.underlay !== `${formatIpv4(f.localUnderlay)}/${f.map.underlay.prefix}`;
        });
        if (moved.length && reload) {
          for (const f of moved) {
            const was = plan.fans.find((p) => p.overlay === formatCidr(f.map.overlay))!;
            log.error({ fan: was.bridge, from: was.underlay, to: `${formatIpv4(f.localUnderlay)}/${f.map.underlay.prefix}`, iface: f.iface },
              `underlay address changed on ${f.iface}: ${was.underlay} -> ${formatIpv4(f.localUnderlay)}; slice ${was.slice} -> ${formatCidr({ network: f.slice.network, prefix: f.slice.prefix })}: `
              + 'every container address on this fan changes; reconfiguring');
          }
          reloads = reloads.then(reload);
          await reloads;
        }
      } catch (e) {
        const msg = (e as Error).message;
        if (msg !== underlayProblem) log.error({ err: msg }, `underlay check: ${msg}; keeping the running configuration`);
        underlayProblem = msg;
      } finally {
        checking = false;
      }
    })();
  }, 2000);
  underlayWatch.unref();

  await new Promise<void>((resolve) => {
    shutdown = resolve;
    if (stopRequested) resolve();
  });
  clearInterval(wdTimer);
  clearInterval(underlayWatch);
  reload = undefined;
  await reloads;
  safeNotify(log, 'STOPPING=1');
  const clean = await cleanup();
  log.info(clean ? 'fand stopped; everything it created is removed' : 'fand stopped with teardown errors (see above)');
  return clean ? 0 : 1;
}

function metricsSnapshot(plan: Plan, dp: Dataplane, lastReload: { time: number; ok: boolean } | undefined): MetricsSnapshot {
  const h = dp.health();
  const counters = dp.counters();
  return {
    mode: plan.dataplane.mode,
    workersAlive: h.alive,
    workersConfigured: h.configured,
    lastReload: lastReload ? { time: lastReload.time, ok: lastReload.ok } : undefined,
    fans: plan.fans.map((f, i) => ({ bridge: f.bridge, overlay: f.overlay, perWorker: counters[i]?.perWorker ?? [], total: counters[i]?.total ?? {} })),
  };
}

function statusLine(choice: Choice, plan: Plan): string {
  const fans = plan.fans.map((f) => `${f.bridge} ${f.slice} mtu ${f.mtu}`).join(', ');
  return `${choice.mode}${choice.mode === 'userspace' ? ` (${plan.workers} workers)` : ''}: ${fans}`;
}

function show(plan: Plan, dp: Dataplane, lastReload: object | undefined): object {
  return {
    pid: process.pid,
    dataplane: plan.dataplane,
    workers: dp.health(),
    lastReload,
    fans: plan.fans.map((f, i) => ({ ...f, counters: dp.counters()[i]?.total ?? {}, perWorker: dp.counters()[i]?.perWorker ?? [] })),
  };
}

async function refuseIfRunning(paths: RuntimePaths): Promise<void> {
  try {
    const r = (await request(paths.socket, { cmd: 'show' }, 1000)) as { pid?: number };
    throw new AlreadyRunning(`fand is already running in this network namespace (pid ${r.pid ?? '?'}, control socket ${paths.socket})`);
  } catch (e) {
    if (e instanceof AlreadyRunning) throw e;
    // nobody answers: any socket file is stale
  }
}

async function readState(path: string, log: Logger): Promise<Created[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  try {
    const s = JSON.parse(text) as StateFile;
    log.warn({ previousPid: s.pid, resources: s.created.length }, `found the state of an earlier fand (pid ${s.pid}) that did not stop cleanly: repairing`);
    return s.created;
  } catch {
    log.warn(`ignoring unreadable state file ${path}`);
    return [];
  }
}

function safeNotify(log: Logger, state: string): boolean {
  try {
    return native.sdNotify(state);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'sd_notify failed');
    return false;
  }
}
