// Guest side of the ebpf tier (runs inside Debian's UML kernel, 6.1, where
// BPF, clsact and cls_bpf exist, the last two as modules that this script
// loads, and the ipip module is loaded). Three hosts on one underlay bridge,
// one container each:
//   h1  fand --dataplane ebpf
//   h2  fand --dataplane kernel-ipip (the kernel's own IPIP)
//   h3  fand --dataplane userspace
// Every container pings every other, TCP crosses between ebpf and each
// other mode intact both ways, a spoofed inner source sent to h1 is dropped
// and counted by its program, and stopping h1's fand (its container
// detached) removes its filters and the clsact qdisc it added.
//   node ebpf.js measure [ROUNDS]  instead times TCP between two ebpf hosts and
//                          between two kernel-ipip hosts (UML has no BPF
//                          JIT: the programs run in the interpreter)
// Prints one JSON line; exit 0 when everything held.
import { existsSync, readdirSync } from 'node:fs';
import { Lab, tcpTransfer, FAND_BIN, type LabHost } from '../../src/demo/lab.js';
import { inNs, run } from '../../src/demo/exec.js';
import { ip, ipipPacket, ipv4Packet, hex } from '../helpers/packets.js';
import { fileURLToPath } from 'node:url';

const INJECT = fileURLToPath(new URL('../helpers/inject.js', import.meta.url));
const out: Record<string, unknown> = {};
const problems: string[] = [];
const check = (ok: boolean, what: string) => { if (!ok) problems.push(what); return ok; };
const t0 = Date.now();
const timeline: string[] = [];
const stamp = (what: string) => timeline.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);

async function insmod(name: string): Promise<void> {
  if (existsSync(`/sys/module/${name}`)) return;
  const dir = `/usr/lib/uml/modules/${(await run('uname', ['-r'])).stdout.trim()}/kernel/net/sched`;
  const file = readdirSync(dir).find((f) => f.startsWith(`${name}.ko`));
  if (!file) throw new Error(`no ${name} module in ${dir}`);
  await run('/bin/busybox', ['insmod', `${dir}/${file}`]);
}

async function show(h: LabHost): Promise<{ dataplane: { mode: string }; fans: { counters: Record<string, number>; drops: Record<string, number> }[] }> {
  return JSON.parse((await inNs(h.ns, process.execPath, [FAND_BIN, 'show', '--json'])).stdout) as never;
}

const mode = process.argv[2] ?? 'interop';
const lab = new Lab('ue', 20);
try {
  await insmod('sch_ingress');
  await insmod('cls_bpf');
  out['jit'] = existsSync('/proc/sys/net/core/bpf_jit_enable') ? (await run('cat', ['/proc/sys/net/core/bpf_jit_enable'])).stdout.trim() : 'none (no CONFIG_BPF_JIT)';
  await lab.build(3, 1);
  stamp('lab built');
  const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
  const start = async (h: LabHost, dp: string) => {
    await lab.startFand(h, ['--dataplane', dp, '--workers', '1', '--no-nat'], 180_000);
    await lab.attachContainers(h);
    stamp(`fand ${dp} up on ${h.ns}`);
  };

  if (mode === 'measure') {
    // Same hosts, same path (h2 -> h3), each mode in turn, ROUNDS times (2 by default), interleaved.
    const rounds: Record<string, number[]> = { ebpf: [], 'kernel-ipip': [] };
    for (let r = 0; r < Number(process.argv[3] ?? 2); r++) {
      for (const dp of ['ebpf', 'kernel-ipip'] as const) {
        await start(h2, dp);
        await start(h3, dp);
        const x = await tcpTransfer(h2.containers[0]!.ns, h3.containers[0]!.ns, h3.containers[0]!.address, 16 << 20, 5600 + r, 300_000);
        check(x.received.sha256 === x.sent.sha256, `${dp}: transfer not intact`);
        rounds[dp]!.push((16 * 8) / x.received.seconds);
        await lab.stopFand(h2, 'SIGTERM', 120_000);
        await lab.stopFand(h3, 'SIGTERM', 120_000);
      }
    }
    out['mbitPerSecond'] = rounds;
  } else {
    await start(h1, 'ebpf');
    await start(h2, 'kernel-ipip');
    await start(h3, 'userspace');
    out['modes'] = await Promise.all(lab.hosts.map(async (h) => (await show(h)).dataplane.mode));
    check(JSON.stringify(out['modes']) === JSON.stringify(['ebpf', 'kernel-ipip', 'userspace']), `modes ${JSON.stringify(out['modes'])}`);
    // 30 s per pair at most: a reply comes at once on a working path; UML's own cap is 600 s in all
    const matrix = await lab.pingMatrix(30);
    const pings = matrix.map((p) => `${p.from.address}->${p.to.address} ${p.ok ? 'ok' : 'FAIL'}`);
    for (const p of matrix) check(p.ok, `ping ${p.from.address} -> ${p.to.address}`);
    out['pings'] = pings;
    stamp('pings done');
    const tcp: Record<string, boolean> = {};
    const e = h1.containers[0]!;
    for (const [name, other] of [['kernel-ipip', h2], ['userspace', h3]] as const) {
      const c = other.containers[0]!;
      const there = await tcpTransfer(e.ns, c.ns, c.address, 2 << 20, 5401, 120_000);
      const back = await tcpTransfer(c.ns, e.ns, e.address, 2 << 20, 5402, 120_000);
      tcp[`ebpf->${name}`] = there.received.sha256 === there.sent.sha256 && there.received.bytes === 2 << 20;
      tcp[`${name}->ebpf`] = back.received.sha256 === back.sent.sha256 && back.received.bytes === 2 << 20;
    }
    out['tcp'] = tcp;
    for (const [k, v] of Object.entries(tcp)) check(v, `TCP ${k} not intact`);
    stamp('tcp done');
    // A spoofed inner source from a rogue underlay peer: h1's program drops and counts it.
    const rogue = await lab.addUnderlayPeer('rogue', '172.16.9.9');
    const before = (await show(h1)).fans[0]!.drops['in.spoofed-source'] ?? 0;
    const spoof = ipipPacket(ip('172.16.9.9'), ip(h1.underlay), ipv4Packet({ src: ip(h2.containers[0]!.address), dst: ip(e.address), payload: new Uint8Array(8) }));
    await inNs(rogue, process.execPath, [INJECT, h1.underlay, hex(spoof), hex(spoof), hex(spoof)]);
    let spoofed = 0;
    for (let i = 0; i < 50 && spoofed < 3; i++) { spoofed = ((await show(h1)).fans[0]!.drops['in.spoofed-source'] ?? 0) - before; if (spoofed < 3) await new Promise((r) => setTimeout(r, 100)); }
    out['spoofedDropped'] = spoofed;
    check(spoofed === 3, `h1 counted ${spoofed} of 3 spoofed packets`);
    // Detached first: a clean stop keeps a fan that still has containers (and its hooks with it).
    await run('ip', ['-n', h1.ns, 'link', 'set', 'c1', 'nomaster']);
    const code = await lab.stopFand(h1, 'SIGTERM', 120_000);
    const qdiscs = (JSON.parse((await inNs(h1.ns, 'tc', ['-j', 'qdisc', 'show', 'dev', 'eth0'])).stdout) as { kind: string }[]).map((q) => q.kind);
    out['h1StopExit'] = code;
    out['h1QdiscsAfterStop'] = qdiscs;
    check(code === 0, 'the ebpf fand did not stop cleanly');
    check(!qdiscs.includes('clsact'), 'clsact left on the underlay after stop');
    stamp('stopped');
  }
} catch (e) {
  problems.push(`error: ${(e as Error).message}`);
} finally {
  await lab.destroy();
}
out['timeline'] = timeline;
out['problems'] = problems;
out['ok'] = problems.length === 0;
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(problems.length === 0 ? 0 : 1);
