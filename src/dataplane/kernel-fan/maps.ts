// Fan maps on tunl0, put there and taken away as Ubuntu's fanctl does, with
// every change read back (RTM_GETLINK): a kernel without the patch answers
// some of these requests with success and keeps no map, and the patched one
// answers the removal of tunl0's last map with EINVAL after removing it.
import { constants } from 'node:os';
import type { HostNet } from '../../host/ip.js';
import { parseNetwork } from '../../fan/fanmap.js';
import { formatCidr } from '../../fan/ipv4.js';
import {
  errnoName, fanMapChangeMessage, getLinkMessage, NetlinkError, parseLinkReply, type FanMapping,
} from './netlink.js';

export class FanMapError extends Error {}

type Net = Pick<HostNet, 'netlink' | 'netlinkQuery'>;

/** The maps the kernel holds on `dev` (RTM_GETLINK). */
export async function readFanMaps(host: Net, dev: string): Promise<FanMapping[]> {
  try {
    return parseLinkReply(await host.netlinkQuery(getLinkMessage(dev, 1))).fanMaps;
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === constants.errno.ENODEV) {
      throw new FanMapError(`${dev}: no such device (it appears once the ipip module is loaded)`);
    }
    throw e;
  }
}

const text = (m: FanMapping) => `${formatCidr(m.overlay)}:${formatCidr(m.underlay)}`;

export function mappingOf(overlay: string, underlay: string): FanMapping {
  return { overlay: parseNetwork(overlay, 'overlay'), underlay: parseNetwork(underlay, 'underlay') };
}

/**
 * Makes `dev` carry the mapping. Returns 'added', or 'present' when the kernel
 * already held exactly this mapping (left by an earlier fand, or by fanctl).
 * A different underlay for the same overlay is an error naming both.
 */
export async function ensureFanMap(host: Net, dev: string, want: FanMapping): Promise<'added' | 'present'> {
  const before = await readFanMaps(host, dev);
  const same = before.find((m) => m.overlay.network === want.overlay.network && m.overlay.prefix === want.overlay.prefix);
  if (same) {
    if (same.underlay.network === want.underlay.network && same.underlay.prefix === want.underlay.prefix) return 'present';
    throw new FanMapError(`${dev} already maps ${formatCidr(want.overlay)} to underlay ${formatCidr(same.underlay)}, not ${formatCidr(want.underlay)} `
      + `(set by fanctl or by hand?); remove it (fanctl down, or ip link change ${dev} type ipip fan-map ${formatCidr(want.overlay)}:0.0.0.0/0) and start again`);
  }
  const ack = await host.netlink(fanMapChangeMessage(dev, 'add', [want], 2));
  if (ack.errno !== 0) {
    throw new FanMapError(`fan-map ${text(want)} on ${dev}: the kernel refused it: ${errnoName(ack.errno)}${ack.message ? ` (${ack.message})` : ''}`);
  }
  const after = await readFanMaps(host, dev);
  if (!after.some((m) => m.overlay.network === want.overlay.network && m.underlay.network === want.underlay.network)) {
    throw new FanMapError(`fan-map ${text(want)} on ${dev}: the kernel answered success but holds no such map (read back: ${after.map(text).join(', ') || 'none'}): no kernel Fan patch`);
  }
  return 'added';
}

/**
 * Removes the mapping of `want.overlay` from `dev`, verified by reading back.
 * Returns a note for the log. The patch removes tunl0's last map and then
 * answers EINVAL (ip_tunnel_changelink() on the fallback device returns
 * -EINVAL once no map is left; Ubuntu's fanctl meets the same answer): that,
 * and ENOENT (the map was already gone), are not failures when the read-back
 * shows the map gone. Throws when the map is still there.
 */
export async function removeFanMap(host: Net, dev: string, want: FanMapping): Promise<string> {
  let ack: { errno: number; message?: string };
  try {
    ack = await host.netlink(fanMapChangeMessage(dev, 'del', [want], 3));
  } catch (e) {
    throw new FanMapError(`fan-map ${text(want)} on ${dev}: ${(e as Error).message}`);
  }
  let left: FanMapping[];
  try {
    left = await readFanMaps(host, dev);
  } catch (e) {
    if (e instanceof FanMapError) return `${dev} is gone, and its maps with it`;
    throw e;
  }
  const still = left.find((m) => m.overlay.network === want.overlay.network && m.overlay.prefix === want.overlay.prefix);
  if (still) {
    throw new FanMapError(`fan-map ${text(want)} on ${dev}: still there after removal (kernel answered ${ack.errno ? errnoName(ack.errno) : 'success'}${ack.message ? `: ${ack.message}` : ''})`);
  }
  if (ack.errno === constants.errno.EINVAL && left.length === 0) return `removed fan-map ${text(want)} from ${dev} (its last map: the kernel answers EINVAL then, read back: gone)`;
  if (ack.errno === constants.errno.ENOENT) return `fan-map ${text(want)} was no longer on ${dev}`;
  if (ack.errno !== 0) return `removed fan-map ${text(want)} from ${dev} (kernel answered ${errnoName(ack.errno)}; read back: gone)`;
  return `removed fan-map ${text(want)} from ${dev}`;
}
