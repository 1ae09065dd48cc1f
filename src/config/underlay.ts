// Underlay specifications as fanctl accepts them, and their resolution
// against the host's interfaces. Pure: the caller lists the interfaces and
// the default route.
//
//   A.B.C.D/len   a host address (host bits set) or the underlay network
//   A.B.C.D       same, prefix /16
//   IFACE[/len]   the interface's first IPv4 address, prefix /16 by default
//   default[/len] the interface of the default route, prefix /16 by default

import { FanError, looksIpv6, validateIfName } from '../fan/fanmap.js';
import { type Cidr, type Ipv4, formatIpv4, hostMaskOf, maskOf, parseIpv4 } from '../fan/ipv4.js';

export type UnderlaySpec =
  | { kind: 'cidr'; address: Ipv4; prefix: number; hostGiven: boolean; text: string }
  | { kind: 'iface'; name: string; prefix: number; text: string }
  | { kind: 'default'; prefix: number; text: string };

/** fanctl's prefix when the underlay names none. */
export const DEFAULT_UNDERLAY_PREFIX = 16;

const PREFIX = /^(0|[1-9]\d?)$/;
const DOTTED_ISH = /^[\d.]+$/;

export function parseUnderlay(text: string): UnderlaySpec {
  if (text === '') throw new FanError('underlay is empty; give A.B.C.D/len, IFACE[/len] or default[/len]');
  if (looksIpv6(text)) {
    throw new FanError(`underlay ${text}: IPv6 is not supported; the Fan maps IPv4 underlays to IPv4 overlays`);
  }
  const slash = text.indexOf('/');
  const base = slash < 0 ? text : text.slice(0, slash);
  let prefix = DEFAULT_UNDERLAY_PREFIX;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!PREFIX.test(lenText) || Number(lenText) > 32) {
      throw new FanError(`underlay ${text}: prefix length '${lenText}' must be a number 0..32`);
    }
    prefix = Number(lenText);
  }
  if (DOTTED_ISH.test(base)) {
    const address = parseIpv4(base);
    if (address === undefined) {
      throw new FanError(
        `underlay ${text}: '${base}' is not an IPv4 address (expected four decimal octets 0-255, e.g. 172.16.3.4/16)`,
      );
    }
    return { kind: 'cidr', address, prefix, hostGiven: (address & hostMaskOf(prefix)) !== 0, text };
  }
  if (base === 'default') return { kind: 'default', prefix, text };
  validateIfName(base, 'underlay');
  return { kind: 'iface', name: base, prefix, text };
}

/** A host interface and its IPv4 addresses, as the caller found them. */
export interface InterfaceAddrs {
  name: string;
  addresses: { address: Ipv4; prefix: number }[];
}

export interface ResolvedUnderlay {
  iface: string;
  address: Ipv4;
  underlay: Cidr;
}

function describe(interfaces: InterfaceAddrs[]): string {
  const parts: string[] = [];
  for (const i of interfaces) {
    if (i.addresses.length === 0) parts.push(`${i.name} (no IPv4)`);
    for (const a of i.addresses) parts.push(`${i.name} ${formatIpv4(a.address)}/${a.prefix}`);
  }
  return parts.length === 0 ? 'none' : parts.join(', ');
}

function resolved(iface: string, address: Ipv4, prefix: number): ResolvedUnderlay {
  return { iface, address, underlay: { network: (address & maskOf(prefix)) >>> 0, prefix } };
}

function fromIface(
  spec: UnderlaySpec,
  name: string,
  prefix: number,
  interfaces: InterfaceAddrs[],
  label: string,
): ResolvedUnderlay {
  const i = interfaces.find((x) => x.name === name);
  if (i === undefined) {
    const have = interfaces.map((x) => x.name).join(', ') || 'none';
    throw new FanError(`underlay ${spec.text}: ${label}no such interface (have: ${have})`);
  }
  const first = i.addresses[0];
  if (first === undefined) throw new FanError(`underlay ${spec.text}: ${label}interface has no IPv4 address`);
  return resolved(i.name, first.address, prefix);
}

/**
 * Finds the local interface and address an underlay spec denotes.
 * `defaultRouteIface` is the interface of the IPv4 default route, if any.
 */
export function resolveUnderlay(
  spec: UnderlaySpec,
  interfaces: InterfaceAddrs[],
  defaultRouteIface: string | undefined,
): ResolvedUnderlay {
  switch (spec.kind) {
    case 'cidr': {
      if (spec.hostGiven) {
        for (const i of interfaces) {
          if (i.addresses.some((a) => a.address === spec.address)) return resolved(i.name, spec.address, spec.prefix);
        }
        throw new FanError(
          `underlay ${spec.text}: ${formatIpv4(spec.address)} is not configured on any interface (have: ${describe(interfaces)})`,
        );
      }
      const mask = maskOf(spec.prefix);
      const found: { iface: string; address: Ipv4 }[] = [];
      for (const i of interfaces) {
        for (const a of i.addresses) {
          if (((a.address & mask) >>> 0) === spec.address && !found.some((f) => f.address === a.address)) {
            found.push({ iface: i.name, address: a.address });
          }
        }
      }
      if (found.length === 0) {
        throw new FanError(`underlay ${spec.text}: no local address in it (have: ${describe(interfaces)})`);
      }
      if (found.length > 1) {
        const list = found.map((f) => `${f.iface} ${formatIpv4(f.address)}`).join(', ');
        throw new FanError(
          `underlay ${spec.text}: several local addresses in it (${list}); give the host address, e.g. ${formatIpv4(found[0]!.address)}/${spec.prefix}`,
        );
      }
      return resolved(found[0]!.iface, found[0]!.address, spec.prefix);
    }
    case 'iface':
      return fromIface(spec, spec.name, spec.prefix, interfaces, '');
    case 'default':
      if (defaultRouteIface === undefined) {
        throw new FanError(
          `underlay ${spec.text}: there is no IPv4 default route; name the interface (e.g. eth0/${spec.prefix}) or the address (A.B.C.D/${spec.prefix})`,
        );
      }
      return fromIface(spec, defaultRouteIface, spec.prefix, interfaces, `default route interface ${defaultRouteIface}: `);
  }
}

/** The underlay network of an `A.B.C.D[/len]` spec; undefined for interface forms. */
export function resolveUnderlayOffline(spec: UnderlaySpec): Cidr | undefined {
  if (spec.kind !== 'cidr') return undefined;
  return { network: (spec.address & maskOf(spec.prefix)) >>> 0, prefix: spec.prefix };
}
