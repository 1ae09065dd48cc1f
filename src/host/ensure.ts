// Idempotent host setup. `ensure` makes the host match a list of resources:
// what exists with the right attributes is reused, what exists with wrong
// attributes and belongs to fand is recreated, what holds a name fand needs
// but is of another kind is an error naming it. Every resource fand creates
// is reported through `onCreated` before the next one is touched, so the
// state file always knows what to remove, even after `kill -9`.
//
// One handler per resource kind (ENSURE, TEARDOWN below): adding a kind is
// adding an entry to each table, and the compiler checks none is missing.
import type { HostNet, LinkInfo, RouteInfo } from './ip.js';
import type { Resource } from './resources.js';
import type { InterfaceAddrs } from '../config/underlay.js';
import { formatIpv4 } from '../fan/ipv4.js';
import { makeFanMap, parseNetwork } from '../fan/fanmap.js';
import { parseIpv4 } from '../fan/ipv4.js';
import { fanLinkMessage } from '../dataplane/kernel-fan/netlink.js';
import { ensureFanMap, mappingOf, removeFanMap } from '../dataplane/kernel-fan/maps.js';
import { ensureVxlanFan } from '../dataplane/kernel-fan/vxlan-device.js';
import { sliceRouteCommands, sliceRouteDeleteCommands, type SliceRouteSpec } from '../dataplane/kernel-ipip/routes.js';
import { ensureTcHook, teardownTcHook } from '../dataplane/ebpf/host.js';

export class SetupError extends Error {}

/** What fand created or changed, enough to undo it. Persisted as JSON. */
export interface Created {
  readonly resource: Resource;
  /** For sysctls: the value before fand changed it. */
  readonly previous?: string;
}

export interface EnsureOptions {
  /** Resources fand already owns (from the state file, or the running configuration on reload). */
  readonly owned: ReadonlyMap<string, Created>;
  readonly onCreated: (c: Created) => Promise<void> | void;
  /** What changed on the host, for people (info). */
  readonly log: (msg: string, fields?: object) => void;
  /** What was found already right, and the details (debug). */
  readonly debug?: (msg: string, fields?: object) => void;
}

type Of<K extends Resource['kind']> = Extract<Resource, { kind: K }>;

/** What one ensure run knows about the host; read once, refreshed where a handler changes it. */
class Ctx {
  private routeCache: RouteInfo[] | undefined;
  constructor(
    readonly host: HostNet,
    readonly opts: EnsureOptions,
    public links: LinkInfo[],
    readonly addrs: InterfaceAddrs[],
    private readonly record: (c: Created) => Promise<void>,
  ) {}
  owned(r: Resource): Created | undefined { return this.opts.owned.get(r.id); }
  link(name: string): LinkInfo | undefined { return this.links.find((l) => l.name === name); }
  async routes(): Promise<RouteInfo[]> { return (this.routeCache ??= await this.host.routes()); }
  /** Records a resource as fand's: newly created (fresh), or still fand's from before. */
  created(r: Resource, previous?: string): Promise<void> { return this.record(previous === undefined ? { resource: r } : { resource: r, previous }); }
  /** Keeps the record of something fand already owned and found as it should be. */
  async keep(r: Resource): Promise<void> { const o = this.owned(r); if (o) await this.record({ ...o, resource: r }); }
  debug(msg: string, fields?: object): void { this.opts.debug?.(msg, fields); }
}

const ENSURE: { [K in Resource['kind']]: (c: Ctx, r: Of<K>) => Promise<void> } = {
  async sysctl(c, r) {
    const now = await c.host.readSysctl(r.key);
    if (now === undefined) throw new SetupError(`sysctl ${r.key}: not available on this kernel`);
    if (now !== r.value) {
      await c.host.writeSysctl(r.key, r.value);
      c.opts.log(`set ${r.key}=${r.value} (was ${now})`);
      await c.created(r, c.owned(r)?.previous ?? now);
    } else {
      await c.keep(r); // still ours to restore
    }
  },

  async bridge(c, r) {
    const l = c.link(r.name);
    if (l && l.kind !== 'bridge') throw new SetupError(kindClash(r.name, 'bridge', l));
    if (!l) {
      await c.host.apply([['link', 'add', r.name, ...(r.mac ? ['address', r.mac] : []), 'type', 'bridge']]);
      c.opts.log(`created bridge ${r.name}${r.mac ? ` (address ${r.mac})` : ''}`);
      await c.created(r);
    } else {
      c.debug(`bridge ${r.name} exists${c.owned(r) ? '' : ' (not created by fand: it stays when fand stops)'}`);
      await c.keep(r);
    }
    // A fixed address: see bridgeMacFor (src/fan/fanmap.ts). Setting it also
    // stops the bridge from following its ports' addresses (NET_ADDR_SET).
    // Never on a bridge fand did not create (fanctl's, adopted with `bridge NAME`): its
    // containers know its address as their gateway's, and would lose it until their ARP entries expire.
    const setMac = r.mac && l && c.owned(r) && l.mac !== undefined && l.mac !== r.mac ? ['address', r.mac] : [];
    if (setMac.length) c.opts.log(`bridge ${r.name}: address ${l!.mac} -> ${r.mac}`);
    await c.host.apply([['link', 'set', 'dev', r.name, 'mtu', String(r.mtu), ...setMac, 'up']]);
  },

  async tun(c, r) {
    const l = c.link(r.name);
    if (l && l.kind !== 'tun') throw new SetupError(kindClash(r.name, 'tun', l));
    const right = l?.tun && l.tun.type === 'tun' && l.tun.multiQueue && l.tun.persist && !l.tun.pi && l.tun.vnetHdr === r.vnetHdr;
    if (l && !right) {
      // A TUN with the wrong flags cannot be attached to with the flags the
      // workers ask for (TUNSETIFF fails with EINVAL): recreate it.
      c.opts.log(`recreating tun ${r.name}: its flags are not multi_queue/persist${r.vnetHdr ? '/vnet_hdr' : ''}`);
      await c.host.apply([['link', 'del', 'dev', r.name]]);
    }
    if (!l || !right) {
      await c.host.apply([['tuntap', 'add', 'mode', 'tun', 'multi_queue', ...(r.vnetHdr ? ['vnet_hdr'] : []), 'name', r.name]]);
      c.opts.log(`created tun ${r.name}`);
      await c.created(r);
    } else {
      c.debug(`tun ${r.name} exists with the right flags`);
      await c.keep(r);
    }
    // The overlay is IPv4 only: without IPv6 on the TUN the kernel sends no
    // router solicitations into it for the workers to read and drop.
    if ((await c.host.readSysctl(`net.ipv6.conf.${r.name}.disable_ipv6`)) === '0') {
      await c.host.writeSysctl(`net.ipv6.conf.${r.name}.disable_ipv6`, '1');
    }
    await c.host.apply([['link', 'set', 'dev', r.name, 'mtu', String(r.mtu), 'txqueuelen', String(r.txqueuelen), 'up']]);
    c.links = await c.host.links();
  },

  async tap(c, r) {
    const l = c.link(r.name);
    if (l && l.kind !== 'tun') throw new SetupError(kindClash(r.name, 'tap', l));
    const right = l?.tun && l.tun.type === 'tap' && l.tun.multiQueue && l.tun.persist && !l.tun.pi && l.tun.vnetHdr;
    if (l && !right) {
      // A TAP with the wrong flags cannot be attached to with the flags the
      // workers ask for (TUNSETIFF fails with EINVAL): recreate it.
      c.opts.log(`recreating tap ${r.name}: its flags are not tap/multi_queue/persist/vnet_hdr`);
      await c.host.apply([['link', 'del', 'dev', r.name]]);
    }
    if (!l || !right) {
      await c.host.apply([['tuntap', 'add', 'mode', 'tap', 'multi_queue', 'vnet_hdr', 'name', r.name]]);
      c.opts.log(`created tap ${r.name}`);
      await c.created(r);
    } else {
      c.debug(`tap ${r.name} exists with the right flags`);
      await c.keep(r);
    }
    // A bridge port: the Fan's frames are IPv4 and ARP, and the port has no
    // addresses of its own, so no IPv6 either (nothing for the workers to read and drop).
    if ((await c.host.readSysctl(`net.ipv6.conf.${r.name}.disable_ipv6`)) === '0') {
      await c.host.writeSysctl(`net.ipv6.conf.${r.name}.disable_ipv6`, '1');
    }
    await c.host.apply([['link', 'set', 'dev', r.name, 'master', r.master, 'mtu', String(r.mtu), 'txqueuelen', String(r.txqueuelen), 'up']]);
    c.links = await c.host.links();
  },

  async address(c, r) {
    const has = c.addrs.find((a) => a.name === r.dev)?.addresses.some((a) => `${formatIpv4(a.address)}/${a.prefix}` === r.cidr);
    if (!has) {
      await c.host.apply([['addr', 'add', r.cidr, 'dev', r.dev]]);
      c.opts.log(`added address ${r.cidr} to ${r.dev}`);
      await c.created(r);
    } else {
      c.debug(`${r.dev} has ${r.cidr}`);
      await c.keep(r);
    }
  },

  async 'link-up'(c, r) {
    const l = c.link(r.name);
    if (!l) throw new SetupError(`${r.name}: no such device (it appears when the ipip module is loaded)`);
    // Restored on teardown: fand does not own this device, only its state.
    const previous = c.owned(r)?.previous ?? JSON.stringify({ up: l.up, mtu: l.mtu });
    if (!l.up || l.mtu !== r.mtu) {
      await c.host.apply([['link', 'set', 'dev', r.name, 'mtu', String(r.mtu), 'up']]);
      c.opts.log(`${r.name} up, mtu ${r.mtu} (was ${l.up ? 'up' : 'down'}, mtu ${l.mtu})`);
    }
    await c.created(r, previous);
  },

  async 'slice-routes'(c, r) {
    const lines = sliceRouteCommands(routeSpec(r));
    const t0 = process.hrtime.bigint();
    // Recorded first: if the batch fails half-way, teardown still flushes what it added.
    await c.created(r);
    await c.host.apply(lines);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    c.opts.log(`installed ${r.count} routes and nexthops via ${r.dev} in ${ms.toFixed(0)} ms`, { routes: r.count, ms });
  },

  async 'fan-tunnel'(c, r) {
    const l = c.link(r.name);
    if (l && l.kind !== 'ipip') throw new SetupError(kindClash(r.name, 'ipip fan tunnel', l));
    const msg = fanLinkMessage({
      op: l ? 'change' : 'new', name: r.name, overlay: parseNetwork(r.overlay, 'overlay'), underlay: parseNetwork(r.underlay, 'underlay'),
      underlayDev: c.link(r.dev)?.index, mtu: r.mtu, seq: 1,
    });
    const ack = await c.host.netlink(msg);
    if (ack.errno !== 0) throw new SetupError(`fan tunnel ${r.name} (fan-map ${r.overlay}:${r.underlay}): the kernel refused it: errno ${ack.errno}${ack.message ? ` (${ack.message})` : ''}`);
    c.opts.log(`${l ? 'set the fan map on' : 'created'} ipip fan tunnel ${r.name}: fan-map ${r.overlay}:${r.underlay}`);
    if (!l) await c.created(r);
    else await c.keep(r);
    await c.host.apply([['link', 'set', 'dev', r.name, 'up']]);
  },

  async 'fan-vxlan'(c, r) {
    await ensureVxlanFan(c, r).catch((e: Error) => { throw e instanceof SetupError ? e : new SetupError(e.message); });
    c.links = await c.host.links();
  },

  async 'fan-map'(c, r) {
    const got = await ensureFanMap(c.host, r.dev, mappingOf(r.overlay, r.underlay)).catch((e: Error) => { throw new SetupError(e.message); });
    if (got === 'added') {
      c.opts.log(`fan-map ${r.overlay}:${r.underlay} on ${r.dev} (read back)`);
      await c.created(r);
    } else if (c.owned(r)) {
      c.debug(`fan-map ${r.overlay}:${r.underlay} on ${r.dev} is in place`);
      await c.keep(r);
    } else {
      // Someone else's (fanctl's): used, and left in place on stop.
      c.opts.log(`fan-map ${r.overlay}:${r.underlay} is already on ${r.dev} (not fand's: it stays when fand stops)`);
    }
  },

  async nat(c, r) {
    const n = await c.host.nat();
    if (!n) throw new SetupError('nat: neither nft nor iptables works on this host; install nftables (apt-get install nftables) or run with --no-nat');
    // Recorded first: a half-applied iptables chain is still removed on teardown.
    if (c.owned(r)) await c.keep(r);
    else await c.created(r);
    await n.apply(r.overlays);
    c.opts.log(`nat: ${n.backend} masquerades ${r.overlays.join(', ')} to everything outside the fan`);
  },

  async 'blackhole-rule'(c, r) {
    const has = (await c.host.rules()).some((x) => x.iif === r.iif && x.action === 'blackhole' && x.priority === r.pref);
    if (!has) {
      await c.host.apply([['rule', 'add', 'iif', r.iif, 'blackhole', 'pref', String(r.pref)]]);
      c.opts.log(`rule iif ${r.iif} blackhole pref ${r.pref}`);
      await c.created(r);
    } else {
      await c.keep(r);
    }
  },

  async route(c, r) {
    const existing = (await c.routes()).find((x) => x.dst === r.dst);
    if (existing && existing.dev === r.dev && existing.prefsrc === r.src && !existing.gateway) {
      c.debug(`route ${r.dst} dev ${r.dev} src ${r.src} is in place`);
      await c.keep(r);
      return;
    }
    if (existing && !c.owned(r) && existing.dev !== r.dev) {
      throw new SetupError(`route ${r.dst}: the host already routes it ${existing.gateway ? `via ${existing.gateway} ` : ''}dev ${existing.dev ?? '?'}; remove that route or choose another overlay`);
    }
    await c.host.apply([['route', 'replace', r.dst, 'dev', r.dev, 'src', r.src]]);
    c.opts.log(`route ${r.dst} dev ${r.dev} src ${r.src}`);
    await c.created(r);
  },

  // The ebpf dataplane's hook (src/dataplane/ebpf/host.ts); the dataplane attaches its filter.
  async 'tc-bpf'(c, r) {
    await c.created(r, ensureTcHook(r, c.owned(r)?.previous, (m) => c.opts.log(m)));
  },
};

export async function ensure(host: HostNet, resources: readonly Resource[], opts: EnsureOptions): Promise<Created[]> {
  const created: Created[] = [];
  const ctx = new Ctx(host, opts, await host.links(), await host.addresses(), async (c) => { created.push(c); await opts.onCreated(c); });
  for (const r of resources) await (ENSURE[r.kind] as (c: Ctx, r: Resource) => Promise<void>)(ctx, r);
  return created;
}

/** `ip` errors that mean "already gone": teardown's goal is reached. */
const gone = (re: RegExp) => (e: Error) => { if (!re.test(e.message)) throw e; };

const TEARDOWN: { [K in Resource['kind']]: (host: HostNet, r: Of<K>, c: Created, log: (m: string) => void) => Promise<void> } = {
  async sysctl(host, r, c, log) {
    if (c.previous !== undefined) { await host.writeSysctl(r.key, c.previous); log(`restored ${r.key}=${c.previous}`); }
  },
  async route(host, r, _c, log) {
    await host.apply([['route', 'del', r.dst, 'dev', r.dev]]).catch(gone(/No such process|Cannot find device/));
    log(`removed route ${r.dst}`);
  },
  tun: (host, r, _c, log) => removeLink(host, r.name, 'tun', log),
  tap: (host, r, _c, log) => removeLink(host, r.name, 'tap', log),
  bridge: (host, r, _c, log) => removeLink(host, r.name, 'bridge', log),
  'fan-tunnel': (host, r, _c, log) => removeLink(host, r.name, 'fan-tunnel', log),
  'fan-vxlan': (host, r, _c, log) => removeLink(host, r.name, 'vxlan fan device', log),
  async 'link-up'(host, r, c, log) {
    const p = JSON.parse(c.previous ?? '{}') as { up?: boolean; mtu?: number };
    const args = ['link', 'set', 'dev', r.name];
    if (p.mtu) args.push('mtu', String(p.mtu));
    if (p.up === false) args.push('down');
    await host.apply([args]);
    log(`restored ${r.name} (${p.up ? 'up' : 'down'}, mtu ${p.mtu})`);
  },
  async 'slice-routes'(host, r, _c, log) {
    const t0 = process.hrtime.bigint();
    // -force: lines for routes that are already gone must not stop the rest.
    await host.apply(sliceRouteDeleteCommands(routeSpec(r)), { force: true }).catch(() => undefined);
    log(`removed the routes of ${r.overlay} via ${r.dev} in ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms`);
  },
  async 'fan-map'(host, r, _c, log) {
    log(await removeFanMap(host, r.dev, mappingOf(r.overlay, r.underlay)));
  },
  async nat(host, _r, _c, log) {
    const n = await host.nat();
    if (n) { await n.remove(); log(`nat: removed ${n.backend} rules`); }
  },
  async 'blackhole-rule'(host, r, _c, log) {
    await host.apply([['rule', 'del', 'iif', r.iif, 'blackhole', 'pref', String(r.pref)]]).catch(gone(/No such file or directory/));
    log(`removed rule iif ${r.iif} blackhole`);
  },
  async address(host, r, _c, log) {
    await host.apply([['addr', 'del', r.cidr, 'dev', r.dev]]).catch(gone(/Cannot assign requested address|Cannot find device/));
    log(`removed address ${r.cidr} from ${r.dev}`);
  },
  async 'tc-bpf'(_host, r, c, log) { teardownTcHook(r, c.previous, log); },
};

async function removeLink(host: HostNet, name: string, kind: string, log: (m: string) => void): Promise<void> {
  await host.apply([['link', 'del', 'dev', name]]).catch(gone(/Cannot find device/));
  log(`removed ${kind} ${name}`);
}

/**
 * Removes what fand created, in reverse order. Failures are reported but do
 * not stop the rest: a half-removed setup is worse than a logged error.
 */
export async function teardown(host: HostNet, created: readonly Created[], log: (msg: string, fields?: object) => void): Promise<string[]> {
  const errors: string[] = [];
  for (const c of [...created].reverse()) {
    const r = c.resource;
    try {
      await (TEARDOWN[r.kind] as (h: HostNet, r: Resource, c: Created, l: (m: string) => void) => Promise<void>)(host, r, c, (m) => log(m));
    } catch (e) {
      errors.push(`${r.id}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/** The slice routes a resource stands for, as data (kernel-ipip/routes.ts). */
export function routeSpec(r: Of<'slice-routes'>): SliceRouteSpec {
  const map = makeFanMap(parseNetwork(r.overlay, 'overlay'), parseNetwork(r.underlay, 'underlay'));
  return { map, local: parseIpv4(r.local) ?? 0, dev: r.dev, src: r.src, fanIndex: r.fanIndex };
}

/**
 * A device of another kind holds a name fand needs. fand never suggests
 * deleting it: it did not create it, and it may be the underlay or lo.
 */
function kindClash(name: string, want: string, l: LinkInfo): string {
  return `${want} ${name}: the host already has a ${l.kind ?? 'plain'} device named ${name}, which fand did not create; `
    + `choose another name for the fan's ${want}${want === 'bridge' ? ' (--bridge NAME, or bridge=NAME in the configuration)' : ''}`;
}
