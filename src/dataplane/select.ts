// Choosing the dataplane: the fastest one the kernel allows, and why the
// faster ones were not taken. Probing (files, modprobe) is at the edge;
// the choice itself is a pure function over what was found.
import { access } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import type { DataplaneMode } from './dataplane.js';

export interface KernelFacts {
  /** /proc/sys/net/fan/version exists: Canonical's Fan patch is in the kernel. */
  readonly fanPatch: boolean;
  /** The ipip module is loaded or loadable (tunl0 can exist). */
  readonly ipip: boolean;
  /** /dev/net/tun exists. */
  readonly tun: boolean;
  /** What was tried, for the log. */
  readonly notes: readonly string[];
}

export interface Choice {
  readonly mode: DataplaneMode;
  readonly reason: string;
}

export class DataplaneError extends Error {}

export function chooseDataplane(requested: DataplaneMode | 'auto', k: KernelFacts): Choice {
  const why = {
    'kernel-fan': k.fanPatch ? undefined : '/proc/sys/net/fan/version absent (no kernel Fan patch)',
    'kernel-ipip': k.ipip ? undefined : 'ipip module not available',
    userspace: k.tun ? undefined : '/dev/net/tun absent (no TUN support)',
  } as Record<DataplaneMode, string | undefined>;
  const order: DataplaneMode[] = ['kernel-fan', 'kernel-ipip', 'userspace'];
  const cannot = (m: DataplaneMode) => why[m];

  if (requested !== 'auto') {
    const no = cannot(requested);
    if (no) throw new DataplaneError(`--dataplane ${requested}: this host cannot run it: ${no}`);
    return { mode: requested, reason: `forced by --dataplane ${requested}` };
  }
  const skipped: string[] = [];
  for (const m of order) {
    const no = cannot(m);
    if (!no) return { mode: m, reason: skipped.length ? `${skipped.join('; ')}: ${m}` : `${m} available` };
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
