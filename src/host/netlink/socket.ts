// A long-lived netlink socket on Node's event loop: requests (dumps with
// multi-part replies, or one reply/ACK) matched to their answers by
// sequence number, and multicast messages (events) handed over in one batch
// per wake-up. The addon only moves bytes (native/netlink.c: netlinkOpen,
// netlinkSend, netlinkRecv, netlinkWatch); the bytes are codec.ts's.
//
// Idle, it costs nothing: the fd sits in libuv's epoll set (uv_poll) and no
// timer runs unless a request is waiting for its answer.
import { endianness } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { native, isNativeError, type NetlinkWatch } from '../../native/index.js';
import { decodeError, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR, parseMessages, type Message } from './codec.js';

/** Dump flag on a part of a reply whose dump the kernel restarted (NLM_F_DUMP_INTR): the set may be inconsistent. */
const NLM_F_DUMP_INTR = 0x10;
/** One datagram: dumps are cut into skbs of at most 32 KiB (netlink_dump); 64 KiB leaves room for a larger first one. */
const RECV_BUF = 1 << 16;
const DEFAULT_TIMEOUT_MS = 5000;
const DUMP_TRIES = 3;
const LE = endianness() === 'LE';

export class NetlinkError extends Error {
  /** @param kernelMessage the kernel's extended-ACK text, when it gave one. */
  constructor(message: string, readonly errno: number, readonly code?: string, readonly kernelMessage?: string) { super(message); }
}

export interface NetlinkSocketOptions {
  /** NETLINK_ROUTE (0) by default. */
  readonly protocol?: number;
  /** Multicast group numbers to join now (RTNLGRP_*). */
  readonly groups?: readonly number[];
  /** Receive buffer (forced as root); event sockets want room for bursts. */
  readonly rcvbuf?: number;
  /** A named network namespace (ip netns): the socket lives there. */
  readonly netns?: string;
}

interface Pending {
  readonly seq: number;
  readonly dump: boolean;
  readonly what: string;
  readonly parts: Message[];
  interrupted: boolean;
  readonly resolve: (m: Message[]) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class NetlinkSocket {
  private readonly fd: number;
  private readonly portId: number;
  private watch: NetlinkWatch | undefined;
  private readonly buf = new Uint8Array(RECV_BUF);
  private seq = Math.floor(Math.random() * 0x7fffffff) + 1;
  private pending: Pending | undefined;
  private queue: (() => void)[] = [];
  private closed = false;
  /** Multicast messages (events), one call per wake-up. */
  onEvents: ((messages: Message[]) => void) | undefined;
  /** The kernel dropped messages for this socket (ENOBUFS): whoever follows events must read everything again. */
  onOverrun: (() => void) | undefined;

  constructor(opts: NetlinkSocketOptions = {}) {
    const groups = Uint32Array.from(opts.groups ?? []);
    this.fd = native.netlinkOpen(opts.protocol ?? 0, groups, opts.rcvbuf ?? 0, opts.netns ? `/run/netns/${opts.netns}` : undefined);
    this.portId = native.netlinkPortId(this.fd);
    this.watch = native.netlinkWatch(this.fd, () => this.readable());
  }

  /** Joins one more multicast group. */
  join(group: number): void {
    native.netlinkJoin(this.fd, group);
  }

  /**
   * Sends the message `build(seq)` makes and resolves with the reply's
   * messages: for a dump (NLM_F_DUMP) every part up to NLMSG_DONE, retried
   * when the kernel flags it interrupted; otherwise the one reply (an ACK
   * resolves with []). An NLMSG_ERROR with an errno rejects with a
   * NetlinkError naming `what`. One request at a time; others wait their turn.
   */
  async request(what: string, build: (seq: number) => Uint8Array, opts: { dump?: boolean; timeoutMs?: number } = {}): Promise<Message[]> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.once(what, build, opts.dump ?? false, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      if (!r.interrupted || attempt >= DUMP_TRIES) return r.parts;
    }
  }

  private once(what: string, build: (seq: number) => Uint8Array, dump: boolean, timeoutMs: number): Promise<{ parts: Message[]; interrupted: boolean }> {
    return new Promise((resolve, reject) => {
      const go = () => {
        if (this.closed) { reject(new NetlinkError(`${what}: the netlink socket is closed`, 9, 'EBADF')); this.next(); return; }
        this.seq = (this.seq % 0x7fffffff) + 1;
        const seq = this.seq;
        const timer = setTimeout(() => {
          if (this.pending?.seq !== seq) return;
          this.pending = undefined;
          reject(new NetlinkError(`${what}: no complete answer from the kernel within ${timeoutMs} ms`, 110, 'ETIMEDOUT'));
          this.next();
        }, timeoutMs);
        const p: Pending = {
          seq, dump, what, parts: [], interrupted: false, timer,
          resolve: (parts) => resolve({ parts, interrupted: p.interrupted }),
          reject,
        };
        this.pending = p;
        try {
          native.netlinkSend(this.fd, build(seq));
        } catch (e) {
          this.finish(p, e as Error);
        }
      };
      if (this.pending) this.queue.push(go);
      else go();
    });
  }

  private next(): void {
    const go = this.queue.shift();
    if (go) go();
  }

  private finish(p: Pending, error?: Error): void {
    if (this.pending !== p) return;
    clearTimeout(p.timer);
    this.pending = undefined;
    if (error) p.reject(error);
    else p.resolve(p.parts);
    this.next();
  }

  /** Drains the socket: replies go to the pending request, the rest are events. */
  private readable(): void {
    const events: Message[] = [];
    for (;;) {
      let n: number;
      try {
        n = native.netlinkRecv(this.fd, this.buf);
      } catch (e) {
        if (isNativeError(e) && e.code === 'ENOBUFS') {
          if (this.pending) this.finish(this.pending, new NetlinkError(`${this.pending.what}: ${e.message}`, e.errno, e.code));
          this.onOverrun?.();
          continue;
        }
        if (this.pending) this.finish(this.pending, e as Error);
        break;
      }
      if (n === 0) break;
      // A copy per datagram: the messages outlive the receive buffer.
      for (const m of parseMessages(this.buf.slice(0, n))) {
        const p = this.pending;
        if (m.pid === this.portId) {
          if (p && m.seq === p.seq) this.reply(p, m);
          // else: a late answer to a request that timed out
        } else {
          // Multicast: nlmsg_pid and nlmsg_seq are those of the request
          // (another socket's) that made the change, or 0 from the kernel.
          events.push(m);
        }
      }
    }
    if (events.length > 0) this.onEvents?.(events);
  }

  private reply(p: Pending, m: Message): void {
    if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
    if (m.type === NLMSG_ERROR) {
      const e = decodeError(m);
      if (!e || e.errno === 0) { this.finish(p); return; }
      this.finish(p, new NetlinkError(`${p.what}: ${e.message ? `${e.message}: ` : ''}${errnoText(e.errno)}`, e.errno, undefined, e.message));
      return;
    }
    if (m.type === NLMSG_DONE) {
      // NLMSG_DONE carries the dump's status (an int, negative errno) when it failed half-way.
      const status = m.payload.length >= 4 ? new DataView(m.payload.buffer, m.payload.byteOffset, 4).getInt32(0, LE) : 0;
      if (status < 0) this.finish(p, new NetlinkError(`${p.what}: the dump failed: ${errnoText(-status)}`, -status));
      else this.finish(p);
      return;
    }
    p.parts.push(m);
    if (!p.dump && !(m.flags & NLM_F_MULTI)) this.finish(p);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.watch) native.netlinkUnwatch(this.watch);
    this.watch = undefined;
    native.close(this.fd);
    if (this.pending) this.finish(this.pending, new NetlinkError(`${this.pending.what}: the netlink socket was closed`, 9, 'EBADF'));
    for (const go of this.queue.splice(0)) go();
  }
}

/** The C library's words for an errno ("No such device"), as libuv knows them. */
export function errnoText(errno: number): string {
  const e = getSystemErrorMap().get(-errno);
  return e ? `${e[1]} (${e[0]})` : `errno ${errno}`;
}
