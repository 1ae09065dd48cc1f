// Attaching the programs: a clsact qdisc on a device and a cls_bpf filter in
// direct-action mode on its ingress or egress hook, over rtnetlink (what
// `tc qdisc add dev D clsact` and `tc filter replace dev D ingress pref P
// handle H bpf da fd F name N` send). The messages are pure functions; Tc
// sends them with the addon's netlinkRequest (in the calling thread's
// network namespace) or a function a test gives it.
//
// Filters attached this way outlive fand's process (they hold the program,
// which holds its maps): they are host resources, removed on stop, replaced
// (NLM_F_REPLACE, atomically: cls_bpf swaps the program of the filter with
// the same pref and handle, net/sched/cls_bpf.c cls_bpf_change) after
// kill -9. tcx links (Linux 6.6) would die with the process unless pinned,
// and need a newer kernel than the 5.10 this dataplane asks for.
import { constants, endianness } from 'node:os';
import { native } from '../../native/index.js';
import { buildMessage, type Attr } from '../../host/netlink/codec.js';
import {
  NLA_HDRLEN, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, parseAck, type Ack,
} from '../kernel-fan/netlink.js';

const LE = endianness() === 'LE';
const errnos: Record<string, number> = constants.errno as unknown as Record<string, number>;

// include/uapi/linux/rtnetlink.h
export const RTM_NEWQDISC = 36;
export const RTM_DELQDISC = 37;
export const RTM_NEWTFILTER = 44;
export const RTM_DELTFILTER = 45;
export const RTM_GETTFILTER = 46;
/** NLM_F_ROOT | NLM_F_MATCH (include/uapi/linux/netlink.h). */
export const NLM_F_DUMP = 0x300;
/** Replace an existing object (with NLM_F_CREATE: create or replace). */
export const NLM_F_REPLACE = 0x100;
/** sizeof(struct tcmsg): u8 family, u8+u16 pad, s32 ifindex, u32 handle, u32 parent, u32 info. */
export const TCMSG_LEN = 20;
export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;
// include/uapi/linux/pkt_cls.h
export const TCA_BPF_FD = 6;
export const TCA_BPF_NAME = 7;
export const TCA_BPF_FLAGS = 8;
export const TCA_BPF_TAG = 10;
export const TCA_BPF_ID = 11;
export const TCA_BPF_FLAG_ACT_DIRECT = 1;
// include/uapi/linux/pkt_sched.h
export const TC_H_CLSACT = 0xfffffff1;
export const TC_H_MIN_INGRESS = 0xfff2;
export const TC_H_MIN_EGRESS = 0xfff3;
/** The clsact qdisc's own handle: TC_H_MAKE(TC_H_CLSACT, 0). */
export const CLSACT_HANDLE = 0xffff0000;
/** ETH_P_ALL in network byte order, as tcm_info's low 16 bits carry it. */
const ETH_P_ALL_BE = 0x0300;

export type Direction = 'ingress' | 'egress';

/** Where fand's filters sit: the Fan's 250, on every device. */
export const FAND_PREF = 250;
export const FAND_HANDLE = 0xfa;

const parentOf = (d: Direction) => ((TC_H_CLSACT & 0xffff0000) | (d === 'ingress' ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS)) >>> 0;

const align = (n: number) => (n + 3) & ~3;

const u32 = (x: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, x >>> 0, LE); return b; };
const cstr = (s: string) => { const e = new TextEncoder().encode(s); const b = new Uint8Array(e.length + 1); b.set(e); return b; };

export interface TcmsgFields { ifindex: number; handle: number; parent: number; info: number }

/** nlmsghdr + tcmsg + attributes. */
export function tcMessage(type: number, flags: number, seq: number, t: TcmsgFields, attrs: Attr[]): Uint8Array {
  if (!Number.isInteger(t.ifindex) || t.ifindex <= 0) throw new RangeError(`ifindex ${t.ifindex} is not a device`);
  const tcmsg = new Uint8Array(TCMSG_LEN);
  const v = new DataView(tcmsg.buffer);
  // tcm_family AF_UNSPEC, padding zero
  v.setInt32(4, t.ifindex, LE);
  v.setUint32(8, t.handle >>> 0, LE);
  v.setUint32(12, t.parent >>> 0, LE);
  v.setUint32(16, t.info >>> 0, LE);
  return buildMessage(type, flags, seq, tcmsg, attrs);
}

/** `tc qdisc add dev IFINDEX clsact` (EEXIST when the device has one). */
export function clsactMessage(ifindex: number, op: 'add' | 'del', seq = 1): Uint8Array {
  return tcMessage(op === 'add' ? RTM_NEWQDISC : RTM_DELQDISC, NLM_F_REQUEST | NLM_F_ACK | (op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : 0), seq,
    { ifindex, handle: CLSACT_HANDLE, parent: TC_H_CLSACT, info: 0 }, [{ type: TCA_KIND, payload: cstr('clsact') }]);
}

const filterFields = (ifindex: number, d: Direction, pref = FAND_PREF, handle = FAND_HANDLE): TcmsgFields =>
  ({ ifindex, handle, parent: parentOf(d), info: ((pref << 16) | ETH_P_ALL_BE) >>> 0 });

/** `tc filter replace dev IFINDEX DIR pref P handle H bpf direct-action fd FD name NAME`. */
export function attachMessage(ifindex: number, d: Direction, progFd: number, name: string, seq = 1): Uint8Array {
  return tcMessage(RTM_NEWTFILTER, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq, filterFields(ifindex, d), [
    { type: TCA_KIND, payload: cstr('bpf') },
    { type: TCA_OPTIONS, nested: [
      { type: TCA_BPF_FD, payload: u32(progFd) },
      { type: TCA_BPF_NAME, payload: cstr(name) },
      { type: TCA_BPF_FLAGS, payload: u32(TCA_BPF_FLAG_ACT_DIRECT) },
    ] },
  ]);
}

/** `tc filter del dev IFINDEX DIR pref P handle H bpf`. */
export function detachMessage(ifindex: number, d: Direction, seq = 1): Uint8Array {
  return tcMessage(RTM_DELTFILTER, NLM_F_REQUEST | NLM_F_ACK, seq, filterFields(ifindex, d), [{ type: TCA_KIND, payload: cstr('bpf') }]);
}

/** `tc filter show dev IFINDEX DIR` (every filter on that hook). */
export function listMessage(ifindex: number, d: Direction, seq = 1): Uint8Array {
  return tcMessage(RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP, seq, { ifindex, handle: 0, parent: parentOf(d), info: 0 }, []);
}

export interface FilterInfo {
  readonly pref: number;
  readonly handle: number;
  readonly kind: string;
  /** cls_bpf: the name given at attach (fand's: fand_egress, fand_ingress). */
  readonly name?: string;
  readonly progId?: number;
  readonly tag?: string;
}

/**
 * The filters in a dump reply (one datagram). `done` is true when the
 * datagram ended the dump (NLMSG_DONE); a reply that is an error throws.
 */
export function parseFilters(buf: Uint8Array): { filters: FilterInfo[]; done: boolean } {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const filters: FilterInfo[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = v.getUint32(off, LE);
    const type = v.getUint16(off + 4, LE);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new Error(`netlink reply: message of ${len} bytes at ${off} does not fit`);
    if (type === NLMSG_DONE) return { filters, done: true };
    if (type === NLMSG_ERROR) {
      const ack = parseAck(buf.subarray(off, off + len));
      if (ack.errno !== 0) throw Object.assign(new Error(`tc filter list: errno ${ack.errno}${ack.message ? ` (${ack.message})` : ''}`), { errno: ack.errno });
    } else if (type === RTM_NEWTFILTER && len >= NLMSG_HDRLEN + TCMSG_LEN) {
      const t = off + NLMSG_HDRLEN;
      const f: { pref: number; handle: number; kind: string; name?: string; progId?: number; tag?: string } =
        { pref: v.getUint32(t + 16, LE) >>> 16, handle: v.getUint32(t + 8, LE), kind: '' };
      for (const a of attrs(buf, v, t + TCMSG_LEN, off + len)) {
        if (a.type === TCA_KIND) f.kind = text(buf, a.start, a.end);
        if (a.type === TCA_OPTIONS) {
          for (const o of attrs(buf, v, a.start, a.end)) {
            if (o.type === TCA_BPF_NAME) f.name = text(buf, o.start, o.end);
            if (o.type === TCA_BPF_ID && o.end - o.start >= 4) f.progId = v.getUint32(o.start, LE);
            if (o.type === TCA_BPF_TAG) f.tag = Buffer.from(buf.subarray(o.start, o.end)).toString('hex');
          }
        }
      }
      // A dump lists the hook's chain head (no handle, no options) too.
      if (f.handle !== 0) filters.push(f);
    }
    off += align(len);
  }
  return { filters, done: false };
}

function* attrs(buf: Uint8Array, v: DataView, from: number, to: number): Generator<{ type: number; start: number; end: number }> {
  let off = from;
  while (off + NLA_HDRLEN <= to) {
    const len = v.getUint16(off, LE);
    if (len < NLA_HDRLEN || off + len > to) return;
    yield { type: v.getUint16(off + 2, LE) & 0x3fff, start: off + NLA_HDRLEN, end: off + len };
    off += align(len);
  }
}

function text(buf: Uint8Array, start: number, end: number): string {
  let e = end;
  while (e > start && buf[e - 1] === 0) e--;
  return new TextDecoder().decode(buf.subarray(start, e));
}

export class TcError extends Error {
  constructor(message: string, readonly errno: number) { super(message); }
}

/** Sends tc requests; `request` is the addon's netlinkRequest unless a test swaps it. */
export class Tc {
  private seq = 1;
  constructor(private readonly request: (msg: Uint8Array) => Uint8Array = (m) => native.netlinkRequest(m, 5000)) {}

  private ack(msg: Uint8Array): Ack {
    return parseAck(this.request(msg));
  }

  /** Adds a clsact qdisc; false when the device already had one. */
  addClsact(dev: string, ifindex: number): boolean {
    const a = this.ack(clsactMessage(ifindex, 'add', this.seq++));
    if (a.errno === 17) return false; // EEXIST
    if (a.errno !== 0) throw new TcError(`tc qdisc add dev ${dev} clsact: ${errnoText(a)}${a.errno === 2 || a.errno === 95 ? ' (the kernel lacks clsact: CONFIG_NET_SCH_INGRESS)' : ''}`, a.errno);
    return true;
  }

  /** Removes the clsact qdisc (and every filter on it); false when there was none. */
  deleteClsact(dev: string, ifindex: number): boolean {
    const a = this.ack(clsactMessage(ifindex, 'del', this.seq++));
    if (a.errno === 2 || a.errno === 22 || a.errno === 19) return false; // ENOENT, EINVAL (none), ENODEV
    if (a.errno !== 0) throw new TcError(`tc qdisc del dev ${dev} clsact: ${errnoText(a)}`, a.errno);
    return true;
  }

  /** Attaches (or atomically replaces) fand's filter on the hook. */
  attach(dev: string, ifindex: number, d: Direction, progFd: number, name: string): void {
    const a = this.ack(attachMessage(ifindex, d, progFd, name, this.seq++));
    if (a.errno !== 0) {
      throw new TcError(`tc filter replace dev ${dev} ${d} pref ${FAND_PREF} handle 0x${FAND_HANDLE.toString(16)} bpf da name ${name}: ${errnoText(a)}`
        + (a.errno === 2 || a.errno === 95 ? ' (the kernel lacks cls_bpf: CONFIG_NET_CLS_BPF)' : ''), a.errno);
    }
  }

  /** Removes fand's filter from the hook; false when it was not there (or the device is gone). */
  detach(dev: string, ifindex: number, d: Direction): boolean {
    const a = this.ack(detachMessage(ifindex, d, this.seq++));
    if (a.errno === 2 || a.errno === 22 || a.errno === 19) return false;
    if (a.errno !== 0) throw new TcError(`tc filter del dev ${dev} ${d} pref ${FAND_PREF} handle 0x${FAND_HANDLE.toString(16)}: ${errnoText(a)}`, a.errno);
    return true;
  }

  /**
   * The filters on a hook (the first reply datagram: enough for the few
   * filters a hook has; more than fit say so). [] when the device has no
   * clsact.
   */
  list(dev: string, ifindex: number, d: Direction): FilterInfo[] {
    try {
      const r = parseFilters(this.request(listMessage(ifindex, d, this.seq++)));
      if (!r.done && r.filters.length === 0) throw new Error('no answer');
      return r.filters;
    } catch (e) {
      const errno = (e as { errno?: number }).errno;
      if (errno === 22 || errno === 2 || errno === 19) return [];
      throw new TcError(`tc filter show dev ${dev} ${d}: ${(e as Error).message}`, errno ?? 0);
    }
  }
}

function errnoText(a: Ack): string {
  const name = Object.entries(errnos).find(([, v]) => v === a.errno)?.[0] ?? `errno ${a.errno}`;
  return `${name}${a.message ? ` (${a.message})` : ''}`;
}
