// Ubuntu's /etc/network/fan format. Pure parsing: the caller reads the file.
//
//   # comment
//   OVERLAY UNDERLAY [dhcp] [host-reserve N] [bridge NAME] [off]
//                    [type ipip|vxlan] [vxlan-port N] [vni N]        # comment
//
// One fan per line, fields separated by whitespace, options in any order
// after the two addresses. As Ubuntu's fanctl reads it, OVERLAY may also be
// its first octet alone (250 = 250.0.0.0/8), and `auto` (which `fanctl up -a`
// appends) may follow; cloud-init's fan module writes its `config` text here
// verbatim.

import {
  FanError,
  checkOverlay,
  makeFanMap,
  maxHostReserve,
  parseNetwork,
  sliceLenFor,
  validateIfName,
} from '../fan/fanmap.js';
import { type Cidr, formatCidr, overlaps } from '../fan/ipv4.js';
import { type UnderlaySpec, parseUnderlay, resolveUnderlayOffline } from './underlay.js';
import { checkPort, checkVni, encapSettings, parseEncap, type Encap } from '../fan/encap.js';

export interface FanSpec {
  overlay: Cidr;
  underlay: UnderlaySpec;
  dhcp: boolean;
  /** Addresses kept for the host at the start of its slice (default 1: the bridge). */
  hostReserve: number;
  bridge?: string;
  /** Listed but not brought up. */
  off: boolean;
  /** How packets cross the underlay (default ipip): `type` in the file, --encap on the command line. */
  encap?: Encap;
  /** VXLAN: UDP port (default 8472). */
  vxlanPort?: number;
  /** VXLAN: VNI (default: the overlay's network address >> 8, as LXD). */
  vni?: number;
  /** "file:line" or "command line". */
  source: string;
}

/** A configuration mistake; `file` and `line` say where, when known. */
export class ConfigError extends Error {
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, file?: string, line?: number) {
    super(message);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
  }

  /** `file:line: detail`. */
  static at(file: string, line: number, detail: string): ConfigError {
    return new ConfigError(`${file}:${line}: ${detail}`, file, line);
  }
}

/** Several configuration mistakes, reported together in file order. */
export class ConfigErrors extends ConfigError {
  readonly errors: readonly ConfigError[];
  constructor(errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'), errors[0]?.file, errors[0]?.line);
    this.name = 'ConfigErrors';
    this.errors = errors;
  }

  /** Throws the one error as it is, several as one ConfigErrors; nothing when there are none. */
  static throwIfAny(errors: readonly ConfigError[]): void {
    if (errors.length === 1) throw errors[0]!;
    if (errors.length > 1) throw new ConfigErrors(byLocation(errors));
  }
}

/** The errors one by one (a ConfigErrors holds several). */
export function eachError(e: ConfigError): readonly ConfigError[] {
  return e instanceof ConfigErrors ? e.errors : [e];
}

function byLocation(errors: readonly ConfigError[]): ConfigError[] {
  return [...errors].sort((a, b) => (a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) : 0));
}

/** The options a fan line may carry after its two addresses (fand.conf(5) documents each). */
export const FAN_LINE_OPTIONS = ['dhcp', 'host-reserve', 'bridge', 'off', 'type', 'vxlan-port', 'vni', 'auto'] as const;

const KNOWN = 'known: dhcp, host-reserve N, bridge NAME, off, type ipip|vxlan, vxlan-port N, vni N';
/** Options that take a value, and what the value is. */
const VALUED: Record<string, string> = { 'host-reserve': 'host-reserve N', bridge: 'bridge NAME', type: 'type ipip|vxlan', 'vxlan-port': 'vxlan-port N', vni: 'vni N' };

/** A file's fans and every mistake in it: each line is parsed whatever the others hold. */
export function readFanFile(text: string, fileName: string): { specs: FanSpec[]; errors: ConfigError[] } {
  const specs: FanSpec[] = [];
  const errors: ConfigError[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const hash = raw.indexOf('#');
    const tokens = (hash < 0 ? raw : raw.slice(0, hash)).split(/\s+/).filter((t) => t !== '');
    if (tokens.length === 0) continue;
    try {
      specs.push(parseFanLine(tokens, `${fileName}:${lineNo}`));
    } catch (e) {
      if (!(e instanceof FanError)) throw e;
      errors.push(ConfigError.at(fileName, lineNo, e.message));
    }
  }
  return { specs, errors };
}

/** The fans of a file; throws every mistake at once (ConfigError, or ConfigErrors for several). */
export function parseFanFile(text: string, fileName: string): FanSpec[] {
  const { specs, errors } = readFanFile(text, fileName);
  ConfigErrors.throwIfAny(errors);
  return specs;
}

/**
 * Parses one fan from its fields (a file line split on whitespace, or the
 * command line's arguments). Throws FanError; the caller adds the location.
 */
/**
 * fanctl also takes an overlay given as its first octet alone, meaning that
 * /8 ("250" is 250.0.0.0/8: networks_decode() in ubuntu-fan's fanctl).
 */
function fanctlOverlay(text: string): string {
  return /^(0|[1-9]\d{0,2})$/.test(text) ? `${text}.0.0.0/8` : text;
}

export function parseFanLine(tokens: readonly string[], source: string): FanSpec {
  const [overlayText, underlayText, ...options] = tokens;
  if (overlayText === undefined || underlayText === undefined) {
    throw new FanError('expected OVERLAY UNDERLAY [options], e.g. 250.0.0.0/8 eth0/16');
  }
  const overlay = parseNetwork(fanctlOverlay(overlayText), 'overlay');
  const underlay = parseUnderlay(underlayText);
  const spec: FanSpec = { overlay, underlay, dhcp: false, hostReserve: 1, off: false, source };
  const seen = new Set<string>();
  for (let k = 0; k < options.length; k++) {
    const opt = options[k]!;
    // `fanctl up -a` appends "auto" to every line it reads (it marks the
    // bridges `fanctl down -a` removes): a file may carry it; it changes nothing here.
    if (opt === 'auto') continue;
    if (opt === 'debug') {
      throw new FanError("option 'debug' is fanctl's dry run (it prints what it decoded and configures nothing): remove it from the line");
    }
    if (opt !== 'dhcp' && opt !== 'off' && !Object.hasOwn(VALUED, opt)) {
      throw new FanError(`unknown option '${opt}' (${KNOWN})`);
    }
    if (seen.has(opt)) throw new FanError(`duplicate option '${opt}'`);
    seen.add(opt);
    if (opt === 'dhcp') spec.dhcp = true;
    else if (opt === 'off') spec.off = true;
    else {
      const value = options[++k];
      if (value === undefined) {
        throw new FanError(`option '${opt}' needs a value (${VALUED[opt]})`);
      }
      if (opt === 'bridge') {
        validateIfName(value, 'bridge');
        spec.bridge = value;
      } else if (opt === 'type') {
        spec.encap = parseEncap(value, 'type');
      } else if (opt === 'vxlan-port' || opt === 'vni') {
        if (!/^\d{1,8}$/.test(value)) throw new FanError(`${opt} '${value}' must be a whole number`);
        if (opt === 'vni') spec.vni = checkVni(Number(value), 'vni');
        else spec.vxlanPort = checkPort(Number(value), 'vxlan-port');
      } else {
        if (!/^[1-9]\d{0,9}$/.test(value)) {
          throw new FanError(`host-reserve '${value}' must be a whole number ≥ 1`);
        }
        spec.hostReserve = Number(value);
      }
    }
  }
  // Check what can be checked without the host: the whole map when the
  // underlay is an address, the prefixes otherwise.
  const offline = resolveUnderlayOffline(underlay);
  let sliceLen: number;
  if (offline !== undefined) {
    sliceLen = makeFanMap(overlay, offline).sliceLen;
  } else {
    sliceLen = sliceLenFor(overlay.prefix, underlay.prefix);
    checkOverlay(overlay);
  }
  encapSettings({ encap: spec.encap ?? 'ipip', vxlanPort: spec.vxlanPort, vni: spec.vni }, overlay);
  const max = maxHostReserve(sliceLen);
  if (spec.hostReserve > max) {
    throw new FanError(
      `host-reserve ${spec.hostReserve} leaves no address for containers in a /${sliceLen} slice (at most ${max})`,
    );
  }
  return spec;
}

/** "file:line: what problem", or "what (command line) problem" for a fan from the command line. */
function at(source: string, what: string, problem: string): ConfigError {
  const [file, line] = locate(source);
  return file !== undefined && line !== undefined ? ConfigError.at(file, line, `${what} ${problem}`) : new ConfigError(`${what} (${source}) ${problem}`);
}

/** The file and line of a FanSpec's source ("file:line"); nothing for the command line. */
export function locate(source: string): [string | undefined, number | undefined] {
  const m = /^(.*):(\d+)$/.exec(source);
  return m ? [m[1], Number(m[2])] : [undefined, undefined];
}

/**
 * Checks fans against each other: overlays must not overlap and explicit
 * bridge names must differ. Fans marked `off` are skipped: they are not
 * brought up, so a file may keep alternatives side by side.
 */
export function checkFans(specs: readonly FanSpec[]): void {
  ConfigErrors.throwIfAny(fanConflicts(specs));
}

/** What checkFans reports, as a list: every pair of fans that clash. */
export function fanConflicts(specs: readonly FanSpec[]): ConfigError[] {
  const errors: ConfigError[] = [];
  const on = specs.filter((s) => !s.off);
  for (let j = 0; j < on.length; j++) {
    const b = on[j]!;
    for (let i = 0; i < j; i++) {
      const a = on[i]!;
      if (overlaps(a.overlay, b.overlay)) {
        errors.push(at(b.source, `overlay ${formatCidr(b.overlay)}`, `overlaps overlay ${formatCidr(a.overlay)} (${a.source}); each fan needs its own overlay`));
      }
      const ea = encapSettings({ encap: a.encap ?? 'ipip', vxlanPort: a.vxlanPort, vni: a.vni }, a.overlay);
      const eb = encapSettings({ encap: b.encap ?? 'ipip', vxlanPort: b.vxlanPort, vni: b.vni }, b.overlay);
      if (ea.encap === 'vxlan' && eb.encap === 'vxlan' && ea.vni === eb.vni && ea.port === eb.port) {
        const what = `VXLAN fans ${formatCidr(a.overlay)} (${a.source}) and ${formatCidr(b.overlay)} (${b.source}) both use VNI ${ea.vni} on port ${ea.port}; give one another vni`;
        const [file, line] = locate(b.source);
        errors.push(file !== undefined && line !== undefined ? ConfigError.at(file, line, what) : new ConfigError(what));
      }
      if (a.bridge !== undefined && a.bridge === b.bridge) {
        errors.push(at(b.source, `bridge ${b.bridge}`, `is also the bridge of ${a.source}; give each fan its own bridge name`));
      }
    }
  }
  return errors;
}
