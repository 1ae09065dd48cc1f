// Idempotent host setup. `ensure` makes the host match a list of resources:
// what exists with the right attributes is reused, what exists with wrong
// attributes and belongs to fand is recreated, what holds a name fand needs
// but is of another kind is an error naming it. Every resource fand creates
// is reported through `onCreated` before the next one is touched, so the
// state file always knows what to remove, even after `kill -9`.
import type { HostNet, LinkInfo, RouteInfo } from './ip.js';
import type { Resource } from './resources.js';
import { formatIpv4 } from '../fan/ipv4.js';
import { makeFanMap, parseNetwork } from '../fan/fanmap.js';
import { parseIpv4 } from '../fan/ipv4.js';
import { fanLinkMessage } from '../dataplane/kernel-fan/netlink.js';
import { sliceRouteCommands, sliceRouteDeleteCommands, type SliceRouteSpec } from '../dataplane/kernel-ipip/routes.js';

export class SetupError extends Error {}

/** What fand created or changed, enough to undo it. Persisted as JSON. */
export interface Created {
  readonly resource: Resource;
  /** For sysctls: the value before fand changed it. */
  readonly previous?: string;
}

export interface EnsureOptions {
  /** Resources a previous run of fand created (from its state file): fand owns them. */
  readonly owned: ReadonlyMap<string, Created>;
  readonly onCreated: (c: Created) => Promise<void> | void;
  readonly log: (msg: string, fields?: object) => void;
}

export async function ensure(host: HostNet, resources: readonly Resource[], opts: EnsureOptions): Promise<Created[]> {
  const created: Created[] = [];
  const record = async (c: Created) => { created.push(c); await opts.onCreated(c); };
  let links = await host.links();
  let routes: RouteInfo[] | undefined;
  const addrs = await host.addresses();

  for (const r of resources) {
    const owned = opts.owned.get(r.id);
    switch (r.kind) {
      case 'sysctl': {
        const now = await host.readSysctl(r.key);
        if (now === undefined) throw new SetupError(`sysctl ${r.key}: not available on this kernel`);
        if (now !== r.value) {
          await host.writeSysctl(r.key, r.value);
          opts.log(`set ${r.key}=${r.value} (was ${now})`);
          await record({ resource: r, previous: owned?.previous ?? now });
        } else if (owned) {
          await record(owned); // still ours to restore
        }
        break;
      }
      case 'bridge': {
        const l = links.find((x) => x.name === r.name);
        if (l && l.kind !== 'bridge') throw new SetupError(kindClash(r.name, 'bridge', l));
        if (!l) {
          await host.apply([['link', 'add', r.name, 'type', 'bridge']]);
          opts.log(`created bridge ${r.name}`);
          await record({ resource: r });
        } else {
          opts.log(`reusing bridge ${r.name}${owned ? ' (left by an earlier run)' : ''}`);
          if (owned) await record(owned);
        }
        await host.apply([['link', 'set', 'dev', r.name, 'mtu', String(r.mtu), 'up']]);
        break;
      }
      case 'tun': {
        const l = links.find((x) => x.name === r.name);
        if (l && l.kind !== 'tun') throw new SetupError(kindClash(r.name, 'tun', l));
        const right = l?.tun && l.tun.type === 'tun' && l.tun.multiQueue && l.tun.persist && !l.tun.pi && l.tun.vnetHdr === r.vnetHdr;
        if (l && !right) {
          // A TUN with the wrong flags cannot be attached to with the flags the
          // workers ask for (TUNSETIFF fails with EINVAL): recreate it.
          opts.log(`recreating tun ${r.name}: its flags are not multi_queue/persist${r.vnetHdr ? '/vnet_hdr' : ''}`);
          await host.apply([['link', 'del', 'dev', r.name]]);
        }
        if (!l || !right) {
          await host.apply([['tuntap', 'add', 'mode', 'tun', 'multi_queue', ...(r.vnetHdr ? ['vnet_hdr'] : []), 'name', r.name]]);
          opts.log(`created tun ${r.name}`);
          await record({ resource: r });
        } else {
          opts.log(`reusing tun ${r.name}${owned ? ' (left by an earlier run)' : ''}`);
          if (owned) await record(owned);
        }
        // The overlay is IPv4 only: without IPv6 on the TUN the kernel sends no
        // router solicitations into it for the workers to read and drop.
        if ((await host.readSysctl(`net.ipv6.conf.${r.name}.disable_ipv6`)) === '0') {
          await host.writeSysctl(`net.ipv6.conf.${r.name}.disable_ipv6`, '1');
        }
        await host.apply([['link', 'set', 'dev', r.name, 'mtu', String(r.mtu), 'txqueuelen', String(r.txqueuelen), 'up']]);
        links = await host.links();
        break;
      }
      case 'address': {
        const has = addrs.find((a) => a.name === r.dev)?.addresses.some((a) => cidrText(a) === r.cidr);
        if (!has) {
          await host.apply([['addr', 'add', r.cidr, 'dev', r.dev]]);
          opts.log(`added address ${r.cidr} to ${r.dev}`);
          await record({ resource: r });
        } else if (owned) {
          await record(owned);
        }
        break;
      }
      case 'link-up': {
        const l = links.find((x) => x.name === r.name);
        if (!l) throw new SetupError(`${r.name}: no such device (it appears when the ipip module is loaded)`);
        // Restored on teardown: fand does not own this device, only its state.
        const previous = owned?.previous ?? JSON.stringify({ up: l.up, mtu: l.mtu });
        if (!l.up || l.mtu !== r.mtu) {
          await host.apply([['link', 'set', 'dev', r.name, 'mtu', String(r.mtu), 'up']]);
          opts.log(`${r.name} up, mtu ${r.mtu} (was ${l.up ? 'up' : 'down'}, mtu ${l.mtu})`);
        }
        await record({ resource: r, previous });
        break;
      }
      case 'slice-routes': {
        const lines = sliceRouteCommands(routeSpec(r));
        const t0 = process.hrtime.bigint();
        // Recorded first: if the batch fails half-way, teardown still flushes what it added.
        await record({ resource: r });
        await host.apply(lines);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        opts.log(`installed ${r.count} routes and nexthops via ${r.dev} in ${ms.toFixed(0)} ms`, { routes: r.count, ms });
        break;
      }
      case 'fan-tunnel': {
        const l = links.find((x) => x.name === r.name);
        if (l && l.kind !== 'ipip') throw new SetupError(kindClash(r.name, 'ipip fan tunnel', l));
        const dev = links.find((x) => x.name === r.dev);
        const msg = fanLinkMessage({
          op: l ? 'change' : 'new', name: r.name, overlay: parseNetwork(r.overlay, 'overlay'), underlay: parseNetwork(r.underlay, 'underlay'),
          underlayDev: dev?.index, mtu: r.mtu, seq: 1,
        });
        const ack = await host.netlink(msg);
        if (ack.errno !== 0) throw new SetupError(`fan tunnel ${r.name} (fan-map ${r.overlay}:${r.underlay}): the kernel refused it: errno ${ack.errno}${ack.message ? ` (${ack.message})` : ''}`);
        opts.log(`${l ? 'set the fan map on' : 'created'} ipip fan tunnel ${r.name}: fan-map ${r.overlay}:${r.underlay}`);
        if (!l || owned) await record(owned ?? { resource: r });
        await host.apply([['link', 'set', 'dev', r.name, 'up']]);
        break;
      }
      case 'nat': {
        const n = await host.nat();
        if (!n) throw new SetupError('nat: neither nft nor iptables works on this host; install nftables (apt-get install nftables) or run with --no-nat');
        // Recorded first: a half-applied iptables chain is still removed on teardown.
        await record(owned ?? { resource: r });
        await n.apply(r.overlays);
        opts.log(`nat: ${n.backend} masquerades ${r.overlays.join(', ')} to everything outside the fan`);
        break;
      }
      case 'blackhole-rule': {
        const rules = await host.rules();
        const has = rules.some((x) => x.iif === r.iif && x.action === 'blackhole' && x.priority === r.pref);
        if (!has) {
          await host.apply([['rule', 'add', 'iif', r.iif, 'blackhole', 'pref', String(r.pref)]]);
          opts.log(`rule iif ${r.iif} blackhole pref ${r.pref}`);
          await record({ resource: r });
        } else if (owned) {
          await record(owned);
        }
        break;
      }
      case 'route': {
        routes ??= await host.routes();
        const existing = routes.find((x) => x.dst === r.dst);
        if (existing && existing.dev === r.dev && existing.prefsrc === r.src && !existing.gateway) {
          if (owned) await record(owned);
          break;
        }
        if (existing && !owned && existing.dev !== r.dev) {
          throw new SetupError(`route ${r.dst}: the host already routes it ${existing.gateway ? `via ${existing.gateway} ` : ''}dev ${existing.dev ?? '?'}; remove that route or choose another overlay`);
        }
        await host.apply([['route', 'replace', r.dst, 'dev', r.dev, 'src', r.src]]);
        opts.log(`route ${r.dst} dev ${r.dev} src ${r.src}`);
        await record({ resource: r });
        break;
      }
    }
  }
  return created;
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
      switch (r.kind) {
        case 'sysctl':
          if (c.previous !== undefined) { await host.writeSysctl(r.key, c.previous); log(`restored ${r.key}=${c.previous}`); }
          break;
        case 'route':
          await host.apply([['route', 'del', r.dst, 'dev', r.dev]]).catch((e: Error) => {
            if (!/No such process|Cannot find device/.test(e.message)) throw e;
          });
          log(`removed route ${r.dst}`);
          break;
        case 'tun':
        case 'bridge':
        case 'fan-tunnel':
          await host.apply([['link', 'del', 'dev', r.name]]).catch((e: Error) => {
            if (!/Cannot find device/.test(e.message)) throw e;
          });
          log(`removed ${r.kind} ${r.name}`);
          break;
        case 'link-up': {
          const p = JSON.parse(c.previous ?? '{}') as { up?: boolean; mtu?: number };
          const args = ['link', 'set', 'dev', r.name];
          if (p.mtu) args.push('mtu', String(p.mtu));
          if (p.up === false) args.push('down');
          await host.apply([args]);
          log(`restored ${r.name} (${p.up ? 'up' : 'down'}, mtu ${p.mtu})`);
          break;
        }
        case 'slice-routes': {
          const t0 = process.hrtime.bigint();
          // -force: lines for routes that are already gone must not stop the rest.
          await host.apply(sliceRouteDeleteCommands(routeSpec(r)), { force: true }).catch(() => undefined);
          log(`removed the routes of ${r.overlay} via ${r.dev} in ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms`);
          break;
        }
        case 'nat': {
          const n = await host.nat();
          if (n) { await n.remove(); log(`nat: removed ${n.backend} rules`); }
          break;
        }
        case 'blackhole-rule':
          await host.apply([['rule', 'del', 'iif', r.iif, 'blackhole', 'pref', String(r.pref)]]).catch((e: Error) => {
            if (!/No such file or directory/.test(e.message)) throw e;
          });
          log(`removed rule iif ${r.iif} blackhole`);
          break;
        case 'address':
          await host.apply([['addr', 'del', r.cidr, 'dev', r.dev]]).catch((e: Error) => {
            if (!/Cannot assign requested address|Cannot find device/.test(e.message)) throw e;
          });
          log(`removed address ${r.cidr} from ${r.dev}`);
          break;
      }
    } catch (e) {
      errors.push(`${r.id}: ${(e as Error).message}`);
    }
  }
  return errors;
}

function routeSpec(r: Extract<Resource, { kind: 'slice-routes' }>): SliceRouteSpec {
  const map = makeFanMap(parseNetwork(r.overlay, 'overlay'), parseNetwork(r.underlay, 'underlay'));
  return { map, local: parseIpv4(r.local) ?? 0, dev: r.dev, src: r.src, fanIndex: r.fanIndex };
}

function kindClash(name: string, want: string, l: LinkInfo): string {
  return `${want} ${name}: a ${l.kind ?? 'plain'} device already has this name; remove it (ip link del ${name}) or choose another name`;
}

function cidrText(a: { address: number; prefix: number }): string {
  return `${formatIpv4(a.address)}/${a.prefix}`;
}
