// fand's host changes as rtnetlink requests. ensure/teardown (host/ensure.ts)
// say what to change in `ip` words; the ones in this file's small grammar
// are sent as the one request `ip` itself would send, without starting a
// process; anything else (tuntap, next hops, the bulk slice routes) still
// goes to `ip -batch`, which is the better tool for thousands of routes.
// Pure: parsing words and building bytes. Layouts and flags follow
// iproute2's ip/iplink.c, ipaddress.c, iproute.c and iprule.c, and the
// kernel's uapi headers (codec.ts).
import { endianness } from 'node:os';
import { parseIpv4 } from '../../fan/ipv4.js';
import {
  AF_INET, buildMessage, FIB_RULE_HDR_LEN, FRA_IIFNAME, FRA_PRIORITY, IFA_ADDRESS, IFA_LOCAL, IFADDRMSG_LEN, IFF_UP,
  IFINFOMSG_LEN, IFLA_ADDRESS, IFLA_IFNAME, IFLA_INFO_KIND, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, IFLA_TXQLEN,
  NLM_F_ACK, NLM_F_REQUEST, RT_TABLE_MAIN, RTA_DST, RTA_OIF, RTA_PREFSRC, RTM_DELADDR, RTM_DELLINK, RTM_DELROUTE,
  RTM_DELRULE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_NEWRULE, RTMSG_LEN, RTN_UNICAST, type Attr,
} from './codec.js';

const LE = endianness() === 'LE';
const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
/** rtnetlink.h: routes added by an administrator (what `ip route` marks them with). */
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const FR_ACT_BLACKHOLE = 6;

export type Change =
  | { readonly kind: 'link-add-bridge'; readonly name: string; readonly mac?: string }
  | { readonly kind: 'link-set'; readonly name: string; readonly mtu?: number; readonly txqueuelen?: number; readonly mac?: string; readonly master?: string | null; readonly up?: boolean }
  | { readonly kind: 'link-del'; readonly name: string }
  | { readonly kind: 'addr'; readonly op: 'add' | 'del'; readonly address: number; readonly prefix: number; readonly dev: string }
  | { readonly kind: 'route'; readonly op: 'replace' | 'del'; readonly dst: number; readonly dstLen: number; readonly dev: string; readonly src?: number }
  | { readonly kind: 'rule'; readonly op: 'add' | 'del'; readonly iif: string; readonly pref: number };

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const NAME = /^[^/:\s]{1,15}$/;

function uint(w: string | undefined, max: number): number | undefined {
  if (w === undefined || !/^\d+$/.test(w)) return undefined;
  const n = Number(w);
  return n <= max ? n : undefined;
}

function cidr(w: string | undefined): { address: number; prefix: number } | undefined {
  if (!w) return undefined;
  const [a, p] = w.split('/');
  const address = parseIpv4(a ?? '');
  const prefix = p === undefined ? 32 : uint(p, 32);
  return address === undefined || prefix === undefined ? undefined : { address, prefix };
}

/**
 * The change one `ip` command (words without the leading `ip`) makes, when
 * it is in the grammar below; undefined for anything else (that command is
 * left to `ip -batch`). Pure.
 *   link add NAME [address MAC] type bridge
 *   link set dev NAME {mtu N | txqueuelen N | address MAC | master NAME | nomaster | up | down}...
 *   link del dev NAME
 *   addr {add|del} A.B.C.D/N dev NAME
 *   route {replace|del} {default | A.B.C.D[/N]} dev NAME [src A.B.C.D]
 *   rule {add|del} iif NAME blackhole pref N
 */
export function parseIpWords(w: readonly string[]): Change | undefined {
  const [obj, verb] = w;
  if (obj === 'link' && verb === 'add') {
    const name = w[2];
    if (!name || !NAME.test(name)) return undefined;
    if (w.length === 5 && w[3] === 'type' && w[4] === 'bridge') return { kind: 'link-add-bridge', name };
    if (w.length === 7 && w[3] === 'address' && MAC.test(w[4]!) && w[5] === 'type' && w[6] === 'bridge') return { kind: 'link-add-bridge', name, mac: w[4]!.toLowerCase() };
    return undefined;
  }
  if (obj === 'link' && verb === 'set' && w[2] === 'dev' && w[3] && NAME.test(w[3])) {
    const c: { kind: 'link-set'; name: string; mtu?: number; txqueuelen?: number; mac?: string; master?: string | null; up?: boolean } = { kind: 'link-set', name: w[3] };
    for (let i = 4; i < w.length; i++) {
      const k = w[i];
      if (k === 'up' || k === 'down') c.up = k === 'up';
      else if (k === 'nomaster') c.master = null;
      else if (k === 'mtu' && uint(w[i + 1], 0xffffffff) !== undefined) c.mtu = uint(w[++i], 0xffffffff)!;
      else if (k === 'txqueuelen' && uint(w[i + 1], 0xffffffff) !== undefined) c.txqueuelen = uint(w[++i], 0xffffffff)!;
      else if (k === 'address' && MAC.test(w[i + 1] ?? '')) c.mac = w[++i]!.toLowerCase();
      else if (k === 'master' && NAME.test(w[i + 1] ?? '')) c.master = w[++i]!;
      else return undefined;
    }
    return c;
  }
  if (obj === 'link' && verb === 'del' && w.length === 4 && w[2] === 'dev' && NAME.test(w[3]!)) return { kind: 'link-del', name: w[3]! };
  if (obj === 'addr' && (verb === 'add' || verb === 'del') && w.length === 5 && w[3] === 'dev' && NAME.test(w[4]!)) {
    const c = cidr(w[2]);
    return c && { kind: 'addr', op: verb, ...c, dev: w[4]! };
  }
  if (obj === 'route' && (verb === 'replace' || verb === 'del') && (w.length === 5 || w.length === 7) && w[3] === 'dev' && NAME.test(w[4]!)) {
    const d = w[2] === 'default' ? { address: 0, prefix: 0 } : cidr(w[2]);
    if (!d) return undefined;
    let src: number | undefined;
    if (w.length === 7) {
      if (w[5] !== 'src') return undefined;
      src = parseIpv4(w[6]!);
      if (src === undefined) return undefined;
    }
    return { kind: 'route', op: verb, dst: d.address, dstLen: d.prefix, dev: w[4]!, ...(src === undefined ? {} : { src }) };
  }
  if (obj === 'rule' && (verb === 'add' || verb === 'del') && w.length === 7 && w[2] === 'iif' && NAME.test(w[3]!) && w[4] === 'blackhole' && w[5] === 'pref') {
    const pref = uint(w[6], 0xffffffff);
    return pref === undefined ? undefined : { kind: 'rule', op: verb, iif: w[3]!, pref };
  }
  return undefined;
}

const u32 = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, LE); return b; };
const be32 = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, false); return b; };
const cstr = (s: string) => { const e = new TextEncoder().encode(s); const b = new Uint8Array(e.length + 1); b.set(e); return b; };
const macBytes = (m: string) => Uint8Array.from(m.split(':'), (h) => parseInt(h, 16));

/** A device name `ip` could not resolve: its own words. */
export class NoSuchDevice extends Error {
  constructor(readonly device: string) { super(`Cannot find device "${device}"`); }
}

/** The devices a change names and needs as indexes (ip resolves them before it sends anything). */
export function devicesOf(c: Change): string[] {
  switch (c.kind) {
    case 'link-set': return [c.name, ...(typeof c.master === 'string' ? [c.master] : [])];
    case 'link-del': return [c.name];
    case 'addr': case 'route': return [c.dev];
    default: return [];
  }
}

/**
 * The request for one change, with an ACK asked for. `index` resolves
 * device names (undefined: no such device, thrown as NoSuchDevice).
 */
export function changeMessage(c: Change, seq: number, index: (name: string) => number | undefined): Uint8Array {
  const idx = (name: string) => { const i = index(name); if (i === undefined) throw new NoSuchDevice(name); return i; };
  const ack = NLM_F_REQUEST | NLM_F_ACK;
  switch (c.kind) {
    case 'link-add-bridge': {
      const attrs: Attr[] = [{ type: IFLA_IFNAME, payload: cstr(c.name) }];
      if (c.mac) attrs.push({ type: IFLA_ADDRESS, payload: macBytes(c.mac) });
      attrs.push({ type: IFLA_LINKINFO, nested: [{ type: IFLA_INFO_KIND, payload: cstr('bridge') }] });
      return buildMessage(RTM_NEWLINK, ack | NLM_F_CREATE | NLM_F_EXCL, seq, new Uint8Array(IFINFOMSG_LEN), attrs);
    }
    case 'link-set': {
      const h = new Uint8Array(IFINFOMSG_LEN);
      const v = new DataView(h.buffer);
      v.setInt32(4, idx(c.name), LE);
      if (c.up !== undefined) { v.setUint32(8, c.up ? IFF_UP : 0, LE); v.setUint32(12, IFF_UP, LE); }
      const attrs: Attr[] = [];
      if (c.mtu !== undefined) attrs.push({ type: IFLA_MTU, payload: u32(c.mtu) });
      if (c.txqueuelen !== undefined) attrs.push({ type: IFLA_TXQLEN, payload: u32(c.txqueuelen) });
      if (c.mac !== undefined) attrs.push({ type: IFLA_ADDRESS, payload: macBytes(c.mac) });
      if (c.master !== undefined) attrs.push({ type: IFLA_MASTER, payload: u32(c.master === null ? 0 : idx(c.master)) });
      return buildMessage(RTM_NEWLINK, ack, seq, h, attrs);
    }
    case 'link-del': {
      const h = new Uint8Array(IFINFOMSG_LEN);
      new DataView(h.buffer).setInt32(4, idx(c.name), LE);
      return buildMessage(RTM_DELLINK, ack, seq, h);
    }
    case 'addr': {
      const h = new Uint8Array(IFADDRMSG_LEN);
      const v = new DataView(h.buffer);
      h[0] = AF_INET;
      h[1] = c.prefix;
      // ip's default scope: host for 127/8, else global (ipaddress.c, default_scope()).
      h[3] = (c.address >>> 24) === 127 ? 254 : RT_SCOPE_UNIVERSE;
      v.setUint32(4, idx(c.dev), LE);
      const attrs: Attr[] = [{ type: IFA_LOCAL, payload: be32(c.address) }, { type: IFA_ADDRESS, payload: be32(c.address) }];
      return buildMessage(c.op === 'add' ? RTM_NEWADDR : RTM_DELADDR, ack | (c.op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : 0), seq, h, attrs);
    }
    case 'route': {
      const h = new Uint8Array(RTMSG_LEN);
      h[0] = AF_INET;
      h[1] = c.dstLen;
      h[4] = RT_TABLE_MAIN;
      if (c.op === 'replace') {
        h[5] = RTPROT_BOOT;
        h[6] = RT_SCOPE_LINK; // a device route without a gateway (iproute.c)
        h[7] = RTN_UNICAST;
      } else {
        h[6] = RT_SCOPE_NOWHERE; // delete: any scope
      }
      const attrs: Attr[] = [];
      if (c.dstLen > 0) attrs.push({ type: RTA_DST, payload: be32(c.dst) });
      if (c.src !== undefined) attrs.push({ type: RTA_PREFSRC, payload: be32(c.src) });
      attrs.push({ type: RTA_OIF, payload: u32(idx(c.dev)) });
      return buildMessage(c.op === 'replace' ? RTM_NEWROUTE : RTM_DELROUTE, ack | (c.op === 'replace' ? NLM_F_CREATE | NLM_F_REPLACE : 0), seq, h, attrs);
    }
    case 'rule': {
      const h = new Uint8Array(FIB_RULE_HDR_LEN);
      h[0] = AF_INET;
      h[7] = FR_ACT_BLACKHOLE;
      const attrs: Attr[] = [{ type: FRA_IIFNAME, payload: cstr(c.iif) }, { type: FRA_PRIORITY, payload: u32(c.pref) }];
      return buildMessage(c.op === 'add' ? RTM_NEWRULE : RTM_DELRULE, ack | (c.op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : 0), seq, h, attrs);
    }
  }
}
