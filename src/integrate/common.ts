// What every integration needs from a FanSummary, as numbers, and the name
// rule they share. Pure: no I/O.
import type { FanSummary } from '../plan.js';
import { formatCidr, parseIpv4, type Cidr, type Ipv4 } from '../fan/ipv4.js';
import { FanError, parseNetwork } from '../fan/fanmap.js';

export interface FanAddresses {
  readonly slice: Cidr;
  readonly sliceText: string;
  /**
   * The network containers are addressed in (their netmask): the slice on an
   * ipip fan, the whole overlay on a VXLAN fan (one Ethernet segment: they
   * reach every other container directly).
   */
  readonly subnet: Cidr;
  readonly subnetText: string;
  readonly gateway: Ipv4;         // the bridge address fand configured
  readonly first: Ipv4;           // first address containers may use
  readonly last: Ipv4;            // last address containers may use
}

export function addressesOf(f: FanSummary): FanAddresses {
  const slice = parseNetwork(f.slice, `fan ${f.bridge} slice`);
  const gateway = parseIpv4(f.bridgeAddress);
  const [a, b, extra] = f.containers.split('-');
  const first = a === undefined ? undefined : parseIpv4(a);
  const last = b === undefined ? undefined : parseIpv4(b);
  if (gateway === undefined) throw new FanError(`fan ${f.bridge}: bridge address '${f.bridgeAddress}' is not an IPv4 address`);
  if (first === undefined || last === undefined || extra !== undefined || first > last) {
    throw new FanError(`fan ${f.bridge}: container range '${f.containers}' is not FIRST-LAST`);
  }
  const subnet = f.subnet ? parseNetwork(f.subnet, `fan ${f.bridge} subnet`) : slice;
  return { slice, sliceText: formatCidr(slice), subnet, subnetText: formatCidr(subnet), gateway, first, last };
}

/**
 * The strictest of the three engines' rules for a network/profile name: the
 * CNI spec's `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$` (Docker's is the same with at
 * least two characters; LXD's is looser).
 */
export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function checkName(name: string, what: string): string {
  if (!NAME_RE.test(name)) {
    throw new FanError(`${what} name '${name}': use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
  return name;
}

/** One word for a POSIX shell: as is when safe, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./=:,@%+-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function fanTitle(f: FanSummary): string {
  const encap = f.encapsulation === 'vxlan' ? ` (VXLAN, VNI ${f.vni}, UDP port ${f.port}: containers use the overlay's netmask)` : '';
  return `fan ${f.overlay} over ${f.underlay}: slice ${f.slice} on bridge ${f.bridge}${encap}`;
}
