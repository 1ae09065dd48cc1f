// Runs inside the User-Mode Linux guest (test/uml/harness.ts), on a kernel
// that has ipip loaded: two lab hosts with one container each, fand's
// userspace dataplane on both, a ping each way and 2 MiB of TCP across, and
// no ICMP destination unreachable sent by either host meanwhile. Prints one
// JSON line, the verdict, and exits 0 only if everything passed.
//
// With ipip loaded every namespace has tunl0, and the kernel's IPIP receive
// path (tunnel4_rcv) sees the same packets fand's raw socket does: with
// tunl0 down it answers them with ICMP port unreachable. The diagnostics
// below (tunl0 state, ICMP counters) are there to tell that case apart.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Lab, tcpTransfer } from '../../src/demo/lab.js';
import { inNs, run } from '../../src/demo/exec.js';

const out: Record<string, unknown> = { ok: false };
const steps: Record<string, number> = {};
const t0 = performance.now();
const step = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
  const s = performance.now();
  try { return await f(); } finally { steps[name] = Math.round(performance.now() - s); }
};

async function tunl0(ns: string): Promise<string | null> {
  try {
    const [l] = JSON.parse((await run('ip', ['-n', ns, '-j', '-s', 'link', 'show', 'tunl0'])).stdout) as { flags: string[]; operstate: string; stats64?: { rx: { packets: number }; tx: { packets: number } } }[];
    return `${l!.flags.includes('UP') ? 'up' : 'down'} rx ${l!.stats64?.rx.packets ?? '?'} tx ${l!.stats64?.tx.packets ?? '?'}`;
  } catch { return null; }
}

async function icmpOutUnreachable(ns: string): Promise<number> {
  const lines = (await inNs(ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  return Number(lines[1]!.split(/\s+/)[lines[0]!.split(/\s+/).indexOf('OutDestUnreachs')]);
}

function nodeStartMs(): Promise<number> {
  const s = performance.now();
  return new Promise((resolve, reject) => execFile(process.execPath, ['-e', '0'], { timeout: 10_000 }, (err) => err ? reject(err) : resolve(Math.round(performance.now() - s))));
}

const lab = new Lab(Lab.uniquePrefix('uml'));
try {
  out['kernel'] = (await run('uname', ['-r'])).stdout.trim();
  out['ipipModule'] = existsSync('/sys/module/ipip');
  out['devNetTun'] = existsSync('/dev/net/tun');
  out['nodeStartMs'] = [await nodeStartMs(), await nodeStartMs(), await nodeStartMs()];
  const probe = `${lab.underlayNs}-probe`;
  await run('ip', ['netns', 'add', probe]);
  try { out['tunl0InFreshNs'] = (await tunl0(probe)) !== null; } finally { await run('ip', ['netns', 'del', probe]).catch(() => undefined); }

  await step('build', () => lab.build(2, 1));
  for (const h of lab.hosts) {
    await step(`fand${h.index}`, () => lab.startFand(h, ['--dataplane', 'userspace', '--workers', '1', '--no-nat']));
    await lab.attachContainers(h);
  }
  const [a, b] = [lab.hosts[0]!.containers[0]!, lab.hosts[1]!.containers[0]!];
  const unreach0 = await Promise.all(lab.hosts.map((h) => icmpOutUnreachable(h.ns)));
  out['pingAB'] = await step('pingAB', () => lab.ping(a.ns, b.address, 3));
  out['pingBA'] = await step('pingBA', () => lab.ping(b.ns, a.address, 3));
  try {
    const r = await step('tcp', () => tcpTransfer(a.ns, b.ns, b.address, 2 << 20, 5401));
    out['tcp'] = { bytes: r.received.bytes, sameHash: r.received.sha256 === r.sent.sha256, seconds: r.received.seconds };
  } catch (e) {
    out['tcp'] = { error: (e as Error).message.slice(0, 500) };
  }
  const unreach1 = await Promise.all(lab.hosts.map((h) => icmpOutUnreachable(h.ns)));
  out['hostIcmpOutDestUnreachs'] = unreach1.map((n, i) => n - unreach0[i]!);
  out['hostTunl0'] = await Promise.all(lab.hosts.map((h) => tunl0(h.ns)));
  out['dataplane'] = lab.hosts.map((h) => h.fand?.logs.find((l) => 'dataplane' in l)?.['dataplane'] ?? null);
  const tcp = out['tcp'] as { bytes?: number; sameHash?: boolean };
  // Traffic gets through even when the kernel also answers each IPIP packet
  // with port unreachable (fand's raw socket gets its copy regardless), so
  // that symptom is checked on its own.
  const unreachables = out['hostIcmpOutDestUnreachs'] as number[];
  out['ok'] = out['pingAB'] === true && out['pingBA'] === true && tcp.bytes === 2 << 20 && tcp.sameHash === true && unreachables.every((n) => n === 0);
} catch (e) {
  out['error'] = (e as Error).stack?.slice(0, 2000) ?? String(e);
} finally {
  await step('destroy', () => lab.destroy()).catch((e: Error) => { out['destroyError'] = e.message; });
  out['steps'] = steps;
  out['seconds'] = Math.round(performance.now() - t0) / 1000;
}
console.log(JSON.stringify(out));
process.exit(out['ok'] === true ? 0 : 1);
