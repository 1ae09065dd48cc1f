// A fan after everything about this host is known: its map, the local
// underlay address and interface, this host's slice and the names and MTU of
// the devices. Built once at start-up; everything downstream reads it.
import type { FanSpec } from '../config/fanfile.js';
import type { FanMap, Slice } from './fanmap.js';

export interface ResolvedFan {
  readonly spec: FanSpec;
  readonly map: FanMap;
  /** Underlay interface and this host's address on it. */
  readonly iface: string;
  readonly localUnderlay: number;
  readonly slice: Slice;
  readonly bridge: string;
  readonly tun: string;
  /** MTU of the fan: the underlay interface's MTU minus the 20-byte IPIP header, unless given. */
  readonly mtu: number;
}
