// Guest side of the kernel tier (runs inside UML, where the ipip module is
// loaded): three hosts on one underlay bridge. Two run fand in `auto`, which
// must pick kernel-ipip; one is forced to userspace. Every container pings
// every other, TCP crosses between a kernel host and the userspace host both
// ways; a clean stop keeps the kernel-ipip fan forwarding for its containers,
// and `fand down --force` removes all of its routes.
// Prints one JSON line with everything it saw; exit 0 when all held.
import { Lab, tcpTransfer, FAND_BIN } from '../../src/demo/lab.js';
import { inNs, run } from '../../src/demo/exec.js';

const out: Record<string, unknown> = {};
const problems: string[] = [];
const check = (ok: boolean, what: string) => { if (!ok) problems.push(what); return ok; };
// A /20 underlay: 4,093 remote hosts. The /16 (65,533 routes) is measured on
// the machine's own kernel (kernel-ipip.test.ts); UML maps guest memory page
// by page and runs out of host mappings with that many routes.
const lab = new Lab('ui', 20);
const REMOTE = 4093;
const t0 = Date.now();
const stamp = (what: string) => { (out['timeline'] as string[] | undefined ?? (out['timeline'] = [] as string[]) as string[]).push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`); };

async function count(ns: string, what: 'route' | 'nexthop'): Promise<number> {
  return (await run('ip', ['-n', ns, what, 'show', 'proto', '250'])).stdout.split('\n').filter(Boolean).length;
}

try {
  await lab.build(3, 1);
  stamp('lab built');
  const [k1, k2, u3] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0], typeof lab.hosts[0]];
  const plan = (await inNs(k1.ns, process.execPath, [FAND_BIN, 'plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/20', '--no-nat'])).stdout;
  out['plan'] = plan.split('\n')[0];
  check(/^dataplane: kernel-ipip/.test(plan), 'plan inside UML does not choose kernel-ipip');
  // A stock kernel with ipip: the probe device is created, its fan map silently dropped.
  out['fanEvidence'] = plan.split('\n').find((l) => l.startsWith('kernel Fan:'));
  check(/the kernel created an ipip device but dropped its fan-map/.test(String(out['fanEvidence'])), 'plan inside stock UML does not say the fan map was dropped');
  check(!(await run('ip', ['-n', k1.ns, '-o', 'link', 'show'])).stdout.includes('fanprobe'), 'the probe left its device');
  const modes: Record<string, string> = {};
  for (const h of [k1, k2, u3]) {
    // --no-nat: the guest loads no netfilter modules; NAT is tested on the host kernel.
    const f = await lab.startFand(h, [...(h === u3 ? ['--dataplane', 'userspace'] : []), '--workers', '1', '--no-nat'], 120_000);
    const chosen = f.logs.find((l) => typeof l['dataplane'] === 'string');
    modes[h.ns] = `${String(chosen?.['dataplane'])}: ${String(chosen?.['reason'])}`;
    const routes = f.logs.find((l) => typeof l['routes'] === 'number');
    if (routes) out[`${h.ns}.routeInstallMs`] = routes['ms'];
    await lab.attachContainers(h);
    stamp(`fand up on ${h.ns}`);
  }
  out['modes'] = modes;
  check(modes[k1.ns]!.startsWith('kernel-ipip'), `${k1.ns} did not pick kernel-ipip`);
  check(modes[k2.ns]!.startsWith('kernel-ipip'), `${k2.ns} did not pick kernel-ipip`);
  check(modes[u3.ns]!.startsWith('userspace'), `${u3.ns} is not userspace`);
  out['routesOnKernelHost'] = await count(k1.ns, 'route');
  out['nexthopsOnKernelHost'] = await count(k1.ns, 'nexthop');
  check(out['routesOnKernelHost'] === REMOTE && out['nexthopsOnKernelHost'] === REMOTE, `kernel host lacks its ${REMOTE} routes/nexthops`);

  // 30 s per pair at most: a reply comes at once on a working path; UML's own cap is 600 s in all
  const matrix = await lab.pingMatrix(30);
  const pings = matrix.map((p) => `${p.from.address}->${p.to.address} ${p.ok ? 'ok' : 'FAIL'}`);
  for (const p of matrix) check(p.ok, `ping ${p.from.address} -> ${p.to.address}`);
  out['pings'] = pings;
  stamp('pings done');
  const c1 = k1.containers[0]!;
  const c3 = u3.containers[0]!;
  const diag = async () => {
    const d: Record<string, unknown> = {};
    for (const h of [k1, u3]) {
      d[`${h.ns}.show`] = (await inNs(h.ns, process.execPath, [FAND_BIN, 'show', '--json']).catch((e: Error) => ({ stdout: e.message }))).stdout;
      d[`${h.ns}.links`] = (await run('ip', ['-n', h.ns, '-s', '-s', 'link', 'show']).catch((e: Error) => ({ stdout: e.message }))).stdout;
      d[`${h.ns}.snmp`] = (await inNs(h.ns, 'cat', ['/proc/net/snmp']).catch((e: Error) => ({ stdout: e.message }))).stdout;
    }
    for (const c of [c1, c3]) d[`${c.ns}.links`] = (await run('ip', ['-n', c.ns, '-s', 'link', 'show', 'eth0']).catch((e: Error) => ({ stdout: e.message }))).stdout;
    return d;
  };
  const transfer = async (from: typeof c1, to: typeof c1, port: number) => {
    try {
      return await tcpTransfer(from.ns, to.ns, to.address, 4 << 20, port, 60_000);
    } catch (e) {
      out[`diag.${port}`] = await diag();
      throw e;
    }
  };
  const there = await transfer(c1, c3, 5401);
  const back = await transfer(c3, c1, 5402);
  out['tcp'] = { kernelToUserspace: there.received.sha256 === there.sent.sha256 && there.received.bytes === 4 << 20, userspaceToKernel: back.received.sha256 === back.sent.sha256 && back.received.bytes === 4 << 20 };
  check(there.received.sha256 === there.sent.sha256 && there.received.bytes === 4 << 20, 'TCP kernel -> userspace not intact');
  check(back.received.sha256 === back.sent.sha256 && back.received.bytes === 4 << 20, 'TCP userspace -> kernel not intact');
  stamp('tcp done');
  // the userspace host on an ipip kernel: tunl0 up, its decapsulation discarded, no ICMP port unreachable sent
  const snmp = (await inNs(u3.ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  const names = snmp[0]!.split(/\s+/);
  out['userspaceHostOutDestUnreachs'] = Number(snmp[1]!.split(/\s+/)[names.indexOf('OutDestUnreachs')]);
  check(out['userspaceHostOutDestUnreachs'] === 0, 'the userspace host sent ICMP destination unreachable');

  // Someone deletes the route to the userspace host's slice on k1: fand puts it back (rtnetlink event),
  // says so, and k1's container reaches u3's again.
  const lostSlice = `${u3.slice.network}/${u3.slice.prefix}`;
  const mark = k1.fand!.logs.length;
  await run('ip', ['-n', k1.ns, 'route', 'del', lostSlice]);
  const repaired = await lab.waitForLog(k1, /^routes of 250\.0\.0\.0\/8 via tunl0 deleted \(not by fand\): /, 120_000, mark).catch(() => undefined);
  out['sliceRouteRepair'] = repaired ? String(repaired['msg']) : 'not logged';
  check(!!repaired && String(repaired['msg']).includes(`${lostSlice} via ${u3.underlay}`), `the deleted route ${lostSlice} was not put back: ${String(out['sliceRouteRepair'])}`);
  // logged as it starts putting the route back: wait for the route itself (capped for a broken repair only)
  for (let i = 0; i < 600 && (await count(k1.ns, 'route')) !== REMOTE; i++) await new Promise((r) => setTimeout(r, 100));
  out['routesAfterRepair'] = await count(k1.ns, 'route');
  check(out['routesAfterRepair'] === REMOTE, `after the repair k1 has ${String(out['routesAfterRepair'])} routes`);
  check(await lab.ping(k1.containers[0]!.ns, u3.containers[0]!.address, 1, 30), 'k1 does not reach u3 after the route was put back');
  // The nexthop to k2 deleted instead: the kernel drops its route silently (no route event, only the
  // nexthop's); fand follows nexthop events too and puts both back.
  const viaK2 = (await run('ip', ['-n', k1.ns, '-j', 'nexthop', 'show', 'proto', '250'])).stdout;
  const nh = (JSON.parse(viaK2) as { id: number; gateway?: string }[]).find((x) => x.gateway === k2.underlay);
  const mark2 = k1.fand!.logs.length;
  await run('ip', ['-n', k1.ns, 'nexthop', 'del', 'id', String(nh?.id)]);
  const k2Slice = `${k2.slice.network}/${k2.slice.prefix}`;
  const again = await lab.waitForLog(k1, /^routes of 250\.0\.0\.0\/8 via tunl0 deleted \(not by fand\): /, 120_000, mark2).catch(() => undefined);
  out['nexthopRepair'] = again ? String(again['msg']) : 'not logged';
  check(!!again && String(again['msg']).includes(`${k2Slice} via ${k2.underlay}`), `the route behind deleted nexthop ${String(nh?.id)} was not put back: ${String(out['nexthopRepair'])}`);
  for (let i = 0; i < 600 && ((await count(k1.ns, 'nexthop')) !== REMOTE || (await count(k1.ns, 'route')) !== REMOTE); i++) await new Promise((r) => setTimeout(r, 100));
  check((await count(k1.ns, 'route')) === REMOTE && (await count(k1.ns, 'nexthop')) === REMOTE, 'routes or nexthops missing after the nexthop repair');
  check(await lab.ping(k1.containers[0]!.ns, k2.containers[0]!.address, 1, 30), 'k1 does not reach k2 after the nexthop was put back');
  stamp('slice route and nexthop repaired');

  // A clean stop with containers attached keeps the kernel-ipip fan, and the
  // kernel keeps forwarding without fand; `fand down --force` then removes it all.
  const t1 = Date.now();
  const code = await lab.stopFand(k1, 'SIGTERM', 120_000);
  out['stopMs'] = Date.now() - t1;
  out['stopExit'] = code;
  check(code === 0, 'fand in kernel-ipip mode did not stop cleanly');
  out['routesAfterStop'] = await count(k1.ns, 'route');
  check(out['routesAfterStop'] === REMOTE, 'a clean stop removed the routes under the containers');
  check(await lab.ping(k1.containers[0]!.ns, u3.containers[0]!.address, 1, 5), 'the kernel stopped forwarding when fand stopped');
  const t2 = Date.now();
  const down = await inNs(k1.ns, process.execPath, [FAND_BIN, 'down', '--force'], 120_000);
  out['downMs'] = Date.now() - t2;
  check(/removed the routes of 250\.0\.0\.0\/8 via tunl0/.test(down.stdout), `fand down --force said: ${down.stdout}`);
  out['routesAfterDown'] = await count(k1.ns, 'route');
  out['nexthopsAfterDown'] = await count(k1.ns, 'nexthop');
  const tunl0 = JSON.parse((await run('ip', ['-n', k1.ns, '-j', 'link', 'show', 'tunl0'])).stdout) as { flags: string[] }[];
  out['tunl0UpAfterDown'] = tunl0[0]!.flags.includes('UP');
  check(out['routesAfterDown'] === 0 && out['nexthopsAfterDown'] === 0, 'routes left after fand down');
  check(out['tunl0UpAfterDown'] === false, 'tunl0 left up after fand down');
  stamp('stopped');
} catch (e) {
  problems.push(`error: ${(e as Error).message}`);
} finally {
  await lab.destroy();
}
out['problems'] = problems;
out['ok'] = problems.length === 0;
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(problems.length === 0 ? 0 : 1);
