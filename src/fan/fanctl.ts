// Hosts that Ubuntu's fanctl configured: the names it gave its bridges, and
// a check that fand does not build a second gateway next to fanctl's.
//
// From ubuntu-fan's own sources and manual pages:
// - fanctl 0.3 (ubuntu-fan 0.3.0, trusty): the bridge is "fan-" and the
//   slice's network address with its trailing zero octets dropped, dots as
//   dashes (`num_to_ip "$bridge_ipnum" "-"; RET=${RET%-0}` three times):
//   250.3.4.0/24 -> fan-250-3-4, 250.3.0.0/24 -> fan-250-3.
// - fanctl 0.12 (xenial to noble, fanctl(8)): "the new bridge is named
//   fan-250 based on the overlay": the overlay's network address, trailing
//   zero octets dropped (fan-250 for 250.0.0.0/8; fand applies the same rule
//   to other overlays: 100.64.0.0/10 -> fan-100-64).
// fand's own rule (fanmap.ts bridgeNameFor) keeps ceil(prefix/8) octets of
// the slice: fan-250-3-4, and fan-250-3-0 where fanctl 0.3 said fan-250-3.
import type { InterfaceAddrs } from '../config/underlay.js';
import { FanError, bridgeNameFor } from './fanmap.js';
import { formatCidr, formatIpv4, type Cidr } from './ipv4.js';
import type { ResolvedFan } from './resolved.js';

function dashed(network: number): string {
  const octets = [network >>> 24, (network >>> 16) & 255, (network >>> 8) & 255, network & 255];
  while (octets.length > 1 && octets[octets.length - 1] === 0) octets.pop();
  return `fan-${octets.join('-')}`;
}

/** The names fanctl gave this fan's bridge: `current` by 0.12 and later, `legacy` by 0.3. */
export function fanctlBridgeNames(overlay: Cidr, slice: Cidr): { current: string; legacy: string } {
  return { current: dashed(overlay.network), legacy: dashed(slice.network) };
}

/**
 * A fan whose gateway address (the slice's .1) is already on another
 * interface of the host, typically the bridge fanctl made under its own
 * name: fand would add the same address and a second connected route to a
 * bridge of its own, and the containers on one of the two would be cut off.
 * The error says how to take the existing bridge over (`bridge NAME`).
 * Interfaces that carry fand's own name for the slice are fand's (an earlier
 * run), never a conflict.
 */
export function checkGatewaysFree(fans: readonly ResolvedFan[], addrs: readonly InterfaceAddrs[]): void {
  for (const f of fans) {
    const holder = addrs.find((i) => i.name !== f.bridge && i.name !== bridgeNameFor(f.slice)
      && i.addresses.some((a) => a.address === f.slice.bridgeAddress));
    if (!holder) continue;
    const names = fanctlBridgeNames(f.map.overlay, f.slice);
    const fanctl = holder.name === names.current || holder.name === names.legacy ? ' (the name fanctl gives this fan\'s bridge)' : '';
    throw new FanError(`fan ${formatCidr(f.map.overlay)} (${f.spec.source}): its gateway ${formatIpv4(f.slice.bridgeAddress)}/${f.slice.prefix} `
      + `is already on ${holder.name}${fanctl}; to take that bridge over with its containers, name it on the fan's line (bridge ${holder.name}) `
      + `or with --bridge ${holder.name}; otherwise remove the address from ${holder.name}`);
  }
}
