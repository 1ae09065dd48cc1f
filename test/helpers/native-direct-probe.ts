// Run inside a network namespace holding a veth pair v0 (10.9.0.1/24) and v1
// (10.9.0.2/24), both up; argv[2] = v1's Ethernet address. Sends one sendBatch
// mixing raw-socket messages (routed by the kernel) and direct ones (AF_PACKET
// out of v0 to v1's Ethernet address), plus a direct one to an interface that
// does not exist and one to a wrong Ethernet address; receives what arrives on
// a raw IPIP socket. Prints the findings as JSON.
import { native } from '../../src/native/index.js';
import { ip, writeIpv4, writeUdp } from './native-packets.js';

const { IPPROTO_IPIP, POLLIN } = native.constants;
const out: Record<string, unknown> = {};
const v1mac = process.argv[2]!.split(':').map((h) => parseInt(h, 16));
const hi = ((v1mac[0]! << 24) | (v1mac[1]! << 16) | (v1mac[2]! << 8) | v1mac[3]!) | 0;
const lo = ((v1mac[4]! << 24) | (v1mac[5]! << 16)) | 0;
const v0 = native.ifIndex('v0');

const sock = native.rawOpen(IPPROTO_IPIP, 1 << 22, 1 << 22, true);
const packet = native.packetOpen(1 << 22);
// path per message: 'r' raw, 'd' direct, 'x' direct to a missing interface, 'w' direct to a wrong address
const plan = 'rrddrdxdwr';
const N = plan.length, SLOT = 2048;
const tx = new Uint8Array(N * SLOT);
const offsets = new Int32Array(N), sizes = new Int32Array(N), none = new Int32Array(N);
const dsts = new Uint32Array(N).fill(ip('10.9.0.2')), l2 = new Int32Array(3 * N), csums = new Int32Array(2 * N).fill(-1);
const sentPkts: Uint8Array[] = [];
for (let i = 0; i < N; i++) {
  const off = i * SLOT;
  const inner = writeUdp(tx, off + 20, ip('10.0.0.1'), ip('10.0.0.2'), 1000 + i, 2000, new Uint8Array(100 + i).fill(i));
  writeIpv4(tx, off, { src: ip('10.9.0.1'), dst: ip('10.9.0.2'), proto: IPPROTO_IPIP, totalLength: 20 + inner, id: 500 + i });
  offsets[i] = off;
  sizes[i] = 20 + inner;
  const p = plan[i]!;
  if (p !== 'r') l2.set([p === 'x' ? 999_999 : v0, hi, p === 'w' ? lo ^ 0x10000 : lo], 3 * i);
  if (p === 'r' || p === 'd') sentPkts.push(tx.slice(off, off + 20 + inner));
}
const status = new Int32Array(5);
out.sent = native.sendBatch(sock, packet, tx, offsets, sizes, none, none, dsts, l2, csums, N, status);
out.status = Array.from(status);
out.expectBytes = sentPkts.reduce((a, p) => a + p.length, 0) + sizes[plan.indexOf('w')]!;

const rx = new Uint8Array(32 * SLOT), rsizes = new Int32Array(32);
const got: Uint8Array[] = [];
const pfd = Int32Array.of(sock), pev = Int32Array.of(POLLIN), prev = new Int32Array(1);
// Some of what was sent must not arrive: read until everything is in, or until 2 s pass without a
// packet (a busy machine may hold the rest that long), at most 30 s.
const deadline = Date.now() + 30_000;
let last = Date.now();
while (Date.now() < deadline) {
  if (native.poll(pfd, pev, prev, 1, 100) === 0) { if (got.length >= sentPkts.length || Date.now() - last > 2000) break; continue; }
  last = Date.now();
  const n = native.rawRecv(sock, rx, SLOT, 0, 32, rsizes);
  for (let i = 0; i < n; i++) got.push(rx.slice(i * SLOT, i * SLOT + rsizes[i]!));
}
// Which messages arrived (by their UDP source port), and intact from the inner header on.
const ids = got.map((p) => ((p[40]! << 8) | p[41]!) - 1000).sort((a, b) => a - b);
out.arrived = ids;
out.intact = got.every((p) => {
  const i = ((p[40]! << 8) | p[41]!) - 1000;
  const want = tx.subarray(i * SLOT + 20, i * SLOT + sizes[i]!);
  return Buffer.compare(Buffer.from(p.subarray(20)), Buffer.from(want)) === 0;
});
native.close(sock);
native.close(packet);
console.log(JSON.stringify(out));
