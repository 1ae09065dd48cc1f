// One userspace dataplane worker (runs in a worker thread). It owns one
// queue of each fan's multi-queue TUN and one raw IPIP socket, and moves
// packets both ways in batches: TUN → encapsulate in place → sendmmsg, and
// recvmmsg → validate and decapsulate in place → TUN. It runs in the loop of
// loop.ts (poll, reload, watchdog); on reload, fans that stay keep their TUN
// queues: no packet of theirs is lost. Counters go to this worker's rows of a
// shared Float64Array.
import { workerData } from 'node:worker_threads';
import { native } from '../../native/index.js';
import { encapsulateHeader } from '../packet/encap.js';
import { readU32 } from '../packet/ipv4.js';
import { VNET_HDR_LEN, writeInboundVnetHeader } from '../packet/vnet.js';
import { appendPayload, continuesMerge, finishMerged, mergeablePayload } from '../packet/gro.js';
import { decapsulate } from '../packet/decap.js';
import { fanoutFilter } from '../packet/fanout.js';
import { NeighbourTable } from './neighbours.js';
import type { PacketContext } from '../packet/context.js';
import { Drop, Traffic } from '../counters.js';
import { BATCH, counterBase, HEADROOM, SEGMENT_HEADER_ROOM, SEND_BATCH, SLOT_SIZE, SOCKET_BUFFER } from './ring.js';
import { partialChecksumFits, segmentPayload, tcpSegmentCount, vnetU16, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4, writeTcpSegment } from '../packet/tso.js';
import { runWorker, type Forwarder, type LoopConfig } from './loop.js';

export interface WorkerFan {
  /** Row of this fan in every worker's counter block (stable across reloads). */
  readonly slot: number;
  readonly tun: string;
  readonly mtu: number;
  readonly ctx: PacketContext;
}

export interface WorkerConfig extends LoopConfig<WorkerFan> {
  /** NeighbourTable buffer: next hops to send to directly (neighbours.ts); undefined: always through the kernel. */
  readonly neighbours: SharedArrayBuffer | undefined;
}

/** A fan as this worker runs it: its TUN queue and its inbound batch. */
interface LiveFan extends WorkerFan {
  readonly fd: number;
  readonly base: number;          // counter row offset
  readonly inOffsets: Int32Array;
  readonly inLengths: Int32Array;
  /** Segments each inbound entry stands for (more than 1 when merged). */
  readonly inSegs: Int32Array;
  inCount: number;
  // The open GRO merge: entry index (-1: none), where it is, its gso size,
  // payload merged so far, the last segment's payload and PSH, segment count.
  open: number;
  mOff: number;
  mLen: number;
  gso: number;
  merged: number;
  lastPay: number;
  lastPsh: boolean;
  segs: number;
}

function ipipForwarder(cfg: WorkerConfig): Forwarder<WorkerFan> {
  const { IPPROTO_IPIP } = native.constants;
  const counters = new Float64Array(cfg.counters);

  let fans: LiveFan[] = [];
  let packet = -1;
  let directError: string | undefined;
  const raw = native.rawOpen(IPPROTO_IPIP, SOCKET_BUFFER, SOCKET_BUFFER, true);
  const close = (): void => {
    for (const f of fans) { try { native.close(f.fd); } catch { /* already closed */ } }
    for (const fd of [raw, packet]) { if (fd >= 0) { try { native.close(fd); } catch { /* already closed */ } } }
  };
  try {
    // Direct sends to resolved next hops (neighbours.ts); without the packet
    // socket every packet goes through the raw socket, and the main thread says why.
    const table = cfg.neighbours ? new NeighbourTable(cfg.neighbours) : undefined;
    if (table) {
      try { packet = native.packetOpen(SOCKET_BUFFER); } catch (e) { directError = (e as Error).message; }
    }
    const direct = table !== undefined && packet >= 0;

    // The outbound ring ends in a header area for TSO segments (see ring.ts).
    const hdrArea = BATCH * SLOT_SIZE;
    const outRing = new Uint8Array(hdrArea + SEND_BATCH * SEGMENT_HEADER_ROOM);
    const inRing = new Uint8Array(BATCH * SLOT_SIZE);
    const sizes = new Int32Array(BATCH);
    const offsets = new Int32Array(SEND_BATCH);
    const lengths = new Int32Array(SEND_BATCH);
    const offsets2 = new Int32Array(SEND_BATCH);
    const lengths2 = new Int32Array(SEND_BATCH);
    const dsts = new Uint32Array(SEND_BATCH);
    // Checksums the addon finishes as it sends (start, field offset; -1: none).
    const csums = new Int32Array(2 * SEND_BATCH);
    // Per message: the interface and Ethernet address of a direct send (0: the raw socket).
    const l2 = new Int32Array(3 * SEND_BATCH);
    // What rawRecv found of each inbound packet's inner checksum (InnerCsum).
    const innerCsum = new Uint8Array(BATCH);
    const status = new Int32Array(5);

    if (cfg.workers > 1) {
      native.attachFilter(raw, fanoutFilter(cfg.workers, cfg.index));
      // Packets queued between socket() and the filter were also delivered to
      // the other workers: discard them so none is forwarded twice.
      while (native.rawRecv(raw, inRing, SLOT_SIZE, 0, BATCH, sizes) > 0);
    }

    // Opens queues for new fans, keeps those that stay, closes the rest.
    // Called at start and on reload only: allocation here is fine.
    const setFans = (next: readonly WorkerFan[]): void => {
      const kept: LiveFan[] = [];
      for (const f of next) {
        const old = fans.find((x) => x.tun === f.tun && x.slot === f.slot);
        // IFF_VNET_HDR: every TUN read and write carries a virtio-net header (vnet.ts).
        const fd = old ? old.fd : native.tunOpen(f.tun, true, true);
        // Checksum and TSO offload: the kernel hands over partial checksums and
        // TCP super-packets (also those carrying CWR: TSO_ECN), which the
        // outbound path finishes and cuts (tso.ts).
        if (!old) native.tunSetOffload(fd, native.constants.TUN_F_CSUM | native.constants.TUN_F_TSO4 | native.constants.TUN_F_TSO_ECN);
        kept.push({
          ...f, fd, base: counterBase(cfg.index, f.slot),
          inOffsets: new Int32Array(BATCH), inLengths: new Int32Array(BATCH), inSegs: new Int32Array(BATCH), inCount: 0,
          open: -1, mOff: 0, mLen: 0, gso: 0, merged: 0, lastPay: 0, lastPsh: false, segs: 0,
        });
      }
      for (const old of fans) if (!kept.some((k) => k.fd === old.fd)) native.close(old.fd);
      fans = kept;
    };

    // Outbound batch under construction: m messages of one or two spans.
    // Flushed when full and after each TUN read.
    let m = 0;
    const flush = (b: number): void => {
      if (m === 0) return;
      status.fill(0);
      const sent = native.sendBatch(raw, packet, outRing, offsets, lengths, offsets2, lengths2, dsts, l2, csums, m, status);
      counters[b + Drop.OutSendError]! += status[0]!;
      counters[b + Drop.OutQueueFull]! += status[2]!;
      counters[b + Traffic.TxPackets]! += sent;
      counters[b + Traffic.TxDirect]! += status[4]!;
      counters[b + Traffic.TxBytes]! += status[3]! - 20 * sent; // inner bytes: less the outer headers
      m = 0;
    };

    const outbound = (f: LiveFan): number => {
      // The virtio-net header lands in front of the packet, inside the headroom
      // where the outer IPv4 header is written afterwards.
      const n = native.tunRead(f.fd, outRing, SLOT_SIZE, HEADROOM - VNET_HDR_LEN, BATCH, sizes);
      if (n === 0) return 0;
      const ctx = f.ctx;
      const b = f.base;
      for (let i = 0; i < n; i++) {
        const off = i * SLOT_SIZE + HEADROOM;
        const vh = off - VNET_HDR_LEN;
        const len = sizes[i]! - VNET_HDR_LEN;
        if (len < 0) { counters[b + Traffic.OutRead]!++; counters[b + Drop.OutMalformed]!++; continue; }
        const gso = outRing[vh + 1]!;
        if (gso === VNET_GSO_NONE) {
          counters[b + Traffic.OutRead]!++;
          // TUN_F_CSUM: the kernel left the checksum for "hardware", which is
          // us: the addon finishes it as it sends (csums below).
          let csumAt = -1;
          let csumField = 0;
          if ((outRing[vh]! & VNET_F_NEEDS_CSUM) !== 0) {
            csumAt = vnetU16(outRing, vh + 6);
            csumField = vnetU16(outRing, vh + 8);
            if (!partialChecksumFits(len, csumAt, csumField)) {
              counters[b + Drop.OutMalformed]!++;
              continue;
            }
            csumAt += off;
          }
          // encapsulateHeader returns a small integer (0 or a drop) rather than the
          // destination: a uint32 address above 2^31 would be a heap number per packet.
          const v = encapsulateHeader(outRing, off, len, ctx);
          if (v < 0) { counters[b + (-v - 1)]!++; continue; }
          if (m === SEND_BATCH) flush(b);
          const inner = (outRing[off + 2]! << 8) | outRing[off + 3]!;
          offsets[m] = off - 20;
          lengths[m] = inner + 20;
          lengths2[m] = 0;
          csums[2 * m] = csumAt;
          csums[2 * m + 1] = csumField;
          dsts[m] = readU32(outRing, off - 4);
          if (direct) table.lookup(dsts[m]!, l2, 3 * m); else l2[3 * m] = 0;
          m++;
          continue;
        }
        // A TCP super-packet (TUN_F_TSO4): cut it into segments of gso_size.
        const mss = vnetU16(outRing, vh + 4);
        // TCPv4, with or without the ECN flag (writeTcpSegment keeps CWR on the first segment only).
        const count = (gso & ~VNET_GSO_ECN) === VNET_GSO_TCPV4 ? tcpSegmentCount(outRing, off, len, mss) : 0;
        if (count === 0) { counters[b + Traffic.OutRead]!++; counters[b + Drop.OutMalformed]!++; continue; }
        counters[b + Traffic.OutRead]! += count;
        if (m + count > SEND_BATCH) flush(b);
        for (let k = 0; k < count; k++) {
          const h = hdrArea + m * SEGMENT_HEADER_ROOM;
          const hl = writeTcpSegment(outRing, off, len, mss, k, count, h + 20, true);
          const inner = (outRing[h + 22]! << 8) | outRing[h + 23]!;
          const v = encapsulateHeader(outRing, h + 20, inner, ctx);
          if (v < 0) { counters[b + (-v - 1)]!++; continue; }
          offsets[m] = h;
          lengths[m] = 20 + hl;
          offsets2[m] = segmentPayload(outRing, off, len, mss, k);
          lengths2[m] = inner - hl;
          csums[2 * m] = h + 20 + (outRing[h + 20]! & 15) * 4; // the TCP header
          csums[2 * m + 1] = 16;
          dsts[m] = readU32(outRing, h + 16);
          if (direct) table.lookup(dsts[m]!, l2, 3 * m); else l2[3 * m] = 0;
          m++;
        }
      }
      flush(b);
      return n;
    };

    // Which fan an inbound packet belongs to: the one whose overlay holds the
    // inner destination (the first fan when it cannot be told; decapsulation
    // then rejects and counts it).
    const fanOf = (buf: Uint8Array, off: number, len: number): LiveFan => {
      const first = fans[0]!;
      if (fans.length === 1) return first;
      const ihl = (buf[off]! & 15) * 4;
      if (len < ihl + 20) return first;
      const dst = readU32(buf, off + ihl + 16);
      for (let i = 0; i < fans.length; i++) {
        const c = fans[i]!.ctx;
        if (((dst & c.overlayMask) >>> 0) === c.overlayNet) return fans[i]!;
      }
      return first;
    };

    // Closes fan f's open merge: a merge of one packet is written as it came,
    // a merge of several gets the GSO header (gro.ts).
    const closeMerge = (f: LiveFan): void => {
      if (f.open < 0) return;
      if (f.segs > 1) {
        finishMerged(inRing, f.mOff, f.mLen, f.gso);
        f.inLengths[f.open] = f.mLen + VNET_HDR_LEN;
        f.inSegs[f.open] = f.segs;
      } else {
        writeInboundVnetHeader(inRing, f.mOff, f.mLen, f.mtu);
      }
      f.open = -1;
    };

    const inbound = (): number => {
      const n = native.rawRecv(raw, inRing, SLOT_SIZE, 0, BATCH, sizes, innerCsum);
      if (n === 0 || fans.length === 0) return n;
      for (let i = 0; i < fans.length; i++) { fans[i]!.inCount = 0; fans[i]!.open = -1; }
      for (let i = 0; i < n; i++) {
        const off = i * SLOT_SIZE;
        const len = sizes[i]!;
        const f = fanOf(inRing, off, len);
        counters[f.base + Traffic.InReceived]!++;
        if (len < 0) { counters[f.base + Drop.InTruncated]!++; continue; }
        const v = decapsulate(inRing, off, len, f.ctx);
        if (v < 0) { counters[f.base + (-v - 1)]!++; continue; }
        const innerLen = len - (v - off);
        // GRO: the next segment of the open merge joins it, its payload copied
        // behind the merge's (each slot has room for 64 KiB).
        const pay = mergeablePayload(inRing, v, innerLen, innerCsum[i]!);
        const psh = pay > 0 && (inRing[v + 33]! & 0x08) !== 0;
        if (f.open >= 0 && pay > 0 && continuesMerge(inRing, f.mOff, f.gso, f.merged, f.lastPay, f.lastPsh, v, innerLen, pay)) {
          f.mLen = appendPayload(inRing, f.mOff, f.mLen, v, innerLen, pay, psh);
          f.merged += pay;
          f.lastPay = pay;
          f.lastPsh = psh;
          f.segs++;
          continue;
        }
        closeMerge(f);
        f.inOffsets[f.inCount] = v - VNET_HDR_LEN;
        f.inLengths[f.inCount] = innerLen + VNET_HDR_LEN;
        f.inSegs[f.inCount] = 1;
        if (pay > 0) {
          f.open = f.inCount;
          f.mOff = v; f.mLen = innerLen; f.gso = pay; f.merged = pay; f.lastPay = pay; f.lastPsh = psh; f.segs = 1;
        } else {
          // The virtio-net header overwrites the tail of the outer header, already read.
          writeInboundVnetHeader(inRing, v, innerLen, f.mtu);
        }
        f.inCount++;
      }
      for (let k = 0; k < fans.length; k++) {
        const f = fans[k]!;
        closeMerge(f);
        const m = f.inCount;
        if (m === 0) continue;
        status[0] = 0;
        const done = native.tunWrite(f.fd, inRing, f.inOffsets, f.inLengths, m, status);
        let bytes = 0;
        let segs = 0;
        for (let i = 0; i < done; i++) { bytes += f.inLengths[i]! - VNET_HDR_LEN; segs += f.inSegs[i]!; }
        let unsent = 0;
        for (let i = done; i < m; i++) unsent += f.inSegs[i]!;
        // A failed write is counted as one packet: which one failed is not known.
        counters[f.base + Drop.InTunError]! += status[0]!;
        counters[f.base + Drop.InQueueFull]! += unsent;
        counters[f.base + Traffic.RxPackets]! += segs - status[0]!;
        counters[f.base + Traffic.RxBytes]! += bytes;
      }
      return n;
    };

    return {
      setFans,
      fds: () => [...fans.map((f) => f.fd), raw],
      round: () => {
        let moved = inbound();
        for (let i = 0; i < fans.length; i++) moved += outbound(fans[i]!);
        return moved;
      },
      close,
      notes: directError ? { direct: directError } : undefined,
    };
  } catch (e) {
    close();
    throw e;
  }
}

runWorker(workerData as WorkerConfig, (cfg) => ipipForwarder(cfg as WorkerConfig));
