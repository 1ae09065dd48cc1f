// What fand removes, and what it leaves for the containers.
//
// One rule everywhere a fan goes away (a clean stop, a reload that drops a
// fan, an underlay that moves the fan to another slice, a start-up that finds
// a fan the configuration no longer has): **a fan whose bridge has ports
// keeps its host configuration** — bridge, address, routes, devices and the
// shared sysctl/NAT they rely on — and fand says which ports held it. Only
// `fand down --force` removes a bridge with ports. This is what operators
// know from their other daemons: systemd-networkd leaves links it configured,
// flannel leaves its devices, `fanctl down` refuses while a bridge has ports.
// A restart then adopts what was kept, and no container is touched.
//
// Why the whole fan and not just the bridge: without the overlay route the
// containers' traffic to other hosts would follow the default route out of
// the host (leaking overlay addresses); with it, it goes to the fan device,
// where the kernel modes keep forwarding and the userspace TUN drops it until
// fand is back. ip_forward stays on, because a container engine that starts
// while it is 0 sets the FORWARD policy to DROP (dockerd does).
import type { Created } from '../host/ensure.js';
import type { HostNet, LinkInfo } from '../host/ip.js';
import type { Resource } from '../host/resources.js';
import type { KeptFan } from './state.js';

/** The fan (bridge name) a resource belongs to, or undefined for resources every fan shares. */
export function fanOf(r: Resource): string | undefined {
  if (r.fan) return r.fan;
  // State files written before resources carried `fan`.
  if (r.kind === 'bridge') return r.name;
  if (r.kind === 'address') return r.dev;
  return undefined;
}

/** Names of the devices fand itself created (they are never "ports with containers"). */
function ownDevices(created: readonly Created[]): Set<string> {
  const out = new Set<string>();
  for (const { resource: r } of created) if ('name' in r && typeof r.name === 'string') out.add(r.name);
  return out;
}

/** The ports of every fan bridge among `created`: devices enslaved to it that fand did not create. */
export function bridgePorts(links: readonly LinkInfo[], created: readonly Created[]): Map<string, string[]> {
  const own = ownDevices(created);
  const bridges = new Set(created.map((c) => c.resource).filter((r) => r.kind === 'bridge').map((r) => (r as { name: string }).name));
  const out = new Map<string, string[]>();
  for (const b of bridges) out.set(b, links.filter((l) => l.master === b && !own.has(l.name)).map((l) => l.name).sort());
  return out;
}

export interface Retirement {
  /** To remove now (in the order given; teardown reverses it). */
  readonly remove: readonly Created[];
  /** Still fand's, left in place. */
  readonly retain: readonly Created[];
  /** Fans retained because their bridge has ports. */
  readonly kept: readonly KeptFan[];
}

/**
 * Splits `going` (resources fand is about to stop needing) into what goes and
 * what stays. `force` removes everything. `stillUsed` tells whether a shared
 * resource is still needed by fans that remain (reload); on a stop nothing
 * remains but the kept fans.
 */
export function partition(going: readonly Created[], ports: ReadonlyMap<string, readonly string[]>, force: boolean, sharedStillUsed = false): Retirement {
  if (force) return { remove: going, retain: [], kept: [] };
  const keptFans = new Set<string>();
  for (const c of going) {
    const f = fanOf(c.resource);
    if (f && (ports.get(f)?.length ?? 0) > 0) keptFans.add(f);
  }
  const keepShared = sharedStillUsed || keptFans.size > 0;
  const stays = (c: Created) => {
    const f = fanOf(c.resource);
    return f === undefined ? keepShared : keptFans.has(f);
  };
  return {
    remove: going.filter((c) => !stays(c)),
    retain: going.filter(stays),
    kept: [...keptFans].sort().map((bridge) => ({ bridge, ports: ports.get(bridge) ?? [] })),
  };
}

/** Reads the bridges' ports from the host and partitions. */
export async function planRetirement(host: HostNet, going: readonly Created[], all: readonly Created[], force: boolean, sharedStillUsed = false): Promise<Retirement> {
  const ports = force ? new Map<string, string[]>() : bridgePorts(await host.links(), all);
  return partition(going, ports, force, sharedStillUsed);
}

/** The bridges among resources (those of fans going away, when given a Retirement's `remove`). */
export function bridgesOf(created: readonly Created[]): string[] {
  return created.map((c) => c.resource).filter((r) => r.kind === 'bridge').map((r) => (r as { name: string }).name);
}

export function describeKept(kept: readonly KeptFan[]): string {
  return kept.map((k) => `${k.bridge} (ports: ${k.ports.join(', ')})`).join('; ');
}
