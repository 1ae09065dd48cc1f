// From fan specifications (config file or command line) to ResolvedFans for
// this host. Reads the host's interfaces once through HostNet; the rest is
// the pure Fan arithmetic.
import { ConfigError, ConfigErrors, locate, type FanSpec } from '../config/fanfile.js';
import { resolveUnderlay, resolveUnderlayOffline } from '../config/underlay.js';
import type { HostNet } from '../host/ip.js';
import { bridgeNameFor, checkOverlay, makeFanMap, sliceFor, tunNameFor, vxlanNameFor, FanError } from './fanmap.js';
import { ENCAP_OVERHEAD, encapSettings } from './encap.js';
import type { ResolvedFan } from './resolved.js';
import { checkGatewaysFree } from './fanctl.js';

/** The IPIP header the underlay has to carry on top of every inner packet. */
export const IPIP_OVERHEAD = ENCAP_OVERHEAD.ipip;

export interface ResolveOptions {
  /** Overrides the fan MTU (default: underlay interface MTU - 20 for ipip, - 50 for vxlan). */
  readonly mtu?: number;
}

export async function resolveFans(specs: readonly FanSpec[], host: HostNet, opts: ResolveOptions = {}): Promise<ResolvedFan[]> {
  const [addrs, links, defaultIface] = await Promise.all([host.addresses(), host.links(), host.defaultRouteIface()]);
  const active = specs.filter((s) => !s.off);
  // What can be checked without this host's interfaces is checked first, so
  // the message names the real problem (a multicast overlay, say) rather than
  // a missing local address.
  const offlineErrors = located(active, (spec) => {
    checkOverlay(spec.overlay);
    const offline = resolveUnderlayOffline(spec.underlay);
    if (offline) makeFanMap(spec.overlay, offline);
  });
  throwAll(offlineErrors.errors);
  // Every fan is resolved, so that one run reports every fan this host cannot have.
  const { results, errors } = located(active, (spec): ResolvedFan => {
    const u = resolveUnderlay(spec.underlay, addrs, defaultIface);
    const map = makeFanMap(spec.overlay, u.underlay);
    const slice = sliceFor(map, u.address, spec.hostReserve);
    const link = links.find((l) => l.name === u.iface);
    const encap = encapSettings({ encap: spec.encap ?? 'ipip', vxlanPort: spec.vxlanPort, vni: spec.vni }, map.overlay);
    const overhead = ENCAP_OVERHEAD[encap.encap];
    const mtu = opts.mtu ?? (link ? link.mtu - overhead : 1500 - overhead);
    if (mtu < 576 || mtu > 65515) throw new FanError(`fan MTU ${mtu} out of range (576..65515)${opts.mtu ? '' : ` (underlay ${u.iface} has MTU ${link?.mtu})`}`);
    return {
      spec,
      map,
      iface: u.iface,
      localUnderlay: u.address,
      slice,
      bridge: spec.bridge ?? bridgeNameFor({ network: slice.network, prefix: slice.prefix }),
      tun: encap.encap === 'vxlan' ? vxlanNameFor(map.overlay) : tunNameFor(map.overlay),
      mtu,
      encap,
      bridgePrefix: encap.encap === 'vxlan' ? map.overlay.prefix : slice.prefix,
    };
  });
  throwAll(errors);
  checkGatewaysFree(results, addrs);
  return results;
}

/**
 * Runs `f` on every spec; a FanError becomes a ConfigError carrying the
 * spec's file:line (a fan from the command line keeps its message as it is).
 */
function located<T>(specs: readonly FanSpec[], f: (s: FanSpec) => T): { results: T[]; errors: (FanError | ConfigError)[] } {
  const results: T[] = [];
  const errors: (FanError | ConfigError)[] = [];
  for (const spec of specs) {
    try {
      results.push(f(spec));
    } catch (e) {
      if (!(e instanceof FanError)) throw e;
      const [file, line] = locate(spec.source);
      errors.push(file !== undefined && line !== undefined ? ConfigError.at(file, line, e.message) : e);
    }
  }
  return { results, errors };
}

function throwAll(errors: readonly (FanError | ConfigError)[]): void {
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new ConfigErrors(errors.map((e) => (e instanceof ConfigError ? e : new ConfigError(e.message))));
}
