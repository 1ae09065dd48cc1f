// An idle fand inside User-Mode Linux, where starting a process is
// expensive (issue 15: one idle kernel-ipip fand kept the guest 83 % busy):
// one UML boot per (fand, dataplane), each measuring SECONDS of idle
// (bench/uml-idle-guest.ts). With --compare BIN, another checkout's fand is
// measured the same way in the same run.
//   npm run build && node dist/bench/uml-idle.js [--seconds 20] [--dataplanes kernel-ipip,userspace] [--compare BIN]
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { FAND_BIN } from '../src/demo/lab.js';
import { runInUml } from '../test/uml/harness.js';

const { values: opts } = parseArgs({ options: { seconds: { type: 'string' }, dataplanes: { type: 'string' }, compare: { type: 'string' } } });
const SECONDS = opts.seconds ?? '20';
const GUEST = fileURLToPath(new URL('./uml-idle-guest.js', import.meta.url));
const bins = [FAND_BIN, ...(opts.compare ? [opts.compare] : [])];
console.log('| fand | dataplane | fand CPU s per 30 s | guest CPU busy % | processes started in the guest | fand start-up, s |');
console.log('|---|---|---|---|---|---|');
for (const dataplane of (opts.dataplanes ?? 'kernel-ipip,userspace').split(',')) {
  for (const bin of bins) {
    const r = await runInUml({ script: GUEST, args: [bin, dataplane, SECONDS], timeoutMs: 300_000 });
    const res = r.result as Record<string, number | string | boolean>;
    if (!r.ok) { console.log(`| ${bin} | ${dataplane} | failed: ${JSON.stringify(res)} |`); continue; }
    const per30 = Number(res['fandCpuSeconds']) * 30 / Number(SECONDS);
    console.log(`| ${bin === FAND_BIN ? 'this checkout' : bin} | ${dataplane} | ${per30.toFixed(2)} | ${res['guestBusyPercent']} | ${res['processesStarted']} in ${SECONDS} s | ${(Number(res['startMs']) / 1000).toFixed(1)} |`);
  }
}
console.log(`\nhost machine: ${cpus().length} CPUs, load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
