// Frame and VXLAN packet builders for the tests. Test code: allocates freely.
import { writeU16, writeU32 } from '../../src/dataplane/packet/ipv4.js';
import { writeVxlanHeader } from '../../src/dataplane/packet/vxlan.js';

export const MAC_A = Uint8Array.from([0x02, 0xaa, 0, 0, 0, 1]);
export const MAC_B = Uint8Array.from([0x02, 0xbb, 0, 0, 0, 2]);
export const BROADCAST = new Uint8Array(6).fill(0xff);

/** An Ethernet frame: destination, source, ethertype, payload. */
export function ethFrame(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  writeU16(f, 12, type);
  f.set(payload, 14);
  return f;
}

/** An ARP frame for IPv4 over Ethernet (operation 1 request, broadcast; 2 reply, to tha). */
export function arpFrame(op: number, sha: Uint8Array, sip: number, tha: Uint8Array, tip: number): Uint8Array {
  const a = new Uint8Array(28);
  writeU16(a, 0, 1);
  writeU16(a, 2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  writeU16(a, 6, op);
  a.set(sha, 8);
  writeU32(a, 14, sip);
  a.set(tha, 18);
  writeU32(a, 24, tip);
  return ethFrame(op === 1 ? BROADCAST : tha, sha, 0x0806, a);
}

/** A VXLAN packet (the UDP payload): header with the I flag and `vni`, then the frame. */
export function vxlanPacket(vni: number, frame: Uint8Array): Uint8Array {
  const p = new Uint8Array(8 + frame.length);
  writeVxlanHeader(p, 0, vni);
  p.set(frame, 8);
  return p;
}
