// Command-line parsing: verbs, options and the fan specifications they give.
// Usage errors are UsageError (exit 2) and name the option.
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import type { FanSpec } from '../config/fanfile.js';
import { parseUnderlay } from '../config/underlay.js';
import { parseNetwork, validateIfName } from '../fan/fanmap.js';
import { DATAPLANE_MODES, type DataplaneMode } from '../dataplane/dataplane.js';
import { LOG_LEVELS } from '../log.js';
import { ENCAPS, type Encap } from '../fan/encap.js';
import type { LevelWithSilent } from 'pino';

export class UsageError extends Error {}

export const VERBS = ['run', 'map', 'plan', 'show', 'down', 'demo', 'integrate', 'install-service', 'help'] as const;
export type Verb = (typeof VERBS)[number];

const OPTIONS = {
  overlay: { type: 'string', multiple: true },
  underlay: { type: 'string', multiple: true },
  config: { type: 'string' },
  dhcp: { type: 'boolean' },
  'host-reserve': { type: 'string' },
  bridge: { type: 'string' },
  mtu: { type: 'string' },
  workers: { type: 'string' },
  dataplane: { type: 'string' },
  encap: { type: 'string' },
  'vxlan-port': { type: 'string' },
  vni: { type: 'string' },
  'no-source-check': { type: 'boolean' },
  'no-nat': { type: 'boolean' },
  'no-direct-send': { type: 'boolean' },
  metrics: { type: 'string' },
  'runtime-dir': { type: 'string' },
  'log-level': { type: 'string' },
  json: { type: 'boolean' },
  force: { type: 'boolean' },
  hosts: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface Args {
  readonly verb: Verb;
  readonly positionals: readonly string[];
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
  /** HOST:PORT for the Prometheus endpoint, or undefined. */
  readonly metrics: string | undefined;
  readonly runtimeDir: string | undefined;
  readonly logLevel: LevelWithSilent;
  readonly json: boolean;
  /** `down`: remove fans even while containers are attached. */
  readonly force: boolean;
  readonly hosts: number;
  readonly help: boolean;
}

function int(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} ${text}: not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`--${name} ${n}: must be between ${min} and ${max}`);
  return n;
}

export function parseCommandLine(argv: readonly string[]): Args {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const { values: v, positionals } = parsed;
  let verb: Verb = 'run';
  let rest = positionals;
  if (positionals.length > 0) {
    if (!(VERBS as readonly string[]).includes(positionals[0]!)) {
      throw new UsageError(`unknown command '${positionals[0]}' (commands: ${VERBS.join(', ')})`);
    }
    verb = positionals[0] as Verb;
    rest = positionals.slice(1);
  }
  const dataplane = v.dataplane ?? 'auto';
  if (dataplane !== 'auto' && !(DATAPLANE_MODES as readonly string[]).includes(dataplane)) {
    throw new UsageError(`--dataplane ${dataplane}: must be auto, ${DATAPLANE_MODES.join(', ')}`);
  }
  const encap = v.encap ?? 'ipip';
  if (!(ENCAPS as readonly string[]).includes(encap)) throw new UsageError(`--encap ${encap}: must be ${ENCAPS.join(' or ')}`);
  if (encap !== 'vxlan' && (v['vxlan-port'] !== undefined || v.vni !== undefined)) {
    throw new UsageError(`--${v.vni !== undefined ? 'vni' : 'vxlan-port'} applies to VXLAN fans only: add --encap vxlan`);
  }
  const logLevel = v['log-level'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`--log-level ${logLevel}: must be one of ${LOG_LEVELS.join(', ')}`);
  return {
    verb,
    positionals: rest,
    overlays: v.overlay ?? [],
    underlays: v.underlay ?? [],
    config: v.config,
    dhcp: v.dhcp ?? false,
    hostReserve: int('host-reserve', v['host-reserve'], 1, 1 << 24),
    bridge: v.bridge,
    mtu: int('mtu', v.mtu, 576, 65515),
    workers: int('workers', v.workers, 1, 64) ?? Math.min(availableParallelism(), 8),
    dataplane: dataplane as DataplaneMode | 'auto',
    encap: encap as Encap,
    vxlanPort: int('vxlan-port', v['vxlan-port'], 1, 65535),
    vni: int('vni', v.vni, 0, 0xffffff),
    checkInnerSource: !(v['no-source-check'] ?? false),
    nat: !(v['no-nat'] ?? false),
    directSend: !(v['no-direct-send'] ?? false),
    metrics: checkListen(v.metrics),
    runtimeDir: v['runtime-dir'],
    logLevel: logLevel as LevelWithSilent,
    json: v.json ?? false,
    force: v.force ?? false,
    hosts: int('hosts', v.hosts, 2, 8) ?? 3,
    help: v.help ?? false,
  };
}

function checkListen(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const m = /^(.*):(\d+)$/.exec(text);
  if (!m || !m[1] || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new UsageError(`--metrics ${text}: give HOST:PORT, e.g. 127.0.0.1:9478`);
  return text;
}

/** The fans given on the command line (--overlay/--underlay pairs), or none. */
export function fansFromArgs(a: Args): FanSpec[] {
  if (a.overlays.length !== a.underlays.length) {
    throw new UsageError(`give --overlay and --underlay in pairs (got ${a.overlays.length} --overlay, ${a.underlays.length} --underlay)`);
  }
  if (a.overlays.length > 1 && a.bridge) throw new UsageError('--bridge names one bridge: it cannot be used with several fans');
  if (a.bridge) validateIfName(a.bridge, '--bridge');
  return a.overlays.map((o, i) => ({
    overlay: withOption('--overlay', () => parseNetwork(o, 'overlay')),
    underlay: withOption('--underlay', () => parseUnderlay(a.underlays[i]!)),
    dhcp: a.dhcp,
    hostReserve: a.hostReserve ?? 1,
    bridge: a.bridge,
    off: false,
    source: 'command line',
    ...(a.encap === 'vxlan' ? { encap: a.encap, vxlanPort: a.vxlanPort, vni: a.vni } : {}),
  }));
}

function withOption<T>(opt: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError(`${opt}: ${(e as Error).message}`);
  }
}

export const HELP: Record<Verb, string> = {
  run: `fand [run] --overlay CIDR --underlay UNDERLAY [options]
fand [run] --config FILE [options]

Runs the Fan daemon: sets up the fan bridge, its address, MTU, routes and
forwarding, picks the fastest dataplane this kernel allows, and forwards
until SIGTERM/SIGINT, then removes everything it created.

UNDERLAY is A.B.C.D/LEN, A.B.C.D (LEN 16), IFACE, IFACE/LEN or default[/LEN].
With neither --overlay nor --config, /etc/network/fan is read.

Options:
  --overlay CIDR          overlay network, e.g. 250.0.0.0/8 (repeat with --underlay for several fans)
  --underlay UNDERLAY     underlay network or interface, e.g. eth0/16
  --config FILE           a file in /etc/network/fan format
  --host-reserve N        addresses .1..N of the slice kept for the host (default 1)
  --bridge NAME           bridge name (default fan-A-B-C from the slice)
  --dhcp                  hand out addresses on the bridge with dnsmasq
  --no-nat                do not masquerade traffic from the fan to the rest of the world
  --metrics HOST:PORT     serve Prometheus metrics there
  --encap ipip|vxlan      how packets cross the underlay (default ipip; vxlan: LXD's VXLAN fan, UDP)
  --vxlan-port N          VXLAN fans: UDP port (default 8472, the Linux vxlan default)
  --vni N                 VXLAN fans: VNI (default: overlay network address >> 8, as LXD)
  --mtu N                 fan MTU (default: underlay interface MTU - 20 for ipip, - 50 for vxlan)
  --workers N             userspace dataplane worker threads (default: CPUs, at most 8)
  --dataplane MODE        auto (default), kernel-fan, kernel-ipip or userspace
  --no-source-check       accept inner sources outside the sender's slice (as the kernel Fan does)
  --no-direct-send        userspace: send all IPIP through the kernel's IP output path (netfilter
                          OUTPUT/POSTROUTING see it), not straight to resolved next hops
  --runtime-dir DIR       control socket and state (default $RUNTIME_DIRECTORY or /run/fand)
  --log-level LEVEL       fatal, error, warn, info (default), debug, trace, silent
`,
  map: `fand map --overlay CIDR --underlay UNDERLAY [--encap ipip|vxlan] ADDRESS [--json]

For an overlay ADDRESS, prints the underlay host it lives on. For an underlay
ADDRESS, prints its slice, bridge name and bridge address.
`,
  plan: `fand plan [run options] [--json]

Prints everything the daemon would configure on this host (devices, MTUs,
addresses, routes, sysctls, dataplane and why), changing nothing.
`,
  show: `fand show [--json] [--runtime-dir DIR]

Shows the fans of the daemon running in this network namespace, its
dataplane and its counters. Needs root.
`,
  down: `fand down [--force] [--runtime-dir DIR]

Removes what fand keeps on this host after it stopped: the fans whose
bridges had containers attached (a clean stop leaves those in place so the
containers keep their addresses, and the next start adopts them), or what a
killed fand left. Refuses while fand runs here, and while a fan's bridge
has ports, naming them; --force removes them anyway, cutting the
containers off. Needs root.
`,
  demo: `fand demo [--hosts N] [--workers N] [--encap ipip|vxlan]

Builds N hosts (default 3) in network namespaces on one underlay bridge, each
running fand with two containers, pings every pair, moves data across with a
checksum, prints what it saw and removes everything.
`,
  integrate: `fand integrate docker|lxd|cni [run options] [--json]

Prints what a container engine needs to use this host's fan: the
'docker network create' command, an LXD profile, or a CNI conflist.
`,
  'install-service': `fand install-service [UNIT-DIR]

Installs systemd/fand.service as UNIT-DIR/fand.service (default
/etc/systemd/system), pointing at this fand, and tells systemd to reload.
Configure fans in /etc/network/fan, then: systemctl enable --now fand
`,
  help: `fand — Fan networking for every Linux host

Commands: run (default), map, plan, show, down, demo, integrate, install-service, help. 'fand COMMAND --help' for each.
`,
};
