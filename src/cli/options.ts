// The command line as data: every verb and every option, once. The parser
// (args.ts), the help texts (help.ts), the man page (manpage.ts) and the bash
// completion (completion.ts) all read these two tables, so adding an option
// is one entry in OPTIONS (and reading its value where it is used).
import { DATAPLANE_MODES } from '../dataplane/dataplane.js';
import { INTEGRATIONS } from '../integrate/index.js';
import { LOG_FORMATS, LOG_LEVELS } from '../log.js';
import { ENCAPS } from '../fan/encap.js';

/** What bash completes for an option's value or a verb's argument. */
export type Completion = 'interface' | 'underlay' | 'file' | 'directory' | 'none';

/** Capabilities Linux must grant the process (see capabilities(7)). */
export type Capability = 'CAP_NET_ADMIN' | 'CAP_NET_RAW' | 'CAP_SYS_ADMIN' | 'CAP_DAC_OVERRIDE';

export interface OptionSpec {
  /** Long name without the leading "--". */
  readonly name: string;
  /** One letter, without the "-". */
  readonly short?: string;
  /** The value's name in help texts ("CIDR"); absent for a flag, which takes no value. */
  readonly arg?: string;
  /** May be given several times (each value kept, in order). */
  readonly repeat?: boolean;
  /** The verbs that accept it. */
  readonly verbs: readonly VerbName[];
  /** One line: what it does. */
  readonly help: string;
  /** What applies without it, in words ("auto: the fastest this kernel allows"). */
  readonly default?: string;
  /** The only values it accepts: validated, listed in the help, completed by bash. */
  readonly choices?: readonly string[];
  /** What bash completes for its value when there are no choices. */
  readonly complete?: Completion;
  /** Checks a value; returns what is wrong ("not a whole number"), or undefined. */
  readonly check?: (value: string) => string | undefined;
}

export interface VerbSpec {
  readonly name: VerbName;
  /** One line for `fand --help`. */
  readonly summary: string;
  /** Synopsis lines, without the leading "fand ". */
  readonly usage: readonly string[];
  /** What it does: paragraphs separated by blank lines (help and man page). */
  readonly description: string;
  /** Its positional argument, if it takes one. */
  readonly arg?: { readonly name: string; readonly choices?: readonly string[]; readonly complete?: Completion; readonly required?: boolean };
  /** Checked before anything else: what it needs and why. */
  readonly needs?: { readonly caps: readonly Capability[]; readonly why: string };
}

export const VERB_NAMES = ['run', 'plan', 'show', 'down', 'map', 'integrate', 'demo', 'install-service', 'completion', 'version', 'help'] as const;
export type VerbName = (typeof VERB_NAMES)[number];

/** The verbs that take a fan configuration: `plan` and `integrate` accept run's whole command line. */
const RUN_LIKE = ['run', 'plan', 'integrate'] as const satisfies readonly VerbName[];
const ALL = VERB_NAMES;

/** Root's network capabilities: what netlink changes, raw IPIP sockets and TUN need. */
const NET_CAPS = ['CAP_NET_ADMIN', 'CAP_NET_RAW'] as const satisfies readonly Capability[];

function wholeNumber(min: number, max: number): (v: string) => string | undefined {
  return (v) => {
    if (!/^\d+$/.test(v)) return 'not a whole number';
    const n = Number(v);
    return n < min || n > max ? `must be between ${min} and ${max}` : undefined;
  };
}

function hostPort(v: string): string | undefined {
  const m = /^(.*):(\d+)$/.exec(v);
  return !m || !m[1] || Number(m[2]) < 1 || Number(m[2]) > 65535 ? 'give HOST:PORT, e.g. 127.0.0.1:9478' : undefined;
}

export const OPTIONS: readonly OptionSpec[] = [
  { name: 'overlay', arg: 'CIDR', repeat: true, verbs: [...RUN_LIKE, 'map'], complete: 'none',
    help: 'overlay network, e.g. 250.0.0.0/8 (repeat with --underlay for several fans)' },
  { name: 'underlay', arg: 'UNDERLAY', repeat: true, verbs: [...RUN_LIKE, 'map'], complete: 'underlay',
    help: 'underlay: A.B.C.D/LEN, A.B.C.D, IFACE, IFACE/LEN or default[/LEN], e.g. eth0/16' },
  { name: 'config', arg: 'FILE', verbs: RUN_LIKE, complete: 'file',
    help: 'the fans of a file in /etc/network/fan format', default: '/etc/network/fan, without --overlay' },
  { name: 'dhcp', verbs: RUN_LIKE, help: 'hand out addresses on the fan bridge with dnsmasq' },
  { name: 'host-reserve', arg: 'N', verbs: RUN_LIKE, check: wholeNumber(1, 1 << 24), complete: 'none',
    help: 'addresses .1..N of the slice kept for the host', default: '1: the bridge' },
  { name: 'bridge', arg: 'NAME', verbs: RUN_LIKE, complete: 'none',
    help: 'fan bridge name (one fan only)', default: 'fan-A-B-C after the slice' },
  { name: 'encap', arg: 'ENCAP', verbs: [...RUN_LIKE, 'map', 'demo'], choices: ENCAPS,
    help: 'how packets cross the underlay (vxlan: LXD\'s VXLAN fan, over UDP)', default: 'ipip' },
  { name: 'vxlan-port', arg: 'N', verbs: [...RUN_LIKE, 'map'], check: wholeNumber(1, 65535), complete: 'none',
    help: 'VXLAN fans: the UDP port', default: '8472, the Linux vxlan default' },
  { name: 'vni', arg: 'N', verbs: [...RUN_LIKE, 'map'], check: wholeNumber(0, 0xffffff), complete: 'none',
    help: 'VXLAN fans: the VNI', default: 'the overlay network address >> 8, as LXD' },
  { name: 'mtu', arg: 'N', verbs: RUN_LIKE, check: wholeNumber(576, 65515), complete: 'none',
    help: 'fan MTU', default: 'the underlay interface\'s MTU - 20 for ipip, - 50 for vxlan' },
  { name: 'workers', arg: 'N', verbs: [...RUN_LIKE, 'demo'], check: wholeNumber(1, 64), complete: 'none',
    help: 'userspace dataplane worker threads (ebpf: its slow path\'s)', default: 'one per CPU, at most 8' },
  { name: 'dataplane', arg: 'MODE', verbs: RUN_LIKE, choices: ['auto', ...DATAPLANE_MODES],
    help: 'how packets move', default: 'auto: the fastest this kernel allows' },
  { name: 'no-source-check', verbs: RUN_LIKE,
    help: 'accept inner sources outside the sender\'s slice (as the kernel Fan does)' },
  { name: 'no-nat', verbs: RUN_LIKE, help: 'do not masquerade traffic from the fan to the rest of the world' },
  { name: 'no-direct-send', verbs: RUN_LIKE,
    help: 'userspace: send all IPIP through the kernel\'s output path (netfilter sees it)' },
  { name: 'no-port-redirect', verbs: RUN_LIKE,
    help: 'ebpf: deliver decapsulated packets through the fan bridge (FORWARD rules see them), not straight to the container' },
  { name: 'metrics', arg: 'HOST:PORT', verbs: RUN_LIKE, check: hostPort, complete: 'none',
    help: 'serve Prometheus metrics at http://HOST:PORT/metrics' },
  { name: 'runtime-dir', arg: 'DIR', verbs: [...RUN_LIKE, 'show', 'down'], complete: 'directory',
    help: 'control socket and state', default: '$RUNTIME_DIRECTORY, else /run/fand' },
  { name: 'log-level', arg: 'LEVEL', verbs: RUN_LIKE, choices: LOG_LEVELS,
    help: 'least important messages logged', default: 'info; debug adds every command run' },
  { name: 'log-format', arg: 'FORMAT', verbs: RUN_LIKE, choices: LOG_FORMATS,
    help: 'log lines for people or machines', default: 'text on a terminal, json otherwise' },
  { name: 'json', verbs: ['plan', 'show', 'map', 'integrate'], help: 'print JSON instead of text' },
  { name: 'force', verbs: ['down'], help: 'remove the fans even while containers are attached, cutting them off' },
  { name: 'hosts', arg: 'N', verbs: ['demo'], check: wholeNumber(2, 8), complete: 'none', help: 'hosts to build', default: '3' },
  { name: 'root', arg: 'DIR', verbs: ['install-service'], complete: 'directory',
    help: 'install under DIR (for images and packaging)', default: '/' },
  { name: 'help', short: 'h', verbs: ALL, help: 'show this help' },
  { name: 'version', short: 'V', verbs: ALL, help: 'print fand\'s version' },
];

export const VERBS: readonly VerbSpec[] = [
  {
    name: 'run',
    summary: 'run the daemon (the default command)',
    usage: ['[run] --overlay CIDR --underlay UNDERLAY [OPTIONS]', '[run] [--config FILE] [OPTIONS]'],
    description: 'Runs the Fan daemon: sets up the fan bridge, its address, MTU, routes and forwarding, picks the '
      + 'fastest dataplane this kernel allows, and forwards until SIGTERM or SIGINT. SIGHUP re-reads the configuration.\n\n'
      + 'With neither --overlay nor --config, the fans of /etc/network/fan are run. '
      + 'Everything is checked before the host is touched: bad input exits 2 and changes nothing.',
    needs: { caps: NET_CAPS, why: 'it configures devices, routes and sysctls and opens raw IPIP sockets' },
  },
  {
    name: 'plan',
    summary: 'print what run would configure on this host, changing nothing',
    usage: ['plan [RUN OPTIONS] [--json]'],
    description: 'Resolves the fans against this host and prints the devices, MTUs, addresses, routes, sysctls and '
      + 'dataplane that run would set up, and why. It reports the same conflicts with the host that run refuses '
      + '(a bridge name held by another device, a route the host already has) and exits 2 on them. Needs no root.',
  },
  {
    name: 'show',
    summary: 'show the running daemon\'s fans, dataplane and counters',
    usage: ['show [--json] [--runtime-dir DIR]'],
    description: 'Asks the daemon running in this network namespace, through its control socket, for its fans, '
      + 'dataplane, workers and counters.',
    needs: { caps: ['CAP_DAC_OVERRIDE'], why: 'its control socket is root-only (anyone else gets permission denied)' },
  },
  {
    name: 'down',
    summary: 'remove what fand keeps on this host after it stopped',
    usage: ['down [--force] [--runtime-dir DIR]'],
    description: 'Removes what fand keeps on this host after it stopped: the fans whose bridges had containers attached '
      + '(a clean stop leaves those in place so the containers keep their addresses, and the next start adopts them), '
      + 'or what a killed fand left. Refuses while fand runs here, and while a fan\'s bridge has ports, naming them; '
      + '--force removes them anyway, cutting the containers off.',
    needs: { caps: NET_CAPS, why: 'it removes devices, routes and sysctls fand configured' },
  },
  {
    name: 'map',
    summary: 'map an overlay address to its host, or a host to its slice',
    usage: ['map --overlay CIDR --underlay UNDERLAY [--encap ipip|vxlan] ADDRESS [--json]'],
    description: 'For an overlay ADDRESS, prints the underlay host it lives on. For an underlay host ADDRESS, prints '
      + 'its slice, bridge name and bridge address. Pure arithmetic, except that an interface UNDERLAY is looked up.',
    arg: { name: 'ADDRESS', complete: 'none', required: true },
  },
  {
    name: 'integrate',
    summary: 'print the Docker, LXD or CNI setup for this host\'s fan',
    usage: [`integrate ${INTEGRATIONS.join('|')} [RUN OPTIONS] [--json]`],
    description: 'Prints what a container engine needs to use this host\'s fan: the docker network create command '
      + '(Docker adopts fand\'s bridge), an LXD profile, or a CNI conflist. Give it the daemon\'s own options.',
    arg: { name: 'KIND', choices: INTEGRATIONS, required: true },
  },
  {
    name: 'demo',
    summary: 'build hosts in namespaces running fand, test them, clean up',
    usage: ['demo [--hosts N] [--workers N] [--encap ipip|vxlan]'],
    description: 'Builds N hosts (default 3) in network namespaces on one underlay bridge, each running fand with two '
      + 'containers, pings every pair, moves data across with a checksum, prints what it saw and removes everything.',
    needs: { caps: [...NET_CAPS, 'CAP_SYS_ADMIN'], why: 'it creates network namespaces and runs fand in them' },
  },
  {
    name: 'install-service',
    summary: 'install the systemd unit and the bash completion',
    usage: ['install-service [--root DIR]'],
    description: 'Writes /etc/systemd/system/fand.service with ExecStart pointing at this fand, and the bash '
      + 'completion to /usr/local/share/bash-completion/completions/fand, then asks systemd to reload. It refuses '
      + 'a fand or node the unit\'s sandbox would hide (under /root, /home, /run/user, /tmp or /var/tmp), and says '
      + 'how to install fand where the service can run it. Then: describe the fans in /etc/network/fan and '
      + 'systemctl enable --now fand.',
  },
  {
    name: 'completion',
    summary: 'print the bash completion script',
    usage: ['completion bash'],
    description: 'Prints the bash completion for fand. Try it with: source <(fand completion bash)',
    arg: { name: 'SHELL', choices: ['bash'], required: true },
  },
  {
    name: 'version',
    summary: 'print fand\'s version',
    usage: ['version', '--version'],
    description: 'Prints "fand" and the version of the installed package.',
  },
  {
    name: 'help',
    summary: 'list the commands, or show one command\'s help',
    usage: ['help [COMMAND]', '--help'],
    description: 'Without COMMAND, lists every command; with one, shows its usage and options (as fand COMMAND --help).',
    arg: { name: 'COMMAND', choices: VERB_NAMES },
  },
];

export function verbSpec(name: VerbName): VerbSpec {
  return VERBS.find((v) => v.name === name)!;
}

export function optionSpec(name: string): OptionSpec | undefined {
  return OPTIONS.find((o) => o.name === name || o.short === name);
}

/** The options a verb accepts, in table order. */
export function optionsOf(verb: VerbName): OptionSpec[] {
  return OPTIONS.filter((o) => o.verbs.includes(verb));
}

/** "--name ARG" (or "-h, --help"), as help texts and the man page show an option. */
export function optionLabel(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.arg ? ` ${o.arg}` : ''}`;
}

/** The option's help with its choices and default. */
export function optionHelp(o: OptionSpec): string {
  return `${o.help}${o.choices ? `: ${o.choices.join(', ')}` : ''}${o.default ? ` (default ${o.default})` : ''}`;
}
