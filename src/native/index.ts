// Typed view of the C addon (native/*.c, one file per concern): batched TUN and raw-socket I/O,
// poll, eventfd, sd_notify. The addon is context-aware, so each worker
// thread that imports this module gets its own instance.
//
// Buffers are caller-owned Uint8Arrays (over an ArrayBuffer or a
// SharedArrayBuffer) that the C side reads and writes in place. Every offset
// and size is bounds-checked in C: a bad one is a RangeError, never a stray
// write. Counts are limited to constants.MAX_BATCH.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * An error from a syscall made by the addon, e.g.
 * `tun fan0: ioctl(TUNSETIFF): Device or resource busy (EBUSY)`.
 * The addon throws plain Errors carrying code/errno/syscall; `instanceof
 * NativeError` matches any such error (see isNativeError).
 */
export class NativeError extends Error {
  /** errno name, e.g. 'EBUSY'. */
  declare code: string;
  /** errno value, positive (as in os.constants.errno). */
  declare errno: number;
  /** The failing call, e.g. 'ioctl(TUNSETIFF)'. */
  declare syscall: string;

  static [Symbol.hasInstance](value: unknown): boolean {
    return isNativeError(value);
  }
}

/** True for errors thrown by the addon's syscalls (Error with code, errno, syscall). */
export function isNativeError(value: unknown): value is NativeError {
  if (!(value instanceof Error)) return false;
  const e = value as Partial<NativeError>;
  return typeof e.code === 'string' && typeof e.errno === 'number' && typeof e.syscall === 'string';
}

export interface NativeConstants {
  /** Largest count accepted by the batch calls and poll. */
  readonly MAX_BATCH: number;
  readonly TUN_F_CSUM: number;
  readonly TUN_F_TSO4: number;
  readonly TUN_F_TSO6: number;
  readonly TUN_F_TSO_ECN: number;
  readonly TUN_F_UFO: number;
  readonly TUN_F_USO4: number;
  readonly TUN_F_USO6: number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly POLLERR: number;
  readonly POLLHUP: number;
  readonly IPPROTO_IPIP: number;
  readonly IPPROTO_RAW: number;
}

export interface Native {
  readonly constants: NativeConstants;

  /**
   * Opens /dev/net/tun (non-blocking, close-on-exec) and attaches it to the
   * TUN device `name` (IFF_TUN|IFF_NO_PI), creating it if absent. With
   * multiQueue, attaches one more queue to a multi-queue device. vnetHdr is a
   * device-wide flag (the last opener sets it for all queues). Names longer
   * than 15 bytes throw EINVAL rather than being truncated.
   */
  tunOpen(name: string, multiQueue: boolean, vnetHdr: boolean): number;
  /** TUNSETOFFLOAD with constants.TUN_F_* flags. */
  tunSetOffload(fd: number, flags: number): void;
  /** TUNSETVNETHDRSZ. */
  tunSetVnetHdrSize(fd: number, size: number): void;
  /**
   * Reads up to maxCount packets; packet i lands at
   * buf[i*slotSize + headroom .. (i+1)*slotSize). sizes[i] = its length, or
   * -1 if it filled the whole slot: read(2) on a TUN silently truncates, so
   * a full slot may be a cut packet. Make slotSize - headroom larger than the
   * largest packet (MTU + 1 at least). Returns the count, 0 when none is
   * queued. Throws only if the first read fails.
   */
  tunRead(fd: number, buf: Uint8Array, slotSize: number, headroom: number,
    maxCount: number, sizes: Int32Array): number;
  /**
   * Writes packet i = buf[offsets[i] .. offsets[i]+sizes[i]) for i < count,
   * stopping when the queue is full (EAGAIN). A packet failing otherwise is
   * skipped: status[0] += 1, status[1] = errno. Returns packets processed
   * (written + failed); count - returned were not attempted.
   */
  tunWrite(fd: number, buf: Uint8Array, offsets: Int32Array, sizes: Int32Array,
    count: number, status: Int32Array): number;

  /**
   * socket(AF_INET, SOCK_RAW, protocol), non-blocking, close-on-exec.
   * Buffer sizes > 0 are forced (SO_*BUFFORCE, or SO_*BUF without
   * CAP_NET_ADMIN); 0 keeps the default.
   */
  rawOpen(protocol: number, rcvbuf: number, sndbuf: number, hdrincl: boolean): number;
  /**
   * SO_ATTACH_FILTER with a classic BPF program: consecutive 8-byte
   * struct sock_filter in host byte order (u16 code, u8 jt, u8 jf, u32 k).
   * On an AF_INET raw socket the program sees the packet from the IP header.
   */
  attachFilter(fd: number, program: Uint8Array): void;
  /**
   * recvmmsg up to maxCount datagrams; datagram i lands at
   * buf[i*slotSize + headroom .. (i+1)*slotSize). sizes[i] = its length
   * (raw IPv4: including the IP header), or -1 if truncated. Returns the
   * count, 0 when none is queued. With innerCsum (maxCount bytes), the
   * addon checks each IPv4-in-IPv4 datagram's inner TCP/UDP checksum while
   * the batch is in cache: innerCsum[i] = 1 right, 2 wrong, 0 not checked
   * (not IPIP, a fragment, lengths that disagree, UDP without checksum).
   */
  rawRecv(fd: number, buf: Uint8Array, slotSize: number, headroom: number,
    maxCount: number, sizes: Int32Array, innerCsum?: Uint8Array): number;
  /**
   * sendmmsg packet i = buf[offsets[i] .. offsets[i]+sizes[i]) to dsts[i]
   * (IPv4 as a host-order uint32). Stops at EAGAIN/ENOBUFS; a packet failing
   * otherwise is skipped (status[0] += 1, status[1] = errno). Returns packets
   * processed (sent + failed).
   */
  rawSend(fd: number, buf: Uint8Array, offsets: Int32Array, sizes: Int32Array,
    dsts: Uint32Array, count: number, status: Int32Array): number;
  /**
   * The outbound batch of a worker. Message i is buf[offsets[i], +sizes[i])
   * then buf[offsets2[i], +sizes2[i]) (a second iovec; sizes2[i] may be 0:
   * TSO segmentation builds each segment's headers apart and sends the
   * payload from where the TUN read put it), an IPv4 packet.
   * l2[3i] = 0: sent on rawFd to dsts[i] (host-order uint32), routed by the
   * kernel. l2[3i] = ifindex: sent on packetFd (packetOpen) out of that
   * interface to the Ethernet address in l2[3i+1] (bytes 0-3, big-endian)
   * and l2[3i+2] >>> 16 (bytes 4-5).
   * csums[2i] >= 0 has the addon finish a checksum first, as for a
   * CHECKSUM_PARTIAL packet: the ones'-complement sum from buf[csums[2i]] to
   * the end of message i (both spans), whose field at csums[2i] + csums[2i+1]
   * (in the first span) holds the folded pseudo-header sum, complemented into
   * that field (UDP: 0 sent as 0xffff). csums[2i] = -1: sent as it is.
   * Messages go out in batch order (each run for one socket in one sendmmsg).
   * A message failing is skipped (status[0] += 1, status[1] = errno); a full
   * queue ends the batch (status[2] += messages left); status[3] += bytes
   * sent; status[4] += messages sent on packetFd. Returns the messages sent.
   */
  sendBatch(rawFd: number, packetFd: number, buf: Uint8Array, offsets: Int32Array, sizes: Int32Array,
    offsets2: Int32Array, sizes2: Int32Array, dsts: Uint32Array, l2: Int32Array, csums: Int32Array,
    count: number, status: Int32Array): number;
  /**
   * An AF_PACKET SOCK_DGRAM socket for sendBatch's direct sends: protocol 0,
   * so it receives nothing; the kernel writes the Ethernet header.
   */
  packetOpen(sndbuf: number): number;

  /**
   * Blocking poll(2) over the first n entries; revents is written (zeros on
   * timeout). timeoutMs < 0 waits forever. Returns the number ready, 0 on
   * timeout or EINTR. Blocks the calling thread: use from workers.
   */
  poll(fds: Int32Array, events: Int32Array, revents: Int32Array, n: number, timeoutMs: number): number;

  /** eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC). */
  eventfdOpen(): number;
  /** Adds 1 to the eventfd (wakes a poller). */
  eventfdSignal(fd: number): void;
  /** Resets the eventfd counter; no-op when it is 0. */
  eventfdDrain(fd: number): void;
  close(fd: number): void;

  /**
   * Sends `state` (e.g. 'READY=1') to systemd's notify socket. The socket is
   * socketPath when given, else $NOTIFY_SOCKET read with getenv() on each
   * call: on the main thread process.env writes reach it, in a worker they
   * do not (pass socketPath there). '@name' is the abstract namespace.
   * Returns false when there is no socket to notify.
   */
  sdNotify(state: string, socketPath?: string): boolean;
  /** if_nametoindex; 0 when there is no such interface. */
  ifIndex(name: string): number;

  /**
   * One rtnetlink round trip in the calling thread's network namespace:
   * opens an AF_NETLINK/NETLINK_ROUTE socket (close-on-exec), sends `msg`
   * (one complete netlink message, host byte order, e.g. from
   * dataplane/kernel-fan/netlink.ts), waits up to timeoutMs (>= 0) for the
   * first reply datagram, closes, and returns a copy of it (at most 64 KiB).
   * Extended ACKs are enabled when the kernel has them. Kernel-level
   * failures arrive in the reply (read it with parseAck); socket failures
   * throw a NativeError, ETIMEDOUT when nothing came back (a request without
   * NLM_F_ACK that succeeds gets no reply). Blocks the thread: control plane
   * only.
   */
  netlinkRequest(msg: Uint8Array, timeoutMs: number): Uint8Array;

  /**
   * A long-lived netlink socket (src/host/netlink/socket.ts): socket(AF_NETLINK,
   * SOCK_RAW, protocol), non-blocking, close-on-exec, bound, joined to each
   * multicast group number in `groups`, SO_RCVBUF forced to rcvbuf when > 0.
   * With netnsPath (/run/netns/NAME) it is created in that network namespace.
   */
  netlinkOpen(protocol: number, groups: Uint32Array, rcvbuf: number, netnsPath?: string): number;
  /** Joins one more multicast group (a group number). */
  netlinkJoin(fd: number, group: number): void;
  /** The socket's port id (nl_pid): replies to its own requests carry it. */
  netlinkPortId(fd: number): number;
  /** The C library's words for an errno (strerror), e.g. "No such process". */
  strerror(errno: number): string;
  /** Sends one datagram (complete netlink messages) to the kernel. */
  netlinkSend(fd: number, msg: Uint8Array): void;
  /**
   * Copies the next datagram from the kernel into buf and returns its
   * length; 0 when none is queued. Datagrams from other senders are dropped.
   * Throws ENOBUFS when the kernel dropped messages for this socket, EMSGSIZE
   * when a datagram did not fit.
   */
  netlinkRecv(fd: number, buf: Uint8Array): number;
  /**
   * Calls `onReadable` from this thread's event loop whenever fd is readable
   * (uv_poll: no thread, no timer). Does not keep the process alive.
   */
  netlinkWatch(fd: number, onReadable: () => void): NetlinkWatch;
  /** Stops a watch; the fd stays open. Idempotent. */
  netlinkUnwatch(watch: NetlinkWatch): void;
  // ---- VXLAN dataplane (native/udp.c) ----------------------------------------

  /** tunOpen for a TAP device (IFF_TAP): reads and writes carry Ethernet frames. */
  tapOpen(name: string, multiQueue: boolean, vnetHdr: boolean): number;
  /**
   * A UDP socket bound to bindAddr:port (host-order IPv4, 0 = any; port 0
   * picks one), non-blocking, close-on-exec, SO_REUSEPORT when asked, forced
   * buffer sizes (> 0), IP_PMTUDISC_DONT (no DF, as Linux's vxlan devices by
   * default) and IP_RECVTOS. EADDRINUSE says what may hold the port.
   */
  udpOpen(bindAddr: number, port: number, reusePort: boolean, rcvbuf: number, sndbuf: number): number;
  /** The port a UDP socket is bound to. */
  udpLocalPort(fd: number): number;
  /**
   * SO_ATTACH_REUSEPORT_CBPF: a classic BPF program (as attachFilter's) that
   * returns the index of the socket of the SO_REUSEPORT group that gets each
   * datagram; it sees the datagram from its UDP payload on.
   */
  udpAttachReuseport(fd: number, program: Uint8Array): void;
  /** setsockopt(UDP_GRO); throws ENOPROTOOPT before Linux 5.0. */
  udpSetGro(fd: number, on: boolean): void;
  /** getsockopt(UDP_GRO); throws ENOPROTOOPT before Linux 5.12. */
  udpGetGro(fd: number): boolean;
  /**
   * What this kernel's UDP offers, each 0 or the errno of the attempt on a
   * throw-away socket: setsockopt(UDP_SEGMENT) (4.18), setsockopt(UDP_GRO)
   * (5.0), getsockopt(UDP_GRO) (5.12).
   */
  udpProbe(): { gso: number; gro: number; groGet: number };
  /**
   * The outbound batch of a VXLAN worker. Message i is the concatenation of
   * spans msgs[5i] .. msgs[5i]+msgs[5i+1]-1 (spans[2k] = offset in buf,
   * spans[2k+1] = length), sent to dsts[i]:port; msgs[5i+2] > 0 is its
   * UDP_SEGMENT size (the kernel cuts it into datagrams of that size, the
   * last shorter); msgs[5i+3] its outer TOS; msgs[5i+4] is set to what
   * became of it (1 sent, -1 refused, 0 not attempted). Before sending, checksum task k
   * (csums[4k..4k+3] = span, start, field offset, span count 1 or 2) is
   * finished like a CHECKSUM_PARTIAL packet's: summed from buf[start] over
   * the rest of its span and the next one, complemented into the field (which
   * holds the pseudo-header sum). A refused message is skipped (status[0] +=
   * 1, status[1] = errno); a full queue ends the batch (status[2] += left);
   * status[3] += bytes sent. Returns the messages sent.
   */
  udpSendBatch(fd: number, buf: Uint8Array, spans: Int32Array, nspans: number, msgs: Int32Array, dsts: Uint32Array,
    port: number, csums: Int32Array, ncsums: number, count: number, status: Int32Array): number;
  /**
   * recvmmsg up to maxCount datagrams, datagram i at buf[i*slotSize +
   * headroom ..): sizes[i] its length (-1: truncated), srcs[i] its source
   * address, gso[i] the segment size of a GRO'd datagram (0: a single one),
   * tos[i] the outer TOS (-1: unknown). With innerCsum, the inner TCP/UDP
   * checksum state of each datagram that is not GRO'd (1 right, 2 wrong, 0
   * not checked). Returns the count, 0 when none is queued.
   */
  udpRecvBatch(fd: number, buf: Uint8Array, slotSize: number, headroom: number, maxCount: number, sizes: Int32Array,
    srcs: Uint32Array, gso: Int32Array, tos: Int32Array, innerCsum?: Uint8Array): number;
  /**
   * Writes packet i with one writev of spans pkts[2i] .. pkts[2i]+pkts[2i+1]-1
   * (spans as udpSendBatch's). Stops at EAGAIN; a failing packet is skipped
   * (status[0] += 1, status[1] = errno). Returns the packets processed.
   */
  tunWriteV(fd: number, buf: Uint8Array, spans: Int32Array, nspans: number, pkts: Int32Array, count: number, status: Int32Array): number;
  // bpf(2), for the ebpf dataplane's loader (native/bpf.c): syscalls only;
  // src/dataplane/ebpf/ parses the object and decides what to create.
  // Failures throw a NativeError naming the command, e.g.
  // `bpf(BPF_PROG_LOAD): Operation not permitted (EPERM): fand_egress`.

  /** BPF_MAP_CREATE; name at most 15 bytes. Returns the map's fd (close-on-exec). */
  bpfMapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, flags: number, name: string): number;
  /** BPF_MAP_UPDATE_ELEM with BPF_ANY/NOEXIST/EXIST flags; value holds value_size bytes (x possible CPUs for per-CPU maps). */
  bpfMapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number): void;
  /** BPF_MAP_LOOKUP_ELEM into value; false when there is no such key. */
  bpfMapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean;
  /** BPF_MAP_DELETE_ELEM; false when there was no such key. */
  bpfMapDelete(fd: number, key: Uint8Array): boolean;
  /**
   * BPF_PROG_LOAD of `insns` (struct bpf_insn, map fds already patched in).
   * With a non-empty `log`, the verifier writes its log there (NUL-terminated):
   * read it when this throws.
   */
  bpfProgLoad(type: number, insns: Uint8Array, license: string, name: string, log: Uint8Array): number;
  /**
   * BPF_PROG_TEST_RUN: runs the program on dataIn (an Ethernet frame for tc
   * programs) `repeat` times; result = [return value, bytes of the packet
   * after the program written to dataOut, average ns per run]. ctxIn: a
   * struct __sk_buff (empty for none).
   */
  bpfProgTestRun(fd: number, dataIn: Uint8Array, dataOut: Uint8Array, ctxIn: Uint8Array, repeat: number, result: Int32Array): void;
  /** BPF_OBJ_GET_INFO_BY_FD of a program. */
  bpfProgInfo(fd: number): { id: number; tag: string; name: string; xlatedBytes: number; jitedBytes: number };
}

/** An opaque handle from netlinkWatch. */
export type NetlinkWatch = { readonly __netlinkWatch: unique symbol };

/** The package root: the nearest ancestor of this file holding package.json. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`fand: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

function load(): Native {
  const file = path.join(packageRoot(), 'native', 'build', 'Release', 'fand_native.node');
  if (!existsSync(file)) {
    throw new Error(`fand: native addon ${file} is missing; build it with \`npm install\` ` +
      '(or `node scripts/build-native.mjs`)');
  }
  return createRequire(import.meta.url)(file) as Native;
}

export const native: Native = load();
