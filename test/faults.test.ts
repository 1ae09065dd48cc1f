// Faults real fleets see: a worker thread that dies, an underlay address
// that changes under the daemon (a DHCP renewal to a new address), and next
// hops that change under the direct sends (userspace, neighbours.ts) or
// containers that come and go under the port map (ebpf, ports.ts). Runs with
// each dataplane (helpers/dataplane.ts).
import test from 'ava';
import { Lab, FAND_BIN } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { request } from '../src/control/server.js';
import { DATAPLANE } from './helpers/dataplane.js';

test('a worker that dies is replaced and logged; traffic keeps flowing', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('wd'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  await lab.startFand(h1, ['--workers', '2'], undefined, { FAND_TEST_HOOKS: '1' });
  await lab.startFand(h2, ['--workers', '1']);
  for (const h of lab.hosts) await lab.attachContainers(h);
  const flood = inNs(h1.containers[0]!.ns, 'ping', ['-i', '0.02', '-c', '150', '-q', '-W', '1', h2.containers[0]!.address], 20_000);
  await new Promise((r) => setTimeout(r, 500));
  const since = h1.fand!.logs.length;
  t.deepEqual(await request(lab.controlSocket(h1), { cmd: 'crash-worker' }), { ok: true });
  const died = await lab.waitForLog(h1, /worker 0 exited unexpectedly/, 10_000, since);
  t.is(died['level'], 50); // error
  await lab.waitForLog(h1, /worker 0 restarted/, 10_000, since);
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
  // the underlay goes down and comes back (marks: the daemon reacts to the
  // kernel's events, possibly before waitForLog starts looking)
  let mark = h1.fand!.logs.length;
  await run('ip', ['-n', h1.ns, 'link', 'set', 'eth0', 'down']);
  const down = await lab.waitForLog(h1, /^underlay eth0 is down/, undefined, mark);
  t.is(down['level'], 50);
  mark = h1.fand!.logs.length;
  await run('ip', ['-n', h1.ns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', h1.ns, 'route', 'replace', 'default', 'via', '172.16.0.1', 'dev', 'eth0']);
  await lab.waitForLog(h1, /^underlay eth0 is up again/, undefined, mark);
  t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 1));
  // "DHCP renewal": 172.16.1.10 becomes 172.16.1.77
  // (deleting a primary address also deletes its secondaries, so delete first)
  mark = h1.fand!.logs.length;
  await run('ip', ['-n', h1.ns, 'addr', 'del', '172.16.1.10/16', 'dev', 'eth0']);
  const added = Date.now();
  await run('ip', ['-n', h1.ns, 'addr', 'add', '172.16.1.77/16', 'dev', 'eth0']);
  await run('ip', ['-n', h1.ns, 'route', 'replace', 'default', 'via', '172.16.0.1', 'dev', 'eth0']);
  const changed = await lab.waitForLog(h1, /^underlay address changed on eth0: 172\.16\.1\.10\/16 -> 172\.16\.1\.77/, undefined, mark);
  t.is(changed['level'], 50);
  t.regex(String(changed['msg']), /slice 250\.1\.10\.0\/24 -> 250\.1\.77\.0\/24/);
  const moved = await lab.waitForLog(h1, /^reload done/, undefined, mark);
  t.is(moved['trigger'], 'underlay address changed on eth0');
  t.log(`new underlay address -> fan moved: ${Number(moved['time']) - added} ms (from before \`ip addr add\` started)`);
  t.false(h1.fand!.logs.some((l) => /SIGHUP/.test(String(l['msg']))), 'an underlay change was logged as a SIGHUP');
  let links = (JSON.parse((await run('ip', ['-n', h1.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
  t.true(links.includes('fan-250-1-77'));
  // The old slice's bridge still has the container: it stays (with its gateway address) until the container leaves.
  t.true(links.includes('fan-250-1-10'), 'the old bridge was removed under its container');
  // A container in the new slice reaches host 2's container, whose host never heard of the change.
  const c = h1.containers[0]!;
  await run('ip', ['-n', h1.ns, 'link', 'set', 'c1', 'master', 'fan-250-1-77', 'up']);
  await run('ip', ['-n', c.ns, 'addr', 'flush', 'dev', 'eth0']);
  await run('ip', ['-n', c.ns, 'addr', 'add', '250.1.77.11/24', 'dev', 'eth0']);
  await run('ip', ['-n', c.ns, 'route', 'replace', 'default', 'via', '250.1.77.1']);
  t.true(await lab.ping(c.ns, h2.containers[0]!.address, 3));
  // With no port left, the next reload removes the old bridge.
  mark = h1.fand!.logs.length;
  h1.fand!.child.kill('SIGHUP');
  await lab.waitForLog(h1, /^reload done/, undefined, mark);
  links = (JSON.parse((await run('ip', ['-n', h1.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
  t.false(links.includes('fan-250-1-10'));
});

if (DATAPLANE === 'userspace') test('direct sends follow the kernel\'s neighbour table: a flushed neighbour, a next hop with a new Ethernet address', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('nb'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  // Debug logs: the daemon says when it applied each neighbour event, so the test waits for that, not for a time.
  for (const h of lab.hosts) { await lab.startFand(h, ['--workers', '1', '--log-level', 'debug']); await lab.attachContainers(h); }
  const applied = (what: RegExp, from: number) => lab.waitForLog(h1, what, undefined, from);
  // logged once the workers are up, before startFand returned
  t.truthy(h1.fand!.logs.find((l) => /^outbound IPIP: direct sends \(AF_PACKET\) to the next hops the kernel has resolved on eth0/.test(String(l['msg']))));
  const c1 = h1.containers[0]!.ns;
  const c2 = h2.containers[0]!.address;
  const txOf = async () => {
    const s = JSON.parse((await inNs(h1.ns, process.execPath, [FAND_BIN, 'show', '--json'])).stdout) as { fans: { counters: Record<string, number> }[] };
    const c = s.fans[0]!.counters;
    return { tx: c['tx.packets']!, direct: c['tx.direct']! };
  };
  // The first packets resolve 172.16.2.10 through the kernel; then the workers send directly.
  t.true(await lab.ping(c1, c2, 3));
  await applied(/^netlink: neighbour 172\.16\.2\.10 \S+ [0-9a-f:]{17}: direct sends/, 0);
  await inNs(c1, 'ping', ['-c', '1', '-W', '2', '-q', c2]); // a STALE entry's one packet through the kernel
  let before = await txOf();
  await inNs(c1, 'ping', ['-c', '20', '-i', '0.05', '-q', c2]);
  let after = await txOf();
  t.is(after.tx - before.tx, 20, 'every echo request sent');
  t.is(after.direct - before.direct, 20, 'all of them directly');
  // The kernel forgets the neighbour: its packets go through the kernel, which resolves it again.
  let mark = h1.fand!.logs.length;
  await run('ip', ['-n', h1.ns, 'neigh', 'flush', 'dev', 'eth0']);
  await applied(/^netlink: neighbour 172\.16\.2\.10 .*: through the kernel/, mark);
  mark = h1.fand!.logs.length;
  before = await txOf();
  t.true(await lab.ping(c1, c2, 1));
  after = await txOf();
  t.is(after.direct - before.direct, 0, 'no direct send without a kernel entry');
  await applied(/^netlink: neighbour 172\.16\.2\.10 REACHABLE [0-9a-f:]{17}: direct sends/, mark);
  before = await txOf();
  await inNs(c1, 'ping', ['-c', '5', '-i', '0.05', '-q', c2]);
  after = await txOf();
  t.is(after.direct - before.direct, 5, 'direct again once the kernel has resolved it');
  // Host 2's underlay gets a new Ethernet address: frames to the old one are not its own. Once
  // host 2 speaks ARP (here: it resolves host 1), host 1's kernel learns the new address, and
  // the direct sends follow at the kernel's event.
  await run('ip', ['-n', h2.ns, 'link', 'set', 'eth0', 'address', '02:00:00:00:99:99']);
  t.true(await lab.silent(c1, c2, 1), 'the old Ethernet address no longer reaches host 2');
  await run('ip', ['-n', h2.ns, 'neigh', 'flush', 'dev', 'eth0']);
  await inNs(h2.ns, 'ping', ['-c', '1', '-W', '2', '172.16.1.10']);
  const neigh = (await run('ip', ['-n', h1.ns, 'neigh', 'show', '172.16.2.10'])).stdout;
  t.regex(neigh, /02:00:00:00:99:99/);
  await applied(/^netlink: neighbour 172\.16\.2\.10 \S+ 02:00:00:00:99:99: direct sends/, 0);
  before = await txOf();
  t.true(await lab.ping(c1, c2, 3));
  after = await txOf();
  t.true(after.direct - before.direct >= 2, `direct to the new address (${after.direct - before.direct} of ${after.tx - before.tx})`);
});

if (DATAPLANE === 'ebpf') test('the port map follows containers that come and go: a new port and Ethernet address for the same address', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('pm'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  for (const h of lab.hosts) { await lab.startFand(h, ['--workers', '1']); await lab.attachContainers(h); }
  const from = h1.containers[0]!.ns;
  const c = h2.containers[0]!;
  const directOf = async () => {
    const s = JSON.parse((await inNs(h2.ns, process.execPath, [FAND_BIN, 'show', '--json'])).stdout) as { fans: { counters: Record<string, number> }[] };
    return { rx: s.fans[0]!.counters['rx.packets']!, direct: s.fans[0]!.counters['rx.direct']! };
  };
  /** Pings until a round of 5 goes straight to the port (the map learns from the kernel's events), at most ~20 s. */
  const untilDirect = async (what: string) => {
    for (let i = 0; i < 40; i++) {
      const before = await directOf();
      const ok = await lab.ping(from, c.address, 5, 2);
      const after = await directOf();
      if (ok && after.direct - before.direct === 5) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    t.fail(`${what}: echo requests never went straight to the container's port`);
  };
  // The first packets go through the bridge; the host resolves the container, the map learns it.
  await untilDirect('first container');
  // The container is replaced: its port goes (and with it the FDB entries), a new one with a new
  // Ethernet address takes the same address, as a container engine restarting it does.
  await run('ip', ['-n', h2.ns, 'link', 'del', 'c1']);
  await run('ip', ['-n', h2.ns, 'link', 'add', 'c1b', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c.ns]);
  await run('ip', ['-n', c.ns, 'link', 'set', 'eth0', 'address', '02:00:00:00:77:77', 'mtu', '1480', 'up']);
  await run('ip', ['-n', c.ns, 'addr', 'add', `${c.address}/${h2.slice.prefix}`, 'dev', 'eth0']);
  await run('ip', ['-n', c.ns, 'route', 'replace', 'default', 'via', h2.slice.gateway]);
  await run('ip', ['-n', h2.ns, 'link', 'set', 'c1b', 'master', h2.bridge, 'mtu', '1480', 'up']);
  // Until the host learns the new Ethernet address the old entry must not be used: the old port is gone.
  await untilDirect('replaced container');
  const neigh = (await run('ip', ['-n', h2.ns, 'neigh', 'show', c.address])).stdout;
  t.regex(neigh, /02:00:00:00:77:77/);
  // And a steady flow goes straight in, every packet.
  const before = await directOf();
  await inNs(from, 'ping', ['-c', '20', '-i', '0.05', '-q', c.address]);
  const after = await directOf();
  t.is(after.direct - before.direct, 20);
  t.is(after.rx - before.rx, 20);
});
