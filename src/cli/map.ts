// `fand map`: the Fan arithmetic for one address, either direction.
import { UsageError, type Args } from './args.js';
import { parseNetwork, makeFanMap, sliceFor, underlayFor, bridgeNameFor } from '../fan/fanmap.js';
import { parseUnderlay, resolveUnderlay, resolveUnderlayOffline } from '../config/underlay.js';
import { contains, formatCidr, formatIpv4, parseIpv4, type Cidr } from '../fan/ipv4.js';
import { encapSettings, type Encap } from '../fan/encap.js';

export interface MapResult {
  readonly address: string;
  /** "overlay" when ADDRESS is an overlay address, "underlay" when it is an underlay host. */
  readonly kind: 'overlay' | 'underlay';
  readonly overlay: string;
  readonly underlay: string;
  readonly slice: string;
  readonly bridge: string;
  readonly bridgeAddress: string;
  /** The bridge address's prefix: the slice's (ipip) or the overlay's (vxlan). */
  readonly bridgePrefix: number;
  readonly host: string;
  readonly encapsulation: Encap;
  /** VXLAN: the VNI and UDP port every host of the fan uses. */
  readonly vni?: number;
  readonly port?: number;
}

export async function mapAddress(a: Args): Promise<MapResult> {
  if (a.overlays.length !== 1 || a.underlays.length !== 1) throw new UsageError('map needs exactly one --overlay and one --underlay');
  if (a.positionals.length !== 1) throw new UsageError('map needs one ADDRESS (an overlay address or an underlay host)');
  const addressText = a.positionals[0]!;
  const address = parseIpv4(addressText);
  if (address === undefined) throw new UsageError(`ADDRESS ${addressText}: not an IPv4 address`);
  let overlay: Cidr;
  try { overlay = parseNetwork(a.overlays[0]!, 'overlay'); } catch (e) { throw new UsageError(`--overlay: ${(e as Error).message}`); }
  let spec;
  try { spec = parseUnderlay(a.underlays[0]!); } catch (e) { throw new UsageError(`--underlay: ${(e as Error).message}`); }
  let underlay = resolveUnderlayOffline(spec);
  if (!underlay) {
    // An interface form: this host's interfaces say which network it means.
    const { IpCommand } = await import('../host/ip.js');
    const host = new IpCommand();
    const [addrs, def] = await Promise.all([host.addresses(), host.defaultRouteIface()]);
    underlay = resolveUnderlay(spec, addrs, def).underlay;
  }
  const map = makeFanMap(overlay, underlay);
  let hostAddr: number;
  let kind: MapResult['kind'];
  if (contains(map.overlay, address)) {
    kind = 'overlay';
    hostAddr = underlayFor(map, address);
  } else if (contains(map.underlay, address)) {
    kind = 'underlay';
    hostAddr = address;
  } else {
    throw new UsageError(`ADDRESS ${addressText} is in neither the overlay ${formatCidr(map.overlay)} nor the underlay ${formatCidr(map.underlay)}`);
  }
  const slice = sliceFor(map, hostAddr, 1);
  let encap;
  try { encap = encapSettings({ encap: a.encap, vxlanPort: a.vxlanPort, vni: a.vni }, map.overlay); } catch (e) { throw new UsageError((e as Error).message); }
  return {
    address: addressText,
    kind,
    overlay: formatCidr(map.overlay),
    underlay: formatCidr(map.underlay),
    slice: formatCidr({ network: slice.network, prefix: slice.prefix }),
    bridge: bridgeNameFor({ network: slice.network, prefix: slice.prefix }),
    bridgeAddress: formatIpv4(slice.bridgeAddress),
    bridgePrefix: encap.encap === 'vxlan' ? map.overlay.prefix : slice.prefix,
    host: formatIpv4(hostAddr),
    encapsulation: encap.encap,
    ...(encap.encap === 'vxlan' ? { vni: encap.vni, port: encap.port } : {}),
  };
}

export function formatMap(r: MapResult): string {
  if (r.kind === 'overlay') return `${r.host}\n`;
  if (r.encapsulation === 'vxlan') {
    return `slice   ${r.slice}\nbridge  ${r.bridge}\naddress ${r.bridgeAddress}/${r.bridgePrefix}\nvxlan   vni ${r.vni} port ${r.port}\n`;
  }
  return `slice   ${r.slice}\nbridge  ${r.bridge}\naddress ${r.bridgeAddress}\n`;
}
