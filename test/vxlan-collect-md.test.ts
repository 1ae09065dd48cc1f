// The Fan's VXLAN mapping in the kernel of a stock kernel: tc eBPF on a
// stock vxlan device in collect_md (`external`) mode, a port of the fan's
// bridge (test/bpf/vxlan-collect-md.bpf.c, a prototype: not a fand mode).
// On this machine's mainline kernel, two hosts built that way and one running
// fand's userspace VXLAN dataplane share one fan: every container reaches
// every other, ARP resolves across hosts, TCP crosses byte-identical both
// ways between the two kinds, and the ingress program drops a frame whose
// inner source is not in the sending host's slice. It answers the question
// whether the mapping can live in the kernel without Ubuntu's patch: it can.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Lab, tcpTransfer } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { parseIpv4 } from '../src/fan/ipv4.js';
import { defaultVni } from '../src/fan/encap.js';

const SOURCE = fileURLToPath(new URL('../../test/bpf/vxlan-collect-md.bpf.c', import.meta.url));
const multiarch = () => spawnSync('cc', ['-print-multiarch'], { encoding: 'utf8' }).stdout?.trim() || 'x86_64-linux-gnu';

const lab = new Lab(Lab.uniquePrefix('vcm'), 16, { encap: 'vxlan' });
const dir = mkdtempSync(join(tmpdir(), 'fand-vcm-'));
test.after.always(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });

async function inEchos(ns: string): Promise<number> {
  const l = (await inNs(ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((x) => x.startsWith('Icmp:'));
  return Number(l[1]!.split(/\s+/)[l[0]!.split(/\s+/).indexOf('InEchos')]);
}

test.serial.before(async () => {
  await lab.build(3, 1);
  const vni = defaultVni({ network: parseIpv4('250.0.0.0')!, prefix: 8 });
  // Hosts 1 and 2: the bridge with the overlay's prefix, a collect_md vxlan device as its port, the programs on it.
  for (const h of lab.hosts.slice(0, 2)) {
    const obj = join(dir, `${h.ns}.o`);
    const cc = spawnSync('clang', ['-O2', '-g0', '-target', 'bpf', `-I/usr/include/${multiarch()}`, '-DOVERLAY=0xfa000000u', '-DOVERLAY_PREFIX=8',
      '-DUNDERLAY=0xac100000u', '-DUNDERLAY_PREFIX=16', `-DLOCAL=${parseIpv4(h.underlay)!}u`, `-DVNI=${vni}`, '-c', SOURCE, '-o', obj], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`clang ${SOURCE}: ${cc.error?.message ?? cc.stderr} (the test needs clang and libbpf's headers: apt-get install clang libbpf-dev)`);
    const n = (...a: string[]) => run('ip', ['-n', h.ns, ...a]);
    await n('link', 'add', h.bridge, 'type', 'bridge');
    await n('link', 'set', h.bridge, 'mtu', String(lab.fanMtu), 'up');
    await n('addr', 'add', `${h.slice.gateway}/8`, 'dev', h.bridge);
    await n('link', 'add', 'vxfan', 'type', 'vxlan', 'external', 'dstport', '8472');
    await n('link', 'set', 'vxfan', 'master', h.bridge, 'mtu', String(lab.fanMtu), 'up');
    await inNs(h.ns, 'tc', ['qdisc', 'add', 'dev', 'vxfan', 'clsact']);
    for (const dir2 of ['egress', 'ingress']) await inNs(h.ns, 'tc', ['filter', 'add', 'dev', 'vxfan', dir2, 'bpf', 'da', 'obj', obj, 'sec', `tc/${dir2}`]);
    await lab.attachContainers(h);
  }
  // Host 3: fand, userspace VXLAN.
  await lab.startFand(lab.hosts[2]!, ['--no-nat']);
  await lab.attachContainers(lab.hosts[2]!);
});

test.serial('collect_md vxlan hosts (tc eBPF mapping) and a fand userspace VXLAN host: every container reaches every other, ARP across hosts', async (t) => {
  const cs = lab.containers();
  for (const a of cs) {
    for (const b of cs) {
      if (a === b) continue;
      t.true(await lab.ping(a.ns, b.address), `${a.ns} -> ${b.address}`);
      const mac = (JSON.parse((await run('ip', ['-n', b.ns, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[])[0]!.address;
      const n = JSON.parse((await run('ip', ['-n', a.ns, '-j', 'neigh', 'show', b.address, 'dev', 'eth0'])).stdout) as { lladdr?: string }[];
      t.is(n[0]?.lladdr, mac, `${a.ns} resolved ${b.address} to its own MAC`);
    }
  }
});

test.serial('TCP byte-identical both ways: collect_md <-> collect_md and collect_md <-> fand', async (t) => {
  const [c1, c2, c3] = lab.containers();
  let port = 5410;
  for (const [a, b] of [[c1!, c2!], [c2!, c1!], [c1!, c3!], [c3!, c1!]] as const) {
    const r = await tcpTransfer(a.ns, b.ns, b.address, 8 << 20, port++);
    t.is(r.received.bytes, 8 << 20, `${a.ns} -> ${b.ns}`);
    t.is(r.received.sha256, r.sent.sha256, `${a.ns} -> ${b.ns}`);
  }
});

test.serial('the ingress program drops a frame whose inner source is another host\'s; the real one crosses', async (t) => {
  const [h1, h2] = lab.hosts;
  const target = h1!.containers[0]!;
  const mac = (JSON.parse((await run('ip', ['-n', target.ns, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[])[0]!.address;
  // Host 2 sends as an address of host 3's slice, to a MAC it was told by hand (no ARP in the way).
  const fake = '250.3.10.97';
  await run('ip', ['-n', h2!.ns, 'addr', 'add', `${fake}/32`, 'dev', 'lo']);
  await run('ip', ['-n', h2!.ns, 'neigh', 'replace', target.address, 'lladdr', mac, 'dev', h2!.bridge, 'nud', 'permanent']);
  const e0 = await inEchos(target.ns);
  await inNs(h2!.ns, 'ping', ['-n', '-c', '3', '-i', '0.3', '-W', '1', '-I', fake, target.address], 30_000).catch(() => undefined);
  t.is((await inEchos(target.ns)) - e0, 0, 'spoofed echo requests delivered');
  const e1 = await inEchos(target.ns);
  t.true(await lab.ping(h2!.ns, target.address, 3), 'host 2 from its own slice');
  t.true((await inEchos(target.ns)) - e1 >= 3);
});
