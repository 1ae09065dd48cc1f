// The kernel-fan VXLAN device on a host: created with its fan map (only with
// the proof the probe left, vxlan.ts), read back, made a port of the fan's
// bridge. Called by ensure's 'fan-vxlan' handler (src/host/ensure.ts).
import type { HostNet, LinkInfo } from '../../host/ip.js';
import type { Resource } from '../../host/resources.js';
import { parseIpv4, formatIpv4 } from '../../fan/ipv4.js';
import { errnoName, sameMapping } from './netlink.js';
import { mappingOf } from './maps.js';
import {
  deleteLink, getLink, heldVxlanFanProof, parseVxlanLink, vxlanFanIpArgs, vxlanFanLinkMessage, type VxlanFanLink, type VxlanLinkInfo,
} from './vxlan.js';
import { formatCidr } from '../../fan/ipv4.js';

type Of<K extends Resource['kind']> = Extract<Resource, { kind: K }>;

/** What ensure's context offers a handler (src/host/ensure.ts, class Ctx). */
export interface EnsureContext {
  readonly host: Pick<HostNet, 'netlink' | 'netlinkQuery' | 'apply' | 'readSysctl' | 'writeSysctl'>;
  readonly opts: { readonly log: (msg: string, fields?: object) => void };
  link(name: string): LinkInfo | undefined;
  owned(r: Resource): unknown;
  created(r: Resource): Promise<void>;
  keep(r: Resource): Promise<void>;
  debug(msg: string, fields?: object): void;
}

export class VxlanFanSetupError extends Error {}

function wanted(c: EnsureContext, r: Of<'fan-vxlan'>): VxlanFanLink {
  const dev = c.link(r.dev);
  if (!dev) throw new VxlanFanSetupError(`vxlan fan ${r.name}: the underlay device ${r.dev} is gone`);
  const local = parseIpv4(r.local);
  if (local === undefined) throw new VxlanFanSetupError(`vxlan fan ${r.name}: local address ${r.local} is not IPv4`);
  return { name: r.name, vni: r.vni, port: r.port, link: dev.index, local, map: mappingOf(r.overlay, r.underlay), mtu: r.mtu };
}

/** Differences between a device read back and the one wanted, in words; [] when it is right. */
export function differences(back: VxlanLinkInfo, want: VxlanFanLink): string[] {
  const d: string[] = [];
  if (back.kind !== 'vxlan') d.push(`kind ${back.kind ?? 'none'}`);
  if (back.vni !== want.vni) d.push(`VNI ${back.vni} (want ${want.vni})`);
  if (back.port !== want.port) d.push(`port ${back.port} (want ${want.port})`);
  if (back.local !== want.local) d.push(`local ${back.local === undefined ? 'none' : formatIpv4(back.local)} (want ${formatIpv4(want.local)})`);
  if (back.link !== want.link) d.push(`underlay ifindex ${back.link} (want ${want.link})`);
  const text = (m: { overlay: { network: number; prefix: number }; underlay: { network: number; prefix: number } }) => `${formatCidr(m.overlay)}:${formatCidr(m.underlay)}`;
  if (back.fanMaps.length !== 1 || !sameMapping(back.fanMaps[0]!, want.map)) {
    d.push(`fan maps ${back.fanMaps.map(text).join(',') || 'none'} (want ${text(want.map)})`);
  }
  return d;
}

async function readBack(c: EnsureContext, name: string): Promise<VxlanLinkInfo> {
  return parseVxlanLink(await c.host.netlinkQuery(getLink(name, 1)));
}

export async function ensureVxlanFan(c: EnsureContext, r: Of<'fan-vxlan'>): Promise<void> {
  const want = wanted(c, r);
  const l = c.link(r.name);
  let right = false;
  if (l) {
    if (l.kind !== 'vxlan') {
      throw new VxlanFanSetupError(`vxlan fan ${r.name}: the host already has a ${l.kind ?? 'plain'} device named ${r.name}, which fand did not create; `
        + 'remove it or give the fan another overlay');
    }
    const diff = differences(await readBack(c, r.name), want);
    right = diff.length === 0;
    if (!right && !c.owned(r)) {
      throw new VxlanFanSetupError(`vxlan fan ${r.name}: a vxlan device of that name exists with other settings (${diff.join('; ')}) and fand did not create it`);
    }
    if (!right) {
      c.opts.log(`recreating vxlan fan ${r.name}: ${diff.join('; ')}`);
      const ack = await c.host.netlink(deleteLink(r.name, 2));
      if (ack.errno !== 0) throw new VxlanFanSetupError(`vxlan fan ${r.name}: removing it failed: ${errnoName(ack.errno)}`);
    }
  }
  if (!right) {
    const proof = heldVxlanFanProof();
    if (!proof) {
      throw new VxlanFanSetupError(`vxlan fan ${r.name}: this kernel's vxlan fan map is not proven (fand never sends IFLA_VXLAN_FAN_MAP unproven); `
        + 'run the userspace dataplane (--dataplane userspace)');
    }
    const ack = await c.host.netlink(vxlanFanLinkMessage(proof, want, 3));
    if (ack.errno !== 0) {
      throw new VxlanFanSetupError(`vxlan fan ${r.name} (ip ${vxlanFanIpArgs(want, r.dev).join(' ')}): the kernel refused it: ${errnoName(ack.errno)}${ack.message ? ` (${ack.message})` : ''}`);
    }
    await c.created(r);
    const diff = differences(await readBack(c, r.name), want);
    if (diff.length) {
      await c.host.netlink(deleteLink(r.name, 4));
      throw new VxlanFanSetupError(`vxlan fan ${r.name}: created, but read back ${diff.join('; ')}: removed again`);
    }
    c.opts.log(`created vxlan fan ${r.name}: VNI ${r.vni} port ${r.port} fan-map ${r.overlay}:${r.underlay} (read back)`);
  } else {
    c.debug(`vxlan fan ${r.name} is in place (read back)`);
    await c.keep(r);
  }
  // A bridge port with no addresses of its own: no IPv6 on it either.
  if ((await c.host.readSysctl(`net.ipv6.conf.${r.name}.disable_ipv6`)) === '0') {
    await c.host.writeSysctl(`net.ipv6.conf.${r.name}.disable_ipv6`, '1');
  }
  await c.host.apply([['link', 'set', 'dev', r.name, 'master', r.master, 'mtu', String(r.mtu), 'up']]);
}
