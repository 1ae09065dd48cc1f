// What fand configures on a host, as data: a list of resources, each with a
// stable id. `fand plan` prints them, `ensure` makes the host match them and
// `teardown` removes those fand created. Nothing here does I/O.

export type Resource =
  | { readonly kind: 'sysctl'; readonly id: string; readonly key: string; readonly value: string }
  | { readonly kind: 'bridge'; readonly id: string; readonly name: string; readonly mtu: number }
  | { readonly kind: 'address'; readonly id: string; readonly dev: string; readonly cidr: string }
  | { readonly kind: 'tun'; readonly id: string; readonly name: string; readonly mtu: number; readonly txqueuelen: number; readonly vnetHdr: boolean }
  | { readonly kind: 'route'; readonly id: string; readonly dst: string; readonly dev: string; readonly src: string };

export const sysctl = (key: string, value: string): Resource => ({ kind: 'sysctl', id: `sysctl:${key}`, key, value });
export const bridge = (name: string, mtu: number): Resource => ({ kind: 'bridge', id: `bridge:${name}`, name, mtu });
export const address = (dev: string, cidr: string): Resource => ({ kind: 'address', id: `address:${dev}:${cidr}`, dev, cidr });
export const tun = (name: string, mtu: number, txqueuelen: number, vnetHdr = false): Resource =>
  ({ kind: 'tun', id: `tun:${name}`, name, mtu, txqueuelen, vnetHdr });
export const route = (dst: string, dev: string, src: string): Resource => ({ kind: 'route', id: `route:${dst}`, dst, dev, src });

/** One line per resource, as `fand plan` prints it. */
export function describe(r: Resource): string {
  switch (r.kind) {
    case 'sysctl': return `sysctl  ${r.key} = ${r.value}`;
    case 'bridge': return `bridge  ${r.name} mtu ${r.mtu}`;
    case 'address': return `address ${r.cidr} on ${r.dev}`;
    case 'tun': return `tun     ${r.name} mtu ${r.mtu} multi-queue txqueuelen ${r.txqueuelen}${r.vnetHdr ? ' vnet_hdr' : ''}`;
    case 'route': return `route   ${r.dst} dev ${r.dev} src ${r.src}`;
  }
}
