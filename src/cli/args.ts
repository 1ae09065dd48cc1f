// Command-line parsing, driven by the tables in options.ts. Node's parseArgs
// splits the words (--name=value, -h, --); fand checks them against the
// tables itself, so that every mistake is a UsageError (exit 2) in fand's
// words, naming the option and the fix, with the verb's usage.
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import type { FanSpec } from '../config/fanfile.js';
import { parseUnderlay } from '../config/underlay.js';
import { parseNetwork, validateIfName } from '../fan/fanmap.js';
import type { DataplaneMode } from '../dataplane/dataplane.js';
import type { LogFormat } from '../log.js';
import type { Encap } from '../fan/encap.js';
import type { LevelWithSilent } from 'pino';
import { OPTIONS, VERB_NAMES, optionLabel, optionSpec, verbSpec, type OptionSpec, type VerbName } from './options.js';

export { VERB_NAMES as VERBS };
export type Verb = VerbName;

/** Bad input on the command line. `verb` says whose usage to show with it. */
export class UsageError extends Error {
  constructor(message: string, readonly verb?: Verb) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Every option's value as given: strings (lists for repeatable options), true for flags. */
export type Values = Readonly<Record<string, string | readonly string[] | true | undefined>>;

export interface Args {
  readonly verb: Verb;
  /** The verb was named (`fand run ...`), not implied (`fand --overlay ...`). */
  readonly verbGiven: boolean;
  readonly positionals: readonly string[];
  /** The options as given, by long name (for options read in one place only). */
  readonly values: Values;
  readonly overlays: readonly string[];
  readonly underlays: readonly string[];
  readonly config: string | undefined;
  readonly dhcp: boolean;
  readonly hostReserve: number | undefined;
  readonly bridge: string | undefined;
  readonly mtu: number | undefined;
  readonly workers: number;
  readonly dataplane: DataplaneMode | 'auto';
  /** How the fans given with --overlay cross the underlay (default ipip). */
  readonly encap: Encap;
  readonly vxlanPort: number | undefined;
  readonly vni: number | undefined;
  readonly checkInnerSource: boolean;
  readonly nat: boolean;
  /** Userspace dataplane: send to resolved next hops through AF_PACKET (default on; --no-direct-send). */
  readonly directSend: boolean;
  /** ebpf dataplane: decapsulated packets straight to containers' ports (default on; --no-port-redirect). */
  readonly portRedirect: boolean;
  /** HOST:PORT for the Prometheus endpoint, or undefined. */
  readonly metrics: string | undefined;
  readonly runtimeDir: string | undefined;
  readonly logLevel: LevelWithSilent;
  /** Undefined: text on a terminal, JSON otherwise. */
  readonly logFormat: LogFormat | undefined;
  readonly json: boolean;
  /** `down`: remove fans even while containers are attached. */
  readonly force: boolean;
  readonly hosts: number;
  readonly help: boolean;
  readonly version: boolean;
}

/** parseArgs' view of the table: every option known, so values are split off correctly. */
const LEXER_OPTIONS = Object.fromEntries(OPTIONS.map((o) => [o.name, {
  type: o.arg ? 'string' as const : 'boolean' as const,
  ...(o.short ? { short: o.short } : {}),
  multiple: true,
}]));

/** Levenshtein distance, for "did you mean": one small function, no dependency. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest name in `names` to `word`, if it is close enough to be a typo. */
export function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = n.startsWith(word) && word.length >= 3 ? 0 : distance(word, n);
    if (d < bestD) { best = n; bestD = d; }
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function unknownOption(raw: string, verb: Verb | undefined): UsageError {
  const name = raw.replace(/^-+/, '').replace(/=.*$/, '');
  const names = OPTIONS.filter((o) => !verb || o.verbs.includes(verb)).map((o) => o.name);
  const guess = raw.startsWith('--') ? closest(name, names) : undefined;
  const other = optionSpec(name);
  if (other && verb && raw.startsWith('--')) {
    return new UsageError(`option '--${name}' is not an option of '${verb}' (it is one of: ${other.verbs.join(', ')})`, verb);
  }
  return new UsageError(`unknown option '${raw.replace(/=.*$/, '')}'${guess ? ` (did you mean --${guess}?)` : ''}`, verb);
}

/** The verb: the first word that is not an option or an option's value; `run` when there is none. */
function findVerb(tokens: ReturnType<typeof parseArgs>['tokens']): Verb {
  const first = tokens?.find((t) => t.kind === 'positional');
  if (!first || first.kind !== 'positional') return 'run';
  if ((VERB_NAMES as readonly string[]).includes(first.value)) return first.value as Verb;
  const guess = closest(first.value, VERB_NAMES);
  throw new UsageError(`unknown command '${first.value}'${guess ? ` (did you mean '${guess}'?)` : ''}; 'fand help' lists the commands (${VERB_NAMES.join(', ')})`);
}

export function parseCommandLine(argv: readonly string[]): Args {
  const { tokens } = parseArgs({ args: [...argv], options: LEXER_OPTIONS, allowPositionals: true, strict: false, tokens: true });
  // Unknown options first: a value after one is not a verb.
  const unknown = tokens.find((t) => t.kind === 'option' && !optionSpec(t.name));
  let verb: Verb | undefined;
  try {
    verb = findVerb(tokens);
  } catch (e) {
    // The word after an unknown option is taken for a verb: the option is the mistake.
    if (unknown?.kind === 'option') { const u = unknownOption(unknown.rawName, undefined); throw new UsageError(u.message, 'run'); }
    throw e;
  }
  const helpWanted = tokens.some((t) => t.kind === 'option' && t.name === 'help');
  if (unknown?.kind === 'option' && !helpWanted) throw unknownOption(unknown.rawName, verb);

  const values: Record<string, string | string[] | true> = {};
  const positionals: string[] = [];
  let verbSeen = false;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      if (!verbSeen && t.value === verb) verbSeen = true;
      else positionals.push(t.value);
      continue;
    }
    const o = optionSpec(t.name);
    if (!o) continue; // only with --help
    if (!helpWanted) checkOption(o, t, verb);
    if (!o.arg) { values[o.name] = true; continue; }
    const v = t.value ?? '';
    if (o.repeat) ((values[o.name] ??= []) as string[]).push(v);
    else if (values[o.name] !== undefined && !helpWanted) throw new UsageError(`--${o.name} given twice (${values[o.name]} and ${v}); give it once`, verb);
    else values[o.name] = v;
  }
  if (helpWanted || values['version']) return toArgs(verb, verbSeen, positionals, values);
  const arg = verbSpec(verb).arg;
  if (!arg && positionals.length > 0) {
    throw new UsageError(`'${verb}' takes no argument, but '${positionals[0]}' was given`, verb);
  }
  if (arg && positionals.length > 1) throw new UsageError(`'${verb}' takes one ${arg.name}; unexpected '${positionals[1]}'`, verb);
  if (arg?.required && positionals.length === 0) {
    throw new UsageError(`'${verb}' needs ${arg.name}${arg.choices ? ` (${arg.choices.join(', ')})` : ''}`, verb);
  }
  if (arg?.choices && positionals[0] !== undefined && !arg.choices.includes(positionals[0])) {
    const what = arg.name.toLowerCase();
    throw new UsageError(`${verb}: unknown ${what} '${positionals[0]}' (${what}s: ${arg.choices.join(', ')})`, verb);
  }
  return toArgs(verb, verbSeen, positionals, values);
}

type OptionToken = Extract<NonNullable<ReturnType<typeof parseArgs>['tokens']>[number], { kind: 'option' }>;

function checkOption(o: OptionSpec, t: OptionToken, verb: Verb): void {
  const flag = `--${o.name}`;
  if (!o.verbs.includes(verb)) throw unknownOption(t.rawName, verb);
  if (!o.arg) {
    if (t.value !== undefined) throw new UsageError(`${flag} takes no value (got ${flag}=${t.value})`, verb);
    return;
  }
  // parseArgs takes the next word as the value whatever it is; a word that
  // starts with "-" is the next option, so this one was given no value.
  if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')) || t.value === '') {
    throw new UsageError(`${flag} needs a value: ${optionLabel(o)}${o.choices ? ` (${o.choices.join(', ')})` : ''}`, verb);
  }
  if (o.choices && !o.choices.includes(t.value)) {
    const list = o.choices.length === 2 ? o.choices.join(' or ') : `one of ${o.choices.join(', ')}`;
    throw new UsageError(`${flag} ${t.value}: must be ${list}`, verb);
  }
  const problem = o.check?.(t.value);
  if (problem) throw new UsageError(`${flag} ${t.value}: ${problem}`, verb);
}

function toArgs(verb: Verb, verbGiven: boolean, positionals: string[], v: Record<string, string | string[] | true>): Args {
  const str = (name: string) => v[name] as string | undefined;
  const list = (name: string) => (v[name] as string[] | undefined) ?? [];
  const flag = (name: string) => v[name] === true;
  const num = (name: string) => (v[name] === undefined ? undefined : Number(v[name]));
  const encap = (str('encap') ?? 'ipip') as Encap;
  if (encap !== 'vxlan' && (v['vxlan-port'] !== undefined || v['vni'] !== undefined)) {
    throw new UsageError(`--${v['vni'] !== undefined ? 'vni' : 'vxlan-port'} applies to VXLAN fans only: add --encap vxlan`, verb);
  }
  return {
    verb,
    verbGiven,
    positionals,
    values: v,
    overlays: list('overlay'),
    underlays: list('underlay'),
    config: str('config'),
    dhcp: flag('dhcp'),
    hostReserve: num('host-reserve'),
    bridge: str('bridge'),
    mtu: num('mtu'),
    workers: num('workers') ?? Math.min(availableParallelism(), 8),
    dataplane: (str('dataplane') ?? 'auto') as DataplaneMode | 'auto',
    encap,
    vxlanPort: num('vxlan-port'),
    vni: num('vni'),
    checkInnerSource: !flag('no-source-check'),
    nat: !flag('no-nat'),
    directSend: !flag('no-direct-send'),
    portRedirect: !flag('no-port-redirect'),
    metrics: str('metrics'),
    runtimeDir: str('runtime-dir'),
    logLevel: (str('log-level') ?? 'info') as LevelWithSilent,
    logFormat: str('log-format') as LogFormat | undefined,
    json: flag('json'),
    force: flag('force'),
    hosts: num('hosts') ?? 3,
    help: flag('help'),
    version: flag('version'),
  };
}

/** The fans given on the command line (--overlay/--underlay pairs), or none. */
export function fansFromArgs(a: Args): FanSpec[] {
  if (a.overlays.length !== a.underlays.length) {
    throw new UsageError(`give --overlay and --underlay in pairs (got ${a.overlays.length} --overlay, ${a.underlays.length} --underlay)`, a.verb);
  }
  if (a.overlays.length > 1 && a.bridge) throw new UsageError('--bridge names one bridge: it cannot be used with several fans', a.verb);
  if (a.bridge) {
    try { validateIfName(a.bridge, '--bridge'); } catch (e) { throw new UsageError((e as Error).message, a.verb); }
  }
  return a.overlays.map((o, i) => ({
    overlay: withOption('--overlay', a.verb, () => parseNetwork(o, 'overlay')),
    underlay: withOption('--underlay', a.verb, () => parseUnderlay(a.underlays[i]!)),
    dhcp: a.dhcp,
    hostReserve: a.hostReserve ?? 1,
    bridge: a.bridge,
    off: false,
    source: 'command line',
    ...(a.encap === 'vxlan' ? { encap: a.encap, vxlanPort: a.vxlanPort, vni: a.vni } : {}),
  }));
}

function withOption<T>(opt: string, verb: Verb, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError(`${opt}: ${(e as Error).message}`, verb);
  }
}
