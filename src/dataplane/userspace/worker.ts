// One userspace dataplane worker (runs in a worker thread). It owns one
// queue of each fan's multi-queue TUN and one raw IPIP socket, and moves
// packets both ways in batches: TUN → encapsulate in place → sendmmsg, and
// recvmmsg → validate and decapsulate in place → TUN. The loop blocks in
// poll(2) on its own thread; the main thread stops it through a shared flag
// and an eventfd. Counters go to this worker's block of a shared Float64Array.
import { parentPort, workerData } from 'node:worker_threads';
import { native } from '../../native/index.js';
import { encapsulateHeader } from '../packet/encap.js';
import { readU32 } from '../packet/ipv4.js';
import { outboundIsPlain, VNET_HDR_LEN, writeInboundVnetHeader } from '../packet/vnet.js';
import { decapsulate } from '../packet/decap.js';
import { fanoutFilter } from '../packet/fanout.js';
import type { PacketContext } from '../packet/context.js';
import { COUNTER_COUNT, Drop, Traffic } from '../counters.js';
import { BATCH, HEADROOM, SLOT_SIZE, SOCKET_BUFFER } from './ring.js';

export interface WorkerConfig {
  readonly index: number;
  readonly workers: number;
  readonly fans: readonly { readonly tun: string; readonly mtu: number; readonly ctx: PacketContext }[];
  /** Float64Array over (workers × fans × COUNTER_COUNT); this worker writes its rows only. */
  readonly counters: SharedArrayBuffer;
  /** Int32Array: [0] = stop requested, [1] = wedge (test hook: the loop stalls). */
  readonly control: SharedArrayBuffer;
  /**
   * systemd watchdog interval in ms (half of WATCHDOG_USEC), 0 for none.
   * Worker 0 sends WATCHDOG=1, and only when every worker's loop has moved
   * since the last time: a stuck worker stops the watchdog.
   */
  readonly watchdogMs: number;
}

export type WorkerMessage =
  | { readonly type: 'ready'; readonly wakeFd: number }
  | { readonly type: 'error'; readonly message: string; readonly code?: string };

const POLL_TIMEOUT_MS = 500; // the loop counter must advance even when idle: it is the liveness signal
const WEDGE = 1;
const MAX_ROUNDS = 16;       // batches per poll wake-up before polling again (fairness between fds)

function run(cfg: WorkerConfig): void {
  const { IPPROTO_IPIP, POLLIN } = native.constants;
  const fanCount = cfg.fans.length;
  const counters = new Float64Array(cfg.counters);
  const control = new Int32Array(cfg.control);
  const base = (fan: number) => (cfg.index * fanCount + fan) * COUNTER_COUNT;

  const fds: number[] = [];
  try {
    // IFF_VNET_HDR: every TUN read and write carries a virtio-net header (vnet.ts).
    const tunFds = cfg.fans.map((f) => { const fd = native.tunOpen(f.tun, true, true); fds.push(fd); return fd; });
    const raw = native.rawOpen(IPPROTO_IPIP, SOCKET_BUFFER, SOCKET_BUFFER, true);
    fds.push(raw);
    const wake = native.eventfdOpen();
    fds.push(wake);

    const outRing = new Uint8Array(BATCH * SLOT_SIZE);
    const inRing = new Uint8Array(BATCH * SLOT_SIZE);
    const sizes = new Int32Array(BATCH);
    const offsets = new Int32Array(BATCH);
    const lengths = new Int32Array(BATCH);
    const dsts = new Uint32Array(BATCH);
    const status = new Int32Array(2);
    // Inbound packets are grouped by fan before the TUN write.
    const inOffsets = cfg.fans.map(() => new Int32Array(BATCH));
    const inLengths = cfg.fans.map(() => new Int32Array(BATCH));
    const inCount = new Int32Array(fanCount);

    if (cfg.workers > 1) {
      native.attachFilter(raw, fanoutFilter(cfg.workers, cfg.index));
      // Packets queued between socket() and the filter were also delivered to
      // the other workers: discard them so none is forwarded twice.
      while (native.rawRecv(raw, inRing, SLOT_SIZE, 0, BATCH, sizes) > 0);
    }

    const pollFds = new Int32Array([...tunFds, raw, wake]);
    const pollEvents = new Int32Array(pollFds.length).fill(POLLIN);
    const revents = new Int32Array(pollFds.length);

    const outbound = (fan: number): number => {
      // The virtio-net header lands in front of the packet, inside the headroom
      // where the outer IPv4 header is written afterwards.
      const n = native.tunRead(tunFds[fan]!, outRing, SLOT_SIZE, HEADROOM - VNET_HDR_LEN, BATCH, sizes);
      if (n === 0) return 0;
      const ctx = cfg.fans[fan]!.ctx;
      const b = base(fan);
      let m = 0;
      let bytes = 0;
      for (let i = 0; i < n; i++) {
        const off = i * SLOT_SIZE + HEADROOM;
        if (sizes[i]! < VNET_HDR_LEN || !outboundIsPlain(outRing, off - VNET_HDR_LEN)) { counters[b + Drop.OutMalformed]!++; continue; }
        // encapsulateHeader returns a small integer (0 or a drop) rather than the
        // destination: a uint32 address above 2^31 would be a heap number per packet.
        const v = encapsulateHeader(outRing, off, sizes[i]! - VNET_HDR_LEN, ctx);
        if (v < 0) { counters[b + (-v - 1)]!++; continue; }
        const inner = (outRing[off + 2]! << 8) | outRing[off + 3]!;
        offsets[m] = off - 20;
        lengths[m] = inner + 20;
        dsts[m] = readU32(outRing, off - 4);
        bytes += inner;
        m++;
      }
      if (m > 0) {
        status[0] = 0;
        const done = native.rawSend(raw, outRing, offsets, lengths, dsts, m, status);
        for (let i = done; i < m; i++) bytes -= lengths[i]! - 20;
        counters[b + Drop.OutSendError]! += status[0]!;
        counters[b + Drop.OutQueueFull]! += m - done;
        counters[b + Traffic.TxPackets]! += done - status[0]!;
        counters[b + Traffic.TxBytes]! += bytes;
      }
      return n;
    };

    const inbound = (): number => {
      const n = native.rawRecv(raw, inRing, SLOT_SIZE, 0, BATCH, sizes);
      if (n === 0) return 0;
      inCount.fill(0);
      for (let i = 0; i < n; i++) {
        const off = i * SLOT_SIZE;
        const len = sizes[i]!;
        const fan = fanCount === 1 ? 0 : fanOf(inRing, off, len);
        if (len < 0) { counters[base(fan) + Drop.InTruncated]!++; continue; }
        const v = decapsulate(inRing, off, len, cfg.fans[fan]!.ctx);
        if (v < 0) { counters[base(fan) + (-v - 1)]!++; continue; }
        // The virtio-net header overwrites the tail of the outer header, already read.
        const innerLen = len - (v - off);
        writeInboundVnetHeader(inRing, v, innerLen, cfg.fans[fan]!.mtu);
        const k = inCount[fan]!;
        inOffsets[fan]![k] = v - VNET_HDR_LEN;
        inLengths[fan]![k] = innerLen + VNET_HDR_LEN;
        inCount[fan] = k + 1;
      }
      for (let fan = 0; fan < fanCount; fan++) {
        const m = inCount[fan]!;
        if (m === 0) continue;
        const b = base(fan);
        status[0] = 0;
        const done = native.tunWrite(tunFds[fan]!, inRing, inOffsets[fan]!, inLengths[fan]!, m, status);
        let bytes = 0;
        for (let i = 0; i < done; i++) bytes += inLengths[fan]![i]! - VNET_HDR_LEN;
        counters[b + Drop.InTunError]! += status[0]!;
        counters[b + Drop.InQueueFull]! += m - done;
        counters[b + Traffic.RxPackets]! += done - status[0]!;
        counters[b + Traffic.RxBytes]! += bytes;
      }
      return n;
    };

    // Which fan an inbound packet belongs to: the one whose overlay holds the
    // inner destination (fan 0 when it cannot be told; decapsulation then
    // rejects and counts it).
    const fanOf = (buf: Uint8Array, off: number, len: number): number => {
      const ihl = (buf[off]! & 15) * 4;
      if (len < ihl + 20) return 0;
      const p = off + ihl + 16;
      const dst = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
      for (let f = 0; f < fanCount; f++) {
        const c = cfg.fans[f]!.ctx;
        if (((dst & c.overlayMask) >>> 0) === c.overlayNet) return f;
      }
      return 0;
    };

    parentPort!.postMessage({ type: 'ready', wakeFd: wake } satisfies WorkerMessage);

    const loopsAt = base(0) + Traffic.Loops;
    const rawIdx = fanCount;
    const pollTimeout = cfg.watchdogMs > 0 ? Math.min(POLL_TIMEOUT_MS, Math.max(10, cfg.watchdogMs >> 2)) : POLL_TIMEOUT_MS;
    const watchdog = cfg.index === 0 && cfg.watchdogMs > 0;
    const lastLoops = new Float64Array(cfg.workers);
    let nextWatchdog = Date.now() + cfg.watchdogMs;
    while (Atomics.load(control, 0) === 0) {
      native.poll(pollFds, pollEvents, revents, pollFds.length, pollTimeout);
      while (Atomics.load(control, 1) === WEDGE && Atomics.load(control, 0) === 0); // test hook: a stuck worker
      counters[loopsAt]!++;
      if (watchdog && Date.now() >= nextWatchdog) {
        nextWatchdog = Date.now() + cfg.watchdogMs;
        let alive = true;
        for (let w = 0; w < cfg.workers; w++) {
          const l = counters[w * fanCount * COUNTER_COUNT + Traffic.Loops]!;
          if (l === lastLoops[w]) alive = false;
          lastLoops[w] = l;
        }
        if (alive) native.sdNotify('WATCHDOG=1');
      }
      if (revents[rawIdx + 1]! !== 0) {
        if (Atomics.load(control, 0) !== 0) break;
        native.eventfdDrain(wake);
      }
      for (let round = 0; round < MAX_ROUNDS; round++) {
        let moved = inbound();
        for (let f = 0; f < fanCount; f++) moved += outbound(f);
        if (moved === 0) break;
      }
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    parentPort!.postMessage({ type: 'error', message: err.message, code: err.code } satisfies WorkerMessage);
  } finally {
    for (const fd of fds) { try { native.close(fd); } catch { /* already closed */ } }
  }
}

run(workerData as WorkerConfig);
