// The daemon driven by rtnetlink events (issue 15), through real daemons in
// namespaces: a neighbour change reaches the direct sends at once. Reaction
// times are measured and reported (t.log), never a pass/fail bound: the
// assertions are "reflected", with generous caps for a busy machine.
import test from 'ava';
import { spawn } from 'node:child_process';
import { Lab } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';

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
  const until = Date.now() + 20_000;
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
  for (const h of lab.hosts) { await lab.startFand(h, ['--workers', '1', '--log-level', 'debug']); await lab.attachContainers(h); }
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
