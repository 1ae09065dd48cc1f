// fand --metrics: the Prometheus endpoint of a running daemon shows the
// dataplane, its workers and the counters of real traffic.
import test from 'ava';
import { Lab } from '../src/demo/lab.js';
import { inNs } from '../src/demo/exec.js';

test('a running daemon serves its counters as Prometheus metrics', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('mx'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  await lab.startFand(h1, ['--workers', '2', '--metrics', '127.0.0.1:9478']);
  await lab.startFand(h2, ['--workers', '1']);
  for (const h of lab.hosts) await lab.attachContainers(h);
  t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 5));
  // 127.0.0.1 is the host namespace's own loopback: scrape from inside it.
  const body = (await inNs(h1.ns, process.execPath, ['-e', "fetch('http://127.0.0.1:9478/metrics').then(r => r.text()).then(t => process.stdout.write(t))"])).stdout;
  t.regex(body, /^fand_dataplane_info\{mode="userspace"\} 1$/m);
  t.regex(body, /^fand_workers_alive 2$/m);
  const sum = (dir: string) => body.split('\n').filter((l) => l.startsWith(`fand_packets_total{`) && l.includes(`fan="${h1.bridge}"`) && l.includes(`direction="${dir}"`))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
  t.true(sum('tx') >= 5, `tx ${sum('tx')}`);
  t.true(sum('rx') >= 5, `rx ${sum('rx')}`);
  t.regex(body, /^# TYPE fand_dropped_packets_total counter$/m);
});
