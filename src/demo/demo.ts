// `fand demo`: a whole Fan on one machine. N hosts in network namespaces on
// one underlay bridge, fand on each, two containers per host; every
// container pings every other, data crosses with a checksum, a table shows
// what happened, and everything is removed again (also on Ctrl-C).
import { Lab, tcpTransfer } from './lab.js';
import { inNs } from './exec.js';
import { FAND_BIN } from './lab.js';
import type { Encap } from '../fan/encap.js';

export interface DemoOptions { readonly hosts: number; readonly workers: number; readonly encap?: Encap }

const say = (s: string) => process.stdout.write(s + '\n');

export async function runDemo(o: DemoOptions): Promise<number> {
  if (process.getuid?.() !== 0) { process.stderr.write('fand demo: needs root (network namespaces)\n'); return 1; }
  const lab = new Lab(Lab.uniquePrefix('demo'), 16, { encap: o.encap ?? 'ipip' });
  let interrupted = false;
  const onSig = () => { interrupted = true; say('\ninterrupted: cleaning up'); void lab.destroy().then(() => process.exit(130)); };
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    say(`Building ${o.hosts} hosts on underlay 172.16.0.0/16 (namespaces ${lab.prefix}-*), overlay 250.0.0.0/8 (${lab.encap}), ${o.workers} worker(s) each`);
    await lab.build(o.hosts, 2);
    for (const h of lab.hosts) {
      const f = await lab.startFand(h, ['--workers', String(o.workers)]);
      const dp = f.logs.find((l) => typeof l['dataplane'] === 'string');
      say(`  host ${h.ns}: underlay ${h.underlay}, slice ${h.slice.network}/${h.slice.prefix} on ${h.bridge} (dataplane ${String(dp?.['dataplane'])}: ${String(dp?.['reason'])})`);
      await lab.attachContainers(h);
    }
    const all = lab.containers();
    say(`\nPing matrix (${all.length} containers):`);
    say('from \\ to'.padEnd(16) + all.map((c) => c.address.padEnd(13)).join(''));
    let failures = 0;
    for (const a of all) {
      const row: string[] = [];
      for (const b of all) {
        if (a === b) { row.push('-'.padEnd(13)); continue; }
        const ok = await lab.ping(a.ns, b.address, 1, 2);
        if (!ok) failures++;
        row.push((ok ? 'ok' : 'FAIL').padEnd(13));
        if (interrupted) return 130;
      }
      say(a.address.padEnd(16) + row.join(''));
    }
    const a = lab.hosts[0]!.containers[0]!;
    const b = lab.hosts[1]!.containers[0]!;
    const mb = 8;
    const t = await tcpTransfer(a.ns, b.ns, b.address, mb << 20);
    const intact = t.sent.sha256 === t.received.sha256 && t.sent.bytes === t.received.bytes;
    if (!intact) failures++;
    say(`\nTCP ${mb} MiB ${a.address} -> ${b.address}: ${intact ? 'intact' : 'CORRUPTED'} (sha256 ${t.received.sha256.slice(0, 16)}…), ${(t.received.bytes * 8 / t.received.seconds / 1e6).toFixed(0)} Mbit/s`);
    say('\nfand show on each host:');
    for (const h of lab.hosts) {
      const s = await inNs(h.ns, process.execPath, [FAND_BIN, 'show']);
      say(`--- ${h.ns}\n${s.stdout.trimEnd()}`);
    }
    say(failures === 0 ? '\nAll containers reach each other through the Fan.' : `\n${failures} check(s) failed.`);
    return failures === 0 ? 0 : 1;
  } catch (e) {
    process.stderr.write(`fand demo: ${(e as Error).message}\n`);
    return 1;
  } finally {
    say('Removing the demo namespaces.');
    await lab.destroy();
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}
