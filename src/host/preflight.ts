// Before anything on the host is touched: does the plan clash with what the
// host already has? `fand plan` and the daemon ask the same question, so plan
// approves exactly what run accepts. Pure: the caller reads the host's links
// and routes (checkHost does, through HostNet).
//
// fand never proposes deleting an interface it did not create: the fix for a
// name that is taken is another name.
import type { HostNet, LinkInfo, RouteInfo } from './ip.js';
import type { Resource } from './resources.js';
import type { FanSummary } from '../plan.js';
import { ConfigError, ConfigErrors, locate } from '../config/fanfile.js';

export interface Conflict {
  /** The resource's id (resources.ts). */
  readonly resource: string;
  /** What clashes and the fix, in words; starts with where the name came from when it was given. */
  readonly message: string;
  /** The fan whose configuration it comes from: "file:line" or "command line". */
  readonly source: string | undefined;
}

export interface HostView {
  readonly links: readonly LinkInfo[];
  readonly routes: readonly RouteInfo[];
}

/** The kind `ip -d link` reports for each device kind fand creates. */
const KIND: Partial<Record<Resource['kind'], string>> = { bridge: 'bridge', tun: 'tun', tap: 'tun', 'fan-tunnel': 'ipip' };
const DEVICE: Partial<Record<Resource['kind'], string>> = { tun: 'TUN', tap: 'TAP', 'fan-tunnel': 'fan tunnel' };

function whatItIs(l: LinkInfo): string {
  if (l.name === 'lo') return 'lo is the loopback device';
  return `${l.name} is ${l.kind ? `a ${l.kind} device` : 'a device'} that fand did not create`;
}

/** How the user changes the bridge name of a fan, by where the fan came from. */
function renameBridge(f: FanSummary | undefined): string {
  if (!f || f.source === 'command line') return 'choose another --bridge name';
  return `choose another name with 'bridge NAME' on ${f.source}`;
}

/**
 * Every clash between the plan and the host. `owned`: ids of resources an
 * earlier fand created here (its state file), which fand may change.
 */
export function preflight(
  plan: { readonly fans: readonly FanSummary[]; readonly resources: readonly Resource[] },
  host: HostView,
  owned: ReadonlySet<string> = new Set(),
): Conflict[] {
  const out: Conflict[] = [];
  const names = new Map<string, Resource>();
  for (const r of plan.resources) {
    if (r.kind !== 'bridge' && r.kind !== 'tun' && r.kind !== 'tap' && r.kind !== 'fan-tunnel') continue;
    const fan = plan.fans.find((f) => (r.kind === 'bridge' ? f.bridge === r.name : f.tun === r.name));
    const where = fan?.source && fan.source !== 'command line' ? `${fan.source}: ` : '';
    const add = (message: string) => out.push({ resource: r.id, message: `${where}${message}`, source: fan?.source });
    const other = names.get(r.name);
    if (other && other.kind !== r.kind) {
      add(`${r.kind} ${r.name}: the same name is planned for the ${other.kind} of another fan; ${renameBridge(fan)}`);
      continue;
    }
    names.set(r.name, r);
    const over = r.kind === 'bridge' ? plan.fans.filter((f) => f.iface === r.name).map((f) => f.overlay) : [];
    if (over.length) {
      add(`bridge ${r.name}: ${r.name} is the underlay interface of ${over.join(' and ')}, which fand does not create or change; ${renameBridge(fan)}`);
      continue;
    }
    const l = host.links.find((x) => x.name === r.name);
    if (!l || l.kind === KIND[r.kind]) continue;
    const fix = r.kind === 'bridge'
      ? renameBridge(fan)
      : `fand names the overlay's ${DEVICE[r.kind]} after the overlay, so this fan cannot run here while that device holds the name`;
    add(`${r.kind} ${r.name}: ${whatItIs(l)}, and fand will not take it over; ${fix}`);
  }
  for (const r of plan.resources) {
    if (r.kind !== 'route' || owned.has(r.id)) continue;
    const existing = host.routes.find((x) => x.dst === r.dst);
    // A route through fand's own device (kill -9, or another daemon here) is fand's to replace.
    if (!existing || existing.dev === r.dev) continue;
    const fan = plan.fans.find((f) => f.overlay === r.dst);
    out.push({
      resource: r.id,
      source: fan?.source,
      message: `${fan?.source && fan.source !== 'command line' ? `${fan.source}: ` : ''}route ${r.dst}: the host already routes it `
        + `${existing.gateway ? `via ${existing.gateway} ` : ''}dev ${existing.dev ?? '?'}, and fand did not add that route; `
        + 'choose another overlay, or remove that route if nothing needs it',
    });
  }
  return out;
}

/** The conflicts as one error (a ConfigError per conflict, each with its file:line). */
export class PreflightError extends ConfigErrors {}

/**
 * Reads the host's links and routes and throws PreflightError listing every
 * conflict, before anything is changed. The daemon calls it at start-up (and
 * for a reload's new plan); `fand plan` calls it too.
 */
export async function checkHost(
  plan: { readonly fans: readonly FanSummary[]; readonly resources: readonly Resource[] },
  host: Pick<HostNet, 'links' | 'routes'>,
  owned: ReadonlySet<string> = new Set(),
): Promise<void> {
  const [links, routes] = await Promise.all([host.links(), host.routes()]);
  const conflicts = preflight(plan, { links, routes }, owned);
  if (conflicts.length === 0) return;
  throw new PreflightError(conflicts.map((c) => {
    const [file, line] = locate(c.source ?? '');
    return new ConfigError(c.message, file, line);
  }));
}
