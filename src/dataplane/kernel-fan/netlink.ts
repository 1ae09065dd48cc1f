// rtnetlink messages for the kernel Fan dataplane, built as bytes.
//
// Canonical's out-of-tree Fan patch ("UBUNTU: SAUCE: fan: tunnel multiple
// mapping mode (v3)", Jay Vosburgh, 2015, carried in Ubuntu kernels) extends the `ipip` link kind: a tunnel with no remote address may carry a
// fan map, and then picks each packet's outer destination from its inner
// one. The map travels in IFLA_INFO_DATA of an RTM_NEWLINK as
//
//   IFLA_IPTUN_FAN_MAP (33, nested)
//     IFLA_FAN_MAPPING (1) = struct ip_tunnel_fan_map   (one per mapping)
//
//   struct ip_tunnel_fan_map {     // 12 bytes; `struct ifla_fan_map` in some
//     __be32 underlay;             //   trees, same layout
//     __be32 overlay;
//     __u16  underlay_prefix;      // host byte order
//     __u16  overlay_prefix;       // host byte order
//   };
//
// Sources read:
// - Ubuntu's include/uapi/linux/if_tunnel.h: `__IFLA_IPTUN_VENDOR_BREAK,
//   IFLA_IPTUN_FAN_MAP = 33`, `enum { IFLA_FAN_UNSPEC, IFLA_FAN_MAPPING }`,
//   and the struct above.
// - Ubuntu's net/ipv4/ipip.c, in an Ubuntu OEM tree recent enough to use
//   struct rtnl_newlink_params (anthonywong/ubuntu-oem-kernel-mirror):
//   ipip_policy has `[IFLA_IPTUN_FAN_MAP] = { .type = NLA_NESTED }`;
//   ipip_netlink_fan() walks it with nla_for_each_nested and hands each
//   payload to ipip_fan_set_map(), which reads the prefixes directly
//   (inet_make_mask(map->overlay_prefix): no byte swap, so host order) and
//   the addresses with ntohl. It returns EINVAL when the tunnel also has a
//   remote address, when host bits are set, and for any prefixes other than
//   overlay /8 over underlay /16 (that version keeps a 256-entry table
//   indexed by the overlay's first octet). An older ipip.c with the same
//   patch (a list of struct ip_fan_map, ipip_fan_add_map) took any prefixes.
//   An all-zero mapping flushes the map.
// - Ubuntu's iproute2 patch, as carried by NixOS/nixpkgs
//   pkgs/os-specific/linux/iproute/1001-ubuntu-poc-fan-driver-v3.patch:
//   `ip link ... type ipip fan-map OVERLAY/LEN:UNDERLAY/LEN ...` adds the
//   nest with addattr_nest (no NLA_F_NESTED flag) and one addattr_l of
//   IFLA_FAN_MAPPING per word; this module builds the same bytes.
//
// The patch also registers the sysctl net/fan/version (= 3), in the initial
// network namespace only: a hint, not a proof (probe.ts reads a map back).
//
// Everything here is a pure function over Uint8Array: the addon's
// netlinkRequest() sends the bytes, parseAck() reads the answer.
import { constants as osConstants, endianness } from 'node:os';
import { formatCidr, type Cidr } from '../../fan/ipv4.js';
import { buildMessage, type Attr } from '../../host/netlink/codec.js';

// ---------------------------------------------------------------------------
// Constants, with the uapi header each comes from.

// include/uapi/linux/netlink.h
/** sizeof(struct nlmsghdr): u32 nlmsg_len, u16 nlmsg_type, u16 nlmsg_flags, u32 nlmsg_seq, u32 nlmsg_pid. */
export const NLMSG_HDRLEN = 16;
/** sizeof(struct nlattr) / struct rtattr: u16 nla_len, u16 nla_type. */
export const NLA_HDRLEN = 4;
/** NLMSG_ALIGNTO / NLA_ALIGNTO: messages and attributes start on 4-byte boundaries. */
export const NLA_ALIGNTO = 4;
export const NLMSG_NOOP = 0x1;
/** Error or ACK: payload is struct nlmsgerr { int error; struct nlmsghdr msg; }. */
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
/** With RTM_NEWLINK: fail with EEXIST if the device exists. */
export const NLM_F_EXCL = 0x200;
/** With RTM_NEWLINK: create the device if it does not exist. */
export const NLM_F_CREATE = 0x400;
/** On an NLMSG_ERROR reply: the echoed request was cut to its header. */
export const NLM_F_CAPPED = 0x100;
/** On an NLMSG_ERROR reply: extended-ACK attributes follow (NETLINK_EXT_ACK). */
export const NLM_F_ACK_TLVS = 0x200;
/** enum nlmsgerr_attrs: NLMSGERR_ATTR_MSG, a NUL-terminated error string. */
export const NLMSGERR_ATTR_MSG = 1;

// include/uapi/linux/rtnetlink.h
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
/** sizeof(struct ifinfomsg): u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change. */
export const IFINFOMSG_LEN = 16;

// include/uapi/linux/if_link.h
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINKINFO = 18;
/** Inside IFLA_LINKINFO. */
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;

// include/uapi/linux/if_tunnel.h (upstream enum, IFLA_IPTUN_*)
/** u32 ifindex of the underlay device the tunnel is bound to. */
export const IFLA_IPTUN_LINK = 1;
/** __be32 local address of the tunnel. */
export const IFLA_IPTUN_LOCAL = 2;
/** u8; 0 = inherit the inner packet's TTL. */
export const IFLA_IPTUN_TTL = 4;
/** u8; 1 = set DF on outer headers (path MTU discovery). Also the default when absent. */
export const IFLA_IPTUN_PMTUDISC = 10;
// include/uapi/linux/if_tunnel.h, Ubuntu SAUCE only
/** Nested list of IFLA_FAN_MAPPING. Placed past __IFLA_IPTUN_VENDOR_BREAK. */
export const IFLA_IPTUN_FAN_MAP = 33;
/** Inside IFLA_IPTUN_FAN_MAP: one struct ip_tunnel_fan_map. */
export const IFLA_FAN_MAPPING = 1;
/** sizeof(struct ip_tunnel_fan_map). */
export const FAN_MAP_LEN = 12;

/** nla_type bits that are flags (NLA_F_NESTED, NLA_F_NET_BYTEORDER), not the type. */
const NLA_TYPE_MASK = 0x3fff;

/** IFNAMSIZ - 1 (include/uapi/linux/if.h). */
const IFNAME_MAX = 15;

// nlmsghdr, ifinfomsg and nlattr fields are in host byte order.
const LE = endianness() === 'LE';

const align = (n: number) => (n + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);

function u8(v: number): Uint8Array {
  return Uint8Array.of(v);
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, LE);
  return b;
}

/** A NUL-terminated string (NLA_STRING / NLA_NUL_STRING both accept it). */
function cstr(s: string): Uint8Array {
  const enc = new TextEncoder().encode(s);
  const b = new Uint8Array(enc.length + 1);
  b.set(enc);
  return b;
}

/** nlmsghdr + ifinfomsg (AF_UNSPEC, index 0: the device is named by IFLA_IFNAME) + attributes. */
function linkMessage(type: number, flags: number, seq: number, attrs: Attr[]): Uint8Array {
  // ifinfomsg stays zero: family AF_UNSPEC, type, index 0, flags, change.
  return buildMessage(type, flags, seq, new Uint8Array(IFINFOMSG_LEN), attrs);
}

// ---------------------------------------------------------------------------
// Argument checks (errors name the argument and what would be accepted).

function checkName(name: string): void {
  const n = new TextEncoder().encode(name).length;
  // dev_valid_name() in net/core/dev.c.
  if (n === 0 || n > IFNAME_MAX || name === '.' || name === '..' || /[/:\s\0]/.test(name)) {
    throw new RangeError(`interface name ${JSON.stringify(name)} is invalid: use 1-${IFNAME_MAX} bytes ` +
      'without "/", ":", NUL or whitespace');
  }
}

function checkU32(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${what} = ${v} is not a 32-bit unsigned integer`);
  }
}

function checkCidr(what: string, c: Cidr): void {
  checkU32(`${what} network`, c.network);
  if (!Number.isInteger(c.prefix) || c.prefix < 0 || c.prefix > 32) {
    throw new RangeError(`${what} prefix /${c.prefix} is outside /0../32`);
  }
  const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
  if (((c.network & ~mask) >>> 0) !== 0) {
    // The kernel answers EINVAL (ipip_fan_set_map); say why here instead.
    throw new RangeError(`${what} ${formatCidr(c)} has host bits set; ` +
      `use ${formatCidr({ network: (c.network & mask) >>> 0, prefix: c.prefix })}`);
  }
}

// ---------------------------------------------------------------------------
// Messages

export interface FanLinkOptions {
  /** 'new' creates the device (fails with EEXIST if it exists); 'change' adds the map to an existing ipip device such as tunl0. */
  readonly op: 'new' | 'change';
  readonly name: string;
  readonly overlay: Cidr;
  readonly underlay: Cidr;
  /** ifindex of the underlay device (IFLA_IPTUN_LINK); unbound when absent. */
  readonly underlayDev?: number;
  readonly mtu?: number;
  readonly seq: number;
}

/** struct ip_tunnel_fan_map for one mapping: addresses big-endian, prefixes host order. */
export function fanMapStruct(overlay: Cidr, underlay: Cidr): Uint8Array {
  const b = new Uint8Array(FAN_MAP_LEN);
  const v = new DataView(b.buffer);
  v.setUint32(0, underlay.network, false);   // __be32 underlay
  v.setUint32(4, overlay.network, false);    // __be32 overlay
  v.setUint16(8, underlay.prefix, LE);       // __u16 underlay_prefix
  v.setUint16(10, overlay.prefix, LE);       // __u16 overlay_prefix
  return b;
}

/**
 * RTM_NEWLINK for an ipip device carrying one fan mapping: what
 * `ip link add NAME type ipip [dev UNDERLAY] ttl inherit pmtudisc fan-map
 * OVERLAY:UNDERLAY` sends with Ubuntu's iproute2. With op 'change' the same
 * message without NLM_F_CREATE|NLM_F_EXCL sets the map on an existing ipip
 * device (fanctl does this to tunl0). The kernel answers with an ACK or an
 * error (see parseAck). Beware: a kernel with ipip but without the Fan
 * patch ACKs this message and creates a plain ipip device, because attribute
 * 33 is above its IFLA_IPTUN_MAX and IFLA_INFO_DATA is parsed non-strictly
 * (nla_parse_nested_deprecated skips types above maxtype). Only reading
 * the map back proves it (probe.ts).
 */
export function fanLinkMessage(opts: FanLinkOptions): Uint8Array {
  checkName(opts.name);
  checkCidr('overlay', opts.overlay);
  checkCidr('underlay', opts.underlay);
  checkU32('seq', opts.seq);
  if (opts.underlayDev !== undefined) checkU32('underlayDev', opts.underlayDev);
  if (opts.mtu !== undefined) checkU32('mtu', opts.mtu);

  const data: Attr[] = [];
  if (opts.underlayDev !== undefined) data.push({ type: IFLA_IPTUN_LINK, payload: u32(opts.underlayDev) });
  data.push(
    { type: IFLA_IPTUN_TTL, payload: u8(0) },
    { type: IFLA_IPTUN_PMTUDISC, payload: u8(1) },
    { type: IFLA_IPTUN_FAN_MAP, nested: [{ type: IFLA_FAN_MAPPING, payload: fanMapStruct(opts.overlay, opts.underlay) }] },
  );
  const attrs: Attr[] = [{ type: IFLA_IFNAME, payload: cstr(opts.name) }];
  if (opts.mtu !== undefined) attrs.push({ type: IFLA_MTU, payload: u32(opts.mtu) });
  attrs.push({
    type: IFLA_LINKINFO,
    nested: [
      { type: IFLA_INFO_KIND, payload: cstr('ipip') },
      { type: IFLA_INFO_DATA, nested: data },
    ],
  });
  const flags = NLM_F_REQUEST | NLM_F_ACK | (opts.op === 'new' ? NLM_F_CREATE | NLM_F_EXCL : 0);
  return linkMessage(RTM_NEWLINK, flags, opts.seq, attrs);
}

/** RTM_DELLINK of the device `name`, with an ACK requested. ENODEV when there is none. */
export function deleteLinkMessage(name: string, seq: number): Uint8Array {
  checkName(name);
  checkU32('seq', seq);
  return linkMessage(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq, [{ type: IFLA_IFNAME, payload: cstr(name) }]);
}

export interface Ack {
  /** 0 for an ACK, else the positive errno (as in os.constants.errno). */
  readonly errno: number;
  /** nlmsg_seq of the reply: the request's seq. */
  readonly seq: number;
  /** The kernel's extended-ACK message (NLMSGERR_ATTR_MSG), e.g. "Unknown device type". */
  readonly message?: string;
}

/**
 * Reads the NLMSG_ERROR reply to a request sent with NLM_F_ACK. Throws when
 * the bytes are not one: a short or inconsistent header, or another type.
 */
export function parseAck(buf: Uint8Array): Ack {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < NLMSG_HDRLEN + 4) throw new Error(`netlink reply of ${buf.length} bytes is too short for an NLMSG_ERROR`);
  const len = view.getUint32(0, LE);
  const type = view.getUint16(4, LE);
  const flags = view.getUint16(6, LE);
  const seq = view.getUint32(8, LE);
  if (len < NLMSG_HDRLEN + 4 || len > buf.length) {
    throw new Error(`netlink reply: nlmsg_len ${len} does not fit the ${buf.length} bytes received`);
  }
  if (type !== NLMSG_ERROR) throw new Error(`netlink reply: expected NLMSG_ERROR (2), got message type ${type}`);
  const error = view.getInt32(NLMSG_HDRLEN, LE);
  const ack: { errno: number; seq: number; message?: string } = { errno: error === 0 ? 0 : -error, seq };
  if (flags & NLM_F_ACK_TLVS) {
    // struct nlmsgerr, then the echoed request (just its header when
    // capped), then attributes: include/uapi/linux/netlink.h.
    let off = NLMSG_HDRLEN + 4;
    if (off + NLMSG_HDRLEN <= len) {
      const echoed = view.getUint32(off, LE);
      off += flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align(echoed);
    }
    while (off + NLA_HDRLEN <= len) {
      const alen = view.getUint16(off, LE);
      const atype = view.getUint16(off + 2, LE) & 0x3fff;
      if (alen < NLA_HDRLEN || off + alen > len) break;
      if (atype === NLMSGERR_ATTR_MSG) {
        let end = off + alen;
        while (end > off + NLA_HDRLEN && buf[end - 1] === 0) end--;
        ack.message = new TextDecoder().decode(buf.subarray(off + NLA_HDRLEN, end));
      }
      off += align(alen);
    }
  }
  return ack;
}

/**
 * The `ip link` words for the same mapping with Ubuntu's patched iproute2,
 * for logs and docs: ['type', 'ipip', 'fan-map', '250.0.0.0/8:172.16.0.0/16'].
 * The syntax is OVERLAY:UNDERLAY (fan_parse_map in the iproute2 patch).
 */
export function fanMapIpArgs(overlay: Cidr, underlay: Cidr): string[] {
  return ['type', 'ipip', 'fan-map', `${formatCidr(overlay)}:${formatCidr(underlay)}`];
}

// ---------------------------------------------------------------------------
// Maps on an existing device, read-back, and the probe device.

/** One fan mapping as the kernel holds it. */
export interface FanMapping {
  readonly overlay: Cidr;
  readonly underlay: Cidr;
}

/**
 * RTM_NEWLINK (change) of the existing ipip device `name` that adds or
 * deletes fan mappings, as `fanctl` does on tunl0 through Ubuntu's `ip link
 * change tunl0 type ipip fan-map O:U`. The patch's ipip_fan_add_map(): a
 * mapping with underlay 0 deletes the map of that overlay (ENOENT when there
 * is none), any other one is added (EEXIST when the overlay has one). Only
 * the map travels: on the per-namespace fallback device tunl0 the kernel
 * ignores every other tunnel parameter (ip_tunnel_changelink() returns
 * before it reads them), and it answers EINVAL when the device is left with
 * no map at all, after removing it (see deleteLastMapIsEinval).
 */
export function fanMapChangeMessage(name: string, op: 'add' | 'del', maps: readonly FanMapping[], seq: number): Uint8Array {
  checkName(name);
  checkU32('seq', seq);
  if (maps.length === 0) throw new RangeError('fanMapChangeMessage: no mappings given');
  const entries: Attr[] = maps.map((m) => {
    checkCidr('overlay', m.overlay);
    if (op === 'add') checkCidr('underlay', m.underlay);
    const underlay = op === 'add' ? m.underlay : { network: 0, prefix: 0 };
    return { type: IFLA_FAN_MAPPING, payload: fanMapStruct(m.overlay, underlay) };
  });
  return linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, [
    { type: IFLA_IFNAME, payload: cstr(name) },
    { type: IFLA_LINKINFO, nested: [
      { type: IFLA_INFO_KIND, payload: cstr('ipip') },
      { type: IFLA_INFO_DATA, nested: [{ type: IFLA_IPTUN_FAN_MAP, nested: entries }] },
    ] },
  ]);
}

/**
 * RTM_NEWLINK creating a throw-away ipip device carrying one fan mapping:
 * the behavioural proof of a Fan kernel (see probe.ts). It is bound to `link`
 * and has the local address `local` so that its parameters differ from
 * tunl0's (all zero) and from every other probe's: ip_tunnel_newlink()
 * refuses a second tunnel with the same local/remote/link with EEXIST. It is
 * never brought up, so it receives nothing (ip_tunnel_lookup() skips devices
 * that are down) and sends nothing.
 */
export function probeLinkMessage(name: string, link: number, local: number, map: FanMapping, seq: number): Uint8Array {
  checkName(name);
  checkU32('link', link);
  checkU32('local', local);
  checkU32('seq', seq);
  checkCidr('overlay', map.overlay);
  checkCidr('underlay', map.underlay);
  const be32 = new Uint8Array(4);
  new DataView(be32.buffer).setUint32(0, local, false);
  return linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, [
    { type: IFLA_IFNAME, payload: cstr(name) },
    { type: IFLA_LINKINFO, nested: [
      { type: IFLA_INFO_KIND, payload: cstr('ipip') },
      { type: IFLA_INFO_DATA, nested: [
        { type: IFLA_IPTUN_LINK, payload: u32(link) },
        { type: IFLA_IPTUN_LOCAL, payload: be32 },
        { type: IFLA_IPTUN_FAN_MAP, nested: [{ type: IFLA_FAN_MAPPING, payload: fanMapStruct(map.overlay, map.underlay) }] },
      ] },
    ] },
  ]);
}

/**
 * RTM_GETLINK of one device by name. Sent without NLM_F_ACK: the kernel
 * answers with one RTM_NEWLINK describing the device (parseLinkReply), or
 * with NLMSG_ERROR (ENODEV when there is none).
 */
export function getLinkMessage(name: string, seq: number): Uint8Array {
  checkName(name);
  checkU32('seq', seq);
  return linkMessage(RTM_GETLINK, NLM_F_REQUEST, seq, [{ type: IFLA_IFNAME, payload: cstr(name) }]);
}

/** What a RTM_GETLINK reply says about the device, as far as the Fan needs it. */
export interface LinkReply {
  readonly index: number;
  readonly name: string | undefined;
  /** IFLA_INFO_KIND, e.g. "ipip". */
  readonly kind: string | undefined;
  /** IFLA_IPTUN_FAN_MAP read back; [] when the device has no map (or the kernel no Fan patch). */
  readonly fanMaps: FanMapping[];
}

/** The attributes of one level, in order: type (flags masked off) and payload. */
function attrs(buf: Uint8Array, start: number, end: number): { type: number; payload: Uint8Array }[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: { type: number; payload: Uint8Array }[] = [];
  let off = start;
  while (off + NLA_HDRLEN <= end) {
    const len = view.getUint16(off, LE);
    if (len < NLA_HDRLEN || off + len > end) throw new Error(`netlink reply: attribute at byte ${off} has length ${len}, beyond its container`);
    out.push({ type: view.getUint16(off + 2, LE) & NLA_TYPE_MASK, payload: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align(len);
  }
  return out;
}

function cstrOf(b: Uint8Array): string {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return new TextDecoder().decode(b.subarray(0, end));
}

/**
 * Reads the reply to getLinkMessage(). An NLMSG_ERROR reply throws a
 * NetlinkError with the errno (ENODEV: no such device). Walks
 * IFLA_LINKINFO -> IFLA_INFO_DATA -> IFLA_IPTUN_FAN_MAP -> IFLA_FAN_MAPPING,
 * each struct as ipip_fill_info() writes it (addresses big-endian, prefixes
 * host order).
 */
export function parseLinkReply(buf: Uint8Array): LinkReply {
  if (buf.length < NLMSG_HDRLEN) throw new Error(`netlink reply of ${buf.length} bytes is too short`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = view.getUint32(0, LE);
  const type = view.getUint16(4, LE);
  if (len < NLMSG_HDRLEN || len > buf.length) throw new Error(`netlink reply: nlmsg_len ${len} does not fit the ${buf.length} bytes received`);
  if (type === NLMSG_ERROR) {
    const ack = parseAck(buf);
    throw new NetlinkError(ack.errno, ack.message);
  }
  if (type !== RTM_NEWLINK) throw new Error(`netlink reply: expected RTM_NEWLINK (16), got message type ${type}`);
  if (len < NLMSG_HDRLEN + IFINFOMSG_LEN) throw new Error('netlink reply: RTM_NEWLINK without its ifinfomsg');
  const index = view.getInt32(NLMSG_HDRLEN + 4, LE);
  let name: string | undefined;
  let kind: string | undefined;
  const fanMaps: FanMapping[] = [];
  const base = buf.byteOffset;
  for (const a of attrs(buf, NLMSG_HDRLEN + IFINFOMSG_LEN, len)) {
    if (a.type === IFLA_IFNAME) name = cstrOf(a.payload);
    if (a.type !== IFLA_LINKINFO) continue;
    const at = a.payload.byteOffset - base;
    for (const li of attrs(buf, at, at + a.payload.length)) {
      if (li.type === IFLA_INFO_KIND) kind = cstrOf(li.payload);
      if (li.type !== IFLA_INFO_DATA) continue;
      const dat = li.payload.byteOffset - base;
      for (const d of attrs(buf, dat, dat + li.payload.length)) {
        if (d.type !== IFLA_IPTUN_FAN_MAP) continue;
        const mat = d.payload.byteOffset - base;
        for (const m of attrs(buf, mat, mat + d.payload.length)) {
          if (m.type !== IFLA_FAN_MAPPING || m.payload.length < FAN_MAP_LEN) continue;
          const v = new DataView(m.payload.buffer, m.payload.byteOffset, FAN_MAP_LEN);
          fanMaps.push({
            underlay: { network: v.getUint32(0, false), prefix: v.getUint16(8, LE) },
            overlay: { network: v.getUint32(4, false), prefix: v.getUint16(10, LE) },
          });
        }
      }
    }
  }
  return { index, name, kind, fanMaps };
}

/** An rtnetlink request the kernel refused: `errno` is positive (os.constants.errno). */
export class NetlinkError extends Error {
  constructor(readonly errno: number, readonly kernelMessage?: string) {
    super(`${errnoName(errno)}${kernelMessage ? ` (${kernelMessage})` : ''}`);
  }
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

/** "EINVAL" for 22; "errno N" when the number has no name here. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** Same mapping (overlay and underlay networks and prefixes). */
export function sameMapping(a: FanMapping, b: FanMapping): boolean {
  return a.overlay.network === b.overlay.network && a.overlay.prefix === b.overlay.prefix
    && a.underlay.network === b.underlay.network && a.underlay.prefix === b.underlay.prefix;
}
