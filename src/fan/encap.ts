// How a fan's packets cross the underlay: its encapsulation, and what
// follows from it. Pure: no I/O.
//
//   ipip   IP protocol 4 (RFC 2003): the Fan as Ubuntu's fanctl first ran it.
//          Each host's slice is a routed subnet (/24 for 250.0.0.0/8 over a
//          /16); 20 bytes of overhead.
//   vxlan  UDP (RFC 7348), LXD's default `fan.type`: the whole overlay is
//          one Ethernet segment. The bridge carries its slice's first address
//          with the overlay's prefix (/8), containers reach every other
//          container directly (ARP crosses the fan); 50 bytes of overhead
//          (IPv4 20 + UDP 8 + VXLAN 8 + Ethernet 14). UDP passes clouds that
//          drop IP protocol 4.
//
// Words: `--encap ipip|vxlan` on fand's command line; `type ipip|vxlan` on
// an /etc/network/fan line, the word of LXD's `fan.type` and of fanctl's
// `--type`.
import type { Cidr } from './ipv4.js';
import { FanError } from './fanmap.js';

export type Encap = 'ipip' | 'vxlan';
export const ENCAPS: readonly Encap[] = ['ipip', 'vxlan'];

/** Bytes the underlay carries on top of each inner packet. */
export const ENCAP_OVERHEAD: Record<Encap, number> = { ipip: 20, vxlan: 50 };

/** The Linux vxlan driver's port for `dstport 0`, which LXD's fans use (IANA's is 4789). */
export const DEFAULT_VXLAN_PORT = 8472;

/**
 * LXD's VNI for a VXLAN fan: the overlay's network address shifted right by
 * 8 (lxd/network/driver_bridge.go), 240.0.0.0/8 → 15728640. Every host of a
 * fan derives the same one.
 */
export function defaultVni(overlay: Cidr): number {
  return (overlay.network >>> 8) & 0xffffff;
}

export function parseEncap(text: string, what: string): Encap {
  if (text === 'ipip' || text === 'vxlan') return text;
  throw new FanError(`${what} '${text}': must be ipip or vxlan`);
}

/** A VNI: 24 bits (RFC 7348 §5). */
export function checkVni(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffff) throw new FanError(`${what} ${v}: a VNI is 0..16777215`);
  return v;
}

export function checkPort(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1 || v > 65535) throw new FanError(`${what} ${v}: a UDP port is 1..65535`);
  return v;
}

/** The encapsulation part of a fan's configuration. */
export interface EncapSpec {
  readonly encap: Encap;
  /** VXLAN: UDP port (default 8472). */
  readonly vxlanPort?: number | undefined;
  /** VXLAN: VNI (default: defaultVni of the overlay). */
  readonly vni?: number | undefined;
}

/** The settled encapsulation of a fan: what goes on the wire. */
export type EncapSettings =
  | { readonly encap: 'ipip' }
  | { readonly encap: 'vxlan'; readonly vni: number; readonly port: number };

export function encapSettings(spec: EncapSpec, overlay: Cidr): EncapSettings {
  if (spec.encap === 'ipip') {
    if (spec.vni !== undefined || spec.vxlanPort !== undefined) {
      throw new FanError('a VNI and a VXLAN port only apply to VXLAN fans (type vxlan, --encap vxlan)');
    }
    return { encap: 'ipip' };
  }
  return { encap: 'vxlan', vni: spec.vni ?? defaultVni(overlay), port: spec.vxlanPort ?? DEFAULT_VXLAN_PORT };
}

/** One line for logs and tables: `vxlan vni 15728640 port 8472`, `ipip`. */
export function describeEncap(e: EncapSettings): string {
  return e.encap === 'vxlan' ? `vxlan vni ${e.vni} port ${e.port}` : 'ipip';
}
