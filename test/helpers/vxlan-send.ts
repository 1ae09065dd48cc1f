// Run in a rogue namespace on the underlay: sends one inner IPv4 packet (hex)
// to DST in VXLAN (VNI, inner Ethernet frame to DST_MAC) through a UDP socket
// without DF (udpOpen: IP_PMTUDISC_DONT), so the kernel fragments a datagram
// larger than the MTU, as ipip-send.js does for IPIP.
//   node vxlan-send.js DST VNI DST_MAC HEX
import { native } from '../../src/native/index.js';
import { ip } from './packets.js';
import { ethFrame, vxlanPacket } from './vxlan-packets.js';
import { ROGUE_MAC } from './wire.js';

const [dstText, vniText, macText, hexText] = process.argv.slice(2);
const inner = new Uint8Array(Buffer.from(hexText!, 'hex'));
const mac = Uint8Array.from(macText!.split(':').map((b) => parseInt(b, 16)));
const pkt = vxlanPacket(Number(vniText), ethFrame(mac, ROGUE_MAC, 0x0800, inner));
const fd = native.udpOpen(0, 0, false, 0, 0);
const status = new Int32Array(4);
const n = native.udpSendBatch(fd, pkt, Int32Array.of(0, pkt.length), 1, Int32Array.of(0, 1, 0, 0, 0), Uint32Array.of(ip(dstText!)), 8472,
  new Int32Array(0), 0, 1, status);
native.close(fd);
process.stdout.write(JSON.stringify({ sent: n, failed: status[0], errno: status[1] }) + '\n');
