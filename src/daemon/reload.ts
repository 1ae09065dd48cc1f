// Reload (SIGHUP, or the underlay moving the fans to another slice): the new
// configuration is resolved and planned whole before anything changes; then
// new resources are ensured, the dataplane switches (fans that stay keep
// forwarding throughout), DHCP follows, and what is no longer wanted is
// retired (fans with containers attached stay, retire.ts). A configuration
// that cannot be applied is rejected and the running one stays.
import { ensure, teardown, type Created } from '../host/ensure.js';
import type { FanSpec } from '../config/fanfile.js';
import type { FanSummary } from '../plan.js';
import type { Daemon } from './context.js';
import { replan } from './prepare.js';
import { checkHost } from '../host/preflight.js';
import { bridgesOf, describeKept, planRetirement } from './retire.js';
import { notify, reloadingMessage } from './notify.js';
import { statusLine } from './status.js';

/** Fans added, removed and changed between two plans, by bridge name. */
export function fanDiff(before: readonly FanSummary[], after: readonly FanSummary[]): { added: string[]; removed: string[]; changed: string[] } {
  const b = new Map(before.map((f) => [f.bridge, f]));
  const a = new Map(after.map((f) => [f.bridge, f]));
  return {
    added: [...a.keys()].filter((k) => !b.has(k)),
    removed: [...b.keys()].filter((k) => !a.has(k)),
    changed: [...a.keys()].filter((k) => b.has(k) && JSON.stringify(b.get(k)) !== JSON.stringify(a.get(k))),
  };
}

/**
 * @param trigger what caused it, for the logs ("SIGHUP", "underlay address changed on eth0")
 * @param specs the fans to serve; default: the configuration read again (SIGHUP)
 */
export async function reload(d: Daemon, trigger: string, specs?: readonly FanSpec[]): Promise<void> {
  notify(d.log, reloadingMessage());
  d.log.info({ trigger }, `reloading (${trigger})`);
  try {
    await apply(d, trigger, specs ?? readSpecs(d));
    d.lastReload = { time: Date.now() / 1000, ok: true, trigger };
  } catch (e) {
    const error = (e as Error).message;
    d.lastReload = { time: Date.now() / 1000, ok: false, trigger, error };
    d.log.error({ err: error, trigger }, `reload rejected, the running configuration stays: ${error}`);
  }
  notify(d.log, `READY=1\nSTATUS=${statusLine(d.choice, d.plan, d.lastReload)}`);
}

function readSpecs(d: Daemon): readonly FanSpec[] {
  if (!d.opts.reloadSpecs) throw new Error('this daemon was started without a configuration to read again (fans given by a test)');
  return d.opts.reloadSpecs();
}

async function apply(d: Daemon, trigger: string, specs: readonly FanSpec[]): Promise<void> {
  const { fans, plan: next } = await replan(d.opts, d.host, d.choice, d.dp, specs);
  const diff = fanDiff(d.plan.fans, next.fans);
  d.log.debug({ ...diff, trigger }, `reload plan: added [${diff.added.join(', ')}], removed [${diff.removed.join(', ')}], changed [${diff.changed.join(', ')}]`);
  const had = new Map(d.created.map((c) => [c.resource.id, c]));
  // The same conflicts `fand plan` and start-up refuse, before anything changes.
  await checkHost(next, d.host, new Set(had.keys()));
  const now: Created[] = [];
  try {
    await ensure(d.host, next.resources, { owned: had, onCreated: (c) => { now.push(c); }, ...d.ensureLog });
  } catch (e) {
    // Undo only what this reload added; the running fans stay as they were.
    for (const err of await teardown(d.host, now.filter((c) => !had.has(c.resource.id)), (m) => d.log.info(m))) d.log.error(`teardown: ${err}`);
    throw e;
  }
  await d.dp.update(fans);
  await d.dhcp.sync(fans);
  const wanted = new Set(next.resources.map((r) => r.id));
  const going = d.created.filter((c) => !wanted.has(c.resource.id));
  const r = await planRetirement(d.host, going, d.created, false);
  for (const err of await teardown(d.host, r.remove, (m) => d.log.info(m))) d.log.error(`teardown: ${err}`);
  await d.dhcp.forget(bridgesOf(r.remove));
  d.created = [...r.retain, ...now];
  d.retained = mergeKept(d.retained.filter((k) => !next.fans.some((f) => f.bridge === k.bridge)), r.kept);
  await d.saveState();
  d.specs = specs;
  d.fans = fans;
  d.plan = next;
  d.log.info({ ...diff, trigger }, `reload done: ${diff.added.length} fans added, ${diff.removed.length} removed, ${diff.changed.length} changed`);
  if (r.kept.length) {
    d.log.warn({ retained: r.kept }, `no longer configured, but containers are attached, so left in place: ${describeKept(r.kept)}`);
  }
  if (diff.added.length || diff.changed.length) d.logFans();
}

function mergeKept<T extends { bridge: string }>(a: readonly T[], b: readonly T[]): T[] {
  const m = new Map(a.map((k) => [k.bridge, k]));
  for (const k of b) m.set(k.bridge, k);
  return [...m.values()];
}
