// A fan after everything about this host is known: its map, the local
// underlay address and interface, this host's slice and the names and MTU of
// the devices. Built once at start-up; everything downstream reads it.
import type { FanSpec } from '../config/fanfile.js';
import type { FanMap, Slice } from './fanmap.js';
import type { EncapSettings } from './encap.js';

export interface ResolvedFan {
  readonly spec: FanSpec;
  readonly map: FanMap;
  /** Underlay interface and this host's address on it. */
  readonly iface: string;
  readonly localUnderlay: number;
  readonly slice: Slice;
  readonly bridge: string;
  /** The fan's tunnel device: the TUN (ipip, userspace), the fan tunnel (kernel-fan) or the VXLAN device (TAP or vxlan). */
  readonly tun: string;
  /** MTU of the fan: the underlay interface's MTU minus the encapsulation's overhead (20 ipip, 50 vxlan), unless given. */
  readonly mtu: number;
  /** What goes on the wire. */
  readonly encap: EncapSettings;
  /** Prefix of the bridge's address: the slice's (ipip: a routed subnet) or the overlay's (vxlan: one Ethernet segment). */
  readonly bridgePrefix: number;
}
