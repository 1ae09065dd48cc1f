// A model of the kernel's rtnetlink answers for ipip devices, with or without
// Ubuntu's Fan patch, for unit tests of the probe and of the maps on tunl0.
// It follows ubuntu-fan-6.1.patch (../shared/kernels/) as documented there:
// ipip_fan_add_map() (EEXIST, ENOENT, EINVAL for host bits), the fallback
// device's EINVAL once its last map is gone, ip_tunnel_newlink()'s EEXIST
// for a second tunnel with the same local/remote/link, and a kernel without
// the patch that skips attribute 33. The real behaviour is checked in the
// UML tier (test/uml-fan.test.ts); this model lets the error paths be driven.
import { constants } from 'node:os';
import { LE, attr, attrs, cat, errorReply, find, nest, newLinkReply, str } from './nlattr.js';
import {
  IFLA_FAN_MAPPING, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_IPTUN_FAN_MAP, IFLA_IPTUN_LINK, IFLA_IPTUN_LOCAL,
  IFLA_LINKINFO, NLM_F_CREATE, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, type FanMapping,
} from '../../src/dataplane/kernel-fan/netlink.js';

const E = constants.errno;

interface Dev { index: number; kind: string; maps: FanMapping[]; link: number; local: number; fallback: boolean }


export class FanKernelModel {
  readonly devs = new Map<string, Dev>();
  private next = 10;
  /** Every request's type and device name, in order. */
  readonly log: string[] = [];

  constructor(readonly patched: boolean, readonly ipip = true) {
    if (ipip) this.devs.set('tunl0', { index: 2, kind: 'ipip', maps: [], link: 0, local: 0, fallback: true });
  }

  request(msg: Uint8Array): Uint8Array {
    const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
    const type = v.getUint16(4, LE);
    const flags = v.getUint16(6, LE);
    const seq = v.getUint32(8, LE);
    const top = attrs(msg.subarray(32, v.getUint32(0, LE)));
    const name = str(find(top, IFLA_IFNAME) ?? new Uint8Array());
    this.log.push(`${type === RTM_NEWLINK ? 'NEWLINK' : type === RTM_GETLINK ? 'GETLINK' : type === RTM_DELLINK ? 'DELLINK' : type} ${name}`);
    const dev = this.devs.get(name);
    if (type === RTM_GETLINK) return dev ? this.linkReply(name, dev, seq) : errorReply(-E.ENODEV, seq);
    if (type === RTM_DELLINK) {
      if (!dev) return errorReply(-E.ENODEV, seq);
      if (dev.fallback) return errorReply(-E.EOPNOTSUPP, seq);
      this.devs.delete(name);
      return errorReply(0, seq);
    }
    if (type !== RTM_NEWLINK) return errorReply(-E.EOPNOTSUPP, seq);
    const info = attrs(find(top, IFLA_LINKINFO) ?? new Uint8Array());
    const kind = str(find(info, IFLA_INFO_KIND) ?? new Uint8Array());
    const data = attrs(find(info, IFLA_INFO_DATA) ?? new Uint8Array());
    if (kind === 'ipip' && !this.ipip) return errorReply(-E.EOPNOTSUPP, seq);
    const maps = this.patched ? attrs(find(data, IFLA_IPTUN_FAN_MAP) ?? new Uint8Array()).filter((a) => a.type === IFLA_FAN_MAPPING).map((a) => {
      const m = new DataView(a.payload.buffer, a.payload.byteOffset, 12);
      return { underlay: { network: m.getUint32(0, false), prefix: m.getUint16(8, LE) }, overlay: { network: m.getUint32(4, false), prefix: m.getUint16(10, LE) } };
    }) : [];
    if (!dev) {
      if (!(flags & NLM_F_CREATE)) return errorReply(-E.ENODEV, seq);
      const link = find(data, IFLA_IPTUN_LINK);
      const local = find(data, IFLA_IPTUN_LOCAL);
      const d: Dev = {
        index: this.next++, kind, maps: [], fallback: false,
        link: link ? new DataView(link.buffer, link.byteOffset, 4).getUint32(0, LE) : 0,
        local: local ? new DataView(local.buffer, local.byteOffset, 4).getUint32(0, false) : 0,
      };
      if ([...this.devs.values()].some((x) => x.kind === 'ipip' && x.link === d.link && x.local === d.local)) return errorReply(-E.EEXIST, seq);
      for (const m of maps) { const r = this.apply(d, m); if (r) return errorReply(r, seq); }
      this.devs.set(name, d);
      return errorReply(0, seq);
    }
    for (const m of maps) { const r = this.apply(dev, m); if (r) return errorReply(r, seq); }
    if (dev.fallback) return errorReply(dev.maps.length > 0 ? 0 : -E.EINVAL, seq);
    return errorReply(0, seq);
  }

  /** ipip_fan_add_map(). */
  private apply(d: Dev, m: FanMapping): number {
    const mask = (p: number) => (p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0);
    if ((m.overlay.network & ~mask(m.overlay.prefix)) || (m.underlay.network & ~mask(m.underlay.prefix))) return -E.EINVAL;
    if (m.overlay.network === 0 && m.underlay.network === 0) { d.maps = []; return 0; }
    const i = d.maps.findIndex((x) => x.overlay.network === m.overlay.network);
    if (m.underlay.network === 0) { if (i < 0) return -E.ENOENT; d.maps.splice(i, 1); return 0; }
    if (i >= 0) return -E.EEXIST;
    d.maps.push(m);
    return 0;
  }

  private linkReply(name: string, d: Dev, seq: number): Uint8Array {
    const u32 = (n: number, be = false) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, !be && LE); return b; };
    const maps = d.maps.map((m) => {
      const b = new Uint8Array(12);
      const v = new DataView(b.buffer);
      v.setUint32(0, m.underlay.network, false); v.setUint32(4, m.overlay.network, false);
      v.setUint16(8, m.underlay.prefix, LE); v.setUint16(10, m.overlay.prefix, LE);
      return attr(IFLA_FAN_MAPPING, b);
    });
    const dataKids = [attr(IFLA_IPTUN_LINK, u32(d.link)), attr(IFLA_IPTUN_LOCAL, u32(d.local, true))];
    if (this.patched && maps.length) dataKids.push(nest(IFLA_IPTUN_FAN_MAP, ...maps));
    const body = cat(attr(IFLA_IFNAME, new TextEncoder().encode(name + '\0')),
      nest(IFLA_LINKINFO, attr(IFLA_INFO_KIND, new TextEncoder().encode(d.kind + '\0')), nest(IFLA_INFO_DATA, ...dataKids)));
    return newLinkReply(d.index, seq, body);
  }

}
