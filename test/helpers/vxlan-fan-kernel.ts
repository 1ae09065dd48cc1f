// A model of the kernel's rtnetlink answers for vxlan devices, for unit tests
// of the vxlan fan probe and device (src/dataplane/kernel-fan/vxlan*.ts):
//
//   'patched'  Ubuntu's Fan patch (ubuntu-fan-6.1.patch): IFLA_VXLAN_FAN_MAP (33)
//              kept and dumped back; EEXIST for a second device with the same
//              VNI and port (vxlan_config_validate).
//   'old'      mainline before 6.12: 33 is above IFLA_VXLAN_MAX and skipped.
//   '6.12'     mainline 6.12+: 33 is IFLA_VXLAN_RESERVED_BITS, exactly 8 bytes
//              (ERANGE otherwise), and always dumped back (this machine's 6.18 kernel dumps
//              f7ffffff000000ff for a plain vxlan device: the model sends the same).
// The real kernel is checked in the UML tier (test/uml-vxlan.test.ts).
import { constants } from 'node:os';
import { LE, attr, attrs, cat, errorReply, find, nest, newLinkReply, str } from './nlattr.js';

const E = constants.errno;

interface Dev { index: number; kind: string; vni: number; port: number; local: number; link: number; maps: Uint8Array[]; up: boolean }

export class VxlanKernelModel {
  readonly devs = new Map<string, Dev>();
  /** Every request: type, device name, and whether it carried attribute 33 in a vxlan IFLA_INFO_DATA. */
  readonly log: string[] = [];
  private next = 20;
  constructor(readonly kernel: 'patched' | 'old' | '6.12') {}

  /** A device someone else made (a vxlan without a map, say). */
  add(name: string, d: Partial<Dev>): void {
    this.devs.set(name, { index: this.next++, kind: 'vxlan', vni: 0, port: 8472, local: 0, link: 0, maps: [], up: false, ...d });
  }

  request(msg: Uint8Array): Uint8Array {
    const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
    const type = v.getUint16(4, LE);
    const flags = v.getUint16(6, LE);
    const seq = v.getUint32(8, LE);
    const top = attrs(msg.subarray(32, v.getUint32(0, LE)));
    const name = str(find(top, 3));
    const info = attrs(find(top, 18) ?? new Uint8Array());
    const kind = str(find(info, 1));
    const data = attrs(find(info, 2) ?? new Uint8Array());
    const a33 = find(data, 33);
    this.log.push(`${({ 16: 'NEWLINK', 17: 'DELLINK', 18: 'GETLINK' } as Record<number, string>)[type] ?? type} ${name}${a33 ? ' attr33' : ''}`);
    const dev = this.devs.get(name);
    if (type === 18) return dev ? this.reply(name, dev, seq) : errorReply(-E.ENODEV, seq);
    if (type === 17) {
      if (!dev) return errorReply(-E.ENODEV, seq);
      this.devs.delete(name);
      return errorReply(0, seq);
    }
    if (type !== 16 || kind !== 'vxlan') return errorReply(-E.EOPNOTSUPP, seq);
    if (dev) return errorReply(-E.EEXIST, seq);
    if (!(flags & 0x400)) return errorReply(-E.ENODEV, seq);
    if (this.kernel === '6.12' && a33 && a33.length !== 8) return errorReply(-E.ERANGE, seq);
    const u32 = (b: Uint8Array | undefined, be = false) => (b ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, !be && LE) : 0);
    const portB = find(data, 15);
    const d: Dev = {
      index: this.next++, kind, vni: u32(find(data, 1)), port: portB ? new DataView(portB.buffer, portB.byteOffset, 2).getUint16(0, false) || 8472 : 8472,
      local: u32(find(data, 4), true), link: u32(find(data, 3)), maps: [], up: false,
    };
    if ([...this.devs.values()].some((x) => x.kind === 'vxlan' && x.vni === d.vni && x.port === d.port)) return errorReply(-E.EEXIST, seq);
    if (this.kernel === 'patched' && a33) d.maps = attrs(a33).filter((m) => m.type === 1).map((m) => m.payload.slice());
    this.devs.set(name, d);
    return errorReply(0, seq);
  }

  private reply(name: string, d: Dev, seq: number): Uint8Array {
    const u32 = (n: number, be = false) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, !be && LE); return b; };
    const be16 = (n: number) => { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, n, false); return b; };
    const kids = [attr(1, u32(d.vni)), attr(3, u32(d.link)), attr(4, u32(d.local, true)), attr(15, be16(d.port))];
    if (this.kernel === 'patched' && d.maps.length) kids.push(nest(33, ...d.maps.map((m) => attr(1, m))));
    // mainline 6.12+: the reserved bits, 8 bytes of flags (vxlan_fill_info puts them always).
    if (this.kernel === '6.12') kids.push(attr(33, Uint8Array.of(0xf7, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff)));
    const body = cat(attr(3, new TextEncoder().encode(name + '\0')), nest(18, attr(1, new TextEncoder().encode(d.kind + '\0')), nest(2, ...kids)));
    return newLinkReply(d.index, seq, body);
  }

}
