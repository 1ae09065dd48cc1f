// rtnetlink messages as bytes: requests built, replies and events parsed.
// Pure functions over Uint8Array, no I/O (socket.ts moves the bytes).
//
// Everything the kernel sends is treated as untrusted input: the parsers
// never throw and never read outside the bytes they are given (fuzzed in
// test/netlink-codec.test.ts). A message or attribute whose length does not
// fit is where parsing of that container stops; a message too short for its
// fixed header decodes to undefined.
//
// Layouts and numbers are those of the kernel's uapi headers, cited per
// group below (include/uapi/linux/...). nlmsghdr, the fixed headers and
// attribute headers are in host byte order; IPv4 addresses inside
// attributes are in network byte order.
import { endianness } from 'node:os';

const LE = endianness() === 'LE';

// ---------------------------------------------------------------------------
// netlink.h
export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;
export const NLMSGERR_ATTR_MSG = 1;
/** Attribute type bits: the top two are NLA_F_NESTED and NLA_F_NET_BYTEORDER. */
const NLA_TYPE_MASK = 0x3fff;
export const NETLINK_ROUTE = 0;
export const NETLINK_CONNECTOR = 11;

// rtnetlink.h: message types
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;
export const RTM_GETRULE = 34;
export const RTM_NEWNEXTHOP = 104;
export const RTM_DELNEXTHOP = 105;
export const RTM_GETNEXTHOP = 106;

// rtnetlink.h: multicast groups (enum rtnetlink_groups)
export const RTNLGRP_LINK = 1;
export const RTNLGRP_NEIGH = 3;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV4_ROUTE = 7;
export const RTNLGRP_IPV4_RULE = 8;
export const RTNLGRP_NEXTHOP = 32;

// socket.h
export const AF_UNSPEC = 0;
export const AF_INET = 2;
/** Bridge port messages (RTM_NEWLINK/RTM_DELLINK with ifi_family AF_BRIDGE: br_ifinfo_notify, net/bridge/br_netlink.c). */
export const AF_BRIDGE = 7;

// if.h: net_device_flags
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;

// if_link.h
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_MASTER = 10;
export const IFLA_TXQLEN = 13;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_STATS64 = 23;
/** s32: the namespace id of the peer's network namespace (a veth whose other end lives elsewhere). */
export const IFLA_LINK_NETNSID = 37;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_TUN_TYPE = 3;
export const IFLA_TUN_PI = 4;
export const IFLA_TUN_VNET_HDR = 5;
export const IFLA_TUN_PERSIST = 6;
export const IFLA_TUN_MULTI_QUEUE = 7;
/** if_tun.h: IFF_TUN / IFF_TAP as IFLA_TUN_TYPE. */
const IFF_TUN = 1;
/** ARPHRD_ETHER (if_arp.h): the device has an Ethernet address. */
export const ARPHRD_ETHER = 1;
/** RFC 2863 operational states (IF_OPER_*, if.h). */
export const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;

// if_addr.h
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;

// rtnetlink.h: routes
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_TABLE = 15;
export const RTA_NH_ID = 30;
export const RT_TABLE_MAIN = 254;
export const RTN_UNICAST = 1;

// neighbour.h
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
/** u32 ifindex of the bridge an FDB entry belongs to (AF_BRIDGE). */
export const NDA_MASTER = 9;
/** ndm_flags: the entry is in a device's own table, not the bridge's (include/uapi/linux/neighbour.h). */
export const NTF_SELF = 0x02;
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

// fib_rules.h
export const FRA_IIFNAME = 3;
export const FRA_PRIORITY = 6;
export const FRA_TABLE = 15;
export const FR_ACT_NAMES: Record<number, string> = {
  1: 'to_tbl', 2: 'goto', 3: 'nop', 6: 'blackhole', 7: 'unreachable', 8: 'prohibit',
};

// nexthop.h
export const NHA_ID = 1;
export const NHA_BLACKHOLE = 4;
export const NHA_OIF = 5;
export const NHA_GATEWAY = 6;

// Fixed header sizes: struct ifinfomsg, ifaddrmsg, rtmsg, ndmsg, fib_rule_hdr, nhmsg.
export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;
export const RTMSG_LEN = 12;
export const NDMSG_LEN = 12;
export const FIB_RULE_HDR_LEN = 12;
export const NHMSG_LEN = 8;
/** struct rtnl_link_stats64: 25 u64 counters in current kernels; the first eight are read. */
const STATS64_MIN = 8 * 8;

const align4 = (n: number) => (n + 3) & ~3;

// ---------------------------------------------------------------------------
// Building

/**
 * An attribute: bytes, or attributes nested in it (laid out back to back, as
 * iproute2's addattr_nest; NLA_F_NESTED is not set, which every rtnetlink
 * family accepts).
 */
export type Attr = { readonly type: number; readonly payload: Uint8Array } | { readonly type: number; readonly nested: readonly Attr[] };

function attrSize(a: Attr): number {
  return NLA_HDRLEN + ('payload' in a ? a.payload.length : a.nested.reduce((s, c) => s + align4(attrSize(c)), 0));
}

/** Writes `a` at `off` and returns the aligned end. Padding stays zero. */
function writeAttr(view: DataView, bytes: Uint8Array, off: number, a: Attr): number {
  const len = attrSize(a);
  if (len > 0xffff) throw new RangeError(`netlink attribute ${a.type} is ${len} bytes, more than nla_len can hold`);
  view.setUint16(off, len, LE);
  view.setUint16(off + 2, a.type, LE);
  if ('payload' in a) bytes.set(a.payload, off + NLA_HDRLEN);
  else { let p = off + NLA_HDRLEN; for (const c of a.nested) p = writeAttr(view, bytes, p, c); }
  return off + align4(len);
}

/** One message: nlmsghdr, the fixed header bytes, then attributes (each 4-aligned, padding zero). */
export function buildMessage(type: number, flags: number, seq: number, header: Uint8Array, attrs: readonly Attr[] = []): Uint8Array {
  let total = NLMSG_HDRLEN + align4(header.length);
  for (const a of attrs) total += align4(attrSize(a));
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, total, LE);
  view.setUint16(4, type, LE);
  view.setUint16(6, flags, LE);
  view.setUint32(8, seq >>> 0, LE);
  view.setUint32(12, 0, LE);
  bytes.set(header, NLMSG_HDRLEN);
  let off = NLMSG_HDRLEN + align4(header.length);
  for (const a of attrs) off = writeAttr(view, bytes, off, a);
  return bytes;
}

/** A dump request: every object of `type` (RTM_GET*), with a zeroed fixed header of `headerLen` bytes whose first byte is the family. */
export function dumpRequest(type: number, family: number, headerLen: number, seq: number): Uint8Array {
  const header = new Uint8Array(headerLen);
  header[0] = family;
  return buildMessage(type, NLM_F_REQUEST | NLM_F_DUMP, seq, header);
}

/** RTM_GETLINK of one device by name; the answer is one RTM_NEWLINK (with IFLA_STATS64) or an error. */
export function getLinkRequest(name: string, seq: number): Uint8Array {
  const enc = new TextEncoder().encode(name);
  const payload = new Uint8Array(enc.length + 1);
  payload.set(enc);
  return buildMessage(RTM_GETLINK, NLM_F_REQUEST, seq, new Uint8Array(IFINFOMSG_LEN), [{ type: IFLA_IFNAME, payload }]);
}

// ---------------------------------------------------------------------------
// Parsing

export interface Message {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  /** The bytes after nlmsghdr, up to nlmsg_len (a view, not a copy). */
  readonly payload: Uint8Array;
}

const viewOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/**
 * The messages in one datagram. Stops at the first header that does not
 * fit (nlmsg_len shorter than a header or longer than what is left).
 */
export function parseMessages(buf: Uint8Array): Message[] {
  const out: Message[] = [];
  const view = viewOf(buf);
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = view.getUint32(off, LE);
    if (len < NLMSG_HDRLEN || len > buf.length - off) break;
    out.push({
      type: view.getUint16(off + 4, LE),
      flags: view.getUint16(off + 6, LE),
      seq: view.getUint32(off + 8, LE),
      pid: view.getUint32(off + 12, LE),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** Attributes from `start` to the end of `buf`, by type (the NLA_F_* bits cleared; the last of a type wins). */
export function parseAttrs(buf: Uint8Array, start: number): Map<number, Uint8Array> {
  const attrs = new Map<number, Uint8Array>();
  const view = viewOf(buf);
  let off = start;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = view.getUint16(off, LE);
    if (len < NLA_HDRLEN || len > buf.length - off) break;
    attrs.set(view.getUint16(off + 2, LE) & NLA_TYPE_MASK, buf.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
  return attrs;
}

const u8 = (a: Uint8Array | undefined) => (a && a.length >= 1 ? a[0]! : undefined);
const u32 = (a: Uint8Array | undefined) => (a && a.length >= 4 ? viewOf(a).getUint32(0, LE) : undefined);
/** An IPv4 address attribute (network byte order) as a host-order uint32. */
const ipv4 = (a: Uint8Array | undefined) => (a && a.length === 4 ? viewOf(a).getUint32(0, false) : undefined);
const u64 = (v: DataView, i: number) => Number(v.getBigUint64(i * 8, LE));

/** A NUL-terminated (or not) string attribute, decoded as UTF-8 without the NUL. */
function str(a: Uint8Array | undefined): string | undefined {
  if (!a) return undefined;
  const nul = a.indexOf(0);
  return new TextDecoder().decode(nul >= 0 ? a.subarray(0, nul) : a);
}

function mac(a: Uint8Array | undefined): string | undefined {
  if (!a || a.length !== 6) return undefined;
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** NLMSG_ERROR: 0 for an ACK, else the positive errno, and the extended-ACK text when there is one. */
export interface ErrorReply { readonly errno: number; readonly message?: string }

export function decodeError(m: Message): ErrorReply | undefined {
  if (m.type !== NLMSG_ERROR || m.payload.length < 4) return undefined;
  const error = viewOf(m.payload).getInt32(0, LE);
  const out: { errno: number; message?: string } = { errno: error === 0 ? 0 : Math.abs(error) };
  if (m.flags & NLM_F_ACK_TLVS && m.payload.length >= 4 + NLMSG_HDRLEN) {
    // struct nlmsgerr { int error; struct nlmsghdr msg; }, the echoed request
    // cut to its header when NLM_F_CAPPED, then the attributes.
    const echoed = viewOf(m.payload).getUint32(4, LE);
    const start = 4 + (m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(echoed));
    if (start <= m.payload.length) {
      const text = str(parseAttrs(m.payload, start).get(NLMSGERR_ATTR_MSG));
      if (text) out.message = text;
    }
  }
  return out;
}

export interface LinkStats {
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly rxErrors: number;
  readonly txErrors: number;
  readonly rxDropped: number;
  readonly txDropped: number;
}

export interface NlTunInfo { readonly type: 'tun' | 'tap'; readonly pi: boolean; readonly vnetHdr: boolean; readonly persist: boolean; readonly multiQueue: boolean }

/** RTM_NEWLINK / RTM_DELLINK. */
export interface NlLink {
  /** ifi_family: AF_UNSPEC for the device itself; AF_BRIDGE for a bridge's view of a port (an RTM_DELLINK of that kind is a port leaving, not a device going). */
  readonly family: number;
  readonly index: number;
  readonly name: string;
  /** ifi_flags (IFF_*). */
  readonly flags: number;
  /** IFF_UP: administratively up. */
  readonly up: boolean;
  /** IFLA_OPERSTATE in words ('up', 'down', 'lowerlayerdown', 'unknown', ...). */
  readonly operstate: string | undefined;
  readonly mtu: number;
  /** ifindex of the master (the bridge a port belongs to); 0 for none. */
  readonly master: number;
  readonly kind: string | undefined;
  /** Ethernet address (ARPHRD_ETHER only), lowercase with colons. */
  readonly mac: string | undefined;
  readonly txqueuelen: number | undefined;
  /** IFLA_LINK_NETNSID: set when the device's peer (a veth's other end) is in another namespace. */
  readonly linkNetnsId: number | undefined;
  readonly tun: NlTunInfo | undefined;
  readonly stats: LinkStats | undefined;
}

export function decodeLink(m: Message): NlLink | undefined {
  if ((m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) || m.payload.length < IFINFOMSG_LEN) return undefined;
  const v = viewOf(m.payload);
  const family = v.getUint8(0);
  const arphrd = v.getUint16(2, LE);
  const index = v.getInt32(4, LE);
  const flags = v.getUint32(8, LE);
  const a = parseAttrs(m.payload, IFINFOMSG_LEN);
  const name = str(a.get(IFLA_IFNAME));
  if (name === undefined) return undefined;
  const info = a.get(IFLA_LINKINFO);
  const linkinfo = info ? parseAttrs(info, 0) : undefined;
  const kind = str(linkinfo?.get(IFLA_INFO_KIND));
  let tun: NlTunInfo | undefined;
  const data = linkinfo?.get(IFLA_INFO_DATA);
  if (kind === 'tun' && data) {
    const d = parseAttrs(data, 0);
    tun = {
      type: u8(d.get(IFLA_TUN_TYPE)) === IFF_TUN ? 'tun' : 'tap',
      pi: !!u8(d.get(IFLA_TUN_PI)), vnetHdr: !!u8(d.get(IFLA_TUN_VNET_HDR)),
      persist: !!u8(d.get(IFLA_TUN_PERSIST)), multiQueue: !!u8(d.get(IFLA_TUN_MULTI_QUEUE)),
    };
  }
  const s = a.get(IFLA_STATS64);
  let stats: LinkStats | undefined;
  if (s && s.length >= STATS64_MIN) {
    const sv = viewOf(s);
    stats = {
      rxPackets: u64(sv, 0), txPackets: u64(sv, 1), rxBytes: u64(sv, 2), txBytes: u64(sv, 3),
      rxErrors: u64(sv, 4), txErrors: u64(sv, 5), rxDropped: u64(sv, 6), txDropped: u64(sv, 7),
    };
  }
  const oper = u8(a.get(IFLA_OPERSTATE));
  return {
    family, index, name, flags, up: (flags & IFF_UP) !== 0,
    operstate: oper === undefined ? undefined : OPER_STATES[oper] ?? String(oper),
    mtu: u32(a.get(IFLA_MTU)) ?? 0,
    master: u32(a.get(IFLA_MASTER)) ?? 0,
    kind,
    mac: arphrd === ARPHRD_ETHER ? mac(a.get(IFLA_ADDRESS)) : undefined,
    txqueuelen: u32(a.get(IFLA_TXQLEN)),
    linkNetnsId: u32(a.get(IFLA_LINK_NETNSID)),
    tun, stats,
  };
}

/** RTM_NEWADDR / RTM_DELADDR of an IPv4 address. */
export interface NlAddress {
  readonly index: number;
  readonly prefix: number;
  /** The interface's own address (IFA_LOCAL; IFA_ADDRESS when there is none), host order. */
  readonly address: number;
  readonly label: string | undefined;
}

export function decodeAddress(m: Message): NlAddress | undefined {
  if ((m.type !== RTM_NEWADDR && m.type !== RTM_DELADDR) || m.payload.length < IFADDRMSG_LEN) return undefined;
  const v = viewOf(m.payload);
  if (v.getUint8(0) !== AF_INET) return undefined;
  const a = parseAttrs(m.payload, IFADDRMSG_LEN);
  // For point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours (if_addr.h).
  const address = ipv4(a.get(IFA_LOCAL)) ?? ipv4(a.get(IFA_ADDRESS));
  const prefix = v.getUint8(1);
  if (address === undefined || prefix > 32) return undefined;
  return { index: v.getUint32(4, LE), prefix, address, label: str(a.get(IFA_LABEL)) };
}

/** RTM_NEWROUTE / RTM_DELROUTE of an IPv4 route. */
export interface NlRoute {
  readonly dst: number;
  readonly dstLen: number;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  /** rtm_type (RTN_UNICAST = 1, RTN_LOCAL, RTN_BLACKHOLE, ...). */
  readonly type: number;
  readonly oif: number | undefined;
  readonly gateway: number | undefined;
  readonly prefsrc: number | undefined;
  readonly priority: number | undefined;
  readonly nhid: number | undefined;
}

export function decodeRoute(m: Message): NlRoute | undefined {
  if ((m.type !== RTM_NEWROUTE && m.type !== RTM_DELROUTE) || m.payload.length < RTMSG_LEN) return undefined;
  const b = m.payload;
  if (b[0] !== AF_INET || b[1]! > 32) return undefined;
  const a = parseAttrs(b, RTMSG_LEN);
  return {
    dst: ipv4(a.get(RTA_DST)) ?? 0, dstLen: b[1]!,
    table: u32(a.get(RTA_TABLE)) ?? b[4]!, protocol: b[5]!, scope: b[6]!, type: b[7]!,
    oif: u32(a.get(RTA_OIF)), gateway: ipv4(a.get(RTA_GATEWAY)), prefsrc: ipv4(a.get(RTA_PREFSRC)),
    priority: u32(a.get(RTA_PRIORITY)), nhid: u32(a.get(RTA_NH_ID)),
  };
}

/** RTM_NEWRULE / RTM_DELRULE (IPv4). */
export interface NlRule {
  readonly priority: number;
  readonly iifname: string | undefined;
  /** FR_ACT_* in ip-rule's words ('to_tbl', 'blackhole', ...). */
  readonly action: string;
  readonly table: number;
}

export function decodeRule(m: Message): NlRule | undefined {
  if ((m.type !== RTM_NEWRULE && m.type !== RTM_DELRULE) || m.payload.length < FIB_RULE_HDR_LEN) return undefined;
  const b = m.payload;
  if (b[0] !== AF_INET) return undefined;
  const a = parseAttrs(b, FIB_RULE_HDR_LEN);
  return {
    priority: u32(a.get(FRA_PRIORITY)) ?? 0,
    iifname: str(a.get(FRA_IIFNAME)),
    action: FR_ACT_NAMES[b[7]!] ?? String(b[7]),
    table: u32(a.get(FRA_TABLE)) ?? b[4]!,
  };
}

/** RTM_NEWNEIGH / RTM_DELNEIGH of an IPv4 neighbour. */
export interface NlNeighbour {
  readonly ifindex: number;
  /** NUD_* bits. */
  readonly state: number;
  readonly dst: number;
  /** The link-layer address: 6 bytes on Ethernet; undefined while unresolved. */
  readonly lladdr: Uint8Array | undefined;
}

export function decodeNeighbour(m: Message): NlNeighbour | undefined {
  if ((m.type !== RTM_NEWNEIGH && m.type !== RTM_DELNEIGH) || m.payload.length < NDMSG_LEN) return undefined;
  const v = viewOf(m.payload);
  if (v.getUint8(0) !== AF_INET) return undefined;
  const a = parseAttrs(m.payload, NDMSG_LEN);
  const dst = ipv4(a.get(NDA_DST));
  if (dst === undefined) return undefined;
  const ll = a.get(NDA_LLADDR);
  return { ifindex: v.getInt32(4, LE), state: v.getUint16(8, LE), dst, lladdr: ll ? ll.slice() : undefined };
}

/**
 * A bridge forwarding-database entry: RTM_NEWNEIGH / RTM_DELNEIGH of family
 * AF_BRIDGE (br_fdb_fill_info, net/bridge/br_fdb.c): `mac` was learned on, or
 * configured for, port `ifindex` of bridge `master`. Entries with `self` are
 * the device's own table (multicast addresses on the port), not the bridge's.
 */
export interface NlFdb {
  readonly ifindex: number;
  readonly mac: string;
  readonly master: number;
  readonly self: boolean;
  /** NUD_PERMANENT for static and local entries, NUD_REACHABLE/NUD_STALE for learned ones. */
  readonly state: number;
}

export function decodeFdb(m: Message): NlFdb | undefined {
  if ((m.type !== RTM_NEWNEIGH && m.type !== RTM_DELNEIGH) || m.payload.length < NDMSG_LEN) return undefined;
  const v = viewOf(m.payload);
  if (v.getUint8(0) !== AF_BRIDGE) return undefined;
  const a = parseAttrs(m.payload, NDMSG_LEN);
  const ll = mac(a.get(NDA_LLADDR));
  if (ll === undefined) return undefined;
  return { ifindex: v.getInt32(4, LE), mac: ll, master: u32(a.get(NDA_MASTER)) ?? 0, self: (v.getUint8(10) & NTF_SELF) !== 0, state: v.getUint16(8, LE) };
}

/** RTM_NEWNEXTHOP / RTM_DELNEXTHOP (IPv4 single next hops; groups decode with gateway undefined). */
export interface NlNexthop {
  readonly id: number;
  readonly oif: number | undefined;
  readonly gateway: number | undefined;
  readonly blackhole: boolean;
  readonly protocol: number;
}

export function decodeNexthop(m: Message): NlNexthop | undefined {
  if ((m.type !== RTM_NEWNEXTHOP && m.type !== RTM_DELNEXTHOP) || m.payload.length < NHMSG_LEN) return undefined;
  const a = parseAttrs(m.payload, NHMSG_LEN);
  const id = u32(a.get(NHA_ID));
  if (id === undefined) return undefined;
  return { id, oif: u32(a.get(NHA_OIF)), gateway: ipv4(a.get(NHA_GATEWAY)), blackhole: a.has(NHA_BLACKHOLE), protocol: m.payload[2]! };
}

/** NUD states the kernel itself transmits on (NUD_VALID, include/net/neighbour.h). */
export const NUD_VALID = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;

/** NUD bits in ip-neigh's words, for logs. */
export function nudNames(state: number): string[] {
  const names: [number, string][] = [[NUD_INCOMPLETE, 'INCOMPLETE'], [NUD_REACHABLE, 'REACHABLE'], [NUD_STALE, 'STALE'], [NUD_DELAY, 'DELAY'],
    [NUD_PROBE, 'PROBE'], [NUD_FAILED, 'FAILED'], [NUD_NOARP, 'NOARP'], [NUD_PERMANENT, 'PERMANENT']];
  const out = names.filter(([bit]) => (state & bit) !== 0).map(([, n]) => n);
  return out.length ? out : ['NONE'];
}
