// Run in a rogue namespace on the underlay: floods DST with junk IPIP for
// DURATION_MS, as fast as one thread can, then prints what it sent as JSON.
//   node flood.js SRC DST DURATION_MS
// Junk, from a ring of pre-built packets sent with IP_HDRINCL in batches of
// 256 (the kernel fills in total length, checksum and id):
//   random      outer IPIP header + 1..1480 random bytes
//   empty       outer IPIP header, no payload at all
//   truncated   outer header + the first 1..19 bytes of a valid inner header
//   foreign     random bytes from an outer source outside the underlay
// plus, every 64th batch, one oversized IPIP packet (1.5 .. 64 KiB of random
// payload) through a raw IPPROTO_IPIP socket without IP_HDRINCL: the kernel
// builds its header and, since IP_MTU_DISCOVER is IP_PMTUDISC_WANT by
// default and the packet exceeds the MTU, sends it as fragments without DF
// (ip_sk_ignore_df(), net/ipv4/ip_output.c); DST reassembles it before its
// raw sockets see it.
import { randomFillSync, randomInt } from 'node:crypto';
import { native } from '../../src/native/index.js';
import { ip, ipv4Packet } from './packets.js';

const [srcText, dstText, durationText] = process.argv.slice(2);
const src = ip(srcText!);
const dst = ip(dstText!);
const durationMs = Number(durationText);

const { IPPROTO_RAW, IPPROTO_IPIP } = native.constants;
const RING = 1024;
const BATCH = 256;
const packets: Uint8Array[] = [];
const kinds = { random: 0, empty: 0, truncated: 0, foreign: 0 };
for (let i = 0; i < RING; i++) {
  const r = i % 20;
  let pkt: Uint8Array;
  if (r < 11) {
    pkt = ipv4Packet({ src, dst, proto: 4, df: false, id: 0, payload: randomFillSync(new Uint8Array(randomInt(1, 1481))) });
    kinds.random++;
  } else if (r < 14) {
    pkt = ipv4Packet({ src, dst, proto: 4, df: false, id: 0 });
    kinds.empty++;
  } else if (r < 17) {
    const inner = ipv4Packet({ src: ip('250.9.9.5'), dst: ip('250.1.10.11'), payload: new Uint8Array(32) });
    pkt = ipv4Packet({ src, dst, proto: 4, df: false, id: 0, payload: inner.slice(0, randomInt(1, 20)) });
    kinds.truncated++;
  } else {
    const foreign = ip(`10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`);
    pkt = ipv4Packet({ src: foreign, dst, proto: 4, df: false, id: 0, payload: randomFillSync(new Uint8Array(randomInt(1, 1481))) });
    kinds.foreign++;
  }
  packets.push(pkt);
}
const ring = new Uint8Array(packets.reduce((s, p) => s + p.length, 0));
const offsets = new Int32Array(RING);
const sizes = new Int32Array(RING);
const dsts = new Uint32Array(RING).fill(dst);
let at = 0;
packets.forEach((p, i) => { ring.set(p, at); offsets[i] = at; sizes[i] = p.length; at += p.length; });

const big = randomFillSync(new Uint8Array(65535 - 20));
const bigOffsets = new Int32Array(1);
const bigSizes = new Int32Array(1);
const bigDsts = new Uint32Array(1).fill(dst);

const raw = native.rawOpen(IPPROTO_RAW, 0, 8 << 20, true);
const frag = native.rawOpen(IPPROTO_IPIP, 0, 8 << 20, false);
const status = new Int32Array(2);
const bigStatus = new Int32Array(2);
let sent = 0;
let attempted = 0;
let oversizeSent = 0;
let batches = 0;
const deadline = Date.now() + durationMs;
while (Date.now() < deadline) {
  for (let start = 0; start < RING && Date.now() < deadline; start += BATCH) {
    attempted += BATCH;
    sent += native.rawSend(raw, ring, offsets.subarray(start, start + BATCH), sizes.subarray(start, start + BATCH), dsts.subarray(start, start + BATCH), BATCH, status);
    if (++batches % 64 === 0) {
      bigSizes[0] = randomInt(1500, big.length + 1);
      oversizeSent += native.rawSend(frag, big, bigOffsets, bigSizes, bigDsts, 1, bigStatus) - bigStatus[0]!;
      bigStatus[0] = 0;
    }
  }
}
native.close(raw);
native.close(frag);
// `sent` counts packets the kernel took or refused; status[0] of them it refused.
process.stdout.write(JSON.stringify({ attempted, processed: sent, failed: status[0], errno: status[1], oversizeSent, oversizeErrno: bigStatus[1], kinds }) + '\n');
