// Run inside a network namespace with lo up (mtu 1500). Sends IPIP packets
// to 127.0.0.1 through a raw IPPROTO_IPIP socket with IP_HDRINCL and
// receives them on raw sockets (one plain, one filtered, one drop-all).
// Prints the findings as JSON.
import { endianness } from 'node:os';
import { native } from '../../src/native/index.js';
import { fdFlags, ip, writeIpv4, writeUdp } from './native-packets.js';

const { IPPROTO_IPIP, POLLIN } = native.constants;
const out: Record<string, unknown> = {};

/** Classic BPF program bytes: [code, jt, jf, k] per instruction, host order. */
function bpf(insns: [number, number, number, number][]): Uint8Array {
  const b = new Uint8Array(insns.length * 8);
  const v = new DataView(b.buffer);
  const le = endianness() === 'LE';
  insns.forEach(([code, jt, jf, k], i) => {
    v.setUint16(i * 8, code, le);
    v.setUint8(i * 8 + 2, jt);
    v.setUint8(i * 8 + 3, jf);
    v.setUint32(i * 8 + 4, k, le);
  });
  return b;
}
const BPF_LD_W_ABS = 0x20, BPF_JEQ_K = 0x15, BPF_RET_K = 0x06;

const sock = native.rawOpen(IPPROTO_IPIP, 1 << 20, 1 << 20, true);
const filtered = native.rawOpen(IPPROTO_IPIP, 0, 0, false);
const dropAll = native.rawOpen(IPPROTO_IPIP, 0, 0, false);
out.flags = await fdFlags(sock);
// The program sees the outer IP header at offset 0: inner dst is at 20 + 16.
native.attachFilter(filtered, bpf([
  [BPF_LD_W_ABS, 0, 0, 36],
  [BPF_JEQ_K, 0, 1, ip('10.0.0.5')],
  [BPF_RET_K, 0, 0, 0xffff],
  [BPF_RET_K, 0, 0, 0],
]));
native.attachFilter(dropAll, bpf([[BPF_RET_K, 0, 0, 0]]));

// 10 good IPIP packets, plus an oversized one (index 3) and one without a
// route (index 7), all in one batch.
const SLOT = 2048, N = 12;
const tx = new Uint8Array(N * SLOT);
const offsets = new Int32Array(N), sizes = new Int32Array(N), dsts = new Uint32Array(N);
const lo = ip('127.0.0.1');
const good: Uint8Array[] = [];
for (let i = 0, g = 0; i < N; i++) {
  const off = i * SLOT + 8;
  let len: number;
  if (i === 3) {
    len = 2000; // > lo mtu 1500: EMSGSIZE with IP_HDRINCL
    tx.fill(0x55, off, off + len);
    writeIpv4(tx, off, { src: lo, dst: lo, proto: IPPROTO_IPIP, totalLength: len, id: 999 });
  } else {
    const inner = writeUdp(tx, off + 20, ip('10.0.0.1'), ip(g % 2 ? '10.0.0.5' : '10.0.0.6'),
      1000 + g, 2000, new Uint8Array(10 + g * 100).fill(g));
    len = 20 + inner;
    writeIpv4(tx, off, { src: lo, dst: lo, proto: IPPROTO_IPIP, totalLength: len, id: 100 + g });
  }
  offsets[i] = off;
  sizes[i] = len;
  dsts[i] = i === 7 ? ip('10.1.2.3') : lo;
  if (i !== 3 && i !== 7) good.push(tx.slice(off, off + len)), g++;
}
const status = new Int32Array(2);
out.sent = native.rawSend(sock, tx, offsets, sizes, dsts, N, status);
out.status = Array.from(status);
const alone = new Int32Array(2);
out.oversizeAlone = native.rawSend(sock, tx, offsets.subarray(3), sizes.subarray(3), dsts.subarray(3), 1, alone);
out.oversizeStatus = Array.from(alone);

const rx = new Uint8Array(16 * SLOT);
const rsizes = new Int32Array(16);
const got: Uint8Array[] = [];
const calls: number[] = [];
const deadline = Date.now() + 30_000; // a cap for a broken path only: the loop ends when the packets are in
const pfd = Int32Array.of(sock), pev = Int32Array.of(POLLIN), prev = new Int32Array(1);
while (got.length < good.length && Date.now() < deadline) {
  if (native.poll(pfd, pev, prev, 1, 100) === 0) continue;
  const n = native.rawRecv(sock, rx, SLOT, 16, 16, rsizes);
  calls.push(n);
  for (let i = 0; i < n; i++) got.push(rx.slice(i * SLOT + 16, i * SLOT + 16 + rsizes[i]!));
}
out.recvCalls = calls;
out.received = got.length;
out.sizesMatch = got.length === good.length && got.every((p, i) => p.length === good[i]!.length);
out.bytesMatch = got.length === good.length &&
  got.every((p, i) => Buffer.compare(Buffer.from(p), Buffer.from(good[i]!)) === 0);
out.firstMismatch = got.findIndex((p, i) => !good[i] || Buffer.compare(Buffer.from(p), Buffer.from(good[i])) !== 0);

const count = (fd: number) => native.rawRecv(fd, rx, SLOT, 0, 16, rsizes);
out.filtered = count(filtered);
out.filteredDst = rsizes[0]! > 0 ? Array.from(rx.subarray(36, 40)).join('.') : null;
out.dropAll = count(dropAll);

// Truncation: a 1200-byte packet into 256-byte slots.
const big = new Uint8Array(1200);
writeIpv4(big, 0, { src: lo, dst: lo, proto: IPPROTO_IPIP, totalLength: 1200 });
native.rawSend(sock, big, Int32Array.of(0), Int32Array.of(1200), Uint32Array.of(lo), 1, status);
let trunc = 0;
const deadline2 = Date.now() + 30_000;
while (trunc === 0 && Date.now() < deadline2) {
  native.poll(pfd, pev, prev, 1, 100);
  trunc = native.rawRecv(sock, rx, 256, 0, 4, rsizes);
}
out.truncated = { count: trunc, size: rsizes[0] };

for (const fd of [sock, filtered, dropAll]) native.close(fd);
console.log(JSON.stringify(out));
