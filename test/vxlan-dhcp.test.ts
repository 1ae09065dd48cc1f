// A VXLAN fan's containers as DHCP gives them out: an address of the host's
// slice with the OVERLAY's netmask (the fan is one Ethernet segment), the
// bridge address as router, the fan MTU (underlay - 50); and with that lease
// alone a container reaches a container on another host directly (it ARPs
// for it across the fan), and the outside through NAT. `fand demo --encap
// vxlan` runs the same fan end to end.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { fand } from './helpers/fand-cli.js';
import { udhcpcLease, udhcpcScript } from './helpers/udhcpc.js';


test('DHCP on a VXLAN fan: slice address, /8 netmask, router, MTU 1450; the lease alone reaches another host\'s container and the outside', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-vxdhcp-'));
  const script = udhcpcScript(dir);
  const lab = new Lab(Lab.uniquePrefix('vxd'), 16, { encap: 'vxlan' });
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  await lab.addUnderlayPeer('out', '172.16.9.20'); // no route to the overlay: only NAT answers it
  await lab.startFand(h1, ['--workers', '1', '--dhcp']);
  await lab.startFand(h2, ['--workers', '1']);
  await lab.attachContainers(h2);
  const c = h1.containers[0]!;
  await run('ip', ['-n', h1.ns, 'link', 'set', 'c1', 'master', h1.bridge, 'up']);
  await run('ip', ['-n', c.ns, 'link', 'set', 'eth0', 'up']);
  const lease = await udhcpcLease(c.ns, script);
  const m = /LEASE ip=(\S+) mask=(\d+) router=(\S+) mtu=(\d+)/.exec(lease);
  t.truthy(m, lease);
  t.regex(m![1]!, /^250\.1\.10\.(\d+)$/);
  t.not(m![1], '250.1.10.1');
  t.is(m![2], '8', 'the overlay\'s netmask');
  t.is(m![3], '250.1.10.1');
  t.is(m![4], '1450');
  // another host's container is on-link: no router between, ARP across the fan
  const remote = h2.containers[0]!;
  t.true(await lab.ping(c.ns, remote.address, 2), 'the container does not reach the other host\'s container');
  const neigh = (await inNs(c.ns, 'ip', ['-j', 'neigh', 'show', remote.address])).stdout;
  t.regex(neigh, /"lladdr"/, `no ARP entry for ${remote.address}: ${neigh}`);
  t.true(await lab.ping(c.ns, '172.16.9.20', 2), 'the container does not reach the outside host through NAT');
});

test('fand demo --encap vxlan: every container reaches every other, and it is all removed', async (t) => {
  const r = await fand(['demo', '--hosts', '2', '--workers', '1', '--encap', 'vxlan']);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /overlay 250\.0\.0\.0\/8 \(vxlan\)/);
  t.notRegex(r.stdout, /FAIL/);
});
