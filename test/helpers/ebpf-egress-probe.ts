// The egress program on real packets, in network namespaces a test made
// (test/ebpf-egress.test.ts). Two modes, each run with `ip netns exec`:
//   capture STOPFILE    on the far side: a raw IPIP socket collects what
//                       arrives until STOPFILE exists (at most 2 minutes);
//                       prints {"packets": [hex, ...]}
//   send FILE           on the fan host: loads the programs, configures one
//                       fan (overlay device ft0, underlay u0), attaches
//                       fand_egress to ft0 and sends the packets of FILE (a
//                       JSON list of hex) into ft0 through a packet socket,
//                       as the kernel would route them there; prints the
//                       counter deltas
// Both print one JSON line; errors go to stderr with a non-zero exit.
import { existsSync, readFileSync } from 'node:fs';
import { native } from '../../src/native/index.js';
import { FanBpf } from '../../src/dataplane/ebpf/maps.js';
import { Tc } from '../../src/dataplane/ebpf/tc.js';
import { ip } from './packets.js';

const [mode, arg] = process.argv.slice(2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function capture(stopFile: string): Promise<void> {
  const fd = native.rawOpen(native.constants.IPPROTO_IPIP, 8 << 20, 0, false);
  const slot = 2048;
  const buf = new Uint8Array(64 * slot);
  const sizes = new Int32Array(64);
  const packets: string[] = [];
  process.stdout.write(JSON.stringify({ listening: true }) + '\n');
  const until = Date.now() + 120_000;
  for (let idle = 0; Date.now() < until && !(idle > 0 && existsSync(stopFile)); ) {
    const n = native.rawRecv(fd, buf, slot, 0, 64, sizes);
    for (let i = 0; i < n; i++) packets.push(Buffer.from(buf.subarray(i * slot, i * slot + sizes[i]!)).toString('hex'));
    if (n === 0) { idle++; await sleep(5); } else idle = 0;
  }
  native.close(fd);
  process.stdout.write(JSON.stringify({ packets }) + '\n');
}

async function send(file: string): Promise<void> {
  const packets = (JSON.parse(readFileSync(file, 'utf8')) as string[]).map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
  const bpf = FanBpf.load();
  const tc = new Tc();
  const tun = native.ifIndex('ft0');
  const u0 = native.ifIndex('u0');
  try {
    bpf.writeConfig([{
      slot: 0, overlay: { network: ip('250.0.0.0'), prefix: 8 }, underlay: { network: ip('172.16.0.0'), prefix: 16 }, localUnderlay: ip('172.16.5.6'),
      tunIfindex: tun, underlayIfindex: u0, checkInnerSource: true, redirectPorts: true,
    }]);
    tc.addClsact('ft0', tun);
    tc.attach('ft0', tun, 'egress', bpf.programs.egress, 'fand_egress');
    const before = bpf.counters(0);
    const pfd = native.packetOpen(8 << 20);
    const slot = 2048;
    const buf = new Uint8Array(packets.length * slot);
    const n = packets.length;
    const offsets = new Int32Array(n), sizes = new Int32Array(n), offsets2 = new Int32Array(n), sizes2 = new Int32Array(n);
    const dsts = new Uint32Array(n), l2 = new Int32Array(3 * n), csums = new Int32Array(2 * n).fill(-1), status = new Int32Array(5);
    packets.forEach((p, i) => { buf.set(p, i * slot); offsets[i] = i * slot; sizes[i] = p.length; l2[3 * i] = tun; });
    // One at a time: the kernel's queues never fill, so nothing is lost on the
    // way. A packet the program drops fails its send with ENOBUFS
    // (net_xmit_errno(NET_XMIT_DROP) in packet_snd): that is an answer too;
    // the counters tell that every packet reached the program.
    for (let i = 0; i < n; i++) {
      native.sendBatch(-1, pfd, buf, offsets.subarray(i), sizes.subarray(i), offsets2.subarray(i), sizes2.subarray(i),
        dsts.subarray(i), l2.subarray(3 * i), csums.subarray(2 * i), 1, status);
    }
    await sleep(300);
    const after = bpf.counters(0);
    const delta = Object.fromEntries(Object.entries(after).filter(([k, v]) => v !== before[k]).map(([k, v]) => [k, v - before[k]!]));
    native.close(pfd);
    process.stdout.write(JSON.stringify({ counters: delta }) + '\n');
  } finally {
    tc.detach('ft0', tun, 'egress');
    bpf.close();
  }
}

const done = mode === 'capture' ? capture(arg!) : mode === 'send' ? send(arg!) : Promise.reject(new Error(`mode ${mode}?`));
done.catch((e: Error) => { process.stderr.write(`${e.stack ?? e.message}\n`); process.exit(1); });
