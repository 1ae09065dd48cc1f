// Run inside a throw-away network namespace (lo up): exercises the addon's
// UDP and TAP calls against the kernel and prints what it saw as JSON.
//   node native-udp-probe.js gso|reuseport|tap
import { native } from '../../src/native/index.js';
import { vxlanReuseportIndex, vxlanReuseportProgram } from '../../src/dataplane/packet/fanout.js';
import { ip, ipv4Packet, icmpEcho } from './packets.js';
import { ethFrame, MAC_A, vxlanPacket } from './vxlan-packets.js';

const LO = ip('127.0.0.1');
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recvAll(fd: number, max = 64, slot = 65536) {
  const buf = new Uint8Array(max * slot);
  const sizes = new Int32Array(max), srcs = new Uint32Array(max), gso = new Int32Array(max), tos = new Int32Array(max);
  const n = native.udpRecvBatch(fd, buf, slot, 0, max, sizes, srcs, gso, tos);
  return Array.from({ length: n }, (_, i) => ({ size: sizes[i]!, src: srcs[i]!, gso: gso[i]!, tos: tos[i]!, first: buf[i * slot]!, last: buf[i * slot + sizes[i]! - 1]! }));
}

/** One message of 3 × 1000 + 500 bytes with UDP_SEGMENT 1000 and TOS 2, to a socket without and one with UDP_GRO. */
async function gso(): Promise<void> {
  const tx = native.udpOpen(LO, 0, false, 0, 0);
  const plain = native.udpOpen(LO, 0, false, 0, 0);
  const joined = native.udpOpen(LO, 0, false, 0, 0);
  native.udpSetGro(joined, true);
  const payload = new Uint8Array(3500).map((_, i) => Math.floor(i / 1000) + 1); // segment k is all k+1
  // as two spans per segment (header 100 + the rest), the way TSO segments go out
  const spans = new Int32Array(16);
  for (let k = 0, n = 0; k < 4; k++) {
    const start = k * 1000, end = Math.min(start + 1000, 3500);
    spans[n++] = start; spans[n++] = 100; spans[n++] = start + 100; spans[n++] = end - start - 100;
  }
  const results: Record<string, unknown> = {};
  for (const [name, dst] of [['plain', plain], ['gro', joined]] as const) {
    const msgs = Int32Array.of(0, 8, 1000, 2, 9);
    const status = new Int32Array(4);
    const sent = native.udpSendBatch(tx, payload, spans, 8, msgs, Uint32Array.of(LO), native.udpLocalPort(dst), new Int32Array(0), 0, 1, status);
    await sleep(50);
    results[name] = { sent, result: msgs[4], bytes: status[3], got: recvAll(dst) };
  }
  results['groOn'] = native.udpGetGro(joined);
  results['probe'] = native.udpProbe();
  for (const fd of [tx, plain, joined]) native.close(fd);
  out(results);
}

/** Which socket of a 4-socket SO_REUSEPORT group each of 32 flows lands on, against the TypeScript model. */
async function reuseport(): Promise<void> {
  const socks = [0, 1, 2, 3].map(() => native.udpOpen(LO, 47777, true, 0, 0));
  native.udpAttachReuseport(socks[0]!, vxlanReuseportProgram(4));
  const tx = native.udpOpen(LO, 0, false, 0, 0);
  const want = [0, 0, 0, 0];
  for (let p = 0; p < 32; p++) {
    const udp = new Uint8Array(20);
    udp[0] = 0x40; udp[1] = p; udp[3] = 80;
    const pkt = vxlanPacket(0xfa0000, ethFrame(MAC_A, MAC_A, 0x0800, ipv4Packet({ src: ip('250.1.10.11') + (p & 3), dst: ip('250.2.10.12'), proto: 17, payload: udp })));
    want[vxlanReuseportIndex(pkt, 0, pkt.length, 4)]!++;
    native.udpSendBatch(tx, pkt, Int32Array.of(0, pkt.length), 1, Int32Array.of(0, 1, 0, 0, 0), Uint32Array.of(LO), 47777, new Int32Array(0), 0, 1, new Int32Array(4));
  }
  // ARP and junk go to socket 0
  const arp = vxlanPacket(0xfa0000, ethFrame(MAC_A, MAC_A, 0x0806, new Uint8Array(28)));
  native.udpSendBatch(tx, arp, Int32Array.of(0, arp.length, 0, 3), 2, Int32Array.of(0, 1, 0, 0, 0, 1, 1, 0, 0, 0), Uint32Array.of(LO, LO), 47777, new Int32Array(0), 0, 2, new Int32Array(4));
  want[0] += 2;
  await sleep(50);
  out({ want, got: socks.map((fd) => recvAll(fd).length) });
  for (const fd of [...socks, tx]) native.close(fd);
}

/** A frame written as three spans (virtio-net header, two pieces) reaches the kernel whole: an echo request to the TAP's address is answered. */
async function tap(): Promise<void> {
  const fd = native.tapOpen('fvxt0', false, true);
  const { execFileSync } = await import('node:child_process');
  execFileSync('ip', ['addr', 'add', '10.9.0.1/24', 'dev', 'fvxt0']);
  execFileSync('ip', ['link', 'set', 'fvxt0', 'up']);
  execFileSync('ip', ['neigh', 'replace', '10.9.0.2', 'lladdr', '02:aa:00:00:00:01', 'dev', 'fvxt0']);
  const mac = execFileSync('cat', ['/sys/class/net/fvxt0/address']).toString().trim().split(':').map((b) => parseInt(b, 16));
  const echo = ipv4Packet({ src: ip('10.9.0.2'), dst: ip('10.9.0.1'), proto: 1, payload: icmpEcho(7, 1, new Uint8Array(300).fill(0x5a)) });
  const frame = ethFrame(Uint8Array.from(mac), MAC_A, 0x0800, echo);
  const buf = new Uint8Array(10 + frame.length + 100);
  buf.set(frame.subarray(0, 50), 10);          // piece 1 after a zero virtio-net header
  buf.set(frame.subarray(50), 10 + 50 + 40);   // piece 2, not contiguous with piece 1
  const status = new Int32Array(2);
  const done = native.tunWriteV(fd, buf, Int32Array.of(0, 10, 10, 50, 100, frame.length - 50), 3, Int32Array.of(0, 3), 1, status);
  // read until the echo reply comes back out of the TAP (IPv6 noise may come first)
  const rbuf = new Uint8Array(16 * 2048);
  const sizes = new Int32Array(16);
  let reply: { len: number; type: number; id: number; data: number } | undefined;
  for (let i = 0; i < 100 && !reply; i++) {
    const n = native.tunRead(fd, rbuf, 2048, 0, 16, sizes);
    for (let k = 0; k < n; k++) {
      const f = k * 2048 + 10;
      if (rbuf[f + 12] === 0x08 && rbuf[f + 13] === 0 && rbuf[f + 14 + 9] === 1) {
        const icmp = f + 14 + 20;
        reply = { len: sizes[k]! - 10, type: rbuf[icmp]!, id: (rbuf[icmp + 4]! << 8) | rbuf[icmp + 5]!, data: rbuf[icmp + 8 + 100]! };
      }
    }
    if (!reply) await sleep(20);
  }
  native.close(fd);
  out({ done, failed: status[0], reply });
}

const mode = process.argv[2];
await ({ gso, reuseport, tap } as Record<string, () => Promise<void>>)[mode!]!();
