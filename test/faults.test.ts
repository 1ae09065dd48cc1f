// Faults real fleets see: a worker thread that dies, and an underlay address
// that changes under the daemon (a DHCP renewal to a new address).
import test from 'ava';
import { Lab, FAND_BIN } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { request } from '../src/control/server.js';

test('a worker that dies is replaced and logged; traffic keeps flowing', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('wd'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  await lab.startFand(h1, ['--workers', '2'], 15_000, { FAND_TEST_HOOKS: '1' });
  await lab.startFand(h2, ['--workers', '1']);
  for (const h of lab.hosts) await lab.attachContainers(h);
  const flood = inNs(h1.containers[0]!.ns, 'ping', ['-i', '0.02', '-c', '150', '-q', '-W', '1', h2.containers[0]!.address], 20_000);
  await new Promise((r) => setTimeout(r, 500));
  t.deepEqual(await request(lab.controlSocket(h1), { cmd: 'crash-worker' }), { ok: true });
  const died = await lab.waitForLog(h1, /worker 0 exited unexpectedly/);
  t.is(died['level'], 50); // error
  await lab.waitForLog(h1, /worker 0 restarted/);
  const show = JSON.parse((await inNs(h1.ns, process.execPath, [FAND_BIN, 'show', '--json'])).stdout) as { workers: { alive: number; configured: number } };
  t.deepEqual(show.workers, { alive: 2, configured: 2 });
  const out = (await flood).stdout;
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  t.truthy(m, out);
  // The dead worker's share is unserved for the restart delay (1 s): some loss, not a stall.
  t.true(Number(m![2]) >= 100, out);
  t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 3));
});

test('underlay down/up and a new underlay address are noticed and logged loudly; the fan moves to the new slice', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('ua'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  for (const h of lab.hosts) { await lab.startFand(h, ['--workers', '1']); await lab.attachContainers(h); }
  t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address));
  // the underlay goes down and comes back
  await run('ip', ['-n', h1.ns, 'link', 'set', 'eth0', 'down']);
  const down = await lab.waitForLog(h1, /^underlay eth0 is down/, 10_000);
  t.is(down['level'], 50);
  await run('ip', ['-n', h1.ns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', h1.ns, 'route', 'replace', 'default', 'via', '172.16.0.1', 'dev', 'eth0']);
  await lab.waitForLog(h1, /^underlay eth0 is up again/, 10_000);
  t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 1, 3));
  // "DHCP renewal": 172.16.1.10 becomes 172.16.1.77
  // (deleting a primary address also deletes its secondaries, so delete first)
  await run('ip', ['-n', h1.ns, 'addr', 'del', '172.16.1.10/16', 'dev', 'eth0']);
  await run('ip', ['-n', h1.ns, 'addr', 'add', '172.16.1.77/16', 'dev', 'eth0']);
  await run('ip', ['-n', h1.ns, 'route', 'replace', 'default', 'via', '172.16.0.1', 'dev', 'eth0']);
  const changed = await lab.waitForLog(h1, /^underlay address changed on eth0: 172\.16\.1\.10\/16 -> 172\.16\.1\.77/, 10_000);
  t.is(changed['level'], 50);
  t.regex(String(changed['msg']), /slice 250\.1\.10\.0\/24 -> 250\.1\.77\.0\/24/);
  await lab.waitForLog(h1, /^reload done/, 10_000);
  const links = (JSON.parse((await run('ip', ['-n', h1.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
  t.true(links.includes('fan-250-1-77'));
  t.false(links.includes('fan-250-1-10'));
  // A container in the new slice reaches host 2's container, whose host never heard of the change.
  const c = h1.containers[0]!;
  await run('ip', ['-n', h1.ns, 'link', 'set', 'c1', 'master', 'fan-250-1-77', 'up']);
  await run('ip', ['-n', c.ns, 'addr', 'flush', 'dev', 'eth0']);
  await run('ip', ['-n', c.ns, 'addr', 'add', '250.1.77.11/24', 'dev', 'eth0']);
  await run('ip', ['-n', c.ns, 'route', 'replace', 'default', 'via', '250.1.77.1']);
  t.true(await lab.ping(c.ns, h2.containers[0]!.address, 3, 3));
});
