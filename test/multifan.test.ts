// Several fans in one daemon, sharing its workers: two overlays over the same
// underlay, each with its own bridge and TUN, both carrying traffic.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, FAND_BIN } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { DATAPLANE } from './helpers/dataplane.js';

test('two fans in one daemon both carry traffic, and show and stop cover both', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-multi-'));
  const conf = join(dir, 'fan');
  writeFileSync(conf, '250.0.0.0/8 eth0/16\n10.0.0.0/8 eth0/16 bridge fanb\n100.64.0.0/10 eth0/16 off\n');
  const lab = new Lab(Lab.uniquePrefix('mf'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  await lab.build(2, 2);
  for (const h of lab.hosts) {
    await lab.startFand(h, ['--config', conf, '--workers', '2']);
    // container 1 on the 250/8 fan (the lab's own), container 2 on the 10/8 fan's bridge "fanb"
    await lab.attachContainers(h);
    const c2 = h.containers[1]!;
    const addr = `10.${h.index}.10.20`;
    await run('ip', ['-n', h.ns, 'link', 'set', 'c2', 'nomaster']);
    await run('ip', ['-n', h.ns, 'link', 'set', 'c2', 'master', 'fanb']);
    await run('ip', ['-n', c2.ns, 'addr', 'flush', 'dev', 'eth0']);
    await run('ip', ['-n', c2.ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', c2.ns, 'route', 'replace', 'default', 'via', `10.${h.index}.10.1`]);
  }
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 3), 'fan 250/8');
  t.true(await lab.ping(h1.containers[1]!.ns, '10.2.10.20', 3), 'fan 10/8');
  const show = JSON.parse((await inNs(h1.ns, process.execPath, [FAND_BIN, 'show', '--json'])).stdout) as { dataplane: { mode: string }; fans: { bridge: string; counters: Record<string, number> }[] };
  t.is(show.dataplane.mode, DATAPLANE);
  t.deepEqual(show.fans.map((f) => f.bridge), ['fan-250-1-10', 'fanb']);
  for (const f of show.fans) t.true((f.counters['tx.packets'] ?? 0) >= 3 && (f.counters['rx.packets'] ?? 0) >= 3, `${f.bridge}: ${JSON.stringify(f.counters)}`);
  const links = (JSON.parse((await run('ip', ['-n', h1.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
  t.false(links.some((l) => l.includes('100')), 'the off fan was brought up');
  // A clean stop keeps both fans (each has a container); down --force removes both.
  t.is(await lab.stopFand(h1), 0);
  const fanLinks = async () => (JSON.parse((await run('ip', ['-n', h1.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname).filter((l) => /^(fan|ftun)/.test(l)).sort();
  t.deepEqual(await fanLinks(), ['fan-250-1-10', 'fanb', 'ftun-10', 'ftun-250']);
  const down = await inNs(h1.ns, process.execPath, [FAND_BIN, 'down', '--force']);
  t.regex(down.stdout, /removed bridge fanb/);
  t.deepEqual(await fanLinks(), []);
});
