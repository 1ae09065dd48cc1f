// SIGHUP: fans added are brought up, fans removed are torn down, a fan that
// stays keeps forwarding without losing a packet, and an invalid new
// configuration is rejected whole while the running one stays.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, FAND_BIN } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { DATAPLANE } from './helpers/dataplane.js';

async function links(ns: string): Promise<string[]> {
  return (JSON.parse((await run('ip', ['-n', ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
}

test('reload adds and removes fans while a ping flood on the unchanged fan loses nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-reload-'));
  const conf = join(dir, 'fan');
  const lab = new Lab(Lab.uniquePrefix('rl'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  writeFileSync(conf, '# the lab fan\n250.0.0.0/8 eth0/16\n');
  await lab.startFand(h1, ['--config', conf, '--workers', '2']);
  await lab.startFand(h2, ['--workers', '1']);
  for (const h of lab.hosts) await lab.attachContainers(h);
  const a = h1.containers[0]!;
  const b = h2.containers[0]!;
  t.true(await lab.ping(a.ns, b.address));

  // 600 pings, 10 ms apart: the flood runs across all three reloads below.
  const flood = inNs(a.ns, 'ping', ['-i', '0.01', '-c', '600', '-q', '-W', '1', b.address], 30_000);
  await new Promise((r) => setTimeout(r, 800));

  writeFileSync(conf, '250.0.0.0/8 eth0/16\n10.0.0.0/8 eth0/16 host-reserve 3\n');
  // `ip netns exec` execs fand in place: the child is fand itself.
  h1.fand!.child.kill('SIGHUP');
  const added = await lab.waitForLog(h1, /^reload done/);
  t.deepEqual(added['added'], ['fan-10-1-10']);
  t.true((await links(h1.ns)).includes('fan-10-1-10'));
  t.true((await links(h1.ns)).includes('ftun-10'));
  // ebpf: the new fan's overlay device got the encapsulating program
  if (DATAPLANE === 'ebpf') t.regex((await inNs(h1.ns, 'tc', ['filter', 'show', 'dev', 'ftun-10', 'egress'])).stdout, /handle 0xfa fand_egress/);
  await new Promise((r) => setTimeout(r, 800));

  // A port on the fan being removed (a container's veth): the fan stays, and says why.
  await run('ip', ['-n', h1.ns, 'link', 'add', 'cport', 'type', 'veth', 'peer', 'name', 'cpeer']);
  await run('ip', ['-n', h1.ns, 'link', 'set', 'cport', 'master', 'fan-10-1-10', 'up']);
  writeFileSync(conf, '250.0.0.0/8 eth0/16\n');
  h1.fand!.child.kill('SIGHUP');
  const held = await lab.waitForLog(h1, /^no longer configured, but containers are attached/);
  t.deepEqual(held['retained'], [{ bridge: 'fan-10-1-10', ports: ['cport'] }]);
  t.true((await links(h1.ns)).includes('fan-10-1-10'));
  t.true((await links(h1.ns)).includes('ftun-10'));
  const shown = JSON.parse((await inNs(h1.ns, process.execPath, [FAND_BIN, 'show', '--json'])).stdout) as { retained: unknown; fans: { bridge: string }[] };
  t.deepEqual(shown.retained, [{ bridge: 'fan-10-1-10', ports: ['cport'] }]);
  t.deepEqual(shown.fans.map((f) => f.bridge), ['fan-250-1-10']);
  // Once the port is gone, the next reload removes the fan.
  await run('ip', ['-n', h1.ns, 'link', 'del', 'cport']);
  h1.fand!.child.kill('SIGHUP');
  const removed = await lab.waitForLog(h1, /^reload done/);
  t.deepEqual(removed['removed'], []);
  await lab.waitForLog(h1, /^removed bridge fan-10-1-10/).catch(() => undefined);
  t.false((await links(h1.ns)).includes('fan-10-1-10'));
  t.false((await links(h1.ns)).includes('ftun-10'));
  await new Promise((r) => setTimeout(r, 800));

  writeFileSync(conf, '250.0.0.0/8 eth0/16 dhcpp\n');
  h1.fand!.child.kill('SIGHUP');
  const rejected = await lab.waitForLog(h1, /^reload rejected/);
  t.regex(String(rejected['msg']), /fan:1: unknown option 'dhcpp'/);
  // A reload meets the same preflight as start-up and `fand plan`: nothing is changed.
  writeFileSync(conf, '250.0.0.0/8 eth0/16\n10.0.0.0/8 eth0/16 bridge eth0\n');
  const mark = h1.fand!.logs.length;
  h1.fand!.child.kill('SIGHUP');
  const clash = await lab.waitForLog(h1, /^reload rejected/, undefined, mark);
  t.regex(String(clash['msg']), /fan:2: bridge eth0: eth0 is the underlay interface/);
  t.false((await links(h1.ns)).includes('ftun-10'), 'a rejected reload changed the host');

  const out = (await flood).stdout;
  // Rejected once, in one message: the running configuration is not re-read behind the operator's back.
  const errors = h1.fand!.logs.filter((l) => (l['level'] as number) >= 50).map((l) => String(l['msg']));
  t.deepEqual(errors, [String(rejected['msg']), String(clash['msg'])]);
  t.regex(out, /600 packets transmitted, 600 received, 0% packet loss/, out);
  t.true(await lab.ping(a.ns, b.address), 'the running fan stopped after a rejected reload');
  // A clean stop keeps the fan its container is attached to.
  t.is(await lab.stopFand(h1), 0);
  t.deepEqual((await links(h1.ns)).filter((l) => l.startsWith('fan-') || l.startsWith('ftun-')).sort(), ['fan-250-1-10', 'ftun-250']);
});
