// The VXLAN half of the kernel Fan: a vxlan device carrying a fan map, as
// LXD built it for `fan.type: vxlan` (Ubuntu's iproute2: `ip link add NAME
// type vxlan id VNI dev UNDERLAY dstport 0 local ADDR fan-map O:U`), a port
// of the fan's bridge. The kernel picks each frame's outer destination from
// the inner IPv4 destination, or from an ARP request's target address
// (vxlan_fan_build_rdst() of the patch), and drops what maps nowhere.
//
// Netlink, as the patch defines it (read in ../shared/kernels/ubuntu-fan-6.1.patch):
//
//   include/uapi/linux/if_link.h   enum { ..., IFLA_VXLAN_VNIFILTER,
//                                          IFLA_VXLAN_FAN_MAP = 33, __IFLA_VXLAN_MAX }
//   drivers/net/vxlan/vxlan_core.c vxlan_nl2conf(): data[IFLA_VXLAN_FAN_MAP] walked with
//                                  nla_for_each_nested, each payload a struct ifla_fan_map
//                                  (the same 12 bytes as the ipip map, netlink.ts); an
//                                  underlay of 0 deletes, overlay and underlay 0 flush.
//                                  vxlan_fill_info() dumps the maps back the same way.
//
// Attribute 33 is the danger: on a mainline kernel it is not the fan map.
// Up to 6.11 it is above IFLA_VXLAN_MAX and skipped silently (a plain vxlan
// device with no map, which would flood nothing and forward nothing); from
// 6.12 it is IFLA_VXLAN_RESERVED_BITS (an 8-byte field the kernel refuses
// with ERANGE at our length, and would take at another). So nothing here
// sends it without a VxlanFanProof, and the only way to get one is
// probeVxlanFan(), which itself runs only once the ipip fan map has been
// proven on this kernel by reading it back (probe.ts) -- the same patch series
// adds both -- and then proves the vxlan map the same way: a throw-away
// device, read back, deleted.
import { constants } from 'node:os';
import {
  buildMessage, decodeError, parseAttrs, parseMessages, IFINFOMSG_LEN, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND,
  IFLA_LINKINFO, IFLA_MTU, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, type Attr,
} from '../../host/netlink/codec.js';
import { errnoName, fanMapStruct, sameMapping, type FanMapping } from './netlink.js';
import type { FanEvidence } from './probe.js';
import { formatCidr, formatIpv4 } from '../../fan/ipv4.js';

// include/uapi/linux/if_link.h (IFLA_VXLAN_*)
/** u32 VNI. */
export const IFLA_VXLAN_ID = 1;
/** u32 ifindex of the underlay device. */
export const IFLA_VXLAN_LINK = 3;
/** __be32 local address. */
export const IFLA_VXLAN_LOCAL = 4;
/** __be16 UDP destination port (0: the kernel's default, 8472). */
export const IFLA_VXLAN_PORT = 15;
/** Ubuntu SAUCE only: nested IFLA_FAN_MAPPING. On mainline 6.12+ the same number is IFLA_VXLAN_RESERVED_BITS. */
export const IFLA_VXLAN_FAN_MAP = 33;
/** Inside IFLA_VXLAN_FAN_MAP: one struct ifla_fan_map. */
export const IFLA_FAN_MAPPING = 1;
const FAN_MAP_LEN = 12;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

declare const proven: unique symbol;
/**
 * This kernel keeps a fan map on a vxlan device and gives it back: the
 * only licence to send attribute 33 in a vxlan message. Made by
 * probeVxlanFan() alone.
 */
export interface VxlanFanProof {
  readonly [proven]: true;
  readonly evidence: string;
}

/** The proof this process holds, once probeVxlanFan() succeeded (the daemon probes before ensure runs). */
let held: VxlanFanProof | undefined;
export function heldVxlanFanProof(): VxlanFanProof | undefined { return held; }
/** For tests: forget the proof (a new kernel, as it were). */
export function forgetVxlanFanProof(): void { held = undefined; }

const u32 = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0, LE); return b; };
const be32 = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0, false); return b; };
const be16 = (v: number) => { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v, false); return b; };
const cstr = (s: string) => { const e = new TextEncoder().encode(s); const b = new Uint8Array(e.length + 1); b.set(e); return b; };
const ifinfo = () => new Uint8Array(IFINFOMSG_LEN);

export interface VxlanFanLink {
  readonly name: string;
  readonly vni: number;
  /** UDP destination port (8472: the kernel's default, LXD's `dstport 0`). */
  readonly port: number;
  /** ifindex of the underlay device. */
  readonly link: number;
  /** Local underlay address (host order). */
  readonly local: number;
  readonly map: FanMapping;
  readonly mtu?: number;
}

function checkLink(l: VxlanFanLink): void {
  const n = new TextEncoder().encode(l.name).length;
  if (n === 0 || n > 15 || /[/:\s\0]/.test(l.name)) throw new RangeError(`interface name ${JSON.stringify(l.name)} is invalid`);
  if (!Number.isInteger(l.vni) || l.vni < 0 || l.vni > 0xffffff) throw new RangeError(`VNI ${l.vni} is outside 0..16777215`);
  if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535) throw new RangeError(`UDP port ${l.port} is outside 1..65535`);
  for (const [what, c] of [['overlay', l.map.overlay], ['underlay', l.map.underlay]] as const) {
    const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
    if (!Number.isInteger(c.prefix) || c.prefix < 1 || c.prefix > 32 || ((c.network & ~mask) >>> 0) !== 0) {
      throw new RangeError(`${what} ${formatCidr(c)} is not a network address with a prefix of /1../32`);
    }
  }
}

/**
 * RTM_NEWLINK creating a vxlan device with one fan mapping: the bytes
 * Ubuntu's `ip link add NAME type vxlan id VNI dev UNDERLAY dstport PORT
 * local ADDR fan-map O:U` sends. Needs the proof (see the top of this file).
 */
export function vxlanFanLinkMessage(proof: VxlanFanProof, l: VxlanFanLink, seq: number): Uint8Array {
  if (!proof?.evidence) throw new Error('IFLA_VXLAN_FAN_MAP is never sent to a kernel that has not proven it');
  return vxlanFanLinkBytes(l, seq);
}

/** The message itself; only the probe (after the ipip proof) and vxlanFanLinkMessage (with the vxlan proof) call it. */
function vxlanFanLinkBytes(l: VxlanFanLink, seq: number): Uint8Array {
  checkLink(l);
  const data: Attr[] = [
    { type: IFLA_VXLAN_ID, payload: u32(l.vni) },
    { type: IFLA_VXLAN_LINK, payload: u32(l.link) },
    { type: IFLA_VXLAN_LOCAL, payload: be32(l.local) },
    { type: IFLA_VXLAN_PORT, payload: be16(l.port) },
    { type: IFLA_VXLAN_FAN_MAP, nested: [{ type: IFLA_FAN_MAPPING, payload: fanMapStruct(l.map.overlay, l.map.underlay) }] },
  ];
  const attrs: Attr[] = [{ type: IFLA_IFNAME, payload: cstr(l.name) }];
  if (l.mtu !== undefined) attrs.push({ type: IFLA_MTU, payload: u32(l.mtu) });
  attrs.push({ type: IFLA_LINKINFO, nested: [{ type: IFLA_INFO_KIND, payload: cstr('vxlan') }, { type: IFLA_INFO_DATA, nested: data }] });
  return buildMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, ifinfo(), attrs);
}

/** RTM_GETLINK of one device by name (answered by one RTM_NEWLINK, or an error). */
export function getLink(name: string, seq: number): Uint8Array {
  return buildMessage(RTM_GETLINK, NLM_F_REQUEST, seq, ifinfo(), [{ type: IFLA_IFNAME, payload: cstr(name) }]);
}

export function deleteLink(name: string, seq: number): Uint8Array {
  return buildMessage(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfo(), [{ type: IFLA_IFNAME, payload: cstr(name) }]);
}

/** What a RTM_GETLINK reply says about a (vxlan) device. */
export interface VxlanLinkInfo {
  readonly index: number;
  readonly name: string | undefined;
  readonly kind: string | undefined;
  readonly vni?: number;
  readonly port?: number;
  readonly local?: number;
  readonly link?: number;
  /** Fan maps read back; [] when attribute 33 is absent or is not a list of maps (mainline's RESERVED_BITS is 8 bytes of flags). */
  readonly fanMaps: FanMapping[];
}

export class LinkError extends Error {
  constructor(readonly errno: number, message?: string) { super(`${errnoName(errno)}${message ? ` (${message})` : ''}`); }
}

/**
 * Reads the reply to getLink(). Throws a LinkError for an error reply
 * (ENODEV: no such device). Never throws on what attribute 33 holds: it is
 * the fan map only when it is exactly a list of 16-byte IFLA_FAN_MAPPING
 * attributes on a vxlan device.
 */
export function parseVxlanLink(buf: Uint8Array): VxlanLinkInfo {
  const m = parseMessages(buf)[0];
  if (!m) throw new Error(`netlink reply of ${buf.length} bytes holds no message`);
  if (m.type === NLMSG_ERROR) {
    const e = decodeError(m);
    throw new LinkError(e?.errno ?? constants.errno.EIO, e?.message);
  }
  if (m.type !== RTM_NEWLINK || m.payload.length < IFINFOMSG_LEN) throw new Error(`netlink reply: expected RTM_NEWLINK, got type ${m.type}`);
  const index = new DataView(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength).getInt32(4, LE);
  const a = parseAttrs(m.payload, IFINFOMSG_LEN);
  const s = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b.subarray(0, b.indexOf(0) >= 0 ? b.indexOf(0) : b.length)) : undefined);
  const info = a.get(IFLA_LINKINFO);
  const li = info ? parseAttrs(info, 0) : undefined;
  const kind = s(li?.get(IFLA_INFO_KIND));
  const out: { index: number; name: string | undefined; kind: string | undefined; vni?: number; port?: number; local?: number; link?: number; fanMaps: FanMapping[] } =
    { index, name: s(a.get(IFLA_IFNAME)), kind, fanMaps: [] };
  const data = li?.get(IFLA_INFO_DATA);
  if (kind !== 'vxlan' || !data) return out;
  const d = parseAttrs(data, 0);
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const id = d.get(IFLA_VXLAN_ID); if (id?.length === 4) out.vni = view(id).getUint32(0, LE);
  const port = d.get(IFLA_VXLAN_PORT); if (port?.length === 2) out.port = view(port).getUint16(0, false);
  const local = d.get(IFLA_VXLAN_LOCAL); if (local?.length === 4) out.local = view(local).getUint32(0, false);
  const link = d.get(IFLA_VXLAN_LINK); if (link?.length === 4) out.link = view(link).getUint32(0, LE);
  const fan = d.get(IFLA_VXLAN_FAN_MAP);
  if (fan && fan.length % 16 === 0) {
    const maps: FanMapping[] = [];
    const v = view(fan);
    for (let off = 0; off < fan.length; off += 16) {
      if (v.getUint16(off, LE) !== 4 + FAN_MAP_LEN || (v.getUint16(off + 2, LE) & 0x3fff) !== IFLA_FAN_MAPPING) return out;
      maps.push({
        underlay: { network: v.getUint32(off + 4, false), prefix: v.getUint16(off + 12, LE) },
        overlay: { network: v.getUint32(off + 8, false), prefix: v.getUint16(off + 14, LE) },
      });
    }
    out.fanMaps = maps;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The probe

export interface VxlanProbeIo {
  /** One rtnetlink request in fand's namespace; the kernel's first reply datagram. */
  request(msg: Uint8Array): Uint8Array;
  linkNames(): Promise<string[]>;
  /** /proc/sys/net/fan/vxlan (4 with the patch; the initial namespace only), undefined when absent. */
  fanVxlanVersion(): Promise<string | undefined>;
  pidAlive(pid: number): boolean;
}

export interface VxlanFanEvidence {
  readonly proven: boolean;
  readonly evidence: string;
  readonly leftovers: readonly string[];
  readonly staleRemoved: readonly string[];
  readonly proof?: VxlanFanProof;
}

export const VXLAN_PROBE_PREFIX = 'fanvxp';
/** The probe's map: class E over TEST-NET-2, never a real fan's. */
export const VXLAN_PROBE_MAP: FanMapping = { overlay: { network: 0xf1000000, prefix: 8 }, underlay: { network: 0xc6336400, prefix: 24 } };
/**
 * The probe device's UDP port: 9 (discard). Two vxlan devices may not share
 * a VNI and port (EEXIST), and the probe must never collide with a fan's
 * (8472, or the one configured); the device is never brought up, so nothing
 * binds the port.
 */
export const VXLAN_PROBE_PORT = 9;

/**
 * Proves the vxlan fan map on this kernel, in this namespace: a vxlan device
 * with a map, read back, deleted whatever happened. Sends attribute 33 only
 * after `ipip` proved the Fan patch; otherwise answers unproven without
 * touching the kernel.
 */
export async function probeVxlanFan(io: VxlanProbeIo, opts: { pid: number; ipip: Pick<FanEvidence, 'proven'>; mayCreate: boolean; whyNot?: string }): Promise<VxlanFanEvidence> {
  const version = await io.fanVxlanVersion().catch(() => undefined);
  const hint = version !== undefined ? `/proc/sys/net/fan/vxlan = ${version}` : '/proc/sys/net/fan/vxlan absent';
  if (!opts.ipip.proven) {
    return { proven: false, evidence: `not probed: the ipip fan map is not proven here, and IFLA_VXLAN_FAN_MAP (33) is never sent to a kernel without the Fan patch (${hint})`, leftovers: [], staleRemoved: [] };
  }
  if (!opts.mayCreate) return { proven: false, evidence: `not probed: ${opts.whyNot ?? 'probing not allowed'}`, leftovers: [], staleRemoved: [] };
  const leftovers: string[] = [];
  const staleRemoved: string[] = [];
  for (const name of await io.linkNames()) {
    const m = new RegExp(`^${VXLAN_PROBE_PREFIX}(\\d+)$`).exec(name);
    if (!m || Number(m[1]) === opts.pid || io.pidAlive(Number(m[1]))) continue;
    const e = remove(io, name);
    if (e) leftovers.push(`${name} (${e})`); else staleRemoved.push(name);
  }
  const name = `${VXLAN_PROBE_PREFIX}${opts.pid}`;
  const mapText = `${formatCidr(VXLAN_PROBE_MAP.overlay)}:${formatCidr(VXLAN_PROBE_MAP.underlay)}`;
  const local = (0x7ffe0000 | (opts.pid & 0xffff)) >>> 0;
  // A VNI from the pid: concurrent probes of several fands differ.
  const vni = 0xfe0000 | (opts.pid & 0xffff);
  const ack = (() => {
    try {
      const r = parseMessages(io.request(vxlanFanLinkBytes({ name, vni, port: VXLAN_PROBE_PORT, link: 1, local, map: VXLAN_PROBE_MAP }, 1)))[0];
      return r ? decodeError(r) : undefined;
    } catch (e) {
      return { errno: -1, message: (e as Error).message };
    }
  })();
  if (!ack || ack.errno !== 0) {
    const what = !ack ? 'no answer' : ack.errno < 0 ? ack.message : `${errnoName(ack.errno)}${ack.message ? ` "${ack.message}"` : ''}`;
    const why = ack?.errno === constants.errno.EOPNOTSUPP ? ' (no vxlan support in this kernel)' : '';
    return { proven: false, evidence: `creating a vxlan device with fan-map ${mapText} failed: ${what}${why}; ${hint}`, leftovers, staleRemoved };
  }
  let proven = false;
  let evidence: string;
  try {
    const back = parseVxlanLink(io.request(getLink(name, 2)));
    proven = back.kind === 'vxlan' && back.fanMaps.some((m) => sameMapping(m, VXLAN_PROBE_MAP));
    evidence = proven
      ? `a vxlan device created with fan-map ${mapText} read it back (RTM_GETLINK, IFLA_VXLAN_FAN_MAP); ${hint}`
      : `the kernel created a vxlan device but kept no fan-map ${mapText} (read back: ${back.fanMaps.length} maps): no vxlan fan map in this kernel; ${hint}`;
  } catch (e) {
    evidence = `reading the probe device ${name} back failed: ${(e as Error).message}`;
  } finally {
    const e = remove(io, name);
    if (e) leftovers.push(`${name} (${e})`);
  }
  if (!proven) return { proven, evidence, leftovers, staleRemoved };
  const proof = { evidence } as VxlanFanProof;
  held = proof;
  return { proven, evidence, leftovers, staleRemoved, proof };
}

function remove(io: Pick<VxlanProbeIo, 'request'>, name: string): string | undefined {
  try {
    const r = parseMessages(io.request(deleteLink(name, 3)))[0];
    const e = r ? decodeError(r) : undefined;
    if (e && (e.errno === 0 || e.errno === constants.errno.ENODEV)) return undefined;
    return `RTM_DELLINK: ${e ? errnoName(e.errno) : 'no answer'}${e?.message ? ` "${e.message}"` : ''}`;
  } catch (e) {
    return `RTM_DELLINK: ${(e as Error).message}`;
  }
}

/** Words for logs and docs: the `ip link` of Ubuntu's iproute2 for the same device. */
export function vxlanFanIpArgs(l: VxlanFanLink, dev: string): string[] {
  return ['link', 'add', l.name, 'type', 'vxlan', 'id', String(l.vni), 'dev', dev, 'dstport', String(l.port),
    'local', formatIpv4(l.local), 'fan-map', `${formatCidr(l.map.overlay)}:${formatCidr(l.map.underlay)}`];
}
