// The bytes the daemon and the tc programs share (bpf/fan.h), as pure
// functions: the config map's value, the port map's value, the counter
// rows. test/ebpf.test.ts runs the loaded programs to check that both sides
// read them alike.
import { DROP_NAMES, TRAFFIC_NAMES } from '../counters.js';
import { makePacketContext } from '../packet/context.js';
import type { Cidr } from '../../fan/ipv4.js';

/** FAN_MAX: fans per daemon (the userspace dataplane's MAX_FANS too). */
export const FAN_MAX = 16;
export const FAN_CONFIG_MAGIC = 0xfa4e0001;
export const FAN_ACTIVE = 1 << 0;
export const FAN_CHECK_SOURCE = 1 << 1;
export const FAN_REDIRECT_PORTS = 1 << 2;
/** sizeof(struct fan_cfg): 12 x u32. */
export const FAN_CFG_SIZE = 48;
/** sizeof(struct fan_config). */
export const CONFIG_SIZE = 8 + FAN_MAX * FAN_CFG_SIZE;
/** sizeof(struct fan_port). */
export const PORT_SIZE = 20;
export const PORT_PEER = 1 << 0;

/**
 * The counters of one row, in bpf/fan.h's FAN_COUNTER_LIST order, under the
 * keys every dataplane reports (counter-names.ts; test/ebpf.test.ts checks
 * both): the IPIP drop reasons of the userspace dataplane, its traffic
 * counters, then this dataplane's own.
 */
export const COUNTER_NAMES: readonly string[] = [
  ...DROP_NAMES.slice(0, DROP_NAMES.indexOf('in.queue-full') + 1).map((n) => `drop.${n}`),
  ...TRAFFIC_NAMES,
  'rx.direct', 'slow-path.out', 'slow-path.in',
];
/** FAN_COUNTERS. */
export const COUNTERS = COUNTER_NAMES.length;
/** sizeof(struct fan_counters). */
export const COUNTERS_SIZE = 8 * COUNTERS;

export interface FanConfig {
  /** Row in the counter map; stable while the fan exists. */
  readonly slot: number;
  readonly overlay: Cidr;
  readonly underlay: Cidr;
  readonly localUnderlay: number;
  readonly tunIfindex: number;
  readonly underlayIfindex: number;
  readonly checkInnerSource: boolean;
  readonly redirectPorts: boolean;
}

/** struct fan_config, host byte order (what BPF_MAP_UPDATE_ELEM copies). */
export function encodeConfig(fans: readonly FanConfig[], littleEndian = true): Uint8Array {
  const b = new Uint8Array(CONFIG_SIZE);
  const v = new DataView(b.buffer);
  const slots = fans.map((f) => f.slot);
  if (slots.some((s) => !Number.isInteger(s) || s < 0 || s >= FAN_MAX)) throw new RangeError(`fan slots must be 0..${FAN_MAX - 1}: ${slots.join(', ')}`);
  if (new Set(slots).size !== slots.length) throw new RangeError(`fan slots must be distinct: ${slots.join(', ')}`);
  v.setUint32(0, FAN_CONFIG_MAGIC, littleEndian);
  v.setUint32(4, fans.length === 0 ? 0 : Math.max(...slots) + 1, littleEndian);
  for (const f of fans) {
    // The same arithmetic the userspace dataplane uses (and validates).
    const ctx = makePacketContext(f.overlay, f.underlay, f.localUnderlay, f.checkInnerSource);
    const o = 8 + f.slot * FAN_CFG_SIZE;
    const words = [
      FAN_ACTIVE | (f.checkInnerSource ? FAN_CHECK_SOURCE : 0) | (f.redirectPorts ? FAN_REDIRECT_PORTS : 0),
      f.tunIfindex, ctx.overlayNet, ctx.overlayMask, ctx.underlayNet, ctx.underlayMask, ctx.sliceMask, ctx.sliceShift,
      ctx.hostBitsMask, ctx.localUnderlay, ctx.localSlice, f.underlayIfindex,
    ];
    words.forEach((w, i) => v.setUint32(o + 4 * i, w >>> 0, littleEndian));
  }
  return b;
}

/** The slot maps' entries for a configuration: which fan a packet belongs to (bpf/fan.bpf.c slot_of). */
export interface SlotEntries {
  /** overlay device ifindex -> slot */
  readonly tuns: ReadonlyMap<number, number>;
  /** local underlay address -> the first fan's slot on it (the fans' order) */
  readonly locals: ReadonlyMap<number, number>;
  /** "network/prefix" of each overlay -> slot */
  readonly overlays: ReadonlyMap<string, { network: number; prefix: number; slot: number }>;
}

export function slotEntries(fans: readonly FanConfig[]): SlotEntries {
  const tuns = new Map<number, number>();
  const locals = new Map<number, number>();
  const overlays = new Map<string, { network: number; prefix: number; slot: number }>();
  for (const f of fans) {
    tuns.set(f.tunIfindex, f.slot);
    if (!locals.has(f.localUnderlay >>> 0)) locals.set(f.localUnderlay >>> 0, f.slot);
    overlays.set(`${f.overlay.network >>> 0}/${f.overlay.prefix}`, { network: f.overlay.network >>> 0, prefix: f.overlay.prefix, slot: f.slot });
  }
  return { tuns, locals, overlays };
}

/** A u32 key or value in host byte order. */
export function u32(x: number, littleEndian = true): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, x >>> 0, littleEndian);
  return b;
}

/** struct fan_lpm_key: prefix length (host order), address (network order). */
export function lpmKey(network: number, prefix: number, littleEndian = true): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, prefix, littleEndian);
  v.setUint32(4, network >>> 0, false);
  return b;
}

export interface Port {
  readonly ifindex: number;
  readonly mtu: number;
  /** The port's peer lives in another network namespace: bpf_redirect_peer. */
  readonly peer: boolean;
  /** The container's Ethernet address, aa:bb:cc:dd:ee:ff. */
  readonly mac: string;
  /** The bridge's Ethernet address. */
  readonly bridgeMac: string;
}

/** struct fan_port. */
export function encodePort(p: Port, littleEndian = true): Uint8Array {
  const b = new Uint8Array(PORT_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, p.ifindex, littleEndian);
  v.setUint16(4, Math.min(p.mtu, 0xffff), littleEndian);
  b[6] = p.peer ? PORT_PEER : 0;
  b.set(parseMac(p.mac), 8);
  b.set(parseMac(p.bridgeMac), 14);
  return b;
}

/** The port map key: the IPv4 address in network order. */
export function portKey(address: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, address >>> 0, false);
  return b;
}

export function parseMac(mac: string): Uint8Array {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new RangeError(`Ethernet address ${JSON.stringify(mac)} is not aa:bb:cc:dd:ee:ff`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/**
 * Sums a per-CPU counter row as BPF_MAP_LOOKUP_ELEM returns it: one
 * struct fan_counters per possible CPU, each padded to 8 bytes.
 */
export function sumCounters(value: Uint8Array, cpus: number, littleEndian = true): Record<string, number> {
  const v = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const stride = (COUNTERS_SIZE + 7) & ~7;
  if (value.length < stride * cpus) throw new RangeError(`per-CPU value of ${value.length} bytes is short of ${cpus} x ${stride}`);
  const out: Record<string, number> = {};
  COUNTER_NAMES.forEach((name, i) => {
    let s = 0n;
    for (let c = 0; c < cpus; c++) s += v.getBigUint64(c * stride + 8 * i, littleEndian);
    out[name] = Number(s);
  });
  return out;
}

/** The number of possible CPUs from /sys/devices/system/cpu/possible ("0-3", "0,2-5"). */
export function parseCpuList(text: string): number {
  let max = -1;
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new RangeError(`CPU list ${JSON.stringify(text.trim())} is not like 0-3 or 0,2-5`);
    max = Math.max(max, Number(m[2] ?? m[1]));
  }
  return max + 1;
}
