// Idempotent host setup. `ensure` makes the host match a list of resources:
// what exists with the right attributes is reused, what exists with wrong
// attributes and belongs to fand is recreated, what holds a name fand needs
// but is of another kind is an error naming it. Every resource fand creates
// is reported through `onCreated` before the next one is touched, so the
// state file always knows what to remove, even after `kill -9`.
import type { HostNet, LinkInfo, RouteInfo } from './ip.js';
import type { Resource } from './resources.js';
import { formatIpv4 } from '../fan/ipv4.js';

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
          await host.apply([['link', 'del', 'dev', r.name]]).catch((e: Error) => {
            if (!/Cannot find device/.test(e.message)) throw e;
          });
          log(`removed ${r.kind} ${r.name}`);
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

function kindClash(name: string, want: string, l: LinkInfo): string {
  return `${want} ${name}: a ${l.kind ?? 'plain'} device already has this name; remove it (ip link del ${name}) or choose another name`;
}

function cidrText(a: { address: number; prefix: number }): string {
  return `${formatIpv4(a.address)}/${a.prefix}`;
}
