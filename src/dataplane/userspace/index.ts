// The userspace dataplane: a multi-queue TUN per fan for the overlay, and
// N worker threads each owning one queue of every TUN and one raw IPIP
// socket. The kernel spreads outbound flows over the TUN queues; inbound
// IPIP is split between the workers' sockets by a BPF filter per socket.
import { fileURLToPath } from 'node:url';
import { native } from '../../native/index.js';
import { makePacketContext } from '../packet/context.js';
import { blackholeRule, linkUp, route, sysctl, tun, type Resource } from '../../host/resources.js';
import { TUNL0 } from '../kernel-ipip/index.js';
import type { Dataplane, FanCounters } from '../dataplane.js';
import type { ResolvedFan } from '../../fan/resolved.js';
import type { Logger } from '../../log.js';
import { formatCidr, formatIpv4 } from '../../fan/ipv4.js';
import type { WorkerFan } from './worker.js';
import { WorkerPool } from './pool.js';
import { NeighbourFollower, NeighbourTable, type NeighbourReads } from './neighbours.js';
import { hostEvents, type HostEvents } from '../../host/netlink/events.js';
import { Rtnetlink } from '../../host/netlink/rtnl.js';

const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));
/** A long TUN transmit queue: bursts from the bridge must not be dropped before the workers read them. */
const TUN_TXQUEUELEN = 4096;
/** Direct-send entries: the kernel keeps at most gc_thresh3 (1024 by default) neighbours. */
const NEIGHBOUR_CAPACITY = 16384;
/** Before the main table (32766) and after the local table (0). */
const TUNL0_BLACKHOLE_PREF = 90;

export { watchdogInterval } from './pool.js';

export class UserspaceDataplane implements Dataplane {
  readonly mode = 'userspace' as const;
  private fans: readonly ResolvedFan[] = [];
  private readonly pool: WorkerPool<WorkerFan>;
  private log!: Logger;
  private neighbours: NeighbourTable | undefined;
  /** Keeps `neighbours` equal to the kernel's table, by rtnetlink events. */
  follower: NeighbourFollower | undefined;
  private directErrorLogged = false;

  /**
   * @param kernelIpip the kernel has the ipip module: its tunl0 must be
   *   neutralised (see resources()).
   * @param directSend send IPIP straight to next hops the kernel has resolved
   *   (neighbours.ts); false: everything through the raw socket.
   * @param events the host's rtnetlink events, @param reads its neighbour
   *   table and addresses (tests swap them).
   */
  constructor(private readonly workers: number, private readonly checkInnerSource = true, private readonly kernelIpip = false,
    private readonly directSend = true, private readonly events: HostEvents = hostEvents(), private readonly reads: NeighbourReads = rtnlReads()) {
    this.pool = new WorkerPool<WorkerFan>(WORKER_FILE, workers, () => ({ neighbours: this.neighbours?.buffer }), (index, m) => {
      if (m.notes?.['direct'] && !this.directErrorLogged) {
        this.directErrorLogged = true;
        this.log.warn({ worker: index }, `outbound IPIP: every packet through the raw socket: no packet socket: ${m.notes['direct']}`);
      }
    });
  }

  resources(fan: ResolvedFan): Resource[] {
    // The whole overlay goes to the TUN; this host's slice is more specific and
    // stays on the bridge. `src` makes the host's own traffic into the overlay
    // leave from its bridge address, which the receiving host accepts as coming
    // from this host's slice (as fanctl does).
    const own: Resource[] = [
      tun(fan.tun, fan.mtu, TUN_TXQUEUELEN, true),
      route(formatCidr(fan.map.overlay), fan.tun, formatIpv4(fan.slice.bridgeAddress)),
    ];
    if (!this.kernelIpip) return own;
    // With the ipip module loaded, the kernel handles inbound IPIP too: with
    // tunl0 down, tunnel4_rcv() answers every packet with ICMP port
    // unreachable (which makes kernel-ipip peers count tunnel errors); with
    // tunl0 up, it decapsulates and forwards a second copy of what the
    // workers deliver. So: tunl0 up, and everything it decapsulates
    // discarded by a policy rule, silently (raw sockets still get every
    // packet: raw delivery comes before the protocol handler). Rule 0 (the
    // local table) still comes first, so packets for this host's own
    // addresses are also refused by strict reverse-path filtering on tunl0
    // (their sources route via the TUN); where net.ipv4.conf.all.rp_filter
    // is 2, such packets may arrive twice.
    return [...own, linkUp(TUNL0, fan.mtu), blackholeRule(TUNL0, TUNL0_BLACKHOLE_PREF), sysctl(`net.ipv4.conf.${TUNL0}.rp_filter`, '1')];
  }

  async start(fans: readonly ResolvedFan[], log: Logger): Promise<void> {
    this.fans = fans;
    this.log = log;
    if (this.directSend) this.neighbours = NeighbourTable.create(NEIGHBOUR_CAPACITY);
    await this.pool.start(fans.map((f) => f.bridge), () => this.workerFans(), log);
    log.info({ workers: this.workers }, `userspace dataplane: ${this.workers} worker(s) forwarding`);
    if (this.neighbours) {
      this.follower = new NeighbourFollower(this.neighbours, this.reads, this.events, {
        info: (m) => log.info(m), warn: (m) => log.warn(m), debug: (f, m) => log.debug(f, m),
      });
      await this.follower.start(fans);
    } else {
      log.info('outbound IPIP: every packet through the raw socket (direct sends turned off)');
    }
  }

  /** Test hook (FAND_TEST_HOOKS=1): stalls every worker's loop, as a bug that wedged them would. */
  wedge(on: boolean): void {
    this.pool.wedge(on);
  }

  /** Test hook (FAND_TEST_HOOKS=1): worker `index` dies as if a bug threw; the dataplane must replace it. */
  crashWorker(index: number): void {
    this.pool.crashWorker(index);
  }

  /** The userspace dataplane sends WATCHDOG=1 from worker 0 itself. */
  readonly watchdogFromWorkers = true;

  private workerFans(): WorkerFan[] {
    return this.fans.map((f) => ({
      slot: this.pool.slotOf(f.bridge),
      tun: f.tun,
      mtu: f.mtu,
      ctx: makePacketContext(f.map.overlay, f.map.underlay, f.localUnderlay, this.checkInnerSource),
    }));
  }

  /**
   * Reload: hands every worker the new list of fans. Fans that stay keep
   * their TUN queues and counters; resolves once every live worker has
   * switched (their TUNs must exist already; removed fans' TUNs may be
   * deleted afterwards).
   */
  async update(fans: readonly ResolvedFan[]): Promise<void> {
    this.fans = fans;
    await this.follower?.update(fans);
    await this.pool.update(fans.map((f) => f.bridge));
  }

  counters(): FanCounters[] {
    return this.pool.counters(this.fans.map((f) => f.bridge));
  }

  health(): { alive: number; configured: number } {
    return this.pool.health();
  }

  async stop(): Promise<void> {
    this.follower?.stop();
    await this.pool.stop();
  }
}

/** The neighbour table and addresses over rtnetlink, in fand's own network namespace. */
function rtnlReads(): NeighbourReads {
  const rtnl = new Rtnetlink();
  return {
    neighbours: () => rtnl.neighbours(),
    addresses: () => rtnl.addresses(),
    ifIndex: (name) => native.ifIndex(name),
    link: (name) => rtnl.link(name),
  };
}
