// The Prometheus endpoint's mechanics: values and labels straight from the
// source's snapshot at scrape time, 404 elsewhere, and a port that close()
// frees. The snapshot here is built with the names the dataplanes use
// (counter-names.ts); that a real daemon's drops come out right, by reason,
// is what metrics-e2e.test.ts checks against a running fand.
import test from 'ava';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { startMetrics, parseListen, type MetricsSnapshot, type MetricsSource } from '../src/metrics.js';
import { COUNTERS, dropKey } from '../src/dataplane/counter-names.js';
import { TRAFFIC_NAMES } from '../src/dataplane/counters.js';

const log = pino({ level: 'silent' });

/** A userspace fan with two workers and a kernel-style fan (counts in total only). */
function snapshot(scale: number): MetricsSnapshot {
  const w = (i: number) => ({
    'tx.packets': 10 * scale + i, 'tx.bytes': 1000 * scale + i, 'rx.packets': 20 * scale + i, 'rx.bytes': 2000 * scale + i,
    loops: 5 * scale + i, 'tx.direct': 8 * scale + i, 'out.read': 10 * scale + 2 * i, 'in.received': 23 * scale + 2 * i,
    [dropKey('out.not-overlay')]: i, [dropKey('in.spoofed-source')]: 3 * scale + i,
  });
  return {
    mode: 'userspace',
    workersAlive: scale === 1 ? 2 : 1,
    workersConfigured: 2,
    lastReload: scale === 1 ? undefined : { time: 1700000000, ok: false },
    fans: [
      { bridge: 'fan-250-3-4', overlay: '250.0.0.0/8', perWorker: [w(0), w(1)], total: {} },
      { bridge: 'fan-10-3', overlay: '10.0.0.0/8', perWorker: [], total: { 'tx.packets': 7 * scale, 'tx.bytes': 700 * scale, 'rx.packets': 0, 'rx.bytes': 0 } },
    ],
  };
}

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the text format's sample lines (our label values hold no escapes). */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
    && Object.keys(s.labels).length === Object.keys(labels).length);
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${hits.length} samples`);
  return hits[0]?.value;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

test('scrapes reflect the snapshot of the moment, with fan, worker, direction and reason labels', async (t) => {
  let scale = 1;
  let snapshots = 0;
  const source: MetricsSource = { snapshot: () => { snapshots++; return snapshot(scale); } };
  const m = await startMetrics('127.0.0.1:0', source, log);
  t.teardown(() => m.close());
  t.is(m.address.host, '127.0.0.1');
  t.true(m.address.port > 0);
  const url = `http://127.0.0.1:${m.address.port}/metrics`;

  const r1 = await fetch(url);
  t.is(r1.status, 200);
  t.regex(r1.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const { samples: s1, types } = parse(await r1.text());
  t.is(snapshots, 1, 'one snapshot per scrape, shared by every metric');

  for (const [name, type] of [
    ['fand_packets_total', 'counter'], ['fand_bytes_total', 'counter'], ['fand_dropped_packets_total', 'counter'], ['fand_handled_packets_total', 'counter'],
    ['fand_worker_loops_total', 'counter'], ['fand_direct_sends_total', 'counter'], ['fand_fan_info', 'gauge'], ['fand_dataplane_info', 'gauge'],
    ['fand_workers_alive', 'gauge'], ['fand_workers_configured', 'gauge'],
    ['fand_last_reload_timestamp_seconds', 'gauge'], ['fand_last_reload_success', 'gauge'],
  ] as const) t.is(types.get(name), type, name);

  const fan = 'fan-250-3-4';
  t.is(value(s1, 'fand_packets_total', { fan, worker: '0', direction: 'tx' }), 10);
  t.is(value(s1, 'fand_packets_total', { fan, worker: '1', direction: 'tx' }), 11);
  t.is(value(s1, 'fand_packets_total', { fan, worker: '1', direction: 'rx' }), 21);
  t.is(value(s1, 'fand_bytes_total', { fan, worker: '0', direction: 'rx' }), 2000);
  t.is(value(s1, 'fand_bytes_total', { fan, worker: '1', direction: 'tx' }), 1001);
  t.is(value(s1, 'fand_dropped_packets_total', { fan, worker: '1', direction: 'rx', reason: 'in.spoofed-source' }), 4);
  t.is(value(s1, 'fand_dropped_packets_total', { fan, worker: '0', direction: 'tx', reason: 'out.not-overlay' }), 0, 'zero counts are exported');
  // the traffic counters out.read and in.received are what the dataplane took in, never drop reasons
  t.deepEqual([...new Set(s1.filter((x) => x.name === 'fand_dropped_packets_total').map((x) => x.labels['reason']))].sort(), ['in.spoofed-source', 'out.not-overlay']);
  t.is(value(s1, 'fand_handled_packets_total', { fan, worker: '1', direction: 'tx' }), 12);
  t.is(value(s1, 'fand_handled_packets_total', { fan, worker: '1', direction: 'rx' }), 25);
  t.is(value(s1, 'fand_worker_loops_total', { fan, worker: '1' }), 6);
  t.is(value(s1, 'fand_direct_sends_total', { fan, worker: '1' }), 9);
  t.is(value(s1, 'fand_direct_sends_total', { fan: 'fan-10-3', worker: 'all' }), undefined, 'kernel modes send no direct packets');
  t.is(value(s1, 'fand_fan_info', { fan, overlay: '250.0.0.0/8', encapsulation: 'ipip' }), 1);
  // Userspace: per worker only, no "all" series to double-count in sum().
  t.is(s1.filter((s) => s.labels['fan'] === fan && s.labels['worker'] === 'all').length, 0);
  // Kernel-style fan: its totals under worker="all", and no loop counter.
  t.is(value(s1, 'fand_packets_total', { fan: 'fan-10-3', worker: 'all', direction: 'tx' }), 7);
  t.is(value(s1, 'fand_bytes_total', { fan: 'fan-10-3', worker: 'all', direction: 'rx' }), 0);
  t.is(value(s1, 'fand_worker_loops_total', { fan: 'fan-10-3', worker: 'all' }), undefined);
  t.is(value(s1, 'fand_dataplane_info', { mode: 'userspace' }), 1);
  t.is(value(s1, 'fand_workers_alive'), 2);
  t.is(value(s1, 'fand_workers_configured'), 2);
  t.is(value(s1, 'fand_last_reload_timestamp_seconds'), undefined, 'no reload yet: no sample');
  t.is(value(s1, 'fand_last_reload_success'), undefined);

  scale = 3;
  const { samples: s2 } = parse(await (await fetch(url)).text());
  t.is(value(s2, 'fand_packets_total', { fan, worker: '1', direction: 'tx' }), 31);
  t.is(value(s2, 'fand_dropped_packets_total', { fan, worker: '0', direction: 'rx', reason: 'in.spoofed-source' }), 9);
  t.is(value(s2, 'fand_packets_total', { fan: 'fan-10-3', worker: 'all', direction: 'tx' }), 21);
  t.is(value(s2, 'fand_workers_alive'), 1);
  t.is(value(s2, 'fand_last_reload_timestamp_seconds'), 1700000000);
  t.is(value(s2, 'fand_last_reload_success'), 0);
  t.is(s2.filter((s) => s.name === 'fand_dataplane_info').length, 1);
});

test('series of a fan that went away disappear', async (t) => {
  let fans = snapshot(1).fans;
  const m = await startMetrics('127.0.0.1:0', { snapshot: () => ({ ...snapshot(1), mode: fans.length ? 'userspace' : 'kernel-ipip', fans }) }, log);
  t.teardown(() => m.close());
  const url = `http://127.0.0.1:${m.address.port}/metrics`;
  t.true(parse(await (await fetch(url)).text()).samples.some((s) => s.labels['fan'] === 'fan-10-3'));
  fans = fans.slice(0, 1);
  const { samples } = parse(await (await fetch(url)).text());
  t.false(samples.some((s) => s.labels['fan'] === 'fan-10-3'));
  t.is(value(samples, 'fand_dataplane_info', { mode: 'userspace' }), 1);
  fans = [];
  const empty = parse(await (await fetch(url)).text()).samples;
  t.is(value(empty, 'fand_dataplane_info', { mode: 'kernel-ipip' }), 1);
  t.is(value(empty, 'fand_dataplane_info', { mode: 'userspace' }), undefined, 'the old mode is gone');
});

test('other paths are 404, other methods 405, and a failing source is a 500', async (t) => {
  let fail = false;
  const m = await startMetrics('127.0.0.1:0', { snapshot: () => { if (fail) throw new Error('boom'); return snapshot(1); } }, log);
  t.teardown(() => m.close());
  const base = `http://127.0.0.1:${m.address.port}`;
  t.is((await fetch(`${base}/`)).status, 404);
  t.is((await fetch(`${base}/metricsx`)).status, 404);
  t.is((await fetch(`${base}/metrics?name[]=x`)).status, 200);
  const post = await fetch(`${base}/metrics`, { method: 'POST' });
  t.is(post.status, 405);
  t.is(post.headers.get('allow'), 'GET, HEAD');
  fail = true;
  const r = await fetch(`${base}/metrics`);
  t.is(r.status, 500);
  t.regex(await r.text(), /boom/);
  fail = false;
  t.is((await fetch(`${base}/metrics`)).status, 200, 'recovers on the next scrape');
});

test('close() frees the port, even with a kept-alive scrape connection', async (t) => {
  const m = await startMetrics('127.0.0.1:0', { snapshot: () => snapshot(1) }, log);
  const { port } = m.address;
  t.is((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200); // undici keeps this connection open
  t.false(await portFree(port));
  await m.close();
  await m.close(); // idempotent
  t.true(await portFree(port));
  // and a second server may take it
  const again = await startMetrics(`127.0.0.1:${port}`, { snapshot: () => snapshot(1) }, log);
  t.is(again.address.port, port);
  await again.close();
});

test('a taken port is an error that names it', async (t) => {
  const m = await startMetrics('127.0.0.1:0', { snapshot: () => snapshot(1) }, log);
  t.teardown(() => m.close());
  await t.throwsAsync(startMetrics(`127.0.0.1:${m.address.port}`, { snapshot: () => snapshot(1) }, log),
    { message: `metrics 127.0.0.1:${m.address.port}: address already in use` });
});

test('listen addresses: HOST:PORT, bracketed IPv6', (t) => {
  t.deepEqual(parseListen('127.0.0.1:9478'), { host: '127.0.0.1', port: 9478 });
  t.deepEqual(parseListen('[::1]:9478'), { host: '::1', port: 9478 });
  t.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
  t.throws(() => parseListen('9478'), { message: /HOST:PORT/ });
  t.throws(() => parseListen(':9478'), { message: /HOST:PORT/ });
  t.throws(() => parseListen('h:70000'), { message: /HOST:PORT/ });
});

test('every counter the userspace dataplane reports has a metric', (t) => {
  for (const key of TRAFFIC_NAMES) t.truthy(COUNTERS[key], `${key} is reported but named nowhere in counter-names.ts`);
});
