// Whether this host can run the ebpf dataplane, found without changing
// anything: the kernel's version, its clsact qdisc and cls_bpf classifier
// (read from the kernel's configuration or its modules: creating a qdisc to
// find out would change the host), and the programs themselves, loaded and
// freed again (the verifier's answer, in its own words).
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** What the host tells about the two tc pieces the dataplane attaches with. */
export interface TcSources {
  /** The kernel's .config (/proc/config.gz, or /boot/config-RELEASE), when there is one. */
  readonly config: string | undefined;
  /** Modules loaded now (/sys/module/NAME exists). */
  readonly loaded: ReadonlySet<string>;
  /** Modules the kernel can load on demand (a .ko under /lib/modules/RELEASE), and built-ins (modules.builtin). */
  readonly available: ReadonlySet<string>;
  readonly builtin: ReadonlySet<string>;
}

const PIECES = [
  { module: 'sch_ingress', config: 'CONFIG_NET_SCH_INGRESS', what: 'the clsact qdisc' },
  { module: 'cls_bpf', config: 'CONFIG_NET_CLS_BPF', what: 'the cls_bpf classifier' },
] as const;

/**
 * Why clsact or cls_bpf cannot be used, or undefined when both can. Pure.
 * A piece is usable when it is built in, loaded, or a module the kernel can
 * load (request_module on first use: sch_ingress is aliased sch_clsact).
 */
export function tcMissing(s: TcSources): string | undefined {
  for (const p of PIECES) {
    const set = s.config === undefined ? undefined : new RegExp(`^${p.config}=([ym])$`, 'm').exec(s.config)?.[1];
    if (set === 'y' || s.loaded.has(p.module) || s.builtin.has(p.module) || s.available.has(p.module)) continue;
    if (set === 'm') return `${p.what} is a module (${p.module}) that is neither loaded nor installed for this kernel`;
    if (s.config !== undefined) return `the kernel has no ${p.what.replace(/^the /, '')} (${p.config} is not set)`;
    return `cannot tell whether the kernel has ${p.what} (${p.config}): no /proc/config.gz or /boot/config-*, and ${p.module} is neither loaded nor in /lib/modules`;
  }
  return undefined;
}

/** Reads TcSources from the host (what it cannot read it leaves empty). */
export function readTcSources(release: string): TcSources {
  let config: string | undefined;
  try { config = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8'); } catch { /* not there */ }
  if (config === undefined) { try { config = readFileSync(`/boot/config-${release}`, 'utf8'); } catch { /* not there */ } }
  const mods = `/lib/modules/${release}`;
  const builtin = new Set<string>();
  try {
    for (const line of readFileSync(`${mods}/modules.builtin`, 'utf8').split('\n')) {
      const m = /([^/]+)\.ko$/.exec(line.trim());
      if (m) builtin.add(m[1]!.replace(/-/g, '_'));
    }
  } catch { /* not there */ }
  const available = new Set<string>();
  for (const p of PIECES) {
    if (['.ko', '.ko.xz', '.ko.zst', '.ko.gz'].some((ext) => existsSync(`${mods}/kernel/net/sched/${p.module}${ext}`))) available.add(p.module);
  }
  const loaded = new Set(PIECES.map((p) => p.module).filter((m) => existsSync(`/sys/module/${m}`)));
  return { config, loaded, available, builtin };
}

/**
 * Why this host cannot run the ebpf dataplane, in the kernel's words;
 * undefined when it can. `load` loads the programs and returns what closes them.
 */
export function probeEbpf(release: string, load: () => { close(): void }, tc: TcSources = readTcSources(release)): string | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (m && (Number(m[1]) < 5 || (Number(m[1]) === 5 && Number(m[2]) < 10))) {
    return `kernel ${release} is older than 5.10 (bpf_redirect_neigh and bpf_redirect_peer)`;
  }
  const missing = tcMissing(tc);
  if (missing) return missing;
  try {
    load().close();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
