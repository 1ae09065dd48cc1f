// The userspace dataplane: a multi-queue TUN per fan for the overlay, and
// N worker threads each owning one queue of every TUN and one raw IPIP
// socket. The kernel spreads outbound flows over the TUN queues; inbound
// IPIP is split between the workers' sockets by a BPF filter per socket.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { native } from '../../native/index.js';
import { makePacketContext } from '../packet/context.js';
import { COUNTER_COUNT, DROP_NAMES, TRAFFIC_NAMES, Traffic } from '../counters.js';
import { dropKey } from '../counter-names.js';
import { blackholeRule, linkUp, route, sysctl, tun, type Resource } from '../../host/resources.js';
import { TUNL0 } from '../kernel-ipip/index.js';
import type { Dataplane, FanCounters } from '../dataplane.js';
import type { ResolvedFan } from '../../fan/resolved.js';
import type { Logger } from '../../log.js';
import { formatCidr, formatIpv4 } from '../../fan/ipv4.js';
import type { CrashMessage, FansMessage, WorkerConfig, WorkerFan, WorkerMessage } from './worker.js';
import { counterBase, MAX_FANS } from './ring.js';
import { NeighbourFollower, NeighbourTable, type NeighbourReads } from './neighbours.js';
import { hostEvents, type HostEvents } from '../../host/netlink/events.js';
import { Rtnetlink } from '../../host/netlink/rtnl.js';

const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));
/** A long TUN transmit queue: bursts from the bridge must not be dropped before the workers read them. */
const TUN_TXQUEUELEN = 4096;
const RESTART_DELAY_MS = 1000;
/** Direct-send entries: the kernel keeps at most gc_thresh3 (1024 by default) neighbours. */
const NEIGHBOUR_CAPACITY = 16384;
/** Before the main table (32766) and after the local table (0). */
const TUNL0_BLACKHOLE_PREF = 90;

interface Thread {
  worker: Worker | undefined;
  wakeFd: number;
  alive: boolean;
  restarts: number;
}

/** Half of systemd's WATCHDOG_USEC (when it is meant for this process), in ms; 0 without a watchdog. */
export function watchdogInterval(env = process.env): number {
  const usec = Number(env['WATCHDOG_USEC'] ?? 0);
  if (!(usec > 0)) return 0;
  if (env['WATCHDOG_PID'] && Number(env['WATCHDOG_PID']) !== process.pid) return 0;
  return Math.max(1, Math.floor(usec / 2000));
}

export class UserspaceDataplane implements Dataplane {
  readonly mode = 'userspace' as const;
  private fans: readonly ResolvedFan[] = [];
  private threads: Thread[] = [];
  /** Fan bridge → its row in the counter blocks; stable while the fan exists. */
  private fanSlots = new Map<string, number>();
  private generation = 0;
  private waiting = new Map<number, { left: number; done: () => void }>();
  private counterBuf = new SharedArrayBuffer(8);
  private control = new Int32Array(new SharedArrayBuffer(8));
  private watchdogMs = 0;
  private stopping = false;
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
    private readonly directSend = true, private readonly events: HostEvents = hostEvents(), private readonly reads: NeighbourReads = rtnlReads()) {}

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
    this.counterBuf = new SharedArrayBuffer(8 * this.workers * MAX_FANS * COUNTER_COUNT);
    this.assignSlots(fans);
    this.threads = Array.from({ length: this.workers }, () => ({ worker: undefined, wakeFd: -1, alive: false, restarts: 0 }));
    this.watchdogMs = watchdogInterval();
    if (this.directSend) this.neighbours = NeighbourTable.create(NEIGHBOUR_CAPACITY);
    try {
      await Promise.all(this.threads.map((_, i) => this.spawn(i)));
      await this.loopsRunning();
    } catch (e) {
      await this.stop();
      throw e;
    }
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

  private spawn(index: number): Promise<void> {
    const thread = this.threads[index]!;
    const cfg: WorkerConfig = {
      index,
      workers: this.workers,
      fans: this.workerFans(),
      counters: this.counterBuf,
      control: this.control.buffer as SharedArrayBuffer,
      watchdogMs: this.watchdogMs,
      neighbours: this.neighbours?.buffer,
    };
    const worker = new Worker(WORKER_FILE, { workerData: cfg, name: `fand-worker-${index}` });
    thread.worker = worker;
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'fans-applied') {
          const w = this.waiting.get(m.generation);
          if (w && --w.left === 0) { this.waiting.delete(m.generation); w.done(); }
        } else if (m.type === 'ready') {
          if (m.directError && !this.directErrorLogged) {
            this.directErrorLogged = true;
            this.log.warn({ worker: index }, `outbound IPIP: every packet through the raw socket: no packet socket: ${m.directError}`);
          }
          ready = true;
          thread.alive = true;
          thread.wakeFd = m.wakeFd;
          resolve();
        } else {
          const msg = `worker ${index}: ${m.message}`;
          if (!ready) reject(new Error(msg));
          else this.log.error({ worker: index, code: m.code }, msg);
        }
      });
      worker.on('error', (e) => {
        if (!ready) reject(new Error(`worker ${index}: ${e.message}`));
        else this.log.error({ worker: index, err: e.message }, `worker ${index} crashed`);
      });
      worker.on('exit', (code) => {
        thread.alive = false;
        thread.worker = undefined;
        if (!ready) { reject(new Error(`worker ${index} exited (code ${code}) before it was ready`)); return; }
        if (this.stopping) return;
        // A dead worker leaves its TUN queue and its share of inbound traffic
        // unserved: replace it.
        thread.restarts++;
        this.log.error({ worker: index, code, restarts: thread.restarts }, `worker ${index} exited unexpectedly; restarting in ${RESTART_DELAY_MS} ms`);
        setTimeout(() => {
          if (this.stopping) return;
          this.spawn(index).then(
            () => this.log.warn({ worker: index }, `worker ${index} restarted`),
            (e: Error) => this.log.error({ worker: index, err: e.message }, `worker ${index} could not be restarted`),
          );
        }, RESTART_DELAY_MS).unref();
      });
    });
  }

  /**
   * Resolves once every worker's loop has turned at least once after its
   * queues and socket were open: then the dataplane passes traffic, and the
   * daemon may say READY.
   */
  private async loopsRunning(timeoutMs = 5000): Promise<void> {
    const c = new Float64Array(this.counterBuf);
    const loops = (w: number) => c[counterBase(w, 0) + Traffic.Loops]!;
    for (const s of this.threads) if (s.wakeFd >= 0) native.eventfdSignal(s.wakeFd);
    const until = Date.now() + timeoutMs;
    while (this.threads.some((_, w) => loops(w) === 0)) {
      if (Date.now() > until) throw new Error('userspace dataplane: workers started but their loops did not run');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Test hook (FAND_TEST_HOOKS=1): stalls every worker's loop, as a bug that wedged them would. */
  wedge(on: boolean): void {
    Atomics.store(this.control, 1, on ? 1 : 0);
  }

  /** Test hook (FAND_TEST_HOOKS=1): worker `index` dies as if a bug threw; the dataplane must replace it. */
  crashWorker(index: number): void {
    const t = this.threads[index];
    if (!t?.worker || !t.alive) throw new Error(`worker ${index} is not running`);
    t.worker.postMessage({ type: 'crash' } satisfies CrashMessage);
    native.eventfdSignal(t.wakeFd);
  }

  /** The userspace dataplane sends WATCHDOG=1 from worker 0 itself. */
  readonly watchdogFromWorkers = true;

  private assignSlots(fans: readonly ResolvedFan[]): void {
    if (fans.length > MAX_FANS) throw new Error(`at most ${MAX_FANS} fans per daemon`);
    for (const b of [...this.fanSlots.keys()]) if (!fans.some((f) => f.bridge === b)) this.fanSlots.delete(b);
    const c = new Float64Array(this.counterBuf);
    for (const f of fans) {
      if (this.fanSlots.has(f.bridge)) continue;
      let slot = 0;
      while ([...this.fanSlots.values()].includes(slot)) slot++;
      this.fanSlots.set(f.bridge, slot);
      // A reused row starts from zero (the loop counter in slot 0 is kept).
      for (let w = 0; w < this.workers; w++) {
        const b = counterBase(w, slot);
        c.fill(0, b, b + COUNTER_COUNT);
      }
    }
  }

  private workerFans(): WorkerFan[] {
    return this.fans.map((f) => ({
      slot: this.fanSlots.get(f.bridge)!,
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
    this.assignSlots(fans);
    await this.follower?.update(fans);
    const generation = ++this.generation;
    const live = this.threads.filter((t) => t.alive && t.worker);
    await new Promise<void>((resolve, reject) => {
      if (live.length === 0) { resolve(); return; }
      const timer = setTimeout(() => { this.waiting.delete(generation); reject(new Error('workers did not take the new fans within 5 s')); }, 5000);
      this.waiting.set(generation, { left: live.length, done: () => { clearTimeout(timer); resolve(); } });
      const msg: FansMessage = { type: 'fans', generation, fans: this.workerFans() };
      for (const t of live) { t.worker!.postMessage(msg); native.eventfdSignal(t.wakeFd); }
    });
  }

  counters(): FanCounters[] {
    const c = new Float64Array(this.counterBuf);
    return this.fans.map((f) => {
      const slot = this.fanSlots.get(f.bridge) ?? 0;
      const perWorker: Record<string, number>[] = [];
      const total: Record<string, number> = {};
      for (let w = 0; w < this.workers; w++) {
        const b = counterBase(w, slot);
        const row: Record<string, number> = {};
        DROP_NAMES.forEach((n, i) => { row[dropKey(n)] = c[b + i]!; });
        TRAFFIC_NAMES.forEach((n, i) => { row[n] = c[b + DROP_NAMES.length + i]!; });
        perWorker.push(row);
        for (const [k, v] of Object.entries(row)) total[k] = (total[k] ?? 0) + v;
      }
      return { fan: f.bridge, perWorker, total };
    });
  }

  health(): { alive: number; configured: number } {
    return { alive: this.threads.filter((s) => s.alive).length, configured: this.workers };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.follower?.stop();
    Atomics.store(this.control, 0, 1);
    const exits: Promise<unknown>[] = [];
    for (const s of this.threads) {
      if (!s.worker) continue;
      const w = s.worker;
      exits.push(new Promise((r) => w.once('exit', r)));
      if (s.wakeFd >= 0) { try { native.eventfdSignal(s.wakeFd); } catch { /* worker already gone */ } }
    }
    // A worker blocked in poll() wakes on its eventfd, or at worst on the poll timeout.
    const timeout = new Promise((r) => setTimeout(r, 3000).unref());
    await Promise.race([Promise.all(exits), timeout]);
    for (const s of this.threads) if (s.worker) await s.worker.terminate();
  }
}

/** The neighbour table and addresses over rtnetlink, in fand's own network namespace. */
function rtnlReads(): NeighbourReads {
  const rtnl = new Rtnetlink();
  return {
    neighbours: () => rtnl.neighbours(),
    addresses: () => rtnl.addresses(),
    ifIndex: (name) => native.ifIndex(name),
  };
}
