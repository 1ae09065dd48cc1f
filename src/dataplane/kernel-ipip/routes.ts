// kernel-ipip's routing table, as data: one route per remote slice,
//   SLICE nhid ID src BRIDGE-ADDRESS proto 250
//   with nexthop ID = via UNDERLAY-HOST dev tunl0 onlink proto 250
// The fallback tunnel tunl0 is "NBMA": it has no fixed remote, so the kernel
// takes the outer destination from the route's next hop (ip_tunnel_xmit():
// `dst = rt_nexthop(rt, inner_iph->daddr)` when the tunnel's daddr is 0);
// `onlink` because the next hop is not on a subnet of tunl0. This is how
// flannel's and Calico's IPIP modes route too.
//
// Why nexthop objects rather than `SLICE via HOST dev tunl0 onlink`: with
// plain gateway routes the kernel makes one fib_info per route and hashes
// them without the gateway (fib_info_hashfn), so every insert scans all the
// earlier ones: 5,000 routes took 0.4 s, 20,000 took 7.8 s here. With
// nexthop objects (Linux 5.3+) the whole /16 — 65,533 nexthops and 65,533
// routes — goes in about 1.5 s and out (by id, in batches) in about 1.7 s.
import { formatCidr, formatIpv4, lastOf, type Cidr } from '../../fan/ipv4.js';
import { sliceNetworkOf, type FanMap } from '../../fan/fanmap.js';

/** Routes and nexthops fand installs carry this protocol number. */
export const FAND_ROUTE_PROTO = 250;
/** Nexthop ids: NEXTHOP_ID_BASE + (fan index << 20) + host index. */
export const NEXTHOP_ID_BASE = 0xfa000000;
/** Largest number of remote hosts kernel-ipip routes (a /12 underlay). */
export const MAX_REMOTE_HOSTS = (1 << 20) - 2;

/** Number of remote hosts: every underlay address except network, broadcast and this host. */
export function remoteHostCount(underlay: Cidr): number {
  return lastOf(underlay) - underlay.network - 2;
}

export interface SliceRouteSpec {
  readonly map: FanMap;
  readonly local: number;
  readonly dev: string;
  readonly src: string;
  readonly fanIndex: number;
  readonly proto?: number;
}

function forEachRemote(s: SliceRouteSpec, f: (host: number, id: number) => void): void {
  const first = s.map.underlay.network + 1;
  const last = lastOf(s.map.underlay) - 1;
  const base = NEXTHOP_ID_BASE + s.fanIndex * (1 << 20);
  for (let h = first; h <= last; h++) if (h !== s.local) f(h, base + (h - s.map.underlay.network));
}

/** `ip -batch` lines that install every remote slice: the nexthops first, then the routes. */
export function sliceRouteCommands(s: SliceRouteSpec): string[][] {
  const nexthops: string[][] = [];
  const routes: string[][] = [];
  forEachRemote(s, (h, id) => addLines(s, h, id, nexthops, routes));
  return [...nexthops, ...routes];
}

function addLines(s: SliceRouteSpec, h: number, id: number, nexthops: string[][], routes: string[][]): void {
  const proto = String(s.proto ?? FAND_ROUTE_PROTO);
  nexthops.push(['nexthop', 'replace', 'id', String(id), 'via', formatIpv4(h), 'dev', s.dev, 'onlink', 'proto', proto]);
  routes.push(['route', 'replace', sliceDst(s, h), 'nhid', String(id), 'src', s.src, 'proto', proto]);
}

/** The route destination of remote host `h`'s slice, as `ip route` and RouteInfo.dst write it. */
export function sliceDst(s: SliceRouteSpec, h: number): string {
  const network = sliceNetworkOf(s.map, h);
  return s.map.sliceLen === 32 ? formatIpv4(network) : formatCidr({ network, prefix: s.map.sliceLen });
}

/** The remote hosts whose slice route is not among `present` (route destinations of the main table). */
export function missingSliceHosts(s: SliceRouteSpec, present: ReadonlySet<string>): number[] {
  const out: number[] = [];
  forEachRemote(s, (h) => { if (!present.has(sliceDst(s, h))) out.push(h); });
  return out;
}

/** `ip -batch` lines that put back the routes (and their nexthops) of some remote hosts only. */
export function sliceRouteCommandsFor(s: SliceRouteSpec, hosts: readonly number[]): string[][] {
  const nexthops: string[][] = [];
  const routes: string[][] = [];
  const base = NEXTHOP_ID_BASE + s.fanIndex * (1 << 20);
  for (const h of hosts) addLines(s, h, base + (h - s.map.underlay.network), nexthops, routes);
  return [...nexthops, ...routes];
}


/** Lines that remove them again: routes first (a nexthop in use cannot go quickly), then nexthops. */
export function sliceRouteDeleteCommands(s: SliceRouteSpec): string[][] {
  const proto = String(s.proto ?? FAND_ROUTE_PROTO);
  const nexthops: string[][] = [];
  const routes: string[][] = [];
  forEachRemote(s, (h, id) => {
    routes.push(['route', 'del', formatCidr({ network: sliceNetworkOf(s.map, h), prefix: s.map.sliceLen }), 'proto', proto]);
    nexthops.push(['nexthop', 'del', 'id', String(id)]);
  });
  return [...routes, ...nexthops];
}
