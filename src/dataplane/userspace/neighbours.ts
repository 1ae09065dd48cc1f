// Next hops the kernel has already resolved, shared with the workers so they
// can send IPIP straight to the underlay interface (an AF_PACKET socket:
// the kernel adds the Ethernet header and queues the frame on the device).
// A raw IP socket with IP_HDRINCL costs a route lookup, a fresh dst (the
// kernel never caches routes for header-included packets to on-link
// destinations: FLOWI_FLAG_KNOWN_NH), the netfilter OUTPUT and POSTROUTING
// hooks and a neighbour lookup for every packet; the direct send skips all
// of that, which is about a sixth of the CPU per Gbit of a TCP stream.
//
// What the table holds is only what the kernel itself would use: entries of
// the kernel's neighbour table on a fan's underlay interface, for addresses
// inside that interface's connected prefix (on-link), in a state the kernel
// sends on (REACHABLE, STALE, DELAY, PROBE, PERMANENT, NOARP). Anything else
// goes through the raw socket, where the kernel routes it and resolves the
// next hop (ARP) as usual, which is also how new neighbours get into the
// kernel's table. Because direct sends bypass the kernel's neighbour code,
// nothing would ever move a STALE entry back to REACHABLE: so for a STALE
// entry the next packet to that host goes through the raw socket once, as
// the kernel's own use of a STALE entry does, which starts its unicast ARP
// probe; if the host stopped answering the entry fails, disappears, and the
// traffic falls back to the kernel path.
//
// Layout: a SharedArrayBuffer of Int32 entries written by the main thread
// only, read by the workers under a per-entry sequence lock (odd while an
// entry is being written). Open addressing, linear probing, keys never
// removed (an entry that stops being usable keeps its key with ifindex 0).
import { parseIpv4 } from '../../fan/ipv4.js';

/** Int32 words per entry. */
const ENTRY = 8;
const SEQ = 0;
const KEY = 1;       // the underlay address (as int32); 0: an empty slot
const IFINDEX = 2;   // 0: not usable (send through the kernel)
const MAC_HI = 3;    // Ethernet address bytes 0-3, big-endian
const MAC_LO = 4;    // bytes 4-5 in the upper half
const PROBE = 5;     // 1: send the next packet through the kernel once
/** Longest probe sequence; a key that does not fit is not cached. */
const MAX_PROBES = 16;

/** What lookup() found. */
export const enum NextHop { Kernel = 0, Direct = 1 }

export class NeighbourTable {
  readonly words: Int32Array;
  private readonly mask: number;
  private readonly shift: number;

  /** A table of `capacity` entries (a power of two, at least 16). */
  static create(capacity: number): NeighbourTable {
    if (capacity < 16 || (capacity & (capacity - 1)) !== 0) throw new Error(`neighbour table capacity must be a power of two >= 16, not ${capacity}`);
    return new NeighbourTable(new SharedArrayBuffer(capacity * ENTRY * 4));
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer);
    const capacity = this.words.length / ENTRY;
    this.mask = capacity - 1;
    this.shift = 32 - Math.log2(capacity);
  }

  get capacity(): number { return this.mask + 1; }

  private home(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  /**
   * Worker side: whether the packet to `dst` (host-order uint32) goes
   * straight to a resolved next hop. On Direct, out[at..at+2] = ifindex,
   * Ethernet address bytes 0-3, bytes 4-5 << 16 (sendBatch's l2 triple);
   * on Kernel, out[at] = 0.
   */
  lookup(dst: number, out: Int32Array, at: number): NextHop {
    const w = this.words;
    const key = dst | 0;
    out[at] = 0;
    if (key === 0) return NextHop.Kernel;
    let slot = this.home(key);
    for (let i = 0; i < MAX_PROBES; i++) {
      const e = slot * ENTRY;
      const seq = Atomics.load(w, e + SEQ);
      if ((seq & 1) !== 0) return NextHop.Kernel; // being written: the kernel path this once
      const k = w[e + KEY]!;
      if (k === 0) return NextHop.Kernel;
      if (k === key) {
        const ifindex = w[e + IFINDEX]!;
        const hi = w[e + MAC_HI]!;
        const lo = w[e + MAC_LO]!;
        if (Atomics.load(w, e + SEQ) !== seq || ifindex === 0) return NextHop.Kernel;
        if (Atomics.load(w, e + PROBE) !== 0 && Atomics.compareExchange(w, e + PROBE, 1, 0) === 1) return NextHop.Kernel;
        out[at] = ifindex;
        out[at + 1] = hi;
        out[at + 2] = lo;
        return NextHop.Direct;
      }
      slot = (slot + 1) & this.mask;
    }
    return NextHop.Kernel;
  }

  /** Main thread: the slot holding `dst`, or a free one for it, or -1 when its probe sequence is full. */
  private slotFor(key: number, insert: boolean): number {
    let slot = this.home(key);
    for (let i = 0; i < MAX_PROBES; i++) {
      const k = this.words[slot * ENTRY + KEY]!;
      if (k === key) return slot;
      if (k === 0) return insert ? slot : -1;
      slot = (slot + 1) & this.mask;
    }
    return -1;
  }

  /**
   * Main thread: dst's next hop is `mac` (6 bytes) on ifindex, or not usable
   * (ifindex 0). Returns false when a new key found no room.
   */
  set(dst: number, ifindex: number, mac: Uint8Array | undefined, probe = false): boolean {
    const key = dst | 0;
    if (key === 0) return false;
    const slot = this.slotFor(key, ifindex !== 0);
    if (slot < 0) return ifindex === 0;
    const w = this.words;
    const e = slot * ENTRY;
    const hi = mac ? ((mac[0]! << 24) | (mac[1]! << 16) | (mac[2]! << 8) | mac[3]!) : 0;
    const lo = mac ? ((mac[4]! << 24) | (mac[5]! << 16)) : 0;
    if (w[e + KEY] === key && w[e + IFINDEX] === ifindex && w[e + MAC_HI] === hi && w[e + MAC_LO] === lo) {
      if (probe) Atomics.store(w, e + PROBE, 1);
      return true;
    }
    Atomics.add(w, e + SEQ, 1);
    w[e + KEY] = key;
    w[e + IFINDEX] = ifindex;
    w[e + MAC_HI] = hi;
    w[e + MAC_LO] = lo;
    Atomics.store(w, e + PROBE, probe ? 1 : 0);
    Atomics.add(w, e + SEQ, 1);
    return true;
  }

  /** Main thread: the addresses with a usable entry. */
  usable(): number[] {
    const out: number[] = [];
    for (let e = 0; e < this.words.length; e += ENTRY) {
      if (this.words[e + KEY] !== 0 && this.words[e + IFINDEX] !== 0) out.push(this.words[e + KEY]! >>> 0);
    }
    return out;
  }
}

/** One entry of `ip -j -4 neigh show`. */
export interface KernelNeighbour {
  readonly dst?: string;
  readonly dev?: string;
  readonly lladdr?: string;
  readonly state?: readonly string[];
}

/** A fan's underlay interface: its index and connected prefix. */
export interface UnderlayLink {
  readonly name: string;
  readonly ifindex: number;
  readonly network: number;
  readonly prefix: number;
}

/** Where the workers may send directly, and which of those the kernel should re-probe. */
export interface DirectHop {
  readonly dst: number;
  readonly ifindex: number;
  readonly mac: Uint8Array;
  /** STALE: one packet through the kernel makes it confirm the address. */
  readonly probe: boolean;
}

/** Neighbour states the kernel itself sends on (NUD_VALID, include/net/neighbour.h). */
const SENDABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);

function parseMac(text: string): Uint8Array | undefined {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(text);
  if (!m) return undefined;
  const mac = Uint8Array.from(m.slice(1), (h) => parseInt(h, 16));
  // multicast/broadcast and all-zero addresses are never a unicast next hop
  return (mac[0]! & 1) !== 0 || mac.every((b) => b === 0) ? undefined : mac;
}

/**
 * The direct next hops the kernel's neighbour table allows: entries on one
 * of `links`, inside its connected prefix, with an Ethernet address and a
 * state the kernel sends on. Pure.
 */
export function directHops(neighbours: readonly KernelNeighbour[], links: readonly UnderlayLink[]): DirectHop[] {
  const out: DirectHop[] = [];
  for (const n of neighbours) {
    const link = links.find((l) => l.name === n.dev);
    if (!link || !n.dst || !n.lladdr || !n.state) continue;
    const dst = parseIpv4(n.dst);
    const mac = parseMac(n.lladdr);
    if (dst === undefined || !mac || !n.state.some((s) => SENDABLE.has(s))) continue;
    const mask = link.prefix === 0 ? 0 : (0xffffffff << (32 - link.prefix)) >>> 0;
    if (((dst & mask) >>> 0) !== link.network || dst === link.network) continue;
    out.push({ dst, ifindex: link.ifindex, mac, probe: n.state.includes('STALE') });
  }
  return out;
}

/**
 * Brings the table to `hops`: new and changed entries written, entries no
 * longer usable turned off. Returns how many hops found no room.
 */
export function applyHops(table: NeighbourTable, hops: readonly DirectHop[]): number {
  const keep = new Set<number>();
  let full = 0;
  for (const h of hops) {
    keep.add(h.dst);
    if (!table.set(h.dst, h.ifindex, h.mac, h.probe)) full++;
  }
  for (const dst of table.usable()) if (!keep.has(dst)) table.set(dst, 0, undefined);
  return full;
}
