// What fand configures on a host, as data: a list of resources, each with a
// stable id. `fand plan` prints them, `ensure` makes the host match them and
// `teardown` removes those fand created. Nothing here does I/O.

/**
 * `fan` names the bridge of the one fan a resource belongs to; resources that
 * serve every fan (ip_forward, NAT, tunl0) have none. A clean stop keeps the
 * resources of fans that still have containers attached (daemon/shutdown.ts).
 */
export type Resource = ResourceKind & { readonly fan?: string };

export type ResourceKind =
  | { readonly kind: 'sysctl'; readonly id: string; readonly key: string; readonly value: string }
  | { readonly kind: 'bridge'; readonly id: string; readonly name: string; readonly mtu: number; readonly mac?: string }
  | { readonly kind: 'address'; readonly id: string; readonly dev: string; readonly cidr: string }
  | { readonly kind: 'tun'; readonly id: string; readonly name: string; readonly mtu: number; readonly txqueuelen: number; readonly vnetHdr: boolean }
  | { readonly kind: 'route'; readonly id: string; readonly dst: string; readonly dev: string; readonly src: string }
  /** A multi-queue TAP with virtio-net headers, a port of `master` (the userspace dataplane's VXLAN device). */
  | { readonly kind: 'tap'; readonly id: string; readonly name: string; readonly master: string; readonly mtu: number; readonly txqueuelen: number }
  /** A device fand does not create (tunl0 exists once the ipip module is loaded) but brings up with an MTU. */
  | { readonly kind: 'link-up'; readonly id: string; readonly name: string; readonly mtu: number }
  /** One route per remote slice: `SLICE via HOST dev DEV onlink src SRC proto PROTO` (kernel-ipip). */
  | { readonly kind: 'slice-routes'; readonly id: string; readonly dev: string; readonly overlay: string; readonly underlay: string; readonly local: string; readonly src: string; readonly fanIndex: number; readonly count: number }
  /** An ipip device with a kernel Fan map (kernel-fan; needs Canonical's Fan patch). */
  | { readonly kind: 'fan-tunnel'; readonly id: string; readonly name: string; readonly overlay: string; readonly underlay: string; readonly dev: string; readonly mtu: number }
  /** A vxlan device with a kernel Fan map, a port of `master` (kernel-fan for VXLAN fans; needs the patch's IFLA_VXLAN_FAN_MAP, proven). */
  | { readonly kind: 'fan-vxlan'; readonly id: string; readonly name: string; readonly master: string; readonly overlay: string; readonly underlay: string; readonly dev: string; readonly local: string; readonly vni: number; readonly port: number; readonly mtu: number }
  /** A kernel Fan map on an existing ipip device (tunl0), as Ubuntu's fanctl puts it there (kernel-fan; needs Canonical's Fan patch). */
  | { readonly kind: 'fan-map'; readonly id: string; readonly dev: string; readonly overlay: string; readonly underlay: string }
  /** Masquerade for traffic from the overlays to anywhere else (nftables table ip fand, or iptables chain FAND-POSTROUTING). */
  | { readonly kind: 'nat'; readonly id: string; readonly overlays: readonly string[] }
  /** A policy rule `iif DEV blackhole`: packets the kernel decapsulates on DEV are discarded silently. */
  | { readonly kind: 'blackhole-rule'; readonly id: string; readonly iif: string; readonly pref: number }
  /**
   * A tc hook fand's eBPF programs run on (ebpf dataplane): a clsact qdisc on
   * DEV (created if absent) and fand's cls_bpf filter on its ingress or egress
   * (pref 250, handle 0xfa), which the dataplane attaches. Handlers:
   * src/dataplane/ebpf/host.ts.
   */
  | { readonly kind: 'tc-bpf'; readonly id: string; readonly dev: string; readonly direction: 'ingress' | 'egress' };

export const sysctl = (key: string, value: string): Resource => ({ kind: 'sysctl', id: `sysctl:${key}`, key, value });
export const bridge = (name: string, mtu: number, mac?: string): Resource => ({ kind: 'bridge', id: `bridge:${name}`, name, mtu, ...(mac ? { mac } : {}) });
export const address = (dev: string, cidr: string): Resource => ({ kind: 'address', id: `address:${dev}:${cidr}`, dev, cidr });
export const tun = (name: string, mtu: number, txqueuelen: number, vnetHdr = false): Resource =>
  ({ kind: 'tun', id: `tun:${name}`, name, mtu, txqueuelen, vnetHdr });
export const route = (dst: string, dev: string, src: string): Resource => ({ kind: 'route', id: `route:${dst}`, dst, dev, src });
export const tap = (name: string, master: string, mtu: number, txqueuelen: number): Resource =>
  ({ kind: 'tap', id: `tap:${name}`, name, master, mtu, txqueuelen });

export const linkUp = (name: string, mtu: number): Resource => ({ kind: 'link-up', id: `link-up:${name}`, name, mtu });
export const sliceRoutes = (dev: string, overlay: string, underlay: string, local: string, src: string, fanIndex: number, count: number): Resource =>
  ({ kind: 'slice-routes', id: `slice-routes:${dev}:${overlay}`, dev, overlay, underlay, local, src, fanIndex, count });
export const fanTunnel = (name: string, overlay: string, underlay: string, dev: string, mtu: number): Resource =>
  ({ kind: 'fan-tunnel', id: `fan-tunnel:${name}`, name, overlay, underlay, dev, mtu });
export const fanVxlan = (name: string, master: string, overlay: string, underlay: string, dev: string, local: string, vni: number, port: number, mtu: number): Resource =>
  ({ kind: 'fan-vxlan', id: `fan-vxlan:${name}`, name, master, overlay, underlay, dev, local, vni, port, mtu });
export const fanMap = (dev: string, overlay: string, underlay: string): Resource =>
  ({ kind: 'fan-map', id: `fan-map:${dev}:${overlay}`, dev, overlay, underlay });
export const nat = (overlays: readonly string[]): Resource => ({ kind: 'nat', id: 'nat', overlays: [...overlays] });
export const tcBpf = (dev: string, direction: 'ingress' | 'egress'): Resource => ({ kind: 'tc-bpf', id: `tc-bpf:${dev}:${direction}`, dev, direction });
export const blackholeRule = (iif: string, pref: number): Resource => ({ kind: 'blackhole-rule', id: `blackhole-rule:${iif}`, iif, pref });

/** One line per resource, as `fand plan` prints it. */
export function describe(r: Resource): string {
  switch (r.kind) {
    case 'sysctl': return `sysctl  ${r.key} = ${r.value}`;
    case 'bridge': return `bridge  ${r.name} mtu ${r.mtu}${r.mac ? ` address ${r.mac}` : ''}`;
    case 'address': return `address ${r.cidr} on ${r.dev}`;
    case 'tun': return `tun     ${r.name} mtu ${r.mtu} multi-queue txqueuelen ${r.txqueuelen}${r.vnetHdr ? ' vnet_hdr' : ''}`;
    case 'route': return `route   ${r.dst} dev ${r.dev} src ${r.src}`;
    case 'tap': return `tap     ${r.name} mtu ${r.mtu} multi-queue txqueuelen ${r.txqueuelen} vnet_hdr, port of ${r.master}`;
    case 'link-up': return `link    ${r.name} up mtu ${r.mtu}`;
    case 'slice-routes': return `routes  ${r.count} x SLICE nhid N src ${r.src} proto 250, nexthop N via HOST dev ${r.dev} onlink (one per remote host of ${r.underlay})`;
    case 'fan-tunnel': return `tunnel  ${r.name} type ipip dev ${r.dev} fan-map ${r.overlay}:${r.underlay} mtu ${r.mtu} (rtnetlink IFLA_IPTUN_FAN_MAP)`;
    case 'fan-vxlan': return `vxlan   ${r.name} type vxlan id ${r.vni} dev ${r.dev} dstport ${r.port} local ${r.local} fan-map ${r.overlay}:${r.underlay} master ${r.master} mtu ${r.mtu} (rtnetlink IFLA_VXLAN_FAN_MAP, read back)`;
    case 'fan-map': return `fanmap  ${r.dev} fan-map ${r.overlay}:${r.underlay} (rtnetlink IFLA_IPTUN_FAN_MAP, read back)`;
    case 'nat': return `nat     masquerade ${r.overlays.join(',')} -> !(${r.overlays.join(',')}) (nftables table ip fand, or iptables chain FAND-POSTROUTING)`;
    case 'blackhole-rule': return `rule    iif ${r.iif} blackhole pref ${r.pref} (the kernel's own IPIP decapsulation is discarded)`;
    case 'tc-bpf': return `tc      ${r.dev} ${r.direction}: clsact qdisc, filter pref 250 handle 0xfa bpf direct-action fand_${r.direction} (${r.direction === 'egress' ? 'encapsulates' : 'decapsulates'} the fan's IPIP)`;
  }
}
