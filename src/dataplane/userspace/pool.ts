// The worker threads of a userspace dataplane, as the main thread keeps
// them: spawned with their fans and a shared counter block, waited for until
// every loop turns, handed new fans on reload, replaced when one dies, read
// for `fand show`, and stopped. What a worker does with its fans is the
// dataplane's (userspace/worker.ts for IPIP, userspace-vxlan/worker.ts for
// VXLAN); both run the loop of loop.ts.
import { Worker } from 'node:worker_threads';
import { native } from '../../native/index.js';
import { COUNTER_COUNT, DROP_NAMES, TRAFFIC_NAMES, Traffic } from '../counters.js';
import type { FanCounters } from '../dataplane.js';
import { dropKey } from '../counter-names.js';
import type { Logger } from '../../log.js';
import { counterBase, MAX_FANS } from './ring.js';
import type { CrashMessage, FansMessage, LoopConfig, WorkerMessage } from './loop.js';

const RESTART_DELAY_MS = 1000;

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

export class WorkerPool<F extends { readonly slot: number }> {
  private threads: Thread[] = [];
  /** Fan bridge → its row in the counter blocks; stable while the fan exists. */
  private readonly fanSlots = new Map<string, number>();
  private bridges: readonly string[] = [];
  private generation = 0;
  private readonly waiting = new Map<number, { left: number; done: () => void }>();
  private counterBuf = new SharedArrayBuffer(8);
  private readonly control = new Int32Array(new SharedArrayBuffer(8));
  private watchdogMs = 0;
  private stopping = false;
  private log!: Logger;
  private fans: () => F[] = () => [];
  private readonly noted = new Set<string>();

  /**
   * @param file the worker script (a loop.ts runWorker caller)
   * @param extra more WorkerConfig fields for every worker (the dataplane's own)
   * @param onReady called with each worker's 'ready' message (e.g. what it could not open)
   */
  constructor(private readonly file: string, readonly workers: number, private readonly extra: () => object = () => ({}),
    private readonly onReady: (index: number, m: Extract<WorkerMessage, { type: 'ready' }>) => void = () => undefined) {}

  /** The counter row of a fan (assigned by assignSlots). */
  slotOf(bridge: string): number {
    const s = this.fanSlots.get(bridge);
    if (s === undefined) throw new Error(`fan ${bridge} has no counter row`);
    return s;
  }

  /**
   * Starts the workers for the fans on `bridges`; `fans` builds their worker
   * view (using slotOf). Resolves once every worker's loop has turned.
   */
  async start(bridges: readonly string[], fans: () => F[], log: Logger): Promise<void> {
    this.log = log;
    this.fans = fans;
    this.counterBuf = new SharedArrayBuffer(8 * this.workers * MAX_FANS * COUNTER_COUNT);
    this.assignSlots(bridges);
    this.threads = Array.from({ length: this.workers }, () => ({ worker: undefined, wakeFd: -1, alive: false, restarts: 0 }));
    this.watchdogMs = watchdogInterval();
    try {
      await Promise.all(this.threads.map((_, i) => this.spawn(i)));
      await this.loopsRunning();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private spawn(index: number): Promise<void> {
    const thread = this.threads[index]!;
    const cfg: LoopConfig<F> = {
      ...this.extra(),
      index,
      workers: this.workers,
      fans: this.fans(),
      counters: this.counterBuf,
      control: this.control.buffer as SharedArrayBuffer,
      watchdogMs: this.watchdogMs,
    };
    const worker = new Worker(this.file, { workerData: cfg, name: `fand-worker-${index}` });
    thread.worker = worker;
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'fans-applied') {
          const w = this.waiting.get(m.generation);
          if (w && --w.left === 0) { this.waiting.delete(m.generation); w.done(); }
        } else if (m.type === 'note') {
          if (!this.noted.has(m.key)) { this.noted.add(m.key); this.log.warn({ worker: index }, m.text); }
        } else if (m.type === 'ready') {
          this.onReady(index, m);
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
        // A dead worker leaves its queues and its share of inbound traffic
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
   * queues and sockets were open: then the dataplane passes traffic, and the
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

  /** Test hook (FAND_TEST_HOOKS=1): worker `index` dies as if a bug threw; the pool must replace it. */
  crashWorker(index: number): void {
    const t = this.threads[index];
    if (!t?.worker || !t.alive) throw new Error(`worker ${index} is not running`);
    t.worker.postMessage({ type: 'crash' } satisfies CrashMessage);
    native.eventfdSignal(t.wakeFd);
  }

  private assignSlots(bridges: readonly string[]): void {
    if (bridges.length > MAX_FANS) throw new Error(`at most ${MAX_FANS} fans per daemon`);
    this.bridges = bridges;
    for (const b of [...this.fanSlots.keys()]) if (!bridges.includes(b)) this.fanSlots.delete(b);
    const c = new Float64Array(this.counterBuf);
    for (const bridge of bridges) {
      if (this.fanSlots.has(bridge)) continue;
      let slot = 0;
      while ([...this.fanSlots.values()].includes(slot)) slot++;
      this.fanSlots.set(bridge, slot);
      // A reused row starts from zero (the loop counter in slot 0 is kept).
      for (let w = 0; w < this.workers; w++) {
        const b = counterBase(w, slot);
        c.fill(0, b, b + COUNTER_COUNT);
      }
    }
  }

  /**
   * Reload: hands every worker the new list of fans. Fans that stay keep
   * their queues and counters; resolves once every live worker has switched
   * (their devices must exist already; removed fans' devices may be deleted
   * afterwards).
   */
  async update(bridges: readonly string[]): Promise<void> {
    this.assignSlots(bridges);
    const generation = ++this.generation;
    const live = this.threads.filter((t) => t.alive && t.worker);
    await new Promise<void>((resolve, reject) => {
      if (live.length === 0) { resolve(); return; }
      const timer = setTimeout(() => { this.waiting.delete(generation); reject(new Error('workers did not take the new fans within 5 s')); }, 5000);
      this.waiting.set(generation, { left: live.length, done: () => { clearTimeout(timer); resolve(); } });
      const msg: FansMessage<F> = { type: 'fans', generation, fans: this.fans() };
      for (const t of live) { t.worker!.postMessage(msg); native.eventfdSignal(t.wakeFd); }
    });
  }

  /** Counters of the fans on `bridges` (in that order), per worker and summed. */
  counters(bridges: readonly string[] = this.bridges): FanCounters[] {
    const c = new Float64Array(this.counterBuf);
    return bridges.map((bridge) => {
      const slot = this.fanSlots.get(bridge) ?? 0;
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
      return { fan: bridge, perWorker, total };
    });
  }

  health(): { alive: number; configured: number } {
    return { alive: this.threads.filter((s) => s.alive).length, configured: this.workers };
  }

  async stop(): Promise<void> {
    this.stopping = true;
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
