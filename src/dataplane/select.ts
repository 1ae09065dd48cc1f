// Choosing the dataplane: the fastest one the kernel allows, and why the
// faster ones were not taken. Probing (files, modprobe) is at the edge;
// the choice itself is a pure function over what was found.
import { access, readFile, readdir } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { release } from 'node:os';
import type { DataplaneMode } from './dataplane.js';
import type { Encap } from '../fan/encap.js';
import { probeFanKernel, type FanEvidence } from './kernel-fan/probe.js';
import { probeVxlanFan, type VxlanFanEvidence } from './kernel-fan/vxlan.js';
import { probeEbpf } from './ebpf/index.js';

export interface KernelFacts {
  /** A fan map put on an ipip device in this namespace read back: Canonical's Fan patch works here. */
  readonly fanPatch: boolean;
  /** What decided fanPatch, in words (kernel-fan/probe.ts). */
  readonly fanEvidence: string;
  /** The /proc/sys/net/fan/version hint, reported next to the evidence. */
  readonly fanHint?: string;
  /** The ipip module is loaded or loadable (tunl0 can exist). */
  readonly ipip: boolean;
  /** /dev/net/tun exists. */
  readonly tun: boolean;
  /** The vxlan fan map (IFLA_VXLAN_FAN_MAP) was proven by reading it back (kernel-fan for VXLAN fans). */
  readonly fanVxlan?: boolean;
  /** What decided fanVxlan, when there were VXLAN fans to probe for (kernel-fan/vxlan.ts). */
  readonly fanVxlanEvidence?: string;
  /** The vxlan probe's full result (leftovers are logged). */
  readonly fanVxlanProbe?: VxlanFanEvidence;
  /**
   * Why the ebpf dataplane cannot run here, in the kernel's words (its
   * programs were loaded to find out: src/dataplane/ebpf/index.ts
   * probeEbpf); undefined when it can.
   */
  readonly ebpf: string | undefined;
  /** What was tried, for the log. */
  readonly notes: readonly string[];
  /** The probe's full result (leftovers and stale devices removed are logged). */
  readonly fanProbe?: FanEvidence;
}

export interface Choice {
  readonly mode: DataplaneMode;
  readonly reason: string;
  /** The encapsulations the chosen mode carries on this host (a reload may not add others). */
  readonly carries?: readonly Encap[];
  /** Whether this is a Fan kernel and what proved it (shown whichever mode was chosen). */
  readonly fanEvidence?: string;
}

/** What a mode can carry on a host with these facts. */
function carries(m: DataplaneMode, k: KernelFacts): Encap[] {
  if (m === 'kernel-ipip') return ['ipip'];
  if (m === 'kernel-fan') return k.fanVxlan ? ['ipip', 'vxlan'] : ['ipip'];
  if (m === 'ebpf') return ['ipip'];
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
    'kernel-fan': !k.fanPatch ? `no kernel Fan: ${k.fanEvidence}`
      : vxlan && !k.fanVxlan ? 'no vxlan fan map on this kernel (VXLAN fans need IFLA_VXLAN_FAN_MAP, proven by reading it back)' : undefined,
    ebpf: k.ebpf !== undefined ? `ebpf: ${k.ebpf}` : vxlan ? 'ebpf carries no VXLAN fans' : undefined,
    'kernel-ipip': !k.ipip ? 'ipip module not available' : vxlan ? 'kernel-ipip carries no VXLAN fans' : undefined,
    userspace: k.tun ? undefined : '/dev/net/tun absent (no TUN support)',
  } as Record<DataplaneMode, string | undefined>;
  const fanEvidence = (k.fanHint ? `${k.fanEvidence}; ${k.fanHint}` : k.fanEvidence)
    + (k.fanVxlanEvidence ? `; vxlan fan map: ${k.fanVxlanEvidence}` : '');
  // kernel-fan first: the kernel's own Fan interoperates by definition. Then
  // ebpf, measured faster than kernel-ipip (README, Dataplanes), which also
  // cannot check inner sources.
  const order: DataplaneMode[] = ['kernel-fan', 'ebpf', 'kernel-ipip', 'userspace'];
  const cannot = (m: DataplaneMode) => why[m];

  if (requested !== 'auto') {
    const no = cannot(requested);
    if (no) throw new DataplaneError(`--dataplane ${requested}: this host cannot run it: ${no}`);
    return { mode: requested, reason: `forced by --dataplane ${requested}`, carries: carries(requested, k), fanEvidence };
  }
  const skipped: string[] = [];
  for (const m of order) {
    const no = cannot(m);
    const available = m === 'kernel-fan' ? `kernel Fan proven: ${k.fanEvidence}` : `${m} available`;
    if (!no) return { mode: m, reason: skipped.length ? `${skipped.join('; ')}: ${m}` : available, carries: carries(m, k), fanEvidence };
    skipped.push(no);
  }
  throw new DataplaneError(`no dataplane can run on this host: ${skipped.join('; ')}`);
}

const exists = (p: string) => access(p).then(() => true, () => false);

/**
 * @param loadModules try `modprobe ipip` first (the daemon does; `fand plan` changes nothing and does not).
 * @param encaps the fans' encapsulations: the vxlan fan map is probed only when one is VXLAN.
 * @param ebpf load the ebpf dataplane's programs to see whether the kernel takes them (not needed
 *   when another mode is forced: it costs a verifier run, seconds on a slow kernel).
 */
export async function probeKernel(loadModules = true, encaps: readonly Encap[] = ['ipip'], ebpf = true): Promise<KernelFacts> {
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
  const fan = await probeFan(loadModules, ipip);
  const tun = await exists('/dev/net/tun');
  const vx = encaps.includes('vxlan') ? await probeFanVxlan(loadModules, fan, notes) : undefined;
  return {
    fanPatch: fan.proven, fanEvidence: fan.evidence, fanHint: fan.hint, fanProbe: fan, ipip, tun, notes,
    ...(vx ? { fanVxlan: vx.proven, fanVxlanEvidence: vx.evidence, fanVxlanProbe: vx } : {}),
    // Loading the programs changes nothing on the host (they are freed when
    // their fds close): `fand plan` may do it too.
    ebpf: ebpf ? probeEbpf(release()) : 'not probed (another dataplane was asked for)',
  };
}

/**
 * The vxlan fan map, proven like the ipip one (kernel-fan/vxlan.ts), and only
 * on a kernel whose ipip fan map is proven. Creating a vxlan device may load
 * the vxlan module: `fand plan` probes only where it is loaded (or built in).
 */
async function probeFanVxlan(loadModules: boolean, ipip: FanEvidence, notes: string[]): Promise<VxlanFanEvidence> {
  let loaded = await exists('/sys/module/vxlan');
  if (!loaded && loadModules && ipip.proven) {
    notes.push(await new Promise<string>((resolve) => {
      execFile('modprobe', ['-q', 'vxlan'], (err) => resolve(err ? (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'modprobe not installed' : 'modprobe vxlan failed' : 'modprobe vxlan loaded it'));
    }));
    loaded = await exists('/sys/module/vxlan');
  }
  const { native } = await import('../native/index.js');
  return probeVxlanFan({
    request: (msg) => native.netlinkRequest(msg, 5000),
    linkNames: () => new Promise((resolve) => execFile('ip', ['-j', 'link', 'show'], (err, out) => {
      try { resolve(err ? [] : (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname)); } catch { resolve([]); }
    })),
    fanVxlanVersion: () => readFile('/proc/sys/net/fan/vxlan', 'utf8').then((v) => v.trim(), () => undefined),
    pidAlive: (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; } },
  }, {
    pid: process.pid, ipip, mayCreate: loaded || loadModules,
    whyNot: 'the vxlan module is not loaded and `fand plan` loads nothing (`fand run` loads it and probes)',
  });
}

/**
 * The behavioural Fan probe (kernel-fan/probe.ts) against this namespace's
 * kernel. `fand plan` (loadModules false) probes only where creating an ipip
 * device cannot load a module: ipip is loaded, or there is no ipip module to
 * load (then the failure is the answer).
 */
async function probeFan(loadModules: boolean, ipipLoaded: boolean): Promise<FanEvidence> {
  const moduleFile = !ipipLoaded && !loadModules
    && (await readdir(`/lib/modules/${release()}/kernel/net/ipv4`).catch(() => [] as string[])).some((f) => /^ipip\.ko/.test(f));
  const { native } = await import('../native/index.js');
  return probeFanKernel({
    request: (msg) => native.netlinkRequest(msg, 5000),
    linkNames: () => new Promise((resolve) => execFile('ip', ['-j', 'link', 'show'], (err, out) => {
      try { resolve(err ? [] : (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname)); } catch { resolve([]); }
    })),
    fanVersion: () => readFile('/proc/sys/net/fan/version', 'utf8').then((v) => v.trim(), () => undefined),
    pidAlive: (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; } },
  }, { pid: process.pid, mayCreate: !moduleFile, whyNot: 'the ipip module is not loaded and `fand plan` loads nothing (`fand run` loads it and probes)' });
}
