// Run inside a network namespace with lo up (mtu 1500). Sends IPIP packets
// to 127.0.0.1 with sendBatch (raw socket path), half of them with partial inner checksums for
// the addon to finish over two spans, and receives them with rawRecv's inner
// checksum check; then a batch of packets whose inner checksum is wrong or
// not checkable. Prints the findings as JSON. The reference checksum is
// computed here, apart from the addon and from the dataplane code.
import { native } from '../../src/native/index.js';
import { ip, writeIpv4 } from './native-packets.js';

const { IPPROTO_IPIP, POLLIN } = native.constants;
const out: Record<string, unknown> = {};
const lo = ip('127.0.0.1');

/** Ones'-complement sum of 16-bit big-endian words of b[from, to), unfolded. */
function sum16(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  return s;
}
const fold = (s: number): number => { while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536); return s; };

/** Pseudo-header sum (folded) of the inner IPv4 packet at b[at]. */
function pseudo(b: Uint8Array, at: number, proto: number, l4len: number): number {
  return fold(sum16(b, at + 12, at + 20) + proto + l4len);
}

let seed = 7;
const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };

/**
 * IPIP packet: outer + inner IPv4 + TCP (proto 6) or UDP (17) + payload of
 * payLen random bytes, with a complete, correct inner checksum. Returns it.
 */
function build(proto: number, payLen: number, opts: { mf?: boolean; lenDelta?: number } = {}): Uint8Array {
  const l4h = proto === 6 ? 20 : proto === 17 ? 8 : 8;
  const innerLen = 20 + l4h + payLen;
  const p = new Uint8Array(20 + innerLen);
  writeIpv4(p, 0, { src: lo, dst: lo, proto: IPPROTO_IPIP, totalLength: p.length, id: rand(65536) });
  writeIpv4(p, 20, { src: ip('10.0.0.1'), dst: ip('10.0.0.2'), proto, totalLength: innerLen + (opts.lenDelta ?? 0) });
  if (opts.mf) { p[26] = 0x20; p[27] = 0; p[30] = 0; p[31] = 0; writeIpv4Checksum(p, 20); }
  for (let i = 40; i < p.length; i++) p[i] = rand(256);
  const field = proto === 6 ? 56 : 46;
  if (proto === 6) { p[52] = 0x50; p[53] = 0x10; } // data offset 5, ACK
  if (proto === 17) { p[44] = (8 + payLen) >>> 8; p[45] = (8 + payLen) & 255; }
  if (proto === 6 || proto === 17) {
    p[field] = 0; p[field + 1] = 0;
    let c = ~fold(pseudo(p, 20, proto, l4h + payLen) + sum16(p, 40, p.length)) & 0xffff;
    if (c === 0 && proto === 17) c = 0xffff;
    p[field] = c >>> 8; p[field + 1] = c & 255;
  }
  return p;
}
function writeIpv4Checksum(p: Uint8Array, at: number): void {
  p[at + 10] = 0; p[at + 11] = 0;
  const c = ~fold(sum16(p, at, at + 20)) & 0xffff;
  p[at + 10] = c >>> 8; p[at + 11] = c & 255;
}

const sock = native.rawOpen(IPPROTO_IPIP, 1 << 22, 1 << 22, true);
const SLOT = 2048, N = 48;
const tx = new Uint8Array(2 * N * SLOT);
const offsets = new Int32Array(N), sizes = new Int32Array(N), offsets2 = new Int32Array(N), sizes2 = new Int32Array(N);
const dsts = new Uint32Array(N).fill(lo), csums = new Int32Array(2 * N);
const refs: Uint8Array[] = [];
for (let i = 0; i < N; i++) {
  const proto = i % 3 === 2 ? 17 : 6;
  const ref = build(proto, 1 + ((i * 97) % 1400));
  refs.push(ref);
  const field = proto === 6 ? 56 : 46;
  // First span: the headers and a cut of the payload, odd or even; the rest
  // at an odd or even address elsewhere in the buffer.
  const cut = Math.min(ref.length, field + 2 + rand(200));
  const a = i * SLOT + 4, b = (N + i) * SLOT + (i % 2);
  const pkt = ref.slice();
  const finish = i % 2 === 0;
  if (finish) { const ps = pseudo(pkt, 20, proto, pkt.length - 40); pkt[field] = ps >>> 8; pkt[field + 1] = ps & 255; }
  tx.set(pkt.subarray(0, cut), a);
  tx.set(pkt.subarray(cut), b);
  offsets[i] = a; sizes[i] = cut; offsets2[i] = b; sizes2[i] = pkt.length - cut;
  csums[2 * i] = finish ? a + 40 : -1;
  csums[2 * i + 1] = field - 40;
}
const status = new Int32Array(5);
out.sent = native.sendBatch(sock, -1, tx, offsets, sizes, offsets2, sizes2, dsts, new Int32Array(3 * N), csums, N, status);
out.bytes = status[3];
out.expectBytes = refs.reduce((a, r) => a + r.length, 0);

const rx = new Uint8Array(64 * SLOT), rsizes = new Int32Array(64), states = new Uint8Array(64);
const pfd = Int32Array.of(sock), pev = Int32Array.of(POLLIN), prev = new Int32Array(1);
function receive(want: number): { pkts: Uint8Array[]; states: number[] } {
  const pkts: Uint8Array[] = [], st: number[] = [];
  const deadline = Date.now() + 30_000; // a cap for a broken path only: the loop ends when the packets are in
  while (pkts.length < want && Date.now() < deadline) {
    if (native.poll(pfd, pev, prev, 1, 100) === 0) continue;
    const n = native.rawRecv(sock, rx, SLOT, 0, 64, rsizes, states);
    for (let i = 0; i < n; i++) { pkts.push(rx.slice(i * SLOT, i * SLOT + rsizes[i]!)); st.push(states[i]!); }
  }
  return { pkts, states: st };
}
const got = receive(N);
out.received = got.pkts.length;
// The kernel rewrites the outer header's checksum and id on the way (IP_HDRINCL
// with id 0 is filled in; ours are set); compare from the inner header on.
out.mismatches = got.pkts.flatMap((p, i) => Buffer.compare(Buffer.from(p.subarray(20)), Buffer.from(refs[i]!.subarray(20))) === 0 ? [] : [i]);
out.states = got.states;

// Packets whose inner checksum is wrong or cannot be checked, sent as they are.
const odd: Uint8Array[] = [];
{ const p = build(6, 500); p[300] ^= 0x40; odd.push(p); }                    // corrupted TCP payload
{ const p = build(6, 500); const ps = pseudo(p, 20, 6, 520); p[56] = ps >>> 8; p[57] = ps & 255; odd.push(p); } // partial only
{ const p = build(17, 300); p[46] = 0; p[47] = 0; odd.push(p); }            // UDP without checksum
odd.push(build(6, 400, { mf: true }));                                       // inner fragment
odd.push(build(1, 64));                                                      // ICMP
odd.push(build(6, 400, { lenDelta: -4 }));                                   // inner length disagrees
{ const p = build(17, 300); p[100] ^= 1; odd.push(p); }                      // corrupted UDP
const o2 = new Int32Array(odd.length), s2 = new Int32Array(odd.length);
const tx2 = new Uint8Array(odd.length * SLOT);
odd.forEach((p, i) => { tx2.set(p, i * SLOT); o2[i] = i * SLOT; s2[i] = p.length; });
native.rawSend(sock, tx2, o2, s2, new Uint32Array(odd.length).fill(lo), odd.length, status);
out.odd = receive(odd.length).states;
native.close(sock);
console.log(JSON.stringify(out));
