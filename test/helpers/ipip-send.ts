// Run in a rogue namespace on the underlay: sends one inner IPv4 packet (hex)
// to DST inside IPIP through a raw IPPROTO_IPIP socket *without* IP_HDRINCL,
// so the kernel writes the outer header and, when the result exceeds the
// MTU, fragments it: with the default IP_MTU_DISCOVER (IP_PMTUDISC_WANT) a
// datagram larger than the path MTU goes out as fragments without DF
// (ip_sk_ignore_df() in net/ipv4/ip_output.c) instead of failing EMSGSIZE.
//   node ipip-send.js DST HEX
import { native } from '../../src/native/index.js';
import { ip } from './packets.js';

const [dstText, hexText] = process.argv.slice(2);
const pkt = new Uint8Array(Buffer.from(hexText!, 'hex'));
const fd = native.rawOpen(native.constants.IPPROTO_IPIP, 0, 0, false);
const status = new Int32Array(2);
const n = native.rawSend(fd, pkt, new Int32Array([0]), new Int32Array([pkt.length]), new Uint32Array([ip(dstText!)]), 1, status);
native.close(fd);
process.stdout.write(JSON.stringify({ sent: n - status[0]!, failed: status[0], errno: status[1] }) + '\n');
