// What changes on the host, as the kernel announces it: rtnetlink multicast
// groups (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_NEIGH,
// RTNLGRP_IPV4_ROUTE, RTNLGRP_NEXTHOP) decoded into typed events. Behind the `HostEvents`
// interface so that tests can hand a daemon their own.
//
// Delivery: the events that arrived together (one wake-up of the event loop)
// go to each listener in one call, so a burst (an interface going down takes
// its addresses, routes and neighbours with it) is one batch, and whoever
// reacts with real work can do it once per batch. The kernel drops events
// when a listener's socket queue is full (ENOBUFS): listeners then get an
// 'overrun' event and must read what they follow again.
import {
  AF_UNSPEC, decodeAddress, decodeFdb, decodeLink, decodeNeighbour, decodeNexthop, decodeRoute, RTM_DELADDR, RTM_DELLINK, RTM_DELNEIGH,
  RTM_DELNEXTHOP, RTM_DELROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWNEXTHOP, RTM_NEWROUTE, RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV4_ROUTE, RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_NEXTHOP,
  type Message, type NlAddress, type NlFdb, type NlLink, type NlNeighbour, type NlNexthop, type NlRoute,
} from './codec.js';
import { NetlinkSocket } from './socket.js';

export type HostEvent =
  | { readonly kind: 'link'; readonly op: 'new' | 'del'; readonly link: NlLink }
  | { readonly kind: 'address'; readonly op: 'new' | 'del'; readonly address: NlAddress }
  | { readonly kind: 'neighbour'; readonly op: 'new' | 'del'; readonly neighbour: NlNeighbour }
  | { readonly kind: 'route'; readonly op: 'new' | 'del'; readonly route: NlRoute }
  /**
   * A nexthop object (Linux 5.3+). Deleting one also removes every route that
   * uses it, and the kernel announces only the nexthop's deletion, no
   * RTM_DELROUTE for those routes (seen on 6.18: `ip monitor all`).
   */
  | { readonly kind: 'nexthop'; readonly op: 'new' | 'del'; readonly nexthop: NlNexthop }
  /** A bridge FDB entry (AF_BRIDGE neighbour messages, same group as neighbours). */
  | { readonly kind: 'fdb'; readonly op: 'new' | 'del'; readonly fdb: NlFdb }
  /** Events were lost (the kernel's queue for fand overflowed): read again what you follow. */
  | { readonly kind: 'overrun' };

export type HostEventKind = Exclude<HostEvent['kind'], 'overrun'>;
export type HostEventListener = (batch: readonly HostEvent[]) => void;

export interface HostEvents {
  /**
   * Calls `listener` with every batch holding events of `kinds` (only
   * those), and with [{ kind: 'overrun' }] when events were lost. Returns
   * the function that unsubscribes. Events start when this returns: read
   * the current state after subscribing, so nothing falls in between.
   */
  subscribe(kinds: readonly HostEventKind[], listener: HostEventListener): () => void;
}

const GROUP: Record<HostEventKind, number> = {
  link: RTNLGRP_LINK,
  address: RTNLGRP_IPV4_IFADDR,
  neighbour: RTNLGRP_NEIGH,
  route: RTNLGRP_IPV4_ROUTE,
  fdb: RTNLGRP_NEIGH,
  nexthop: RTNLGRP_NEXTHOP,
};

/** Decodes one multicast message; undefined for what fand does not follow (IPv6, other families). */
export function decodeEvent(m: Message): HostEvent | undefined {
  switch (m.type) {
    case RTM_NEWLINK: case RTM_DELLINK: {
      // The device itself only: a bridge also announces its ports as
      // AF_BRIDGE messages, and its RTM_DELLINK of a port means the port
      // left (the port's own AF_UNSPEC RTM_NEWLINK says so too, master 0).
      const link = decodeLink(m);
      return link && link.family === AF_UNSPEC ? { kind: 'link', op: m.type === RTM_NEWLINK ? 'new' : 'del', link } : undefined;
    }
    case RTM_NEWADDR: case RTM_DELADDR: {
      const address = decodeAddress(m);
      return address && { kind: 'address', op: m.type === RTM_NEWADDR ? 'new' : 'del', address };
    }
    case RTM_NEWNEIGH: case RTM_DELNEIGH: {
      const op = m.type === RTM_NEWNEIGH ? 'new' : 'del';
      const neighbour = decodeNeighbour(m);
      if (neighbour) return { kind: 'neighbour', op, neighbour };
      const fdb = decodeFdb(m);
      return fdb && { kind: 'fdb', op, fdb };
    }
    case RTM_NEWROUTE: case RTM_DELROUTE: {
      const route = decodeRoute(m);
      return route && { kind: 'route', op: m.type === RTM_NEWROUTE ? 'new' : 'del', route };
    }
    case RTM_NEWNEXTHOP: case RTM_DELNEXTHOP: {
      const nexthop = decodeNexthop(m);
      return nexthop && { kind: 'nexthop', op: m.type === RTM_NEWNEXTHOP ? 'new' : 'del', nexthop };
    }
    default: return undefined;
  }
}

/**
 * The kernel's events on one netlink socket for the whole process, opened
 * at the first subscription and joined to each group as a listener first
 * needs it. Closed when the last listener leaves.
 */
export class NetlinkEvents implements HostEvents {
  private sock: NetlinkSocket | undefined;
  private readonly joined = new Set<HostEventKind>();
  private readonly listeners = new Set<{ kinds: ReadonlySet<HostEventKind>; fn: HostEventListener }>();

  /** @param netns a named network namespace (tests); default: fand's own. */
  constructor(private readonly netns?: string, private readonly rcvbuf = 4 << 20) {}

  subscribe(kinds: readonly HostEventKind[], fn: HostEventListener): () => void {
    if (!this.sock) {
      const sock = new NetlinkSocket({ netns: this.netns, rcvbuf: this.rcvbuf });
      sock.onEvents = (msgs) => this.deliver(msgs);
      sock.onOverrun = () => this.overrun();
      this.sock = sock;
    }
    for (const k of kinds) {
      if (this.joined.has(k)) continue;
      this.sock.join(GROUP[k]);
      this.joined.add(k);
    }
    const l = { kinds: new Set(kinds), fn };
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
      if (this.listeners.size === 0) this.close();
    };
  }

  private deliver(msgs: readonly Message[]): void {
    const events: HostEvent[] = [];
    for (const m of msgs) {
      const e = decodeEvent(m);
      if (e) events.push(e);
    }
    if (events.length === 0) return;
    for (const l of [...this.listeners]) {
      const mine = events.filter((e) => e.kind !== 'overrun' && l.kinds.has(e.kind));
      if (mine.length > 0) l.fn(mine);
    }
  }

  private overrun(): void {
    for (const l of [...this.listeners]) l.fn([{ kind: 'overrun' }]);
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
    this.joined.clear();
  }
}

let shared: NetlinkEvents | undefined;

/** The process's own event source (fand's network namespace), shared by every part of the daemon. */
export function hostEvents(): HostEvents {
  return (shared ??= new NetlinkEvents());
}
