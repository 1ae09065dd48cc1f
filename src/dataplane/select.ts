// Choosing the dataplane: the fastest one the kernel allows, and why the
// faster ones were not taken. Probing (files, modprobe) is at the edge;
// the choice itself is a pure function over what was found.
import { access } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import type { DataplaneMode } from './dataplane.js';
import type { Encap } from '../fan/encap.js';

export interface KernelFacts {
  /** /proc/sys/net/fan/version exists: Canonical's Fan patch is in the kernel. */
  readonly fanPatch: boolean;
  /** The ipip module is loaded or loadable (tunl0 can exist). */
  readonly ipip: boolean;
  /** /dev/net/tun exists. */
  readonly tun: boolean;
  /** The vxlan fan map (IFLA_VXLAN_FAN_MAP) was proven by reading it back (kernel-fan for VXLAN fans). */
  readonly fanVxlan?: boolean;
  /** What was tried, for the log. */
  readonly notes: readonly string[];
}

export interface Choice {
  readonly mode: DataplaneMode;
  readonly reason: string;
  /** The encapsulations the chosen mode carries on this host (a reload may not add others). */
  readonly carries?: readonly Encap[];
}

/** What a mode can carry on a host with these facts. */
function carries(m: DataplaneMode, k: KernelFacts): Encap[] {
  if (m === 'kernel-ipip') return ['ipip'];
  if (m === 'kernel-fan') return k.fanVxlan ? ['ipip', 'vxlan'] : ['ipip'];
  return ['ipip', 'vxlan'];
}

export class DataplaneError extends Error {}

/**
 * @param encaps the encapsulations of the fans to serve: a mode must carry
 *   them all (kernel-ipip has no VXLAN; kernel-fan has it where the vxlan fan
 *   map is proven).
 */
export function chooseDataplane(requested: DataplaneMode | 'auto', k: KernelFacts, encaps: readonly Encap[] = ['ipip']): Choice {
  const vxlan = encaps.includes('vxlan');
  const why = {
    'kernel-fan': !k.fanPatch ? '/proc/sys/net/fan/version absent (no kernel Fan patch)'
      : vxlan && !k.fanVxlan ? 'no vxlan fan map on this kernel (VXLAN fans need IFLA_VXLAN_FAN_MAP, proven by reading it back)' : undefined,
    'kernel-ipip': !k.ipip ? 'ipip module not available' : vxlan ? 'kernel-ipip carries no VXLAN fans' : undefined,
    userspace: k.tun ? undefined : '/dev/net/tun absent (no TUN support)',
  } as Record<DataplaneMode, string | undefined>;
  const order: DataplaneMode[] = ['kernel-fan', 'kernel-ipip', 'userspace'];
  const cannot = (m: DataplaneMode) => why[m];

  if (requested !== 'auto') {
    const no = cannot(requested);
    if (no) throw new DataplaneError(`--dataplane ${requested}: this host cannot run it: ${no}`);
    return { mode: requested, reason: `forced by --dataplane ${requested}`, carries: carries(requested, k) };
  }
  const skipped: string[] = [];
  for (const m of order) {
    const no = cannot(m);
    if (!no) return { mode: m, reason: skipped.length ? `${skipped.join('; ')}: ${m}` : `${m} available`, carries: carries(m, k) };
    skipped.push(no);
  }
  throw new DataplaneError(`no dataplane can run on this host: ${skipped.join('; ')}`);
}

const exists = (p: string) => access(p).then(() => true, () => false);

/** @param loadModules try `modprobe ipip` first (the daemon does; `fand plan` changes nothing and does not). */
export async function probeKernel(loadModules = true): Promise<KernelFacts> {
  const notes: string[] = [];
  // /sys/module/ipip exists when ipip is a loaded module, and also when it is
  // built in (it has a parameter, log_ecn_error).
  let ipip = await exists('/sys/module/ipip');
  if (!ipip && loadModules) {
    // The Fan patch lives in the ipip module, so load it before looking for either.
    const tried = await new Promise<string>((resolve) => {
      execFile('modprobe', ['-q', 'ipip'], (err) => resolve(err ? (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'modprobe not installed' : 'modprobe ipip failed' : 'modprobe ipip loaded it'));
    });
    notes.push(tried);
    ipip = await exists('/sys/module/ipip');
  }
  const fanPatch = await exists('/proc/sys/net/fan/version');
  const tun = await exists('/dev/net/tun');
  return { fanPatch, ipip, tun, notes };
}
