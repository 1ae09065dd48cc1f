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
// The table follows the kernel's by rtnetlink events (NeighbourFollower
// below): every neighbour change on an underlay interface reaches the table
// as the kernel announces it (RTM_NEWNEIGH / RTM_DELNEIGH on RTNLGRP_NEIGH:
// neigh_update_notify() in net/core/neighbour.c runs on each state change,
// including REACHABLE -> STALE in neigh_timer_handler, and garbage
// collection sends RTM_DELNEIGH), so no process and no timer runs while
// nothing changes.
//
// Layout: a SharedArrayBuffer of Int32 entries written by the main thread
// only, read by the workers under a per-entry sequence lock (odd while an
// entry is being written). Open addressing, linear probing, keys never
// removed (an entry that stops being usable keeps its key with ifindex 0).
import { NUD_STALE, NUD_VALID, nudNames } from '../../host/netlink/codec.js';
import type { HostEvent, HostEvents } from '../../host/netlink/events.js';
import { formatIpv4 } from '../../fan/ipv4.js';

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

  /** Main thread: whether `dst` has a usable entry. */
  isDirect(dst: number): boolean {
    const slot = this.slotFor(dst | 0, false);
    return slot >= 0 && this.words[slot * ENTRY + IFINDEX] !== 0;
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

/** One IPv4 entry of the kernel's neighbour table (RTM_NEWNEIGH, host/netlink/codec.ts). */
export interface KernelNeighbour {
  readonly ifindex: number;
  readonly dst: number;
  /** NUD_* bits. */
  readonly state: number;
  readonly lladdr: Uint8Array | undefined;
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

/** An Ethernet unicast address; multicast/broadcast and all-zero addresses are never a next hop. */
function unicastMac(mac: Uint8Array | undefined): mac is Uint8Array {
  return !!mac && mac.length === 6 && (mac[0]! & 1) === 0 && mac.some((b) => b !== 0);
}

/**
 * The direct next hop one neighbour entry allows: on one of `links`, inside
 * its connected prefix (not the network address), with an Ethernet unicast
 * address and a state the kernel sends on (NUD_VALID); else undefined. Pure.
 */
export function directHop(n: KernelNeighbour, links: readonly UnderlayLink[]): DirectHop | undefined {
  const link = links.find((l) => l.ifindex === n.ifindex);
  if (!link || !unicastMac(n.lladdr) || (n.state & NUD_VALID) === 0) return undefined;
  const mask = link.prefix === 0 ? 0 : (0xffffffff << (32 - link.prefix)) >>> 0;
  if (((n.dst & mask) >>> 0) !== link.network || n.dst === link.network) return undefined;
  return { dst: n.dst >>> 0, ifindex: link.ifindex, mac: n.lladdr, probe: (n.state & NUD_STALE) !== 0 };
}

/** The direct next hops the kernel's neighbour table allows (directHop of each entry). Pure. */
export function directHops(neighbours: readonly KernelNeighbour[], links: readonly UnderlayLink[]): DirectHop[] {
  const out: DirectHop[] = [];
  for (const n of neighbours) {
    const h = directHop(n, links);
    if (h) out.push(h);
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

/** What the follower reads from the host (host/netlink/rtnl.ts; tests swap it). */
export interface NeighbourReads {
  neighbours(): Promise<KernelNeighbour[]>;
  addresses(): Promise<readonly { index: number; address: number; prefix: number }[]>;
  /** The index of an interface by name; 0 when there is none. */
  ifIndex(name: string): number;
  /** An interface's flags (IFF_UP, IFF_RUNNING: what says why it cannot send); undefined when there is none. */
  link?(name: string): Promise<{ readonly flags: number } | undefined>;
}

/** A fan's underlay as the follower needs it. */
export interface UnderlayOf { readonly iface: string; readonly localUnderlay: number }

export interface FollowerLog {
  info(msg: string): void;
  warn(msg: string): void;
  debug(fields: object, msg: string): void;
}

/** The full read is a safety net only: events carry every change (minutes apart, and after an overrun). */
export const NEIGHBOUR_RESYNC_MS = 5 * 60_000;

/**
 * Keeps a NeighbourTable equal to what the kernel's neighbour table allows,
 * driven by rtnetlink events: a neighbour event on an underlay interface is
 * applied to its one entry at once (the workers see it with their next
 * lookup); an address or link change on an underlay, or lost events, reads
 * everything again (coalesced: one read at a time, once more if something
 * changed during it). Events that arrive while a full read is in flight are
 * applied again after it, so an older dump never overwrites a newer event.
 */
export class NeighbourFollower {
  private links: UnderlayLink[] = [];
  private fans: readonly UnderlayOf[] = [];
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private during: KernelNeighbour[] | undefined;
  private stopped = false;
  /** What the last full read logged (a steady state is not repeated). */
  private state = '';
  /** Test and bench hook: when the last neighbour event was applied (performance.now()). */
  lastApplied = 0;

  constructor(private readonly table: NeighbourTable, private readonly host: NeighbourReads, private readonly events: HostEvents,
    private readonly log: FollowerLog, private readonly resyncMs = NEIGHBOUR_RESYNC_MS) {}

  async start(fans: readonly UnderlayOf[]): Promise<void> {
    this.fans = fans;
    // Subscribed before the first read: nothing can fall in between.
    this.unsubscribe = this.events.subscribe(['neighbour', 'address', 'link'], (batch) => this.onEvents(batch));
    await this.resync('start');
    this.timer = setInterval(() => { void this.resync('periodic check'); }, this.resyncMs).unref();
  }

  /** The fans changed (reload): their underlays may have. */
  update(fans: readonly UnderlayOf[]): Promise<void> {
    this.fans = fans;
    return this.resync('reload');
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    clearInterval(this.timer);
  }

  private onEvents(batch: readonly HostEvent[]): void {
    let full: string | undefined;
    for (const e of batch) {
      if (e.kind === 'neighbour') {
        if (this.during) this.during.push(e.op === 'del' ? { ...e.neighbour, state: 0 } : e.neighbour);
        this.applyOne(e.op === 'del' ? { ...e.neighbour, state: 0 } : e.neighbour);
      } else if (e.kind === 'overrun') {
        full = 'events were lost';
      } else if (e.kind === 'address' && this.fans.some((f) => this.host.ifIndex(f.iface) === e.address.index)) {
        full = `address ${e.op === 'new' ? 'added to' : 'removed from'} an underlay`;
      } else if (e.kind === 'link' && (this.links.some((l) => l.ifindex === e.link.index) || this.fans.some((f) => f.iface === e.link.name))) {
        full = `underlay ${e.link.name} ${e.op === 'del' ? 'removed' : 'changed'}`;
      }
    }
    if (full) void this.resync(full);
  }

  /** One neighbour entry into the table: direct, or back to the kernel path. */
  private applyOne(n: KernelNeighbour): void {
    if (!this.links.some((l) => l.ifindex === n.ifindex)) return;
    const hop = directHop(n, this.links);
    const before = this.table.isDirect(n.dst);
    if (hop) this.table.set(hop.dst, hop.ifindex, hop.mac, hop.probe);
    else this.table.set(n.dst, 0, undefined);
    this.lastApplied = performance.now();
    this.log.debug({ neighbour: formatIpv4(n.dst), ifindex: n.ifindex, state: nudNames(n.state).join(',') },
      `netlink: neighbour ${formatIpv4(n.dst)} ${nudNames(n.state).join(',')}${n.lladdr && n.lladdr.length === 6 ? ` ${macText(n.lladdr)}` : ''}: `
      + (hop ? `direct sends${hop.probe ? ' (next packet through the kernel, which re-probes it)' : ''}` : `through the kernel${before ? ' (was direct)' : ''}`));
  }

  /** Reads addresses and neighbours again; one read at a time, repeated once if asked again meanwhile. */
  resync(why: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.reading) { this.again = true; return this.reading; }
    this.reading = (async () => {
      try {
        do {
          this.again = false;
          await this.readAll(why);
        } while (this.again && !this.stopped);
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }

  /** Of the underlays with their address, those up and running; for every other fan's underlay, why not. */
  private async usableUnderlays(withAddress: UnderlayLink[]): Promise<{ links: UnderlayLink[]; problems: string[] }> {
    const links: UnderlayLink[] = [];
    const problems: string[] = [];
    for (const iface of new Set(this.fans.map((f) => f.iface))) {
      const local = formatIpv4(this.fans.find((f) => f.iface === iface)!.localUnderlay);
      const l = withAddress.find((x) => x.name === iface);
      // Without link(), an interface that exists counts as up and running.
      const state = this.host.link ? await this.host.link(iface) : this.host.ifIndex(iface) ? { flags: IFF_UP | IFF_RUNNING } : undefined;
      const problem = underlayProblem(iface, local, state, l !== undefined);
      if (problem) problems.push(problem);
      else if (l) links.push(l);
    }
    return { links, problems };
  }

  private async readAll(why: string): Promise<void> {
    let msg: string;
    let warn = false;
    this.during = [];
    try {
      const addrs = await this.host.addresses();
      const { links, problems } = await this.usableUnderlays(underlayLinks(this.fans, addrs, (n) => this.host.ifIndex(n)));
      const neighbours = await this.host.neighbours();
      if (this.stopped) return;
      this.links = links;
      const full = applyHops(this.table, directHops(neighbours, links));
      // Newer than the dump: applied again on top of it.
      for (const n of this.during) this.applyOne(n);
      if (links.length === 0) {
        warn = true;
        msg = `outbound IPIP: every packet through the raw socket, no direct sends: ${problems.join('; ')}`;
      } else {
        msg = `outbound IPIP: direct sends (AF_PACKET) to the next hops the kernel has resolved on ${links.map((l) => l.name).join(', ')}; `
          + 'other destinations through the raw socket, where the kernel routes them and resolves their next hop'
          + (problems.length ? `; no direct sends on ${problems.join('; ')}` : '');
      }
      if (full > 0) { warn = true; msg += `; ${full} neighbour(s) did not fit the table (${this.table.capacity}) and use the raw socket`; }
      this.log.debug({ why, neighbours: neighbours.length, direct: this.table.usable().length }, `netlink: neighbour table read (${why}): ${this.table.usable().length} direct next hops`);
    } catch (e) {
      applyHops(this.table, []);
      this.links = [];
      warn = true;
      msg = `outbound IPIP: every packet through the raw socket: cannot read the neighbour table: ${(e as Error).message}`;
    } finally {
      this.during = undefined;
    }
    if (msg !== this.state) {
      this.state = msg;
      if (warn) this.log.warn(msg);
      else this.log.info(msg);
    }
  }
}

/** IFF_UP and IFF_RUNNING (linux/if.h); rtnetlink's ifi_flags carry both (dev_get_flags()). */
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;

/**
 * Why an underlay interface cannot carry direct sends, and what brings them
 * back, in words; undefined when it can. `link` undefined: no such interface.
 * Pure.
 */
export function underlayProblem(iface: string, local: string, link: { readonly flags: number } | undefined, hasAddress: boolean): string | undefined {
  if (link === undefined) return `underlay ${iface} is gone (direct sends resume when an interface of that name has ${local} again)`;
  if (!(link.flags & IFF_UP)) return `underlay ${iface} is down (bring it up: ip link set ${iface} up)`;
  if (!(link.flags & IFF_RUNNING)) return `underlay ${iface} has no carrier (its cable, switch port or veth peer is down)`;
  if (!hasAddress) return `underlay ${iface} does not have this host's underlay address ${local} (give it back, or reload fand for the new one)`;
  return undefined;
}

/** The fans' underlay interfaces with their index and connected prefix (the address fand uses on each). Pure. */
export function underlayLinks(fans: readonly UnderlayOf[], addrs: readonly { index: number; address: number; prefix: number }[], ifIndex: (name: string) => number): UnderlayLink[] {
  const links: UnderlayLink[] = [];
  for (const f of fans) {
    if (links.some((l) => l.name === f.iface)) continue;
    const ifindex = ifIndex(f.iface);
    const a = addrs.find((x) => x.index === ifindex && x.address === f.localUnderlay);
    if (!a || ifindex === 0) continue;
    const mask = a.prefix === 0 ? 0 : (0xffffffff << (32 - a.prefix)) >>> 0;
    links.push({ name: f.iface, ifindex, network: (f.localUnderlay & mask) >>> 0, prefix: a.prefix });
  }
  return links;
}

function macText(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}
