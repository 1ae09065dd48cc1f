// Run in a rogue namespace on the underlay: sends the given raw IPv4 packets
// (hex, outer header included, any source) with IP_HDRINCL to DST.
//   node inject.js DST HEX [HEX...]
import { native } from '../../src/native/index.js';
import { ip } from './packets.js';

const [dstText, ...hexes] = process.argv.slice(2);
const dst = ip(dstText!);
const fd = native.rawOpen(native.constants.IPPROTO_RAW, 0, 0, true);
const bufs = hexes.map((h) => Buffer.from(h, 'hex'));
const total = bufs.reduce((s, b) => s + b.length, 0);
const ring = new Uint8Array(total);
const offsets = new Int32Array(bufs.length);
const sizes = new Int32Array(bufs.length);
const dsts = new Uint32Array(bufs.length).fill(dst);
let off = 0;
bufs.forEach((b, i) => { ring.set(b, off); offsets[i] = off; sizes[i] = b.length; off += b.length; });
const status = new Int32Array(2);
let sent = 0;
for (let start = 0; start < bufs.length; start += 256) {
  const n = Math.min(256, bufs.length - start);
  sent += native.rawSend(fd, ring, offsets.subarray(start, start + n), sizes.subarray(start, start + n), dsts.subarray(start, start + n), n, status);
}
native.close(fd);
process.stdout.write(JSON.stringify({ sent, failed: status[0], errno: status[1] }) + '\n');
