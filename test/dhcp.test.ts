// DHCP on the fan bridge: dnsmasq's command line as data, then a real
// dnsmasq in a "host" namespace serving a busybox udhcpc client in a
// "container" namespace: the address, the router, the DNS server and the fan MTU arrive,
// a killed dnsmasq is restarted, stop() leaves nothing running.
// Needs root, dnsmasq (Debian: dnsmasq-base) and busybox (busybox-static);
// without them the real test fails (it does not skip) and says what to install.
import test from 'ava';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DhcpServer, DNSMASQ_MISSING, dnsmasqArgs, findDnsmasq, netmaskOf, type DhcpLog } from '../src/dhcp/dnsmasq.js';
import { inNs, run } from '../src/demo/exec.js';
import { Lab, PATIENCE_MS } from '../src/demo/lab.js';
import { udhcpcLease, udhcpcScript } from './helpers/udhcpc.js';

interface Line { level: string; o: Record<string, unknown>; m: string }
function recorder(): DhcpLog & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (o: object, m: string) => { lines.push({ level, o: o as Record<string, unknown>, m }); };
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = PATIENCE_MS): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

test('dnsmasq command line: DHCP and DNS forwarding on the bridge only, no config file, fan MTU forced', (t) => {
  t.deepEqual(dnsmasqArgs({
    bridge: 'fan-250-1-10', first: '250.1.10.2', last: '250.1.10.254', prefixLen: 24,
    router: '250.1.10.1', mtu: 1480, leaseFile: '/run/fand/dhcp-fan-250-1-10.leases',
  }), [
    '--conf-file=/dev/null',
    '--keep-in-foreground',
    '--log-facility=-',
    '--no-hosts',
    '--domain-needed',
    '--interface=fan-250-1-10',
    '--except-interface=lo',
    '--bind-dynamic',
    '--dhcp-range=250.1.10.2,250.1.10.254,255.255.255.0,1h',
    '--dhcp-option=option:router,250.1.10.1',
    '--dhcp-option=option:dns-server,250.1.10.1',
    '--dhcp-option-force=option:mtu,1480',
    '--dhcp-authoritative',
    '--dhcp-leasefile=/run/fand/dhcp-fan-250-1-10.leases',
    '--pid-file=',
  ]);
  const a = dnsmasqArgs({ bridge: 'b', first: '10.37.16.2', last: '10.37.31.254', prefixLen: 20, router: '10.37.16.1', mtu: 8950, leaseFile: '/l', leaseTime: '12h' });
  t.true(a.includes('--dhcp-range=10.37.16.2,10.37.31.254,255.255.240.0,12h'));
  t.deepEqual([0, 8, 16, 20, 24, 30, 32].map(netmaskOf),
    ['0.0.0.0', '255.0.0.0', '255.255.0.0', '255.255.240.0', '255.255.255.0', '255.255.255.252', '255.255.255.255']);
  t.throws(() => netmaskOf(33), { message: /prefix length 33/ });
  t.throws(() => dnsmasqArgs({ bridge: 'b', first: 'a', last: 'b', prefixLen: 24, router: 'r', mtu: 20, leaseFile: '/l' }), { message: /mtu 20/ });
  t.throws(() => dnsmasqArgs({ bridge: 'b,x', first: 'a', last: 'b', prefixLen: 24, router: 'r', mtu: 1480, leaseFile: '/l' }), { message: /bridge "b,x"/ });
});

test('restarts back off 1 s, 2 s ... and stop() ends them', async (t) => {
  // A stand-in "dnsmasq" that starts, then dies after 200 ms.
  const dir = await mkdtemp(join(tmpdir(), 'fand-dhcp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fake = join(dir, 'dnsmasq');
  await writeFile(fake, '#!/bin/sh\necho "dnsmasq-dhcp[$$]: DHCP, IP range fake" >&2\nsleep 0.2\nexit 3\n');
  await chmod(fake, 0o755);
  const log = recorder();
  const s = new DhcpServer({ bridge: 'none0', first: '10.0.0.2', last: '10.0.0.9', prefixLen: 24, router: '10.0.0.1', mtu: 1450, leaseFile: join(dir, 'l'), binary: fake }, log);
  t.teardown(() => s.stop());
  await s.start();
  await until('two restarts', () => s.restarts === 2);
  const warned = log.lines.filter((l) => l.level === 'warn');
  t.deepEqual(warned.map((l) => l.o['delayMs']), [1000, 2000]);
  t.regex(warned[0]!.m, /dnsmasq exited unexpectedly \(code 3\); restarting in 1000 ms/);
  t.true(log.lines.some((l) => l.o['dnsmasq'] === true && /DHCP, IP range fake/.test(l.m)));
  await s.stop();
  await new Promise((r) => setTimeout(r, 4500));
  t.is(s.restarts, 2, 'no restart after stop()');
  t.is(s.pid, undefined);
});

test('a missing dnsmasq or a missing bridge is an error that says so', async (t) => {
  t.regex(DNSMASQ_MISSING, /dnsmasq-base/);
  const dnsmasq = findDnsmasq();
  if (!dnsmasq) return t.fail(DNSMASQ_MISSING);
  const ns = `${Lab.uniquePrefix('dhm')}`;
  await run('ip', ['netns', 'add', ns]);
  const dir = await mkdtemp(join(tmpdir(), 'fand-dhcp-'));
  t.teardown(async () => { await run('ip', ['netns', 'del', ns]); await rm(dir, { recursive: true, force: true }); });
  const s = new DhcpServer({ bridge: 'fdh-nope', first: '10.0.0.2', last: '10.0.0.9', prefixLen: 24, router: '10.0.0.1', mtu: 1450, leaseFile: join(dir, 'l'), netns: ns }, recorder());
  await t.throwsAsync(s.start(), { message: /dhcp fdh-nope: no such interface .*fdh-nope does not currently exist/ });
  t.is(s.pid, undefined);
  const b = new DhcpServer({ bridge: 'x', first: '10.0.0.2', last: '10.0.0.9', prefixLen: 24, router: '10.0.0.1', mtu: 1450, leaseFile: join(dir, 'l'), binary: join(dir, 'no-such-dnsmasq') }, recorder());
  await t.throwsAsync(b.start(), { message: /dnsmasq exited at start \(spawn .*ENOENT\)/ });
  return undefined;
});


test('a container on the fan bridge gets address, router and MTU; dnsmasq is restarted after kill -9', async (t) => {
  const dnsmasq = findDnsmasq();
  if (!dnsmasq) return t.fail(DNSMASQ_MISSING);
  const prefix = Lab.uniquePrefix('dh');
  const host = `${prefix}-h`;
  const containers = [`${prefix}-c1`, `${prefix}-c2`];
  const dir = await mkdtemp(join(tmpdir(), 'fand-dhcp-'));
  const made: string[] = [];
  let server: DhcpServer | undefined;
  t.teardown(async () => {
    await server?.stop();
    for (const ns of made.reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  for (const ns of [host, ...containers]) {
    await run('ip', ['netns', 'add', ns]);
    made.push(ns);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  const ipH = (...a: string[]) => run('ip', ['-n', host, ...a]);
  await ipH('link', 'add', 'fdh-br', 'type', 'bridge');
  await ipH('link', 'set', 'fdh-br', 'mtu', '1480');
  await ipH('addr', 'add', '250.1.10.1/24', 'dev', 'fdh-br');
  await ipH('link', 'set', 'fdh-br', 'up');
  for (const [i, c] of containers.entries()) {
    await ipH('link', 'add', `fdh-v${i}`, 'mtu', '1480', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c);
    await ipH('link', 'set', `fdh-v${i}`, 'master', 'fdh-br', 'up');
    await run('ip', ['-n', c, 'link', 'set', 'eth0', 'up']); // MTU left at 1500
  }
  const script = udhcpcScript(dir);
  const leaseFile = join(dir, 'fdh-br.leases');

  const log = recorder();
  server = new DhcpServer({
    bridge: 'fdh-br', first: '250.1.10.2', last: '250.1.10.254', prefixLen: 24,
    router: '250.1.10.1', mtu: 1480, leaseFile, netns: host,
  }, log);
  await server.start();
  const pid1 = server.pid!;
  t.truthy(pid1);
  t.true(log.lines.some((l) => l.o['dnsmasq'] === true && /DHCP, IP range 250\.1\.10\.2 -- 250\.1\.10\.254/.test(l.m)), 'start() resolved before dnsmasq logged its range');
  // dnsmasq logs this after its range, maybe after start() resolved
  await until('dnsmasq binding to the bridge only', () => log.lines.some((l) => /sockets bound exclusively to interface fdh-br/.test(l.m)));

  const lease = async (c: string) => {
    const stdout = await udhcpcLease(c, script);
    const m = /LEASE ip=(\S+) mask=(\S+) router=(\S*) mtu=(\S*) dns=(\S*)/.exec(stdout);
    if (!m) throw new Error(`udhcpc in ${c}: no lease: ${stdout}`);
    const mac = (await inNs(c, 'cat', ['/sys/class/net/eth0/address'])).stdout.trim();
    const linkMtu = (await inNs(c, 'cat', ['/sys/class/net/eth0/mtu'])).stdout.trim();
    return { ip: m[1]!, mask: m[2]!, router: m[3]!, mtu: m[4]!, dns: m[5]!, mac, linkMtu };
  };
  const inRange = (a: string) => { const [x, y, z, w] = a.split('.').map(Number); return x === 250 && y === 1 && z === 10 && w! >= 2 && w! <= 254; };

  const l1 = await lease(containers[0]!);
  t.true(inRange(l1.ip), l1.ip);
  t.is(l1.mask, '24');
  t.is(l1.router, '250.1.10.1');
  t.is(l1.dns, '250.1.10.1');
  t.is(l1.mtu, '1480');
  t.is(l1.linkMtu, '1480', "the container's eth0 took the fan MTU");
  await until('the lease in the lease file', async () => (await readFile(leaseFile, 'utf8')).includes(`${l1.mac} ${l1.ip}`));
  // the container can reach its router over the configured address
  await inNs(containers[0]!, 'ping', ['-c', '1', '-w', '60', '250.1.10.1'], PATIENCE_MS);

  process.kill(pid1, 'SIGKILL');
  await until('dnsmasq restarted', () => server!.restarts === 1 && server!.pid !== undefined && server!.pid !== pid1);
  const pid2 = server.pid!;
  t.true(log.lines.some((l) => l.level === 'warn' && /dnsmasq exited unexpectedly \(SIGKILL\); restarting in 1000 ms/.test(l.m)), 'the restart was not logged');
  const l2 = await lease(containers[1]!);
  t.true(inRange(l2.ip), l2.ip);
  t.not(l2.ip, l1.ip);
  t.is(l2.mtu, '1480');
  const leases = await readFile(leaseFile, 'utf8');
  t.true(leases.includes(`${l1.mac} ${l1.ip}`), 'the restarted dnsmasq kept the first lease');
  await until('the second lease in the lease file', async () => (await readFile(leaseFile, 'utf8')).includes(`${l2.mac} ${l2.ip}`));
  t.is(server.restarts, 1);

  await server.stop();
  t.false(alive(pid1));
  t.false(alive(pid2), 'stop() leaves no dnsmasq');
  t.is(server.pid, undefined);
  return undefined;
});
