// Prometheus metrics over HTTP (`--metrics HOST:PORT`, GET /metrics).
// Which count becomes which metric, and under which labels, is decided in
// dataplane/counter-names.ts, which `fand show` follows too.
//
// Nothing here runs per packet. The workers count in their shared Float64
// blocks (dataplane/counters.ts); a scrape takes ONE snapshot of those counts
// and of the daemon's state, and prom-client only formats it. Every metric
// lives in a private Registry, so nothing leaks into prom-client's global one
// and two servers in one process (tests) cannot collide.
//
// How absolute counts become Prometheus counters: prom-client has no
// "set" for a Counter, and a custom collector object does not fit its typed
// API. Its documented hook is `collect`, called on every scrape just before
// the values are read. There each metric `reset()`s and `inc()`s every series
// by the snapshot's value: the exposition keeps `# TYPE ... counter` and
// `_total` names (so rate() and counter-reset detection work), and series of
// a fan or worker that no longer exists disappear instead of going stale.
// A counter that goes down (a worker restarted with a fresh block) is what
// Prometheus already treats as a counter reset.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from './log.js';
import { COUNTERS, DROPPED_METRIC, METRICS, dropDirection, nameCounts } from './dataplane/counter-names.js';

export interface FanSnapshot {
  readonly bridge: string;
  readonly overlay: string;
  /** ipip or vxlan (absent: ipip). */
  readonly encapsulation?: string;
  /** One record per userspace worker (index = worker id); empty for kernel modes. */
  readonly perWorker: readonly Record<string, number>[];
  /** Sum over the workers; for kernel modes the only counts there are. */
  readonly total: Record<string, number>;
}

export interface MetricsSnapshot {
  readonly mode: string;
  readonly workersAlive: number;
  readonly workersConfigured: number;
  readonly lastReload: { readonly time: number /* unix seconds */; readonly ok: boolean } | undefined;
  readonly fans: readonly FanSnapshot[];
}

export interface MetricsSource {
  snapshot(): MetricsSnapshot;
}

export interface MetricsServer {
  readonly server: Server;
  readonly address: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

/** The worker label of kernel modes, whose counts are not per worker. */
export const ALL_WORKERS = 'all';

/** Builds the registry. `current` returns the snapshot of the scrape in progress. */
export function makeRegistry(current: () => MetricsSnapshot): Registry {
  const registry = new Registry();
  const registers = [registry];

  /** Every (fan, worker, counts) series of the snapshot. */
  function* series(s: MetricsSnapshot): Generator<{ fan: string; worker: string; counts: Record<string, number> }> {
    for (const f of s.fans) {
      if (f.perWorker.length === 0) yield { fan: f.bridge, worker: ALL_WORKERS, counts: f.total };
      else for (const [i, counts] of f.perWorker.entries()) yield { fan: f.bridge, worker: String(i), counts };
    }
  }

  // The counts' metrics, as counter-names.ts names them: one Counter per
  // metric name, fed from every key that maps to it. A key a series lacks
  // gives no sample (kernel modes have no loop counter).
  const byMetric = new Map<string, { key: string; labels: Readonly<Record<string, string>> }[]>();
  for (const [key, c] of Object.entries(COUNTERS)) {
    byMetric.set(c.metric, [...(byMetric.get(c.metric) ?? []), { key, labels: c.labels }]);
  }
  for (const [name, keys] of byMetric) {
    new Counter({
      name, help: METRICS[name] ?? name,
      labelNames: ['fan', 'worker', ...Object.keys(keys[0]!.labels)],
      registers,
      collect() {
        this.reset();
        for (const { fan, worker, counts } of series(current())) {
          for (const { key, labels } of keys) if (counts[key] !== undefined) this.inc({ fan, worker, ...labels }, counts[key]);
        }
      },
    });
  }
  new Counter({
    name: DROPPED_METRIC,
    help: METRICS[DROPPED_METRIC]!,
    labelNames: ['fan', 'worker', 'direction', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const { fan, worker, counts } of series(current())) {
        for (const [reason, n] of Object.entries(nameCounts(counts).drops)) {
          this.inc({ fan, worker, direction: dropDirection(reason) ?? 'unknown', reason }, n);
        }
      }
    },
  });
  new Gauge({
    name: 'fand_dataplane_info',
    help: 'The dataplane fand chose (kernel-fan, kernel-ipip or userspace). Always 1.',
    labelNames: ['mode'],
    registers,
    collect() {
      this.reset();
      this.set({ mode: current().mode }, 1);
    },
  });
  new Gauge({
    name: 'fand_fan_info',
    help: 'One series per configured fan: its bridge, overlay and how its packets cross the underlay (encapsulation ipip or vxlan). Always 1.',
    labelNames: ['fan', 'overlay', 'encapsulation'],
    registers,
    collect() {
      this.reset();
      for (const f of current().fans) this.set({ fan: f.bridge, overlay: f.overlay, encapsulation: f.encapsulation ?? 'ipip' }, 1);
    },
  });
  new Gauge({
    name: 'fand_workers_alive',
    help: 'Dataplane workers currently running (1 for the kernel modes).',
    registers,
    collect() { this.set(current().workersAlive); },
  });
  new Gauge({
    name: 'fand_workers_configured',
    help: 'Dataplane workers fand is meant to run (1 for the kernel modes).',
    registers,
    collect() { this.set(current().workersConfigured); },
  });
  // No sample until the first reload (a timestamp of 0 would read as 1970).
  // An unlabelled gauge always holds a value; remove({}) drops it.
  new Gauge({
    name: 'fand_last_reload_timestamp_seconds',
    help: 'Unix time of the last configuration reload attempt; absent before the first.',
    registers,
    collect() {
      const r = current().lastReload;
      if (r) this.set(r.time);
      else this.remove({});
    },
  });
  new Gauge({
    name: 'fand_last_reload_success',
    help: 'Whether the last configuration reload was applied (1) or rejected (0); absent before the first.',
    registers,
    collect() {
      const r = current().lastReload;
      if (r) this.set(r.ok ? 1 : 0);
      else this.remove({});
    },
  });
  return registry;
}

/** Splits HOST:PORT; IPv6 hosts may be bracketed ([::1]:9478). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || !(port >= 0 && port <= 65535)) throw new Error(`metrics listen address ${listen}: give HOST:PORT, e.g. 127.0.0.1:9478`);
  const host = m[1].startsWith('[') && m[1].endsWith(']') ? m[1].slice(1, -1) : m[1];
  return { host, port };
}

export async function startMetrics(listen: string, source: MetricsSource, log: Logger): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  let snapshot: MetricsSnapshot | undefined;
  const registry = makeRegistry(() => {
    if (!snapshot) throw new Error('metrics collected outside a scrape');
    return snapshot;
  });
  // Scrapes are serialised so that two concurrent ones cannot swap the
  // snapshot under each other's collect callbacks.
  let queue: Promise<unknown> = Promise.resolve();
  const scrape = (): Promise<string> => {
    const next = queue.then(async () => {
      snapshot = source.snapshot();
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    });
    queue = next.catch(() => undefined);
    return next;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: fand serves /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    scrape().then(
      (body) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (e: unknown) => {
        log.error({ err: e }, 'metrics: scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`scrape failed: ${(e as Error).message}\n`);
      },
    );
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const why = e.code === 'EADDRINUSE' ? 'address already in use'
        : e.code === 'EADDRNOTAVAIL' ? 'no such address on this host'
        : e.code === 'EACCES' ? 'permission denied' : e.message;
      reject(new Error(`metrics ${listen}: ${why}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (e) => log.error({ err: e }, 'metrics server error'));
  const a = server.address() as AddressInfo;
  const address = { host: a.address, port: a.port };
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`;
  log.info({ metrics: url }, 'serving Prometheus metrics');

  let closed: Promise<void> | undefined;
  return {
    server,
    address,
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        // Scrapers keep connections alive; close() alone would wait for them.
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
