// The host side a container engine relies on, through fand itself: a
// container on the fan bridge gets its address, router and MTU by DHCP, and
// reaches a host outside the fan that only knows the fan host's underlay
// address (NAT). After kill -9 and a restart, exactly one dnsmasq serves.
import test from 'ava';
import { mkdtempSync, rmSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, FAND_BIN, PATIENCE_MS } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { systemCommand } from '../src/host/nat.js';
import { udhcpcLease, udhcpcScript } from './helpers/udhcpc.js';


/** The dnsmasq processes serving `bridge` in the namespace `ns` (other tests' fans have the same bridge name). */
function dnsmasqFor(bridge: string, ns: string): number[] {
  const lease = `dhcp-${statSync(`/run/netns/${ns}`).ino}-${bridge}.leases`;
  const pids: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.includes('dnsmasq') && cmd.includes(lease) && cmd.includes(`--interface=${bridge}`)) pids.push(Number(pid));
  }
  return pids;
}

test('a container gets address, router and MTU by DHCP and reaches the outside through NAT', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-dhcp-'));
  const script = udhcpcScript(dir);
  const lab = new Lab(Lab.uniquePrefix('dn'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  await lab.build(1, 1);
  const h = lab.hosts[0]!;
  const c = h.containers[0]!;
  const outside = await lab.addUnderlayPeer('out', '172.16.9.20'); // no route to 250.0.0.0/8: only NAT can answer it
  await lab.startFand(h, ['--workers', '1', '--dhcp']);
  await run('ip', ['-n', h.ns, 'link', 'set', 'c1', 'master', h.bridge, 'up']);
  await run('ip', ['-n', c.ns, 'link', 'set', 'eth0', 'up']); // MTU left at 1500: DHCP must fix it
  const lease = await udhcpcLease(c.ns, script);
  const m = /LEASE ip=(\S+) mask=(\d+) router=(\S+) mtu=(\d+)/.exec(lease);
  t.truthy(m, lease);
  t.regex(m![1]!, /^250\.1\.10\.(\d+)$/);
  t.not(m![1], '250.1.10.1');
  t.is(m![2], '24');
  t.is(m![3], '250.1.10.1');
  t.is(m![4], '1480');
  const mtu = (JSON.parse((await run('ip', ['-n', c.ns, '-j', 'link', 'show', 'eth0'])).stdout) as { mtu: number }[])[0]!.mtu;
  t.is(mtu, 1480);

  t.true(await lab.ping(c.ns, '172.16.9.20', 2), 'the container does not reach the outside host through NAT');
  // the outside host saw the fan host's underlay address, not the container's
  const nft = (await inNs(h.ns, systemCommand('nft'), ['list', 'table', 'ip', 'fand'])).stdout;
  t.regex(nft, /masquerade/);
  t.regex(nft, /counter packets [1-9]/);
  void outside;

  // Someone deletes the bridge: fand puts it back and attaches the container again, and dnsmasq
  // (--bind-dynamic) serves the new bridge: the same client gets a lease again, from the same dnsmasq.
  const served = dnsmasqFor(h.bridge, h.ns);
  const mark = h.fand!.logs.length;
  await run('ip', ['-n', h.ns, 'link', 'del', h.bridge]);
  await lab.waitForLog(h, /^attached c1 to fan-250-1-10 again$/, PATIENCE_MS, mark);
  await run('ip', ['-n', c.ns, 'addr', 'flush', 'dev', 'eth0']);
  const again = await udhcpcLease(c.ns, script);
  t.regex(again, /LEASE ip=250\.1\.10\.\d+ mask=24 router=250\.1\.10\.1 mtu=1480/, 'no lease after the bridge was put back');
  t.deepEqual(dnsmasqFor(h.bridge, h.ns), served, 'dnsmasq was not the same one after the bridge came back');
  t.true(await lab.ping(c.ns, '172.16.9.20', 2), 'no way out after the bridge was put back');

  // kill -9: dnsmasq outlives fand; the next fand ends it and starts exactly one
  t.is(dnsmasqFor(h.bridge, h.ns).length, 1);
  await lab.stopFand(h, 'SIGKILL');
  t.is(dnsmasqFor(h.bridge, h.ns).length, 1, 'dnsmasq should outlive a killed fand');
  await lab.startFand(h, ['--workers', '1', '--dhcp']);
  // fand is up only after the old dnsmasq is gone and the new one runs
  t.is(dnsmasqFor(h.bridge, h.ns).length, 1, 'not exactly one dnsmasq after the restart');
  t.is(await lab.stopFand(h), 0);
  t.is(dnsmasqFor(h.bridge, h.ns).length, 0, 'dnsmasq left after a clean stop');
  // The container keeps its way out while fand is stopped (NAT stays with its fan) ...
  t.regex((await inNs(h.ns, systemCommand('nft'), ['list', 'tables'])).stdout, /table ip fand/);
  // ... until the fan is removed.
  await inNs(h.ns, process.execPath, [FAND_BIN, 'down', '--force']);
  t.is((await inNs(h.ns, systemCommand('nft'), ['list', 'tables'])).stdout.trim(), '');
});
