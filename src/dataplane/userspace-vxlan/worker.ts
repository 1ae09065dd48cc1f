// One VXLAN dataplane worker (a worker thread, running the loop of
// userspace/loop.ts). It owns one queue of each VXLAN fan's multi-queue TAP
// (on the fan bridge), one UDP socket per underlay address and port to
// receive on (SO_REUSEPORT: the kernel spreads flows over the workers'
// sockets) and one to send from (its own source port: flows leave with the
// port of the worker that carries them, so receivers can spread them too).
//
//   TAP → frames (TCP super-frames cut into segments) → VXLAN → sendmmsg,
//         each super-frame's segments in ONE message with UDP_SEGMENT
//   recvmmsg (UDP_GRO: up to 64 KiB of datagrams of one flow at once) →
//         validate each VXLAN packet → join consecutive TCP segments (and
//         UDP datagrams, where the TAP takes UDP_L4 GSO headers) →
//         one writev per frame (or super-frame) to the TAP
//
// Counters go to this worker's rows of a shared Float64Array.
import { workerData } from 'node:worker_threads';
import { constants as osConstants } from 'node:os';
import { native } from '../../native/index.js';
import { Drop, Traffic } from '../counters.js';
import { counterBase, SOCKET_BUFFER } from '../userspace/ring.js';
import { note, runWorker, type Forwarder, type LoopConfig } from '../userspace/loop.js';
import { VNET_HDR_LEN, writeInboundVnetHeaderTo } from '../packet/vnet.js';
import { vxlanReuseportProgram } from '../packet/fanout.js';
import { fragmentChunk, fragmentCount, writeFragmentHeader } from '../packet/fragment.js';
import { completeChecksum } from '../packet/tso.js';
import { continuesMerge, continuesUdpMerge, finishMerged, finishMergedUdp, InnerCsum, mergeablePayload, mergeableUdpPayload } from '../packet/gro.js';
import { segmentPayload, tcpSegmentCount, vnetU16, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4 } from '../packet/tso.js';
import {
  decapsulateFrame, encapsulateFrame, ETH_HLEN, fragNeededFrame, sameEthernet, SEGMENT_PREFIX, vniOf,
  VXLAN_HEADER_LENGTH, writeVxlanHeader, writeVxlanSegment, type VxlanContext,
} from '../packet/vxlan.js';
import { BATCH, IN_SLOT, MAX_SPANS, MAX_TAP_PACKETS, OUT_HEADROOM, OUT_SLOT, SEGMENT_HEADER_ROOM, SEND_MESSAGES, udpSegmentsPerSend } from './ring.js';

export interface VxlanWorkerFan {
  /** Row of this fan in every worker's counter block (stable across reloads). */
  readonly slot: number;
  readonly tap: string;
  /** This host's underlay address: the sockets bind to it. */
  readonly local: number;
  /** UDP port the fan's VXLAN packets go to and arrive on. */
  readonly port: number;
  readonly ctx: VxlanContext;
}

/** Which UDP offloads the workers use (offload.ts decides). */
export interface UdpOffloads {
  /** UDP_SEGMENT: a TCP super-frame's segments leave in one send. */
  readonly gso: boolean;
  /** UDP_GRO: datagrams of one flow arrive joined. */
  readonly gro: boolean;
  /** The TAP takes UDP_L4 GSO headers (TUN_F_USO4): inner UDP datagrams of one flow go to the bridge joined. */
  readonly uso?: boolean;
}

export interface VxlanWorkerConfig extends LoopConfig<VxlanWorkerFan> {
  readonly offloads: UdpOffloads;
}

/** A fan as this worker runs it. */
interface LiveFan extends VxlanWorkerFan {
  readonly fd: number;
  readonly base: number;
}

/** A socket fans receive on: one (address, port) pair; its fans are told apart by VNI. */
interface RecvSocket {
  readonly key: string;
  readonly fd: number;
  fans: LiveFan[];
}

const { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO_ECN } = native.constants;
const { EIO, EINVAL } = osConstants.errno;
/** TCP super-frames from the bridge, with CWR too (tso.ts keeps it on the first segment). */
const TAP_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN;

function vxlanForwarder(cfg: VxlanWorkerConfig): Forwarder<VxlanWorkerFan> {
  const counters = new Float64Array(cfg.counters);
  const { gro: useGro } = cfg.offloads;
  let useUso = cfg.offloads.uso === true;
  let useGso = cfg.offloads.gso;
  let fans: LiveFan[] = [];
  let sockets: RecvSocket[] = [];
  /** Send sockets by local address. */
  let senders = new Map<number, number>();

  // ---- outbound buffers: TAP reads, then the segment headers, then an ICMP scratch area
  const hdrArea = BATCH * OUT_SLOT;
  const icmpArea = hdrArea + (MAX_SPANS >> 1) * SEGMENT_HEADER_ROOM;
  const outRing = new Uint8Array(icmpArea + 512);
  const sizes = new Int32Array(BATCH);
  const spans = new Int32Array(2 * MAX_SPANS);
  const msgs = new Int32Array(5 * SEND_MESSAGES);
  const msgSegs = new Int32Array(SEND_MESSAGES);
  const msgBytes = new Int32Array(SEND_MESSAGES);
  const dsts = new Uint32Array(SEND_MESSAGES);
  const tos = new Uint8Array(SEND_MESSAGES);
  const csums = new Int32Array(4 * MAX_SPANS);
  const sendStatus = new Int32Array(4);
  const one = new Int32Array(1);
  const oneLen = new Int32Array(1);
  const tapStatus = new Int32Array(2);

  // ---- inbound buffers: datagrams, then the virtio-net headers of the frames
  // written, then the Ethernet + IPv4 headers of fragments
  const vnetArea = BATCH * IN_SLOT;
  const fragArea = vnetArea + MAX_TAP_PACKETS * 16;
  const inRing = new Uint8Array(fragArea + MAX_TAP_PACKETS * 64);
  const inSizes = new Int32Array(BATCH);
  const srcs = new Uint32Array(BATCH);
  const gsos = new Int32Array(BATCH);
  const outerTos = new Int32Array(BATCH);
  const innerCsum = new Uint8Array(BATCH);
  const wSpans = new Int32Array(2 * MAX_SPANS);
  const wPkts = new Int32Array(2 * MAX_TAP_PACKETS);
  const wSegs = new Int32Array(MAX_TAP_PACKETS);
  const wBytes = new Int32Array(MAX_TAP_PACKETS);

  const closeAll = (): void => {
    for (const f of fans) { try { native.close(f.fd); } catch { /* already closed */ } }
    for (const s of sockets) { try { native.close(s.fd); } catch { /* already closed */ } }
    for (const fd of senders.values()) { try { native.close(fd); } catch { /* already closed */ } }
    fans = []; sockets = []; senders = new Map();
  };

  // Opens what new fans need, keeps what stays, closes the rest. Start and
  // reload only: allocation here is fine.
  const setFans = (next: readonly VxlanWorkerFan[]): void => {
    const kept: LiveFan[] = [];
    for (const f of next) {
      const old = fans.find((x) => x.tap === f.tap && x.slot === f.slot);
      // IFF_VNET_HDR: every TAP read and write carries a virtio-net header.
      const fd = old ? old.fd : native.tapOpen(f.tap, true, true);
      if (!old) native.tunSetOffload(fd, TAP_OFFLOADS);
      kept.push({ ...f, fd, base: counterBase(cfg.index, f.slot) });
    }
    for (const old of fans) if (!kept.some((k) => k.fd === old.fd)) native.close(old.fd);
    fans = kept;
    const nextSockets: RecvSocket[] = [];
    for (const f of fans) {
      const key = `${f.local}:${f.port}`;
      let s = nextSockets.find((x) => x.key === key);
      if (!s) {
        const old = sockets.find((x) => x.key === key);
        let fd = old?.fd;
        if (fd === undefined) {
          fd = native.udpOpen(f.local, f.port, true, SOCKET_BUFFER, SOCKET_BUFFER);
          if (useGro) native.udpSetGro(fd, true);
          // Spread inbound flows over the workers' sockets by inner flow (fanout.ts).
          if (cfg.workers > 1) native.udpAttachReuseport(fd, vxlanReuseportProgram(cfg.workers));
        }
        s = { key, fd, fans: [] };
        nextSockets.push(s);
      }
      s.fans.push(f);
    }
    for (const old of sockets) if (!nextSockets.some((s) => s.fd === old.fd)) native.close(old.fd);
    sockets = nextSockets;
    const nextSenders = new Map<number, number>();
    for (const f of fans) {
      if (nextSenders.has(f.local)) continue;
      nextSenders.set(f.local, senders.get(f.local) ?? native.udpOpen(f.local, 0, false, SOCKET_BUFFER, SOCKET_BUFFER));
    }
    for (const [local, fd] of senders) if (!nextSenders.has(local)) native.close(fd);
    senders = nextSenders;
  };

  // ---- outbound ---------------------------------------------------------------

  // The batch under construction: m messages over ns spans, nc checksum tasks,
  // nh segment headers used in the header area.
  let m = 0;
  let ns = 0;
  let nc = 0;
  let nh = 0;
  const flush = (f: LiveFan): void => {
    if (m === 0) return;
    sendStatus.fill(0);
    native.udpSendBatch(senders.get(f.local)!, outRing, spans, ns, msgs, dsts, f.port, csums, nc, m, sendStatus);
    const b = f.base;
    for (let i = 0; i < m; i++) {
      const r = msgs[5 * i + 4]!;
      if (r > 0) {
        counters[b + Traffic.TxPackets]! += msgSegs[i]!;
        counters[b + Traffic.TxBytes]! += msgBytes[i]!;
      } else {
        counters[b + (r < 0 ? Drop.OutSendError : Drop.OutQueueFull)]! += msgSegs[i]!;
        // UDP_SEGMENT needs checksum offload on the outgoing device (EIO,
        // udp_send_skb) and segments that fit its MTU (EINVAL): without them,
        // one datagram per segment from now on.
        if (r < 0 && msgs[5 * i + 2]! > 0 && useGso && (sendStatus[1] === EIO || sendStatus[1] === EINVAL)) {
          useGso = false;
          note('udp-gso-refused', `VXLAN: the kernel refused a UDP_SEGMENT send (${sendStatus[1] === EIO ? 'EIO: the underlay device has no checksum offload' : 'EINVAL: a segment larger than the underlay MTU'}); worker ${cfg.index} now sends one datagram per segment`);
        }
      }
    }
    m = 0; ns = 0; nc = 0; nh = 0;
  };

  /** Answers a DF frame that does not fit the fan with ICMP "fragmentation needed", written back into the TAP. */
  const tooBig = (f: LiveFan, off: number, len: number): void => {
    outRing.fill(0, icmpArea, icmpArea + VNET_HDR_LEN); // a plain frame: no offload
    const n = fragNeededFrame(outRing, off, len, f.ctx.mtu, outRing, icmpArea + VNET_HDR_LEN);
    one[0] = icmpArea;
    oneLen[0] = VNET_HDR_LEN + n;
    tapStatus[0] = 0;
    native.tunWrite(f.fd, outRing, one, oneLen, 1, tapStatus);
  };

  /** A frame without offload: one message of one span (VXLAN header + frame). */
  const single = (f: LiveFan, off: number, len: number, vh: number): void => {
    const b = f.base;
    counters[b + Traffic.OutRead]!++;
    let csumAt = -1;
    let csumField = 0;
    if ((outRing[vh]! & VNET_F_NEEDS_CSUM) !== 0) {
      // TUN_F_CSUM: the checksum is left for "hardware", which is us; the
      // addon finishes it as it sends. Offsets count from the frame's start.
      csumAt = vnetU16(outRing, vh + 6);
      csumField = vnetU16(outRing, vh + 8);
      if (csumAt < ETH_HLEN + 20 || csumAt + csumField + 2 > len) { counters[b + Drop.OutMalformed]!++; return; }
    }
    if (m === SEND_MESSAGES || ns + 1 > MAX_SPANS) flush(f);
    const v = encapsulateFrame(outRing, off, len, f.ctx, dsts, tos, m);
    if (v < 0) {
      counters[b + (-v - 1)]!++;
      if (v === -1 - Drop.OutTooBig) tooBig(f, off, len);
      return;
    }
    if (outRing[off + 12] === 0x08 && outRing[off + 13] === 0x00 &&
        ((outRing[off + ETH_HLEN + 2]! << 8) | outRing[off + ETH_HLEN + 3]!) > f.ctx.mtu) {
      fragments(f, off, len, csumAt, csumField);
      return;
    }
    if (csumAt >= 0) {
      csums[4 * nc] = ns; csums[4 * nc + 1] = off + csumAt; csums[4 * nc + 2] = csumField; csums[4 * nc + 3] = 1;
      nc++;
    }
    spans[2 * ns] = off - VXLAN_HEADER_LENGTH;
    spans[2 * ns + 1] = len + VXLAN_HEADER_LENGTH;
    msgs[5 * m] = ns; msgs[5 * m + 1] = 1; msgs[5 * m + 2] = 0; msgs[5 * m + 3] = tos[m]!;
    msgSegs[m] = 1;
    msgBytes[m] = len;
    ns++;
    m++;
  };

  /**
   * An IPv4 frame without DF larger than the fan (encapsulateFrame accepted
   * it): cut into fragments that fit, each its own VXLAN packet (fragment.ts),
   * as the router a routed fan has would. A frame cut into N counts as N read.
   */
  const fragments = (f: LiveFan, off: number, len: number, csumAt: number, csumField: number): void => {
    const b = f.base;
    const ip = off + ETH_HLEN;
    // The L4 checksum covers the whole datagram: finish it before cutting.
    if (csumAt >= 0 && !completeChecksum(outRing, off, len, csumAt, csumField)) { counters[b + Drop.OutMalformed]!++; return; }
    const count = fragmentCount(outRing, ip, len - ETH_HLEN, f.ctx.mtu);
    if (count === 0) { counters[b + Drop.OutTooBig]!++; return; } // IP options: not cut
    counters[b + Traffic.OutRead]! += count - 1;
    const dst = dsts[m]!;
    const t = tos[m]!;
    const chunk = fragmentChunk(f.ctx.mtu);
    for (let k = 0; k < count; k++) {
      if (m === SEND_MESSAGES || ns + 2 > MAX_SPANS) flush(f);
      const h = hdrArea + nh * SEGMENT_HEADER_ROOM;
      nh++;
      writeVxlanHeader(outRing, h, f.ctx.vni);
      outRing.copyWithin(h + VXLAN_HEADER_LENGTH, off, off + ETH_HLEN);
      const pay = writeFragmentHeader(outRing, ip, f.ctx.mtu, k, count, outRing, h + SEGMENT_PREFIX);
      spans[2 * ns] = h; spans[2 * ns + 1] = SEGMENT_PREFIX + 20;
      spans[2 * ns + 2] = ip + 20 + k * chunk; spans[2 * ns + 3] = pay;
      dsts[m] = dst;
      msgs[5 * m] = ns; msgs[5 * m + 1] = 2; msgs[5 * m + 2] = 0; msgs[5 * m + 3] = t;
      msgSegs[m] = 1;
      msgBytes[m] = ETH_HLEN + 20 + pay;
      ns += 2;
      m++;
    }
  };

  /**
   * A TCP super-frame (TUN_F_TSO4): cut into segments of gso_size, each
   * VXLAN + Ethernet + IPv4 + TCP headers from the header area and its
   * payload in place; with UDP_SEGMENT all segments of one send are one
   * message (every one the same size but the last), else one message each.
   */
  const superFrame = (f: LiveFan, off: number, len: number, vh: number, gsoType: number): void => {
    const b = f.base;
    const mss = vnetU16(outRing, vh + 4);
    const ip = off + ETH_HLEN;
    const isIp = len > ETH_HLEN && outRing[off + 12] === 0x08 && outRing[off + 13] === 0x00;
    const count = isIp && (gsoType & ~VNET_GSO_ECN) === VNET_GSO_TCPV4 ? tcpSegmentCount(outRing, ip, len - ETH_HLEN, mss) : 0;
    if (count === 0) { counters[b + Traffic.OutRead]!++; counters[b + Drop.OutMalformed]!++; return; }
    counters[b + Traffic.OutRead]! += count;
    const hl = ((outRing[ip]! & 15) << 2) + ((outRing[ip + ((outRing[ip]! & 15) << 2) + 12]! >>> 4) << 2);
    if (m === SEND_MESSAGES) flush(f);
    const v = encapsulateFrame(outRing, off, len, f.ctx, dsts, tos, m, hl + mss);
    if (v < 0) {
      counters[b + (-v - 1)]! += count;
      if (v === -1 - Drop.OutTooBig) tooBig(f, off, len);
      return;
    }
    const dst = dsts[m]!;
    const t = tos[m]!;
    const segSize = SEGMENT_PREFIX + hl + mss;
    const perSend = useGso ? udpSegmentsPerSend(segSize) : 1;
    for (let k = 0; k < count;) {
      const n = Math.min(perSend, count - k);
      if (m === SEND_MESSAGES || ns + 2 * n > MAX_SPANS) flush(f);
      dsts[m] = dst;
      msgs[5 * m] = ns; msgs[5 * m + 1] = 2 * n; msgs[5 * m + 2] = useGso && n > 1 ? segSize : 0; msgs[5 * m + 3] = t;
      let bytes = 0;
      for (let j = 0; j < n; j++, k++) {
        const h = hdrArea + nh * SEGMENT_HEADER_ROOM;
        nh++;
        const hlen = writeVxlanSegment(outRing, off, len, mss, k, count, h, f.ctx.vni);
        const ipTotal = (outRing[h + SEGMENT_PREFIX + 2]! << 8) | outRing[h + SEGMENT_PREFIX + 3]!;
        const pay = ipTotal - (hlen - SEGMENT_PREFIX);
        spans[2 * ns] = h; spans[2 * ns + 1] = hlen;
        spans[2 * ns + 2] = segmentPayload(outRing, ip, len - ETH_HLEN, mss, k); spans[2 * ns + 3] = pay;
        // The inner TCP checksum, over this segment's header and payload.
        csums[4 * nc] = ns; csums[4 * nc + 1] = h + SEGMENT_PREFIX + ((outRing[h + SEGMENT_PREFIX]! & 15) << 2);
        csums[4 * nc + 2] = 16; csums[4 * nc + 3] = 2;
        nc++;
        ns += 2;
        bytes += ETH_HLEN + ipTotal;
      }
      msgSegs[m] = n;
      msgBytes[m] = bytes;
      m++;
    }
  };

  const outbound = (f: LiveFan): number => {
    // The virtio-net header lands in front of the frame, inside the headroom
    // where the VXLAN header is written once it has been read.
    const n = native.tunRead(f.fd, outRing, OUT_SLOT, OUT_HEADROOM - VNET_HDR_LEN, BATCH, sizes);
    if (n === 0) return 0;
    for (let i = 0; i < n; i++) {
      const off = i * OUT_SLOT + OUT_HEADROOM;
      const vh = off - VNET_HDR_LEN;
      const len = sizes[i]! - VNET_HDR_LEN;
      if (len < 0) { counters[f.base + Traffic.OutRead]!++; counters[f.base + Drop.OutMalformed]!++; continue; }
      const gsoType = outRing[vh + 1]!;
      if (gsoType === VNET_GSO_NONE) single(f, off, len, vh);
      else superFrame(f, off, len, vh, gsoType);
    }
    flush(f);
    return n;
  };

  // ---- inbound ----------------------------------------------------------------

  // Frames to write to one fan's TAP: np packets over nw spans (packet i's
  // virtio-net header at vnetArea + 16i).
  let np = 0;
  let nw = 0;
  let wFan: LiveFan | undefined;
  // The open merge: packet index (-1: none), its protocol (TCP or UDP), its
  // IPv4 header, merged IPv4 length, gso size, payload so far, the last
  // segment's payload and PSH.
  let open = -1;
  let mProto = 0;
  let mIp = 0;
  let mLen = 0;
  let mGso = 0;
  let merged = 0;
  let lastPay = 0;
  let lastPsh = false;

  /** Closes the open merge: a merge of one frame gets the header it would have alone (vnet.ts), of several a GSO one (gro.ts). */
  const closeMerge = (): void => {
    if (open < 0) return;
    const vAt = wSpans[2 * wPkts[2 * open]!]!;
    if (wSegs[open]! > 1 && mProto === 6) finishMerged(inRing, mIp, mLen, mGso, inRing, vAt, ETH_HLEN);
    else if (wSegs[open]! > 1) finishMergedUdp(inRing, mIp, mLen, mGso, inRing, vAt, ETH_HLEN);
    else writeInboundVnetHeaderTo(inRing, mIp, mLen, wFan!.ctx.mtu, inRing, vAt, ETH_HLEN);
    open = -1;
  };

  const writeTap = (): void => {
    closeMerge();
    const f = wFan;
    if (!f || np === 0) { np = 0; nw = 0; return; }
    tapStatus[0] = 0;
    const done = native.tunWriteV(f.fd, inRing, wSpans, nw, wPkts, np, tapStatus);
    const b = f.base;
    let segs = 0;
    let bytes = 0;
    for (let i = 0; i < done; i++) { segs += wSegs[i]!; bytes += wBytes[i]!; }
    let unsent = 0;
    for (let i = done; i < np; i++) unsent += wSegs[i]!;
    // A failed write is counted as one packet: which one failed is not known.
    counters[b + Drop.InTunError]! += tapStatus[0]!;
    if (tapStatus[0]! > 0 && tapStatus[1] === EINVAL && useUso) {
      // The probe said the TAP takes UDP_L4 GSO headers; this kernel says otherwise.
      useUso = false;
      note('tap-uso-refused', `VXLAN: the TAP refused a UDP super-packet (EINVAL); worker ${cfg.index} now writes UDP datagrams one by one`);
    }
    counters[b + Drop.InQueueFull]! += unsent;
    counters[b + Traffic.RxPackets]! += segs - tapStatus[0]!;
    counters[b + Traffic.RxBytes]! += bytes;
    np = 0; nw = 0;
  };

  /** Starts a packet of the frame at buf[e, e+flen): its virtio-net header (to be written) and the frame. */
  const newPacket = (f: LiveFan, e: number, flen: number): void => {
    if (wFan !== f || np === MAX_TAP_PACKETS || nw + 2 > MAX_SPANS) { writeTap(); wFan = f; }
    const vAt = vnetArea + 16 * np;
    wPkts[2 * np] = nw; wPkts[2 * np + 1] = 2;
    wSpans[2 * nw] = vAt; wSpans[2 * nw + 1] = VNET_HDR_LEN;
    wSpans[2 * nw + 2] = e; wSpans[2 * nw + 3] = flen;
    wSegs[np] = 1;
    wBytes[np] = flen;
    nw += 2;
    np++;
  };

  /**
   * An IPv4 packet without DF larger than the fan, not TCP (the kernel
   * segments TCP, vnet.ts): cut into fragments the bridge's ports take, as a
   * router would (fragment.ts). A packet cut into N counts as N received.
   */
  const fragmentsIn = (f: LiveFan, e: number, ip: number, count: number): void => {
    closeMerge();
    counters[f.base + Traffic.InReceived]! += count - 1;
    const chunk = fragmentChunk(f.ctx.mtu);
    for (let k = 0; k < count; k++) {
      if (wFan !== f || np === MAX_TAP_PACKETS || nw + 3 > MAX_SPANS) { writeTap(); wFan = f; }
      const vAt = vnetArea + 16 * np;
      const h = fragArea + 64 * np;
      inRing.fill(0, vAt, vAt + VNET_HDR_LEN);
      inRing.copyWithin(h, e, e + ETH_HLEN);
      const pay = writeFragmentHeader(inRing, ip, f.ctx.mtu, k, count, inRing, h + ETH_HLEN);
      wPkts[2 * np] = nw; wPkts[2 * np + 1] = 3;
      wSpans[2 * nw] = vAt; wSpans[2 * nw + 1] = VNET_HDR_LEN;
      wSpans[2 * nw + 2] = h; wSpans[2 * nw + 3] = ETH_HLEN + 20;
      wSpans[2 * nw + 4] = ip + 20 + k * chunk; wSpans[2 * nw + 5] = pay;
      wSegs[np] = 1;
      wBytes[np] = ETH_HLEN + 20 + pay;
      nw += 3;
      np++;
    }
  };

  /** One valid frame at buf[e, e+flen) for fan f; `checked`: what is known of its TCP checksum. */
  const deliver = (f: LiveFan, e: number, flen: number, checked: InnerCsum): void => {
    const ip = e + ETH_HLEN;
    const ipLen = flen - ETH_HLEN;
    const isIp = inRing[e + 12] === 0x08 && inRing[e + 13] === 0x00;
    if (isIp && ipLen > f.ctx.mtu && inRing[ip + 9] !== 6) {
      const count = fragmentCount(inRing, ip, ipLen, f.ctx.mtu);
      if (count > 0) { fragmentsIn(f, e, ip, count); return; }
    }
    const proto = isIp ? inRing[ip + 9]! : 0;
    const pay = proto === 6 ? mergeablePayload(inRing, ip, ipLen, checked)
      : proto === 17 && useUso ? mergeableUdpPayload(inRing, ip, ipLen, checked) : -1;
    const psh = proto === 6 && pay > 0 && (inRing[ip + 33]! & 0x08) !== 0;
    if (open >= 0 && pay > 0 && proto === mProto && wFan === f && nw + 1 <= MAX_SPANS && wPkts[2 * open + 1]! < 1000 &&
        sameEthernet(inRing, wSpans[2 * (wPkts[2 * open]! + 1)]!, e) &&
        (proto === 6 ? continuesMerge(inRing, mIp, mGso, merged, lastPay, lastPsh, ip, ipLen, pay)
          : continuesUdpMerge(inRing, mIp, mGso, merged, wSegs[open]!, lastPay, ip, ipLen, pay))) {
      // The next segment of the open merge: its payload joins as one more span.
      wSpans[2 * nw] = ip + ipLen - pay; wSpans[2 * nw + 1] = pay;
      nw++;
      wPkts[2 * open + 1]!++;
      if (psh) inRing[mIp + 33] = inRing[mIp + 33]! | 0x08;
      mLen += pay;
      merged += pay;
      lastPay = pay;
      lastPsh = psh;
      wSegs[open]!++;
      wBytes[open]! += flen;
      return;
    }
    closeMerge();
    newPacket(f, e, flen);
    const p = np - 1;
    const vAt = wSpans[2 * wPkts[2 * p]!]!;
    if (pay > 0) {
      open = p; mProto = proto; mIp = ip; mLen = ipLen; mGso = pay; merged = pay; lastPay = pay; lastPsh = psh;
    } else if (isIp) {
      writeInboundVnetHeaderTo(inRing, ip, ipLen, f.ctx.mtu, inRing, vAt, ETH_HLEN);
    } else {
      inRing.fill(0, vAt, vAt + VNET_HDR_LEN); // ARP: no offload
    }
  };

  const fanOf = (s: RecvSocket, off: number, len: number): LiveFan => {
    const first = s.fans[0]!;
    if (s.fans.length === 1) return first;
    const vni = vniOf(inRing, off, len);
    for (let i = 0; i < s.fans.length; i++) if (s.fans[i]!.ctx.vni === vni) return s.fans[i]!;
    return first;
  };

  const inbound = (s: RecvSocket): number => {
    const n = native.udpRecvBatch(s.fd, inRing, IN_SLOT, 0, BATCH, inSizes, srcs, gsos, outerTos, innerCsum);
    if (n === 0) return 0;
    for (let i = 0; i < n; i++) {
      const base = i * IN_SLOT;
      const len = inSizes[i]!;
      if (len <= 0) { // cut off (larger than a slot), or empty
        const f = s.fans[0]!;
        counters[f.base + Traffic.InReceived]!++;
        counters[f.base + Drop.InTruncated]!++;
        continue;
      }
      // A GRO'd datagram is several VXLAN packets of gso bytes (the last
      // shorter). GRO joined only datagrams whose UDP checksum, which covers
      // the inner frames, the kernel had verified: their TCP segments may be
      // joined without summing them again.
      const g = gsos[i]! > 0 ? gsos[i]! : len;
      const checked = gsos[i]! > 0 ? InnerCsum.Right : innerCsum[i]! as InnerCsum;
      const end = base + len;
      for (let at = base; at < end; at += g) {
        const seg = Math.min(g, end - at);
        const f = fanOf(s, at, seg);
        counters[f.base + Traffic.InReceived]!++;
        const v = decapsulateFrame(inRing, at, seg, srcs[i]!, outerTos[i]!, f.ctx);
        if (v < 0) { counters[f.base + (-v - 1)]!++; continue; }
        deliver(f, at + VXLAN_HEADER_LENGTH, v, checked);
      }
    }
    writeTap();
    wFan = undefined;
    return n;
  };

  try {
    return {
      setFans,
      fds: () => [...fans.map((f) => f.fd), ...sockets.map((s) => s.fd)],
      round: () => {
        let moved = 0;
        for (let i = 0; i < sockets.length; i++) moved += inbound(sockets[i]!);
        for (let i = 0; i < fans.length; i++) moved += outbound(fans[i]!);
        return moved;
      },
      close: closeAll,
    };
  } catch (e) {
    closeAll();
    throw e;
  }
}

runWorker(workerData as VxlanWorkerConfig, (cfg) => vxlanForwarder(cfg as VxlanWorkerConfig));
