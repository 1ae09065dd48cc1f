// Watching the host while fand runs, driven by rtnetlink events (issue 15;
// host/netlink/events.ts), never by a timer that starts a process:
// - the underlay interface going down, away, or up again: logged (the fans
//   on it cannot reach other hosts meanwhile);
// - its address changing (a DHCP renewal): a different local underlay
//   address is a different slice, so the fans move, as a reload would move
//   them, loudly, since every container address on the fan changes with it;
// - fand's own bridge, its address or its overlay route deleted by someone
//   else: put back, with a log line saying what was missing, and the ports
//   (containers) the bridge had are attached to it again; kernel-ipip's
//   routes to remote slices (protocol 250) likewise, only those missing.
// The events of one wake-up come as one batch and the work they call for is
// coalesced (SETTLE_MS): a renewal is a deletion then an addition, and one
// `ip link del` of a bridge also deletes its address and route. A full check
// every RESYNC_MS is the safety net, and runs at once when events were lost.
// The running configuration (d.specs) is resolved again, never the file: an
// edit to /etc/network/fan is applied on SIGHUP only.
import { resolveFans } from '../fan/resolve.js';
import { formatCidr, formatIpv4 } from '../fan/ipv4.js';
import type { ResolvedFan } from '../fan/resolved.js';
import { ensure, routeSpec, type Created } from '../host/ensure.js';
import { FAND_ROUTE_PROTO, missingSliceHosts, sliceDst, sliceRouteCommandsFor } from '../dataplane/kernel-ipip/routes.js';
import type { Resource } from '../host/resources.js';
import type { HostEvent, HostEventKind, HostEvents } from '../host/netlink/events.js';
import { RT_TABLE_MAIN } from '../host/netlink/codec.js';
import { routeDst } from '../host/ip.js';
import type { Daemon } from './context.js';
import { reload } from './reload.js';

/** Events within this long of each other are handled together. */
const SETTLE_MS = 50;
/** The safety net: everything checked again this often even if no event came. */
export const RESYNC_MS = 5 * 60_000;

/** Resource kinds put back when someone deletes them: the bridge, its address, the overlay route. */
const REPAIRED = new Set<Resource['kind']>(['bridge', 'address', 'route']);

/** Starts watching; returns the function that stops it. */
export function watchUnderlay(d: Daemon, events: HostEvents): () => void {
  const w = new Watcher(d);
  // kernel-ipip's slice routes hang on nexthop objects: deleting one removes its route without a route event.
  const kinds: HostEventKind[] = d.choice.mode === 'kernel-ipip' ? ['link', 'address', 'route', 'nexthop'] : ['link', 'address', 'route'];
  const unsubscribe = events.subscribe(kinds, (batch) => w.onEvents(batch));
  const timer = setInterval(() => w.schedule('periodic check', true), RESYNC_MS).unref();
  // What may have changed between start-up's reads and the subscription.
  w.schedule('start', true);
  return () => { unsubscribe(); clearInterval(timer); w.stop(); };
}

class Watcher {
  private problem = '';
  private readonly linkUp = new Map<string, boolean>();
  /** Ports last seen on one of fand's bridges (port name -> bridge name): put back if the bridge is recreated. */
  private readonly portOf = new Map<string, string>();
  private pending: { underlay: boolean; repair: boolean; why: Set<string> } = { underlay: false, repair: false, why: new Set() };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly d: Daemon) {}

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private underlays(): Set<string> {
    return new Set(this.d.plan.fans.map((f) => f.iface));
  }

  private bridges(): Set<string> {
    return new Set(this.d.plan.fans.map((f) => f.bridge));
  }

  onEvents(batch: readonly HostEvent[]): void {
    const underlays = this.underlays();
    const bridges = this.bridges();
    for (const e of batch) {
      switch (e.kind) {
        case 'overrun':
          this.schedule('events were lost', true);
          break;
        case 'link': {
          const l = e.link;
          if (underlays.has(l.name)) this.linkState(l.name, e.op === 'del' ? 'gone' : l.up ? 'up' : 'down');
          if (bridges.has(l.name) && e.op === 'del') {
            this.d.log.debug({ bridge: l.name }, `netlink: bridge ${l.name} deleted`);
            this.schedule(`bridge ${l.name} deleted`, false, true);
          }
          this.trackPort(e);
          break;
        }
        case 'address':
          this.d.log.debug({ index: e.address.index, address: formatIpv4(e.address.address), op: e.op }, `netlink: address ${formatIpv4(e.address.address)}/${e.address.prefix} ${e.op === 'new' ? 'added to' : 'removed from'} interface ${e.address.label ?? e.address.index}`);
          if (e.address.label !== undefined && underlays.has(e.address.label.split(':')[0]!)) this.schedule(`address ${e.op === 'new' ? 'added to' : 'removed from'} ${e.address.label}`, true);
          else if (e.op === 'del' && this.ours('address', (r) => r.kind === 'address' && r.cidr === `${formatIpv4(e.address.address)}/${e.address.prefix}`)) this.schedule(`address ${formatIpv4(e.address.address)}/${e.address.prefix} removed`, false, true);
          break;
        case 'route': {
          const r = e.route;
          if (r.table !== RT_TABLE_MAIN) break;
          const dst = routeDst(r.dst, r.dstLen);
          if (dst === 'default') this.schedule(`default route ${e.op === 'new' ? 'changed' : 'removed'}`, true);
          else if (e.op === 'del' && this.ours('route', (x) => x.kind === 'route' && x.dst === dst)) this.schedule(`route ${dst} removed`, false, true);
          else if (e.op === 'del' && r.protocol === FAND_ROUTE_PROTO && this.ours('slice-routes', () => true)) this.schedule(`slice route ${dst} removed`, false, true);
          break;
        }
        case 'nexthop':
          if (e.op === 'del' && e.nexthop.protocol === FAND_ROUTE_PROTO && this.ours('slice-routes', () => true)) this.schedule(`nexthop ${e.nexthop.id} removed`, false, true);
          break;
        default:
          break;
      }
    }
  }

  private ours(kind: Resource['kind'], match: (r: Resource) => boolean): boolean {
    return this.d.plan.resources.some((r) => r.kind === kind && match(r));
  }

  private trackPort(e: Extract<HostEvent, { kind: 'link' }>): void {
    const was = this.portOf.get(e.link.name);
    if (e.op === 'del') {
      if (was) this.d.log.debug({ port: e.link.name, bridge: was }, `netlink: port ${e.link.name} of ${was} deleted`);
      this.portOf.delete(e.link.name);
      return;
    }
    // A port that leaves stays remembered: its bridge may be the one being deleted.
    if (e.link.master === 0) {
      if (was && !this.left.has(e.link.name)) this.d.log.debug({ port: e.link.name, bridge: was }, `netlink: port ${e.link.name} left ${was}`);
      if (was) this.left.add(e.link.name);
      return;
    }
    const bridge = [...this.bridges()].find((b) => this.bridgeIndex.get(b) === e.link.master);
    // A master not known yet (a bridge of fand's read before this event?): read the links again.
    if (!bridge && ![...this.bridgeIndex.values()].includes(e.link.master) && !this.otherMasters.has(e.link.master)) this.schedule('a port joined an unknown master', false, true);
    if (bridge && (was !== bridge || this.left.has(e.link.name))) this.d.log.debug({ port: e.link.name, bridge }, `netlink: port ${e.link.name} joined ${bridge}`);
    this.left.delete(e.link.name);
    if (bridge) this.portOf.set(e.link.name, bridge);
    else this.portOf.delete(e.link.name);
  }

  /** Ports that left their bridge (and may be attached again if the bridge is recreated). */
  private readonly left = new Set<string>();

  /** fand's bridges' interface indexes, as last read. */
  private bridgeIndex = new Map<string, number>();
  /** Masters (bridges, bonds) that are not fand's, as last read. */
  private otherMasters = new Set<number>();

  private linkState(iface: string, state: 'up' | 'down' | 'gone'): void {
    const up = state === 'up';
    if (up === (this.linkUp.get(iface) ?? true)) return;
    if (up) this.d.log.warn({ iface }, `underlay ${iface} is up again`);
    else this.d.log.error({ iface }, `underlay ${iface} is ${state}: the fans on it cannot reach other hosts until it is back`);
    this.linkUp.set(iface, up);
    this.schedule(`underlay ${iface} ${up ? 'up' : 'down'}`, true);
  }

  /** Asks for a check soon; requests within SETTLE_MS, and those during a check, are done together. */
  schedule(why: string, underlay: boolean, repair = false): void {
    if (this.stopped) return;
    this.pending.underlay ||= underlay || why === 'start' || why === 'periodic check' || why === 'events were lost';
    this.pending.repair ||= repair || why === 'start' || why === 'periodic check' || why === 'events were lost';
    this.pending.why.add(why);
    if (this.timer || this.running) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.run(); }, SETTLE_MS);
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    const job = this.pending;
    this.pending = { underlay: false, repair: false, why: new Set() };
    const why = [...job.why].join('; ');
    this.running = (async () => {
      try {
        if (job.repair) await this.d.exclusive(() => this.repair(why));
        if (job.underlay) await this.checkUnderlay(why);
      } catch (e) {
        this.d.log.error({ err: (e as Error).message }, `host check (${why}) failed: ${(e as Error).message}`);
      }
    })();
    await this.running;
    this.running = undefined;
    if (this.pending.why.size > 0 && !this.stopped) this.timer = setTimeout(() => { this.timer = undefined; void this.run(); }, SETTLE_MS);
  }

  private async checkUnderlay(why: string): Promise<void> {
    const d = this.d;
    const links = await d.host.links();
    for (const iface of this.underlays()) {
      const l = links.find((x) => x.name === iface);
      this.linkState(iface, !l ? 'gone' : l.up ? 'up' : 'down');
    }
    let now: ResolvedFan[];
    try {
      now = await resolveFans(d.specs, d.host, { mtu: d.opts.mtu });
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.problem) d.log.error({ err: msg }, `underlay: ${msg}; the fans stay as they are until it is back`);
      this.problem = msg;
      return;
    }
    if (this.problem) d.log.warn('underlay: resolved again; the fans are unchanged');
    this.problem = '';
    const moved = movedFans(d, now);
    d.log.debug({ why, moved: moved.length }, `netlink: underlay checked (${why}): ${moved.length ? 'moved' : 'unchanged'}`);
    if (moved.length === 0) return;
    for (const m of moved) {
      d.log.error({ fan: m.bridge, from: m.from, to: m.to, iface: m.iface },
        `underlay address changed on ${m.iface}: ${m.from} -> ${m.to}; slice ${m.fromSlice} -> ${m.toSlice}: every container address on this fan changes; moving the fan`);
    }
    const ifaces = [...new Set(moved.map((m) => m.iface))].join(', ');
    await d.exclusive(() => reload(d, `underlay address changed on ${ifaces}`, d.specs));
  }

  /**
   * Puts back what someone deleted of fand's bridges, their addresses and
   * overlay routes (the kernel also removes a route whose source address
   * goes, so one `ip link del` of a bridge takes all three); then attaches
   * again the ports the bridge had.
   */
  private async repair(why: string): Promise<void> {
    const d = this.d;
    const [links, addrs, routes] = await Promise.all([d.host.links(), d.host.addresses(), d.host.routes()]);
    this.bridgeIndex = new Map(links.filter((l) => this.bridges().has(l.name)).map((l) => [l.name, l.index]));
    this.otherMasters = new Set(links.filter((l) => l.master && !this.bridges().has(l.master)).map((l) => links.find((m) => m.name === l.master)?.index ?? 0));
    for (const l of links) if (l.master && this.bridges().has(l.master)) { this.portOf.set(l.name, l.master); this.left.delete(l.name); }
    const missing = d.plan.resources.filter((r) => REPAIRED.has(r.kind) && !present(r, links, addrs, routes));
    await this.repairSliceRoutes(routes, why);
    if (missing.length === 0) return;
    d.log.warn({ missing: missing.map((r) => r.id), why }, `${missing.map(describeMissing).join(', ')} deleted (not by fand): putting back`);
    const owned = new Map(d.created.map((c) => [c.resource.id, c]));
    const again: Created[] = [];
    await ensure(d.host, missing, { owned, onCreated: (c) => { again.push(c); }, ...d.ensureLog });
    const byId = new Map(d.created.map((c) => [c.resource.id, c]));
    for (const c of again) byId.set(c.resource.id, c);
    d.created = [...byId.values()];
    await d.saveState();
    // The ports the bridge had, still there and free: attached again.
    const now = await d.host.links();
    this.bridgeIndex = new Map(now.filter((l) => this.bridges().has(l.name)).map((l) => [l.name, l.index]));
    const back: string[][] = [];
    for (const r of missing) {
      if (r.kind !== 'bridge') continue;
      for (const [port, bridge] of this.portOf) {
        const l = now.find((x) => x.name === port);
        if (bridge === r.name && l && !l.master) back.push(['link', 'set', 'dev', port, 'master', bridge, 'up']);
      }
    }
    if (back.length) {
      await d.host.apply(back);
      for (const b of back) this.left.delete(b[3]!);
      d.log.warn({ ports: back.map((b) => b[3]) }, `attached ${back.map((b) => b[3]).join(', ')} to ${[...new Set(back.map((b) => b[5]))].join(', ')} again`);
    }
  }

  /**
   * kernel-ipip: puts back the routes (and nexthops) of remote slices that
   * someone deleted; a route that goes leaves its slice unreachable, or
   * sent to the default route. Only the missing ones are installed again.
   */
  private async repairSliceRoutes(routes: readonly { dst: string }[], why: string): Promise<void> {
    const d = this.d;
    const slices = d.plan.resources.filter((r): r is Extract<Resource, { kind: 'slice-routes' }> => r.kind === 'slice-routes');
    if (slices.length === 0) return;
    const dsts = new Set(routes.map((r) => r.dst));
    for (const r of slices) {
      const spec = routeSpec(r);
      const lost = missingSliceHosts(spec, dsts);
      if (lost.length === 0) continue;
      const shown = lost.slice(0, 3).map((h) => `${sliceDst(spec, h)} via ${formatIpv4(h)}`).join(', ') + (lost.length > 3 ? `, … (${lost.length} in all)` : '');
      d.log.warn({ overlay: r.overlay, dev: r.dev, routes: lost.length, why }, `routes of ${r.overlay} via ${r.dev} deleted (not by fand): ${shown}: putting back`);
      await d.host.apply(sliceRouteCommandsFor(spec, lost));
    }
  }
}

function present(r: Resource, links: readonly { name: string }[], addrs: readonly { name: string; addresses: readonly { address: number; prefix: number }[] }[], routes: readonly { dst: string; dev?: string | undefined }[]): boolean {
  switch (r.kind) {
    case 'bridge': return links.some((l) => l.name === r.name);
    case 'address': return !!addrs.find((a) => a.name === r.dev)?.addresses.some((a) => `${formatIpv4(a.address)}/${a.prefix}` === r.cidr);
    case 'route': return routes.some((x) => x.dst === r.dst && x.dev === r.dev);
    default: return true;
  }
}

function describeMissing(r: Resource): string {
  switch (r.kind) {
    case 'bridge': return `bridge ${r.name}`;
    case 'address': return `address ${r.cidr} of ${r.dev}`;
    case 'route': return `route ${r.dst} dev ${r.dev}`;
    default: return r.id;
  }
}

interface Move { bridge: string; iface: string; from: string; to: string; fromSlice: string; toSlice: string }

function movedFans(d: Daemon, now: readonly ResolvedFan[]): Move[] {
  const out: Move[] = [];
  for (const f of now) {
    const was = d.plan.fans.find((p) => p.overlay === formatCidr(f.map.overlay));
    const to = `${formatIpv4(f.localUnderlay)}/${f.map.underlay.prefix}`;
    if (!was || was.underlay === to) continue;
    out.push({ bridge: was.bridge, iface: f.iface, from: was.underlay, to, fromSlice: was.slice, toSlice: formatCidr({ network: f.slice.network, prefix: f.slice.prefix }) });
  }
  return out;
}
