// `docker network create` for a fan: Docker's bridge driver attached to the
// bridge fand already set up, with Docker's address management confined to
// the addresses fand leaves to containers.
import type { FanSummary } from '../plan.js';
import { formatCidr, formatIpv4, lastOf, maskOf, type Cidr, type Ipv4 } from '../fan/ipv4.js';
import { addressesOf, checkName, fanTitle, shellQuote, type FanAddresses } from './common.js';

export interface DockerNetwork {
  readonly name: string;
  /** argv, starting with 'docker'. */
  readonly args: readonly string[];
  /** The same, quoted for a POSIX shell. */
  readonly command: string;
  /** What the operator should know before running it. */
  readonly notes: readonly string[];
}

/** More auxiliary addresses than this make an unreadable command: give up a few container addresses instead. */
export const MAX_AUX_ADDRESSES = 32;

export interface DockerPool {
  readonly ipRange: Cidr;
  /** Addresses in ipRange Docker must not hand out (--aux-address). */
  readonly reserved: readonly Ipv4[];
  /** Container addresses Docker will not hand out (only when the range could not be matched exactly). */
  readonly leftOut: number;
}

/**
 * Docker's IPAM hands out the addresses of `--ip-range` except the subnet's
 * network and broadcast addresses, the gateway and any `--aux-address`
 * (libnetwork ipam: the pool bitmap pre-reserves network and broadcast; the
 * bridge driver requests the gateway). An `--ip-range` must be a CIDR, and
 * the container range FIRST-LAST usually is not one (250.3.4.2-250.3.4.254).
 * So: the smallest CIDR covering FIRST-LAST, with whatever in it Docker
 * would otherwise hand out outside FIRST-LAST reserved as auxiliary
 * addresses. With the default host-reserve 1 that CIDR is the slice and
 * nothing needs reserving; with host-reserve N it is at most the N-1
 * addresses fand keeps for the host. Past MAX_AUX_ADDRESSES, the largest
 * CIDR inside FIRST-LAST instead: exact on what Docker may use, at the cost
 * of the container addresses below it.
 */
export function dockerPool(a: FanAddresses): DockerPool {
  // Docker skips the network and broadcast addresses of --subnet: the slice's
  // on an ipip fan, the overlay's on a VXLAN fan (whose slice edges must then
  // be reserved like any other address outside the container range).
  const broadcast = lastOf(a.subnet);
  const dockerSkips = new Set([a.subnet.network, a.gateway, broadcast]);
  const common = a.first === a.last ? 32 : Math.clz32((a.first ^ a.last) >>> 0);
  const covering = { network: (a.first & maskOf(Math.max(common, a.slice.prefix))) >>> 0, prefix: Math.max(common, a.slice.prefix) };
  const reserved: Ipv4[] = [];
  for (let x = covering.network; x <= lastOf(covering); x++) {
    if ((x < a.first || x > a.last) && !dockerSkips.has(x)) reserved.push(x);
    if (reserved.length > MAX_AUX_ADDRESSES) break;
  }
  if (reserved.length <= MAX_AUX_ADDRESSES) return { ipRange: covering, reserved, leftOut: 0 };
  for (let prefix = a.slice.prefix + 1; prefix <= 32; prefix++) {
    const size = 2 ** (32 - prefix);
    const network = Math.ceil(a.first / size) * size;
    const end = network + size - 1;
    const usableEnd = end === broadcast ? end - 1 : end;
    if (usableEnd <= a.last && network <= a.last) {
      return { ipRange: { network, prefix }, reserved: [], leftOut: a.last - a.first + 1 - (usableEnd - network + 1) };
    }
  }
  throw new Error(`no CIDR fits container range ${formatIpv4(a.first)}-${formatIpv4(a.last)}`); // unreachable: a /32 always does
}

export function dockerNetwork(f: FanSummary, name: string = f.bridge): DockerNetwork {
  checkName(name, 'docker network');
  const a = addressesOf(f);
  const { ipRange, reserved, leftOut } = dockerPool(a);
  const args = [
    'docker', 'network', 'create',
    '--driver', 'bridge',
    '--subnet', a.subnetText,
    '--gateway', formatIpv4(a.gateway),
    '--ip-range', formatCidr(ipRange),
    ...reserved.flatMap((x) => ['--aux-address', `fand-reserved-${formatIpv4(x).replace(/\./g, '-')}=${formatIpv4(x)}`]),
    '-o', `com.docker.network.bridge.name=${f.bridge}`,
    '-o', `com.docker.network.driver.mtu=${f.mtu}`,
    '-o', 'com.docker.network.bridge.enable_ip_masquerade=false',
    '-o', 'com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected',
    name,
  ];
  const notes = [
    `${fanTitle(f)}.`,
    `Run this once fand is up: Docker then adopts fand's bridge ${f.bridge} (it creates a bridge of that name only when none exists, and 'docker network rm' deletes only a bridge Docker created). --subnet and --gateway equal the bridge's address ${f.bridgeAddress}/${a.subnet.prefix}, so Docker leaves it in place.`,
    leftOut
      ? `Containers get addresses in ${formatCidr(ipRange)}: the ${leftOut} container addresses of ${f.containers} below it are left out (a CIDR must hold Docker's range); give them with 'docker run --ip'.`
      : `Containers get addresses in ${f.containers}${reserved.length ? `; the --aux-address entries keep Docker off the addresses host-reserve ${f.hostReserve} sets aside` : ''}.`,
    "Give each fan bridge to one container engine only: Docker's address management does not see addresses handed out by others.",
    'IP masquerading is off: fand translates traffic leaving the fan.',
    `gateway_mode_ipv4=nat-unprotected lets other fan hosts reach containers directly (Docker 28 and later otherwise drop connections to ports not published with -p). Docker 27 rejects that mode: remove the option there and, if the FORWARD policy is DROP, allow the fan with 'iptables -I DOCKER-USER -o ${f.bridge} -j ACCEPT'.`,
  ];
  return { name, args, command: args.map(shellQuote).join(' '), notes };
}
