// Which UDP offloads the VXLAN workers use: what the kernel has (probed on a
// throw-away socket: the probe is the only way to know, a version number
// says nothing about backports) and what the operator allows. Pure choice,
// probe at the edge.
//   UDP_SEGMENT (Linux 4.18)         a TCP super-frame's segments leave in one send
//   UDP_GRO (Linux 5.0)              datagrams of one flow arrive joined
//   getsockopt(UDP_GRO) (Linux 5.12) reads the GRO option back (to confirm it)
//   TUN_F_USO4 (Linux 6.2)           the TAP takes UDP_L4 GSO headers: inner UDP
//                                    datagrams of one flow go to the bridge joined
import { constants } from 'node:os';
import type { UdpOffloads } from './worker.js';

/** The errno of each probe, 0 when the kernel has the feature. */
export interface UdpProbe {
  readonly gso: number;
  readonly gro: number;
  readonly groGet: number;
  /** TUNSETOFFLOAD with TUN_F_USO4 on the fan's TAP; undefined when not probed (no TAP yet). */
  readonly uso?: number | undefined;
}

export interface OffloadChoice extends UdpOffloads {
  /** One sentence per feature, for the log and `fand show`. */
  readonly notes: readonly string[];
}

const errnoName = (n: number): string => Object.entries(constants.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;

/**
 * @param allowed what the operator lets fand use (FAND_UDP_OFFLOAD, default all)
 */
export function chooseOffloads(p: UdpProbe, allowed: Allowed = ALL): OffloadChoice {
  const notes: string[] = [];
  const gso = p.gso === 0 && allowed.gso;
  const gro = p.gro === 0 && allowed.gro;
  const uso = p.uso === 0 && allowed.uso;
  if (gso) notes.push('UDP_SEGMENT on: the segments of a TCP super-frame leave in one send');
  else if (p.gso !== 0) notes.push(`UDP_SEGMENT unavailable (${errnoName(p.gso)}; needs Linux 4.18): one datagram per segment`);
  else notes.push('UDP_SEGMENT turned off: one datagram per segment');
  if (gro) {
    notes.push(p.groGet === 0
      ? 'UDP_GRO on (read back with getsockopt): datagrams of one flow arrive joined'
      : `UDP_GRO on, not readable back (getsockopt: ${errnoName(p.groGet)}; needs Linux 5.12): datagrams of one flow arrive joined`);
  } else if (p.gro !== 0) {
    notes.push(`UDP_GRO unavailable (${errnoName(p.gro)}; needs Linux 5.0): datagrams arrive one by one, TCP segments are still joined for the bridge`);
  } else {
    notes.push('UDP_GRO turned off: datagrams arrive one by one, TCP segments are still joined for the bridge');
  }
  if (uso) notes.push('TAP USO on (TUN_F_USO4): UDP datagrams of one flow go to the bridge joined');
  else if (p.uso === undefined) notes.push('TAP USO not probed: UDP datagrams go to the bridge one by one');
  else if (p.uso !== 0) notes.push(`TAP USO unavailable (TUNSETOFFLOAD: ${errnoName(p.uso)}; needs Linux 6.2): UDP datagrams go to the bridge one by one`);
  else notes.push('TAP USO turned off: UDP datagrams go to the bridge one by one');
  return { gso, gro, uso, notes };
}

export interface Allowed { readonly gso: boolean; readonly gro: boolean; readonly uso: boolean }
const ALL: Allowed = { gso: true, gro: true, uso: true };

/**
 * FAND_UDP_OFFLOAD: `all` (default), `none`, or the ones that stay on,
 * comma-separated (`gso`, `gro`, `uso`: `gso,gro`); for tests and for
 * measuring what each brings.
 */
export function allowedOffloads(env: NodeJS.ProcessEnv = process.env): Allowed {
  const v = env['FAND_UDP_OFFLOAD'] ?? 'all';
  if (v === 'all') return ALL;
  if (v === 'none') return { gso: false, gro: false, uso: false };
  const words = v.split(',');
  const bad = words.find((w) => !['gso', 'gro', 'uso'].includes(w));
  if (bad !== undefined) throw new Error(`FAND_UDP_OFFLOAD=${v}: must be all, none, or some of gso,gro,uso (comma-separated)`);
  return { gso: words.includes('gso'), gro: words.includes('gro'), uso: words.includes('uso') };
}
