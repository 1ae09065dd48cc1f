// The up-front privilege check of the verbs that need root. What the kernel
// checks is capabilities, not the uid: a root process started with
// `setpriv --bounding-set -net_raw` (or a container's root) has uid 0 and
// still cannot open a raw socket, and a service with AmbientCapabilities=
// needs no uid 0. So the check reads the effective set (CapEff in
// /proc/self/status, proc(5)) and names what is missing.
import { readFileSync } from 'node:fs';
import type { Capability, VerbSpec } from './options.js';

/** Bit numbers from linux/capability.h. */
const BITS: Record<Capability, bigint> = { CAP_DAC_OVERRIDE: 1n, CAP_NET_ADMIN: 12n, CAP_NET_RAW: 13n, CAP_SYS_ADMIN: 21n };

/** The effective capability set from /proc/PID/status text; undefined when the line is absent. */
export function effectiveCaps(status: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-f]+)\s*$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/**
 * The capabilities of `needed` that the process lacks. Root owns fand's
 * files, so uid 0 needs no CAP_DAC_OVERRIDE to reach them.
 */
export function missingCaps(needed: readonly Capability[], eff: bigint, euid: number): Capability[] {
  return needed.filter((c) => !((eff >> BITS[c]) & 1n) && !(c === 'CAP_DAC_OVERRIDE' && euid === 0));
}

/** The message for a verb this process may not run, or undefined when it may (or /proc cannot say). */
export function privilegeProblem(verb: VerbSpec, status = readStatus(), euid = process.geteuid?.() ?? 0): string | undefined {
  if (!verb.needs || status === undefined) return undefined;
  const eff = effectiveCaps(status);
  if (eff === undefined) return undefined;
  const missing = missingCaps(verb.needs.caps, eff, euid);
  if (missing.length === 0) return undefined;
  return `fand must run as root (${verb.needs.caps.join(', ')}): 'fand ${verb.name}' needs it because ${verb.needs.why}; `
    + `this process (uid ${euid}) lacks ${missing.join(', ')}. Run it as root (sudo fand ${verb.name} ...) or as the fand service`;
}

function readStatus(): string | undefined {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
}
