// DHCP that containers can live with (issue 11, finding 6), through fand
// and a real busybox udhcpc in a container namespace:
//   - the lease names a DNS server, the bridge address, where fand's dnsmasq
//     forwards to the host's own resolver, even when that resolver is a
//     loopback stub the container could never reach (systemd-resolved's
//     127.0.0.53, played here by a dnsmasq that knows one name; no internet);
//   - the lease file outlives a clean stop while the container is attached
//     (the next fand hands the container the same address), and goes with
//     the fan.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, PATIENCE_MS } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { findDnsmasq, DNSMASQ_MISSING } from '../src/dhcp/dnsmasq.js';
import { udhcpcLease, udhcpcScript } from './helpers/udhcpc.js';

const NAME = 'fand-test.example';
const ANSWER = '10.9.8.7';

test('a container gets a DNS server that resolves through the host\'s stub resolver; leases stay with a kept fan and go with the fan', async (t) => {
  const dnsmasq = findDnsmasq();
  if (!dnsmasq) return t.fail(DNSMASQ_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'fand-dns-'));
  const script = udhcpcScript(dir);
  const lab = new Lab(Lab.uniquePrefix('dns'));
  await lab.build(1, 1);
  const h = lab.hosts[0]!;
  const c = h.containers[0]!;
  // `ip netns exec NS` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf: the host's resolver is its stub
  const etc = `/etc/netns/${h.ns}`;
  mkdirSync(etc, { recursive: true });
  writeFileSync(join(etc, 'resolv.conf'), 'nameserver 127.0.0.53\n');
  const stub = spawn('ip', ['netns', 'exec', h.ns, dnsmasq, '--conf-file=/dev/null', '--keep-in-foreground', '--log-facility=-', '--no-resolv', '--no-hosts',
    '--listen-address=127.0.0.53', '--bind-interfaces', `--address=/${NAME}/${ANSWER}`, '--pid-file='], { stdio: 'ignore' });
  t.teardown(async () => {
    stub.kill('SIGKILL');
    await lab.destroy();
    rmSync(etc, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  const leases = `/run/fand/dhcp-${statSync(`/run/netns/${h.ns}`).ino}-${h.bridge}.leases`;
  const lease = async () => {
    const out = await udhcpcLease(c.ns, script);
    const m = /LEASE ip=(\S+) mask=\S* router=(\S+) mtu=\S* dns=(\S*)/.exec(out);
    if (!m) throw new Error(`no lease: ${out}`);
    return { ip: m[1]!, router: m[2]!, dns: m[3]! };
  };

  let f = await lab.startFand(h, ['--workers', '1', '--dhcp']);
  await run('ip', ['-n', h.ns, 'link', 'set', 'c1', 'master', h.bridge, 'up']);
  await run('ip', ['-n', c.ns, 'link', 'set', 'eth0', 'up']);
  const l1 = await lease();
  t.is(l1.router, h.slice.gateway);
  t.is(l1.dns, h.slice.gateway, 'the lease names the bridge address as DNS server');
  // the name only the host's stub resolver knows, asked of the server the lease named
  const answer = (await inNs(c.ns, 'busybox', ['nslookup', NAME, l1.dns], PATIENCE_MS).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))).stdout;
  t.regex(answer, new RegExp(`Address:\\s+${ANSWER.replaceAll('.', '\\.')}`), answer);
  t.true(f.logs.some((l) => /using nameserver 127\.0\.0\.53#53/.test(String(l['msg']))), "dnsmasq did not take the host's resolver from resolv.conf");
  t.true(readFileSync(leases, 'utf8').includes(` ${l1.ip} `), 'the lease is in the lease file');

  // A clean stop keeps the fan for the attached container, and its lease with it.
  t.is(await lab.stopFand(h), 0);
  t.true(existsSync(leases), 'a clean stop removed the leases of a fan it kept');
  // The next fand adopts the fan; its dnsmasq knows the lease and renews the same address.
  f = await lab.startFand(h, ['--workers', '1', '--dhcp']);
  const l2 = await lease();
  t.is(l2.ip, l1.ip, 'the container got another address after the restart');

  // Detached, the fan goes on the next clean stop, and its lease file with it.
  await run('ip', ['-n', h.ns, 'link', 'set', 'c1', 'nomaster']);
  t.is(await lab.stopFand(h), 0);
  await t.throwsAsync(run('ip', ['-n', h.ns, 'link', 'show', h.bridge]), undefined, 'the fan was not removed');
  t.false(existsSync(leases), 'the lease file outlived its fan');
  t.true(f.logs.some((l) => /^dhcp: removed the lease file of /.test(String(l['msg']))));
  return undefined;
});
