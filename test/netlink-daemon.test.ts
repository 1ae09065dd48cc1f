// The daemon driven by rtnetlink events (issue 15), through real daemons in
// namespaces: a neighbour change reaches the direct sends at once. Reaction
// times are measured and reported (t.log), never a pass/fail bound: the
// assertions are "reflected", with generous caps for a busy machine.
import test from 'ava';
import { spawn } from 'node:child_process';
import { Lab, PATIENCE_MS } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { ForkCounter } from '../bench/forks.js';

type Host = Lab['hosts'][number];

/** tcpdump on an interface of a namespace; resolves `first` with the epoch ms of the first matching frame. */
async function capture(ns: string, dev: string, filter: string) {
  const child = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', dev, '-l', '-n', '-tt', '-e', '-c', '1', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump not listening: ${err}`)), 20_000);
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); if (/listening on/.test(err)) { clearTimeout(timer); resolve(); } });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tcpdump exited ${code}: ${err}`)); });
  });
  let out = '';
  const first = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+\.\d+) /m.exec(out);
      if (m) resolve(Number(m[1]) * 1000);
    });
    child.once('exit', () => reject(new Error(`tcpdump ended without a frame: ${out} ${err}`)));
  });
  first.catch(() => undefined);
  return { first, out: () => out, stop: () => { child.kill('SIGKILL'); } };
}

/** The first log line of the host's fand at or after `since` (epoch ms) whose msg matches; waits up to 20 s. */
async function logged(h: Host, msg: RegExp, since: number): Promise<Record<string, unknown>> {
  const until = Date.now() + PATIENCE_MS;
  for (;;) {
    const hit = h.fand!.logs.find((l) => Number(l['time']) >= since - 5 && msg.test(String(l['msg'])));
    if (hit) return hit;
    if (Date.now() > until) throw new Error(`fand on ${h.ns} logged nothing matching ${msg} since ${since}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const withCap = <T>(p: Promise<T>, ms: number, what: string) => Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);

test('a changed neighbour reaches the direct sends through the running daemon at once (rtnetlink event, no poll)', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('nr'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [Host, Host];
  // Direct sends are the userspace dataplane's (auto picks ebpf on a kernel that has it).
  for (const h of lab.hosts) { await lab.startFand(h, ['--dataplane', 'userspace', '--workers', '1', '--log-level', 'debug']); await lab.attachContainers(h); }
  const c1 = h1.containers[0]!.ns;
  const c2 = h2.containers[0]!.address;
  t.true(await lab.ping(c1, c2, 3, 3));
  // The next hop moves to another Ethernet address (as after a NIC swap): the kernel's entry changes,
  // and the workers' next frames must go to the new address.
  const BOGUS = '02:00:00:00:99:99';
  const cap = await capture(h1.ns, 'eth0', `ether dst ${BOGUS} and ip proto 4`);
  t.teardown(() => cap.stop());
  const pinger = inNs(c1, 'ping', ['-i', '0.002', '-c', '1500', '-q', '-W', '1', c2], 60_000).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  await run('ip', ['-n', h1.ns, 'neigh', 'replace', '172.16.2.10', 'lladdr', BOGUS, 'dev', 'eth0', 'nud', 'permanent']);
  const seen = await withCap(cap.first, 20_000, 'a direct send to the new Ethernet address');
  const applied = await logged(h1, /^netlink: neighbour 172\.16\.2\.10 PERMANENT 02:00:00:00:99:99: direct sends/, t0);
  t.regex(cap.out(), /> 02:00:00:00:99:99, ethertype IPv4/);
  // Back to the real address: traffic flows again.
  const real = (JSON.parse((await run('ip', ['-n', h2.ns, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[])[0]!.address;
  await run('ip', ['-n', h1.ns, 'neigh', 'replace', '172.16.2.10', 'lladdr', real, 'dev', 'eth0', 'nud', 'reachable']);
  await pinger;
  t.true(await lab.ping(c1, c2, 3, 3), 'traffic flows again once the entry is right');
  t.log(`neighbour change -> first direct frame to the new address: ${(seen - t0).toFixed(1)} ms (upper bound: from before \`ip neigh replace\` started, ping every 2 ms); `
    + `daemon applied it ${(Number(applied['time']) - t0).toFixed(0)} ms after the start of the change`);
});

test('idle, the daemon starts no process: nothing polls (kernel proc connector counts every fork)', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('ni'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  for (const h of lab.hosts) { await lab.startFand(h, ['--workers', '1']); await lab.attachContainers(h); }
  const [h1, h2] = lab.hosts as [Host, Host];
  t.true(await lab.ping(h1.containers[0]!.ns, h2.containers[0]!.address, 3, 3));
  const forks = new ForkCounter(h1.fand!.child.pid!);
  t.teardown(() => forks.close());
  await new Promise((r) => setTimeout(r, 500));
  forks.reset();
  // Long enough for every timer the old daemon had (1 s neighbours, 2 s underlay) to fire several times.
  await new Promise((r) => setTimeout(r, 8000));
  t.deepEqual(forks.count, { processes: 0, threads: 0, execs: 0 });
  // The count is not blind: a reload changes the host with `ip -batch`, and that is counted.
  const t0 = Date.now();
  h1.fand!.child.kill('SIGHUP');
  await logged(h1, /^reload done/, t0);
  t.true(forks.count.processes > 0, `a reload's ip -batch was counted (${JSON.stringify(forks.count)})`);
});

test('fand\'s bridge deleted by someone: put back with its address and route, the container attached again, logged', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('nd'));
  t.teardown(() => lab.destroy());
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [Host, Host];
  for (const h of lab.hosts) { await lab.startFand(h, ['--workers', '1', '--log-level', 'debug']); await lab.attachContainers(h); }
  const c1 = h1.containers[0]!.ns;
  t.true(await lab.ping(c1, h2.containers[0]!.address, 2, 3));
  const t0 = Date.now();
  await run('ip', ['-n', h1.ns, 'link', 'del', h1.bridge]);
  const warned = await logged(h1, /^bridge fan-250-1-10, address 250\.1\.10\.1\/24 of fan-250-1-10, route 250\.0\.0\.0\/8 dev ftun-250 deleted \(not by fand\): putting back$/, t0);
  t.is(warned['level'], 40);
  const attached = await logged(h1, /^attached c1 to fan-250-1-10 again$/, t0).catch((e: Error) => { t.log(h1.fand!.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')); throw e; });
  const links = JSON.parse((await run('ip', ['-n', h1.ns, '-j', 'link', 'show', 'c1'])).stdout) as { master?: string }[];
  t.is(links[0]!.master, h1.bridge);
  t.regex((await run('ip', ['-n', h1.ns, 'route', 'show', '250.0.0.0/8'])).stdout, /dev ftun-250 .*src 250\.1\.10\.1/);
  t.true(await lab.ping(c1, h2.containers[0]!.address, 3, 3), 'the container reaches the other host again');
  t.log(`bridge deleted -> back with its container: ${Number(attached['time']) - t0} ms`);
});
