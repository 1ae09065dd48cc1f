// Is this a Fan kernel? Proven by behaviour, in the network namespace fand
// runs in.
//
// /proc/sys/net/fan/version is only a hint: Ubuntu's patch registers it for
// init_net alone (register_net_sysctl(&init_net, "net/fan", ...) in ipip.c),
// so inside every other namespace of a patched kernel it is absent although
// fan maps work on tunnels there. And a kernel without the patch accepts an
// ipip RTM_NEWLINK carrying IFLA_IPTUN_FAN_MAP (33) silently: 33 is above its
// IFLA_IPTUN_MAX and IFLA_INFO_DATA is parsed non-strictly, so the attribute
// is skipped. The proof is therefore: create a throw-away ipip device with a
// map, read it back with RTM_GETLINK (ipip_fill_info() of the patch dumps the
// maps as IFLA_IPTUN_FAN_MAP), and delete the device again, whatever happened
// in between.
import { constants } from 'node:os';
import {
  deleteLinkMessage, errnoName, getLinkMessage, parseAck, parseLinkReply, probeLinkMessage, sameMapping,
  type FanMapping,
} from './netlink.js';
import { formatCidr } from '../../fan/ipv4.js';

/** The side effects the probe needs, swappable in tests. */
export interface FanProbeIo {
  /** One rtnetlink request in fand's namespace; the kernel's first reply datagram. */
  request(msg: Uint8Array): Uint8Array;
  /** Names of the links in this namespace (to find probe devices a killed fand left). */
  linkNames(): Promise<string[]>;
  /** Contents of /proc/sys/net/fan/version, undefined when absent. */
  fanVersion(): Promise<string | undefined>;
  pidAlive(pid: number): boolean;
}

export interface FanEvidence {
  /** The read-back showed the map: kernel-fan can run here. */
  readonly proven: boolean;
  /** What decided, in words (plan, show and the logs print it). */
  readonly evidence: string;
  /** The sysctl hint, reported next to the proof. */
  readonly hint: string;
  /** Devices this probe could not remove (an error to log); empty normally. */
  readonly leftovers: readonly string[];
  /** Probe devices of dead fand processes removed on the way. */
  readonly staleRemoved: readonly string[];
}

/** Throw-away devices are named PREFIX + pid: at most 8 + 7 digits = 15 bytes. */
export const PROBE_PREFIX = 'fanprobe';
/** The map the probe device carries: class E over TEST-NET-1, so it can never collide with a real fan. */
export const PROBE_MAP: FanMapping = { overlay: { network: 0xf0000000, prefix: 8 }, underlay: { network: 0xc0000200, prefix: 24 } };
const LOOPBACK_IFINDEX = 1;

export interface ProbeOptions {
  readonly pid: number;
  /**
   * False when creating an ipip device could make the kernel load the ipip
   * module (request_module("rtnl-link-ipip") in rtnl_newlink()): `fand plan`
   * changes nothing, so it does not probe then.
   */
  readonly mayCreate: boolean;
  /** Why the probe may not create, for the evidence. */
  readonly whyNot?: string;
}

export async function probeFanKernel(io: FanProbeIo, opts: ProbeOptions): Promise<FanEvidence> {
  const version = await io.fanVersion();
  const hint = version !== undefined
    ? `/proc/sys/net/fan/version = ${version}`
    : '/proc/sys/net/fan/version absent (the patch registers it in the initial network namespace only)';
  if (!opts.mayCreate) {
    return { proven: false, evidence: `not probed: ${opts.whyNot ?? 'probing not allowed'}`, hint, leftovers: [], staleRemoved: [] };
  }
  const staleRemoved: string[] = [];
  const leftovers: string[] = [];
  for (const name of await io.linkNames()) {
    const m = new RegExp(`^${PROBE_PREFIX}(\\d+)$`).exec(name);
    if (!m || Number(m[1]) === opts.pid || io.pidAlive(Number(m[1]))) continue;
    const e = removeDevice(io, name);
    if (e) leftovers.push(`${name} (${e})`); else staleRemoved.push(name);
  }

  const name = `${PROBE_PREFIX}${opts.pid}`;
  const mapText = `${formatCidr(PROBE_MAP.overlay)}:${formatCidr(PROBE_MAP.underlay)}`;
  // 127.255.x.y from the pid: concurrent probes differ in their local address.
  const local = (0x7fff0000 | (opts.pid & 0xffff)) >>> 0;
  let created;
  try {
    created = parseAck(io.request(probeLinkMessage(name, LOOPBACK_IFINDEX, local, PROBE_MAP, 1)));
  } catch (e) {
    return { proven: false, evidence: `cannot ask the kernel to create an ipip device: ${(e as Error).message}`, hint, leftovers, staleRemoved };
  }
  if (created.errno !== 0) {
    const why = created.errno === constants.errno.EOPNOTSUPP ? ' (no ipip support in this kernel)' : '';
    return {
      proven: false, hint, leftovers, staleRemoved,
      evidence: `creating an ipip device failed: ${errnoName(created.errno)}${created.message ? ` "${created.message}"` : ''}${why}`,
    };
  }
  let evidence: string;
  let proven = false;
  try {
    const back = parseLinkReply(io.request(getLinkMessage(name, 2)));
    proven = back.kind === 'ipip' && back.fanMaps.some((m) => sameMapping(m, PROBE_MAP));
    evidence = proven
      ? `an ipip device created with fan-map ${mapText} read it back (RTM_GETLINK, IFLA_IPTUN_FAN_MAP): Fan kernel`
      : `the kernel created an ipip device but dropped its fan-map ${mapText} (read back: ${back.fanMaps.length} maps): no kernel Fan patch`;
  } catch (e) {
    evidence = `reading the probe device ${name} back failed: ${(e as Error).message}`;
  } finally {
    const e = removeDevice(io, name);
    if (e) leftovers.push(`${name} (${e})`);
  }
  return { proven, evidence, hint, leftovers, staleRemoved };
}

/** Deletes a probe device; undefined when gone (also when it was gone already), else why not. */
function removeDevice(io: FanProbeIo, name: string): string | undefined {
  try {
    const ack = parseAck(io.request(deleteLinkMessage(name, 3)));
    if (ack.errno === 0 || ack.errno === constants.errno.ENODEV) return undefined;
    return `RTM_DELLINK: ${errnoName(ack.errno)}${ack.message ? ` "${ack.message}"` : ''}`;
  } catch (e) {
    return `RTM_DELLINK: ${(e as Error).message}`;
  }
}
