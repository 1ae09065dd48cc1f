// Everything the daemon would configure on this host, as data. `fand plan`
// prints it; the daemon applies exactly this list.
import { address, bridge, nat, sysctl, type Resource } from './host/resources.js';
import { bridgeMacFor } from './fan/fanmap.js';
import type { Dataplane } from './dataplane/dataplane.js';
import type { Choice } from './dataplane/select.js';
import type { ResolvedFan } from './fan/resolved.js';
import { formatCidr, formatIpv4, maskOf } from './fan/ipv4.js';
import type { Encap } from './fan/encap.js';

export interface Plan {
  readonly dataplane: Choice;
  readonly workers: number;
  readonly fans: readonly FanSummary[];
  readonly resources: readonly Resource[];
}

export interface FanSummary {
  readonly overlay: string;
  readonly underlay: string;        // this host's underlay address with the underlay prefix
  readonly iface: string;
  readonly slice: string;
  readonly bridge: string;
  readonly bridgeAddress: string;
  /** The network the bridge address and the containers' addresses are in: the slice (ipip) or the whole overlay (vxlan). */
  readonly subnet: string;
  /** How packets cross the underlay. */
  readonly encapsulation: Encap;
  /** VXLAN fans: the VNI and the UDP port. */
  readonly vni?: number;
  readonly port?: number;
  readonly tun: string;
  readonly mtu: number;
  readonly hostReserve: number;
  readonly containers: string;      // first..last address containers may use
  readonly dhcp: boolean;
  readonly source: string;
}

export function summarize(f: ResolvedFan): FanSummary {
  return {
    overlay: formatCidr(f.map.overlay),
    underlay: `${formatIpv4(f.localUnderlay)}/${f.map.underlay.prefix}`,
    iface: f.iface,
    slice: formatCidr({ network: f.slice.network, prefix: f.slice.prefix }),
    bridge: f.bridge,
    bridgeAddress: formatIpv4(f.slice.bridgeAddress),
    subnet: formatCidr({ network: (f.slice.bridgeAddress & maskOf(f.bridgePrefix)) >>> 0, prefix: f.bridgePrefix }),
    encapsulation: f.encap.encap,
    ...(f.encap.encap === 'vxlan' ? { vni: f.encap.vni, port: f.encap.port } : {}),
    tun: f.tun,
    mtu: f.mtu,
    hostReserve: f.slice.hostReserve,
    containers: `${formatIpv4(f.slice.dhcpFirst)}-${formatIpv4(f.slice.dhcpLast)}`,
    dhcp: f.spec.dhcp,
    source: f.spec.source,
  };
}

export function hostResources(fans: readonly ResolvedFan[], dp: Pick<Dataplane, 'resources'>, withNat = false): Resource[] {
  const perFan = fans.map((f) => [
    bridge(f.bridge, f.mtu, bridgeMacFor(f.slice)),
    address(f.bridge, `${formatIpv4(f.slice.bridgeAddress)}/${f.bridgePrefix}`),
    ...dp.resources(f),
  ]);
  // A resource that only one fan asks for belongs to that fan; shared devices
  // (tunl0) appear once per fan and belong to none. Keep the first of each id.
  const askedBy = new Map<string, Set<string>>();
  perFan.forEach((rs, i) => rs.forEach((r) => askedBy.set(r.id, (askedBy.get(r.id) ?? new Set()).add(fans[i]!.bridge))));
  const out: Resource[] = [sysctl('net.ipv4.ip_forward', '1')];
  for (const [i, rs] of perFan.entries()) {
    for (const r of rs) out.push(askedBy.get(r.id)!.size === 1 ? { ...r, fan: fans[i]!.bridge } : r);
  }
  // One NAT for all fans: traffic between any two of the host's overlays is never masqueraded.
  if (withNat && fans.length > 0) out.push(nat(fans.map((f) => formatCidr(f.map.overlay))));
  return out.filter((r, i) => out.findIndex((x) => x.id === r.id) === i);
}

export function makePlan(fans: readonly ResolvedFan[], choice: Choice, workers: number, dp: Pick<Dataplane, 'resources'>, withNat = false): Plan {
  return { dataplane: choice, workers, fans: fans.map(summarize), resources: hostResources(fans, dp, withNat) };
}
