// Reading a fan file from disk: every mistake in it reported at once, each
// with file:line, and a file that cannot be read explained in words (a
// directory, no permission), never as a bare errno.
import { readFileSync } from 'node:fs';
import { ConfigError, ConfigErrors, fanConflicts, readFanFile, type FanSpec } from './fanfile.js';
import { formatCidr } from '../fan/ipv4.js';

export const DEFAULT_CONFIG = '/etc/network/fan';

/** Why a file cannot be read, in words, with the fix. `label` names it as the user gave it. */
export function unreadable(label: string, e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT': return `${label}: no such file`;
    case 'EISDIR': return `${label}: is a directory; give the fan file itself (e.g. ${DEFAULT_CONFIG})`;
    case 'EACCES':
    case 'EPERM': return `${label}: permission denied: fand (uid ${process.getuid?.() ?? '?'}) cannot read it; run fand as root or make the file readable`;
    case 'ENOTDIR': return `${label}: a part of the path is not a directory`;
    default: return `${label}: cannot read it (${e.code ?? 'error'}: ${e.message})`;
  }
}

/**
 * The fans of the file at `path`, checked line by line and against each
 * other; throws a ConfigError (or ConfigErrors with every mistake).
 * `label` names the file in messages ("--config x" or the path).
 */
/** Told each decision made while reading the configuration (`--log-level debug`). */
export type ConfigLog = (msg: string, fields?: object) => void;

export function loadFanFile(path: string, label: string, debug?: ConfigLog): FanSpec[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(unreadable(label, e as NodeJS.ErrnoException), path);
  }
  const { specs, errors } = readFanFile(text, path);
  // Fans that parsed are still checked against each other, so one run shows every mistake.
  ConfigErrors.throwIfAny([...errors, ...fanConflicts(specs)]);
  if (specs.length === 0) {
    throw new ConfigError(`${label}: no fans in it (one per line: OVERLAY UNDERLAY [dhcp] [host-reserve N] [bridge NAME] [off], e.g. 250.0.0.0/8 eth0/16)`, path);
  }
  for (const s of specs) {
    debug?.(`${s.source}: fan ${formatCidr(s.overlay)} over underlay ${s.underlay.text}`
      + ` (${s.underlay.kind === 'cidr' ? 'an address: no interface lookup' : 'resolved against the host\'s interfaces at start-up'})`
      + `, host-reserve ${s.hostReserve}, bridge ${s.bridge ?? 'named after the slice'}${s.dhcp ? ', dhcp' : ''}${s.off ? ', off: not brought up' : ''}`, { source: s.source });
  }
  return specs;
}
