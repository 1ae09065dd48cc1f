// The daemon's life, one phase per module:
//   prepare.ts   resolve the fans, choose the dataplane, plan (no host change)
//   startup.ts   repair/adopt what an earlier fand left, ensure the host,
//                start the dataplane, DHCP, metrics, control socket
//   reload.ts    SIGHUP (and underlay moves): validate whole, then switch
//   watch.ts     the host's changes (rtnetlink events): underlay state and
//                address, fand's bridge and route deleted by someone else
//   shutdown.ts  SIGTERM/SIGINT: stop, remove what no container needs
//   retire.ts    the rule for what stays: fans with containers attached
//   state.ts     the state file that links one run to the next
//   status.ts    show, metrics, STATUS=
// This file only orders them and turns signals into calls.
import { LinuxHost } from '../host/ip.js';
import { hostEvents } from '../host/netlink/events.js';
import { runtimePaths } from '../control/paths.js';
import { watchdogInterval } from '../dataplane/userspace/index.js';
import { Daemon } from './context.js';
import type { DaemonOptions } from './options.js';
import { prepare } from './prepare.js';
import { createdOf, readState, refuseIfRunning } from './state.js';
import { checkHost } from '../host/preflight.js';
import { logPrevious, startUp } from './startup.js';
import { reload } from './reload.js';
import { watchUnderlay } from './watch.js';
import { shutDown, stopMessage } from './shutdown.js';
import { notify } from './notify.js';
import { statusLine } from './status.js';

export type { DaemonOptions } from './options.js';
export { prepare } from './prepare.js';
export { AlreadyRunning } from './state.js';

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const log = opts.log;
  const host = opts.host ?? new LinuxHost();
  const paths = runtimePaths(opts.runtimeDir);

  let stopRequested = false;
  let stop: (() => void) | undefined;
  const onStop = (sig: string) => {
    log.info({ signal: sig }, `received ${sig}, stopping`);
    stopRequested = true;
    stop?.();
  };
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  let d: Daemon | undefined;
  let up = false;
  process.on('SIGHUP', () => {
    if (!d || !up || stopRequested) { log.warn('SIGHUP before start-up finished or during stop: ignored'); return; }
    const daemon = d;
    void daemon.exclusive(() => reload(daemon, 'SIGHUP'));
  });

  // Everything that can be checked without touching the host, first.
  const prepared = await prepare(opts, host);
  d = new Daemon(opts, host, paths, log, prepared);
  d.logFans();
  log.info({ dataplane: d.choice.mode, reason: d.choice.reason, fanEvidence: d.choice.fanEvidence }, `dataplane ${d.choice.mode}: ${d.choice.reason}`);

  await refuseIfRunning(paths);
  const previous = await readState(paths.state);
  logPrevious(d, previous);
  // Conflicts with the host (a bridge name held by another device, a route the host has): refused before anything is touched.
  await checkHost(d.plan, host, new Set(createdOf(previous).map((c) => c.resource.id)));
  try {
    await startUp(d, previous, () => stopRequested);
  } catch (e) {
    log.error({ err: (e as Error).message }, `start-up failed: ${(e as Error).message}`);
    const s = await shutDown(d);
    log.info(stopMessage(s, d.choice.mode));
    throw e;
  }

  // READY only now: the host is set up and the dataplane's loops are turning.
  up = true;
  const sent = notify(log, `READY=1\nSTATUS=${statusLine(d.choice, d.plan)}\nMAINPID=${process.pid}`);
  // Kernel dataplanes forward without fand, so the main thread's liveness is
  // what the watchdog can prove; the userspace one sends it from its workers.
  const wdMs = watchdogInterval();
  const wdTimer = wdMs > 0 && !d.dp.watchdogFromWorkers ? setInterval(() => notify(log, 'WATCHDOG=1'), wdMs) : undefined;
  const unwatch = watchUnderlay(d, opts.events ?? hostEvents());
  log.info({ control: paths.socket, notified: sent, watchdogMs: wdMs }, 'fand is up');

  await new Promise<void>((resolve) => {
    stop = resolve;
    if (stopRequested) resolve();
  });
  clearInterval(wdTimer);
  unwatch();
  await d.settled();
  notify(log, 'STOPPING=1');
  const s = await shutDown(d);
  log.info({ kept: s.kept }, stopMessage(s, d.choice.mode));
  return s.clean ? 0 : 1;
}
