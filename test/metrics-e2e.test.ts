// Drops as an operator reads them, from a REAL running daemon (two workers;
// the userspace dataplane, and ebpf as metrics-e2e-ebpf.test.ts): after real drops are caused — spoofed inner
// sources and malformed IPIP injected from a rogue underlay peer, and a
// container sending to an overlay address whose underlay host is the
// network address — each is read back by reason from /metrics, from
// `fand show --json` and from `fand show`, with the same count under the same
// name in all three. (metrics.test.ts tests the endpoint's mechanics on a
// made-up snapshot; a snapshot is how a wrong drop metric went unnoticed.)
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { Lab, FAND_BIN, PATIENCE_MS, type LabHost } from '../src/demo/lab.js';
import { inNs } from '../src/demo/exec.js';
import { hex, ip, ipipPacket, ipv4Packet } from './helpers/packets.js';
import { DATAPLANE } from './helpers/dataplane.js';

const INJECT = fileURLToPath(new URL('./helpers/inject.js', import.meta.url));
const ROGUE = '172.16.9.9';
const LISTEN = '127.0.0.1:9478';

interface Sample { name: string; labels: Record<string, string>; value: number }
type Counts = { counters: Record<string, number>; drops: Record<string, number> };
type ShowJson = { fans: ({ bridge: string; perWorker: Counts[] } & Counts)[] };

/** The Prometheus text format's samples (fand's label values hold no escapes). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum over the series of `name` whose labels include `labels` (e.g. over the workers). */
function sum(samples: Sample[], name: string, labels: Record<string, string>): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

async function scrape(h: LabHost): Promise<{ text: string; samples: Sample[] }> {
  // 127.0.0.1 is the host namespace's own loopback: scrape from inside it.
  const text = (await inNs(h.ns, process.execPath, ['-e', `fetch('http://${LISTEN}/metrics').then(r => r.text()).then(t => process.stdout.write(t))`], PATIENCE_MS)).stdout;
  return { text, samples: parse(text) };
}

async function showJson(h: LabHost): Promise<ShowJson> {
  return JSON.parse((await inNs(h.ns, process.execPath, [FAND_BIN, 'show', '--json'], PATIENCE_MS)).stdout) as ShowJson;
}

async function showText(h: LabHost): Promise<string> {
  return (await inNs(h.ns, process.execPath, [FAND_BIN, 'show'], PATIENCE_MS)).stdout;
}

test('drops caused on a running daemon read back by reason, the same in /metrics, show --json and show', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('mx'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  await lab.startFand(h1, ['--workers', '2', '--metrics', LISTEN]);
  await lab.startFand(h2, ['--workers', '1']);
  for (const h of lab.hosts) await lab.attachContainers(h);
  const rogue = await lab.addUnderlayPeer('rogue', ROGUE);
  const c1 = h1.containers[0]!;
  const c2 = h2.containers[0]!;
  t.true(await lab.ping(c1.ns, c2.address, 5));

  // What is caused, how often: distinct counts, so a mix-up between reasons shows.
  const me = ip(h1.underlay);
  const inner = (src: string) => ipv4Packet({ src: ip(src), dst: ip(c1.address), payload: new Uint8Array(16).fill(7) });
  const injected: Record<string, { packets: Uint8Array; count: number }> = {
    // the rogue speaks for host 2's container (its own slice is 250.9.9.0/24)
    'in.spoofed-source': { packets: ipipPacket(ip(ROGUE), me, inner(c2.address)), count: 5 },
    // inner total length beyond the bytes that arrived
    'in.inner-malformed': { packets: ipipPacket(ip(ROGUE), me, (() => { const p = inner('250.9.9.5'); p[3] = p[3]! + 9; return p; })()), count: 4 },
    // an inner header cut short
    'in.truncated': { packets: ipipPacket(ip(ROGUE), me, inner('250.9.9.5').slice(0, 12)), count: 2 },
  };
  // 250.0.0.7 maps to underlay 172.16.0.0, the underlay's network address: never sent.
  const badUnderlay = 3;
  const expected: Record<string, number> = { ...Object.fromEntries(Object.entries(injected).map(([r, x]) => [r, x.count])), 'out.bad-underlay': badUnderlay };

  const before = (await showJson(h1)).fans[0]!;
  const hexes = Object.values(injected).flatMap((x) => Array<string>(x.count).fill(hex(x.packets)));
  const sent = JSON.parse((await inNs(rogue, process.execPath, [INJECT, h1.underlay, ...hexes])).stdout) as { sent: number; failed: number };
  t.is(sent.sent, hexes.length);
  t.is(sent.failed, 0);
  // ping -c 3 sends exactly 3 echo requests, each read from the TUN and dropped; none is answered
  await t.throwsAsync(inNs(c1.ns, 'ping', ['-c', String(badUnderlay), '-i', '0.2', '-W', '1', '-q', '250.0.0.7'], PATIENCE_MS));

  // The workers count as they drain: wait until every caused drop is counted.
  const caused = (f: Counts) => Object.keys(expected).reduce((n, r) => n + (f.drops[r] ?? 0) - (before.drops[r] ?? 0), 0);
  const total = Object.values(expected).reduce((a, b) => a + b, 0);
  let now = (await showJson(h1)).fans[0]!;
  for (const until = Date.now() + PATIENCE_MS; caused(now) < total && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 100));
    now = (await showJson(h1)).fans[0]!;
  }

  // Read all three once the counts have settled.
  const json = (await showJson(h1)).fans[0]!;
  const { text: metricsText, samples } = await scrape(h1);
  const human = await showText(h1);
  t.log(human);
  t.log(metricsText.split('\n').filter((l) => l.startsWith('fand_dropped_packets_total') && !l.endsWith(' 0')).join('\n'));

  const fan = h1.bridge;
  const humanDrops = Object.fromEntries([...(new RegExp(`^${fan} dropped: (.*)$`, 'm').exec(human)?.[1] ?? '').matchAll(/(\S+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  for (const [reason, n] of Object.entries(expected)) {
    // show --json: by reason, and the per-worker rows add up to it
    t.is((json.drops[reason] ?? 0) - (before.drops[reason] ?? 0), n, `show --json drops["${reason}"]`);
    // (the ebpf dataplane counts per CPU in the kernel and reports one row per fan)
    if (DATAPLANE === 'userspace') t.is(json.perWorker.reduce((s, w) => s + (w.drops[reason] ?? 0), 0), json.drops[reason], `${reason}: per-worker drops do not add up`);
    // /metrics: the same reason label, summed over the workers, with its direction
    const direction = reason.startsWith('out.') ? 'tx' : 'rx';
    t.is(sum(samples, 'fand_dropped_packets_total', { fan, reason, direction }), json.drops[reason], `fand_dropped_packets_total{reason="${reason}"}`);
    // fand show: the same name and count
    t.is(humanDrops[reason], json.drops[reason], `fand show: ${reason}`);
  }
  // every reason with drops is shown, each under the name the JSON uses
  t.deepEqual(humanDrops, Object.fromEntries(Object.entries(json.drops).filter(([, n]) => n > 0)));
  const dropped = Object.values(json.drops).reduce((a, b) => a + b, 0);
  t.regex(human, new RegExp(`^${fan}\\s.*\\s${dropped}$`, 'm'), 'the Dropped column is the sum of the drops');

  // The counters that count what was taken in are never drop reasons (they were, as out.read and in.received).
  const reasons = new Set(samples.filter((s) => s.name === 'fand_dropped_packets_total').map((s) => s.labels['reason']));
  t.false(reasons.has('out.read') || reasons.has('in.received'), [...reasons].join(' '));
  t.deepEqual([...reasons].sort(), Object.keys(json.drops).sort(), 'the metric and show --json list different reasons');
  // ... they are what was handled: taken in = carried + dropped, per direction, in the metrics as in the JSON
  for (const [direction, key, carried] of [['tx', 'out.read', 'tx.packets'], ['rx', 'in.received', 'rx.packets']] as const) {
    const handled = sum(samples, 'fand_handled_packets_total', { fan, direction });
    t.is(handled, json.counters[key], `fand_handled_packets_total{direction="${direction}"}`);
    t.is(handled, sum(samples, 'fand_packets_total', { fan, direction }) + sum(samples, 'fand_dropped_packets_total', { fan, direction }),
      `${direction}: handled != carried + dropped`);
    t.is(json.counters[key], json.counters[carried]! + Object.entries(json.drops).filter(([r]) => r.startsWith(direction === 'tx' ? 'out.' : 'in.')).reduce((n, [, v]) => n + v, 0));
  }
  t.regex(metricsText, new RegExp(`^fand_dataplane_info\\{mode="${DATAPLANE}"\\} 1$`, 'm'));
  t.regex(metricsText, /^fand_workers_alive 2$/m);
  t.true(sum(samples, 'fand_packets_total', { fan, direction: 'tx' }) >= 5);
  t.true(sum(samples, 'fand_packets_total', { fan, direction: 'rx' }) >= 5);
});
