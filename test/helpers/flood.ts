// Run in a rogue namespace on the underlay: floods DST with junk IPIP (or,
// with ENCAP vxlan, junk VXLAN: UDP to port 8472) for DURATION_MS, as fast
// as one thread can, then prints what it sent as JSON.
//   node flood.js SRC DST DURATION_MS [ipip|vxlan VNI]
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
// VXLAN: the same kinds as UDP datagrams to port 8472 (random payload; an
// empty one; a VXLAN header with 1..13 bytes behind it; a foreign source)
// plus `wrongvni`, a VXLAN header of another VNI before random bytes; the
// oversized ones leave a UDP socket without DF (udpOpen: IP_PMTUDISC_DONT)
// as fragments.
import { randomFillSync, randomInt } from 'node:crypto';
import { native } from '../../src/native/index.js';
import { ip, ipv4Packet } from './packets.js';
import { udpPacket } from './wire.js';

const [srcText, dstText, durationText, encapText, vniText] = process.argv.slice(2);
const vxlan = encapText === 'vxlan';
const VXLAN_PORT = 8472;
const vni = Number(vniText ?? 0);
/** The outer packet of the flood's encapsulation around `payload`. */
const outer = (s: number, payload: Uint8Array) => vxlan
  ? udpPacket(s, dst, 40000 + randomInt(1000), VXLAN_PORT, payload)
  : ipv4Packet({ src: s, dst, proto: 4, df: false, id: 0, payload });
const vxlanHeader = (v: number) => Uint8Array.of(0x08, 0, 0, 0, v >>> 16, (v >>> 8) & 255, v & 255, 0);
const src = ip(srcText!);
const dst = ip(dstText!);
const durationMs = Number(durationText);

const { IPPROTO_RAW, IPPROTO_IPIP } = native.constants;
const RING = 1024;
const BATCH = 256;
const packets: Uint8Array[] = [];
const kinds = { random: 0, empty: 0, truncated: 0, foreign: 0, wrongvni: 0 };
for (let i = 0; i < RING; i++) {
  const r = i % 20;
  let pkt: Uint8Array;
  if (r < 11) {
    const junk = randomFillSync(new Uint8Array(randomInt(vxlan && r >= 8 ? 8 : 1, 1481)));
    if (vxlan && r >= 8) { junk.set(vxlanHeader((vni + 1 + randomInt(1000)) & 0xffffff)); kinds.wrongvni++; } else kinds.random++;
    pkt = outer(src, junk);
  } else if (r < 14) {
    pkt = outer(src, new Uint8Array(0));
    kinds.empty++;
  } else if (r < 17) {
    if (vxlan) {
      const t = new Uint8Array(8 + randomInt(1, 14));
      t.set(vxlanHeader(vni));
      pkt = outer(src, t);
    } else {
      const inner = ipv4Packet({ src: ip('250.9.9.5'), dst: ip('250.1.10.11'), payload: new Uint8Array(32) });
      pkt = outer(src, inner.slice(0, randomInt(1, 20)));
    }
    kinds.truncated++;
  } else {
    const foreign = ip(`10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`);
    pkt = outer(foreign, randomFillSync(new Uint8Array(randomInt(1, 1481))));
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
// Oversized: a raw IPIP socket, or a UDP socket without DF, both fragmenting.
const frag = vxlan ? native.udpOpen(src, 0, false, 0, 8 << 20) : native.rawOpen(IPPROTO_IPIP, 0, 8 << 20, false);
const bigMsgs = new Int32Array(5);
const bigSpans = new Int32Array(2);
const bigSend = (n: number): number => {
  if (!vxlan) { bigSizes[0] = n; return native.rawSend(frag, big, bigOffsets, bigSizes, bigDsts, 1, bigStatus) - bigStatus[0]!; }
  bigSpans[0] = 0; bigSpans[1] = Math.min(n, 65507);
  bigMsgs[0] = 0; bigMsgs[1] = 1; bigMsgs[2] = 0; bigMsgs[3] = 0;
  const st = new Int32Array(4);
  const sent = native.udpSendBatch(frag, big, bigSpans, 1, bigMsgs, bigDsts, VXLAN_PORT, new Int32Array(0), 0, 1, st);
  if (st[0]! > 0) bigStatus[1] = st[1]!;
  return sent;
};
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
      oversizeSent += bigSend(randomInt(1500, big.length + 1));
      bigStatus[0] = 0;
    }
  }
}
native.close(raw);
native.close(frag);
// `sent` counts packets the kernel took or refused; status[0] of them it refused.
process.stdout.write(JSON.stringify({ attempted, processed: sent, failed: status[0], errno: status[1], oversizeSent, oversizeErrno: bigStatus[1], kinds }) + '\n');
