// The userspace VXLAN dataplane, for VXLAN fans on every kernel without
// Ubuntu's patch: a multi-queue TAP on each fan bridge (the fan's VXLAN
// port, where the bridge floods and forwards what leaves the host), and N
// worker threads (worker.ts) that map each frame to its underlay host as the
// patched kernel does (packet/vxlan.ts) and move it in UDP. What it puts on
// the wire is what Ubuntu's vxlan fan devices put there, so fand hosts and
// kernel-Fan (LXD-style) hosts share one fan.
import { fileURLToPath } from 'node:url';
import { native } from '../../native/index.js';
import { makePacketContext } from '../packet/context.js';
import { makeVxlanContext } from '../packet/vxlan.js';
import { tap, type Resource } from '../../host/resources.js';
import type { Dataplane, FanCounters } from '../dataplane.js';
import type { ResolvedFan } from '../../fan/resolved.js';
import type { Logger } from '../../log.js';
import { WorkerPool } from '../userspace/pool.js';
import type { VxlanWorkerFan } from './worker.js';
import { allowedOffloads, chooseOffloads, type OffloadChoice } from './offload.js';

const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));
/** A long transmit queue: bursts from the bridge must not be dropped before the workers read them. */
const TAP_TXQUEUELEN = 4096;
/**
 * The TAP's MTU: as large as a TAP takes, so that the bridge forwards every
 * frame a container sends to it (a bridge silently drops a frame larger than
 * the egress port's MTU, br_dev_queue_push_xmit → is_skb_forwardable) and the
 * workers can answer an IPv4 one with DF that does not fit the fan with ICMP
 * "fragmentation needed" (packet/vxlan.ts fragNeededFrame), as Linux's
 * bridged vxlan devices do since 5.9. Frames without DF that do not fit
 * leave in a datagram the kernel fragments. (A TAP takes at most 65535 - 14;
 * 65000 keeps a whole frame with its virtio-net header inside a read slot.)
 */
export const TAP_MTU = 65000;

export class UserspaceVxlanDataplane implements Dataplane {
  readonly mode = 'userspace' as const;
  private fans: readonly ResolvedFan[] = [];
  private readonly pool: WorkerPool<VxlanWorkerFan>;
  private offloads: OffloadChoice | undefined;

  constructor(readonly workers: number, private readonly checkInnerSource = true) {
    this.pool = new WorkerPool<VxlanWorkerFan>(WORKER_FILE, workers, () => ({ offloads: this.offloads }));
  }

  resources(fan: ResolvedFan): Resource[] {
    // No route: the bridge's address carries the overlay's prefix, so the
    // whole overlay is on the bridge, and the TAP is one of its ports.
    return [tap(fan.tun, fan.bridge, TAP_MTU, TAP_TXQUEUELEN)];
  }

  /**
   * Which UDP offloads this kernel gives the workers, and why (probed once).
   * `tapName`: a fan's TAP (it exists once the host is set up), to ask
   * whether the TAP takes UDP_L4 GSO headers (TUN_F_USO4).
   */
  offloadChoice(tapName?: string): OffloadChoice {
    return (this.offloads ??= chooseOffloads({ ...native.udpProbe(), uso: tapName === undefined ? undefined : probeTapUso(tapName) }, allowedOffloads()));
  }

  async start(fans: readonly ResolvedFan[], log: Logger): Promise<void> {
    this.fans = fans;
    const o = this.offloadChoice(fans[0]?.tun);
    log.info({ offloads: { gso: o.gso, gro: o.gro, uso: o.uso } }, `VXLAN UDP offloads: ${o.notes.join('; ')}`);
    await this.pool.start(fans.map((f) => f.bridge), () => this.workerFans(), log);
    log.info({ workers: this.workers }, `userspace VXLAN dataplane: ${this.workers} worker(s) forwarding`);
  }

  private workerFans(): VxlanWorkerFan[] {
    return this.fans.map((f) => {
      if (f.encap.encap !== 'vxlan') throw new Error(`fan ${f.bridge} is not a VXLAN fan`);
      return {
        slot: this.pool.slotOf(f.bridge),
        tap: f.tun,
        local: f.localUnderlay,
        port: f.encap.port,
        ctx: makeVxlanContext(makePacketContext(f.map.overlay, f.map.underlay, f.localUnderlay, this.checkInnerSource), f.encap.vni, f.mtu),
      };
    });
  }

  async update(fans: readonly ResolvedFan[]): Promise<void> {
    this.fans = fans;
    await this.pool.update(fans.map((f) => f.bridge));
  }

  counters(): FanCounters[] {
    return this.pool.counters(this.fans.map((f) => f.bridge));
  }

  health(): { alive: number; configured: number } {
    return this.pool.health();
  }

  /** The workers send WATCHDOG=1 themselves. */
  readonly watchdogFromWorkers = true;

  wedge(on: boolean): void {
    this.pool.wedge(on);
  }

  crashWorker(index: number): void {
    this.pool.crashWorker(index);
  }

  async stop(): Promise<void> {
    await this.pool.stop();
  }
}

/**
 * TUNSETOFFLOAD with TUN_F_USO4|TUN_F_USO6 on a queue of the TAP, then back to the
 * workers' flags: 0 when the kernel knows USO on TAPs (Linux 6.2, the same
 * change that taught virtio_net_hdr_to_skb() the UDP_L4 GSO type fand
 * writes), else the errno (EINVAL before). The workers never ask for USO on
 * their queues: reads stay without UDP super-frames.
 */
function probeTapUso(name: string): number {
  const { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO_ECN, TUN_F_USO4, TUN_F_USO6 } = native.constants;
  let fd: number;
  try { fd = native.tapOpen(name, true, true); } catch (e) { return (e as NodeJS.ErrnoException).errno ?? -1; }
  try {
    // Both or neither: tun's set_offload() takes USO4 and USO6 only together (EINVAL otherwise).
    native.tunSetOffload(fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6);
    native.tunSetOffload(fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN);
    return 0;
  } catch (e) {
    return Math.abs((e as NodeJS.ErrnoException).errno ?? 1);
  } finally {
    native.close(fd);
  }
}
