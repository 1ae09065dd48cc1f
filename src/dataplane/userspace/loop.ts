// The loop every userspace worker thread runs, whatever it forwards: block
// in poll(2) on its own queues and sockets and on an eventfd, move batches
// while there is work, count its turns (the liveness signal), send systemd's
// watchdog (worker 0, only while every worker's loop moves), take new fans
// from the main thread on reload, and stop when asked. The main thread's
// side is pool.ts; what one turn of work is comes from the dataplane
// (`Forwarder`): userspace/worker.ts (IPIP) and userspace-vxlan/worker.ts.
import { parentPort, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { native } from '../../native/index.js';
import { Traffic } from '../counters.js';
import { counterBase } from './ring.js';

export interface LoopConfig<F> {
  readonly index: number;
  readonly workers: number;
  readonly fans: readonly F[];
  /** Float64Array over (workers × MAX_FANS × COUNTER_COUNT); this worker writes its rows only. */
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

/** Main → worker, followed by a signal on the worker's eventfd. */
export interface FansMessage<F> { readonly type: 'fans'; readonly generation: number; readonly fans: readonly F[] }
/** Test hook (FAND_TEST_HOOKS=1): the worker dies as if a bug threw. */
export interface CrashMessage { readonly type: 'crash' }

export type WorkerMessage =
  | { readonly type: 'ready'; readonly wakeFd: number; /** what the worker could not set up, for the main thread to log once */ readonly notes?: Record<string, string> }
  | { readonly type: 'fans-applied'; readonly generation: number }
  /** Something the worker changed on its own that the operator should read (logged once per key). */
  | { readonly type: 'note'; readonly key: string; readonly text: string }
  | { readonly type: 'error'; readonly message: string; readonly code?: string };

/** One dataplane's work in a worker. */
export interface Forwarder<F> {
  /** Opens what new fans need, keeps what stays, closes the rest (start and reload only: may allocate). */
  setFans(fans: readonly F[]): void;
  /** The fds to wait on (queues, sockets), after setFans. */
  fds(): readonly number[];
  /** One pass over every queue and socket: the packets moved (0: nothing was waiting). */
  round(): number;
  /** Closes everything (also after an error). */
  close(): void;
  /** Sent with 'ready'. */
  readonly notes?: Record<string, string>;
}

/** Tells the main thread something the worker decided on its own (pool.ts logs it once per key). */
export function note(key: string, text: string): void {
  (parentPort as MessagePort).postMessage({ type: 'note', key, text } satisfies WorkerMessage);
}

const POLL_TIMEOUT_MS = 500; // the loop counter must advance even when idle: it is the liveness signal
const WEDGE = 1;
const MAX_ROUNDS = 16;       // batches per poll wake-up before polling again (fairness between fds)

/**
 * Runs a worker: `make` opens the dataplane's sockets (it may throw: the
 * main thread gets the error before 'ready'). Returns when stopped.
 */
export function runWorker<F>(cfg: LoopConfig<F>, make: (cfg: LoopConfig<F>) => Forwarder<F>): void {
  const { POLLIN } = native.constants;
  const counters = new Float64Array(cfg.counters);
  const control = new Int32Array(cfg.control);
  const port = parentPort as MessagePort;
  let fwd: Forwarder<F> | undefined;
  let wake = -1;
  try {
    wake = native.eventfdOpen();
    fwd = make(cfg);
    let pollFds = new Int32Array(0);
    let pollEvents = new Int32Array(0);
    let revents = new Int32Array(0);
    const setFans = (fans: readonly F[]): void => {
      fwd!.setFans(fans);
      pollFds = new Int32Array([...fwd!.fds(), wake]);
      pollEvents = new Int32Array(pollFds.length).fill(POLLIN);
      revents = new Int32Array(pollFds.length);
    };
    setFans(cfg.fans);
    port.postMessage({ type: 'ready', wakeFd: wake, notes: fwd.notes } satisfies WorkerMessage);

    const loopsAt = counterBase(cfg.index, 0) + Traffic.Loops;
    const pollTimeout = cfg.watchdogMs > 0 ? Math.min(POLL_TIMEOUT_MS, Math.max(10, cfg.watchdogMs >> 2)) : POLL_TIMEOUT_MS;
    const watchdog = cfg.index === 0 && cfg.watchdogMs > 0;
    const lastLoops = new Float64Array(cfg.workers);
    let nextWatchdog = Date.now() + cfg.watchdogMs;
    while (Atomics.load(control, 0) === 0) {
      native.poll(pollFds, pollEvents, revents, pollFds.length, pollTimeout);
      while (Atomics.load(control, 1) === WEDGE && Atomics.load(control, 0) === 0); // test hook: a stuck worker
      counters[loopsAt]!++;
      if (revents[pollFds.length - 1]! !== 0) {
        if (Atomics.load(control, 0) !== 0) break;
        native.eventfdDrain(wake);
        for (let msg = receiveMessageOnPort(port); msg; msg = receiveMessageOnPort(port)) {
          const m = msg.message as FansMessage<F> | CrashMessage;
          if (m.type === 'crash') throw new Error('crashed on request (test hook)');
          setFans(m.fans);
          port.postMessage({ type: 'fans-applied', generation: m.generation } satisfies WorkerMessage);
        }
        continue; // the fd list may have changed: poll again
      }
      if (watchdog && Date.now() >= nextWatchdog) {
        nextWatchdog = Date.now() + cfg.watchdogMs;
        let alive = true;
        for (let w = 0; w < cfg.workers; w++) {
          const l = counters[counterBase(w, 0) + Traffic.Loops]!;
          if (l === lastLoops[w]) alive = false;
          lastLoops[w] = l;
        }
        if (alive) native.sdNotify('WATCHDOG=1');
      }
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (fwd.round() === 0) break;
      }
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    port.postMessage({ type: 'error', message: err.message, code: err.code } satisfies WorkerMessage);
  } finally {
    try { fwd?.close(); } catch { /* already closed */ }
    if (wake >= 0) { try { native.close(wake); } catch { /* already closed */ } }
  }
}
