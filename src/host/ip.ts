// The host's network configuration, read and changed through iproute2's
// `ip` (JSON output for reading, `ip -batch` for changes). Everything that
// touches the host's network stack goes through the `HostNet` interface so
// that `fand plan` and the tests can use a fake.
import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { InterfaceAddrs } from '../config/underlay.js';
import { parseIpv4 } from '../fan/ipv4.js';
import { detectNat, type Nat } from './nat.js';

export interface TunInfo {
  readonly multiQueue: boolean;
  readonly persist: boolean;
  readonly vnetHdr: boolean;
  readonly pi: boolean;
  readonly type: string;
}

export interface LinkInfo {
  readonly name: string;
  readonly index: number;
  /** `linkinfo.info_kind` ("bridge", "tun", "veth", ...); undefined for plain devices. */
  readonly kind: string | undefined;
  readonly mtu: number;
  readonly up: boolean;
  readonly master: string | undefined;
  /** Ethernet address (lowercase, colon-separated); undefined for devices without one (TUN). */
  readonly mac?: string | undefined;
  readonly tun: TunInfo | undefined;
}

export interface RouteInfo {
  readonly dst: string;
  readonly dev: string | undefined;
  readonly prefsrc: string | undefined;
  readonly gateway: string | undefined;
}

export interface RuleInfo {
  readonly priority: number;
  readonly iif: string | undefined;
  readonly action: string | undefined;
}

export interface HostNet {
  links(): Promise<LinkInfo[]>;
  addresses(): Promise<InterfaceAddrs[]>;
  routes(): Promise<RouteInfo[]>;
  defaultRouteIface(): Promise<string | undefined>;
  rules(): Promise<RuleInfo[]>;
  /**
   * Applies `ip` commands (argument vectors without the leading `ip`) in one
   * `ip -batch`; with `force`, failing lines do not stop the rest (teardown).
   */
  apply(commands: readonly string[][], opts?: { force?: boolean }): Promise<void>;
  /** Sends one rtnetlink request and returns the kernel's answer (0 or an errno, and its extended-ACK text). */
  netlink(message: Uint8Array): Promise<{ errno: number; message?: string }>;
  /** The firewall fand's NAT goes through (nftables, else iptables), or undefined when there is neither. */
  nat(): Promise<Nat | undefined>;
  readSysctl(key: string): Promise<string | undefined>;
  writeSysctl(key: string, value: string): Promise<void>;
}

export class HostNetError extends Error {}

function runIp(args: string[], timeoutMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new HostNetError(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * The kernel's IPv4 neighbour table (`ip -j -4 neigh show`), for direct sends
 * (dataplane/userspace/neighbours.ts). Bounded in time: a table that cannot be
 * read is an error (and direct sends stop), never a stale answer.
 */
export async function ipNeighbours(): Promise<{ dst?: string; dev?: string; lladdr?: string; state?: string[] }[]> {
  return JSON.parse(await runIp(['-j', '-4', 'neigh', 'show'], 5000)) as { dst?: string; dev?: string; lladdr?: string; state?: string[] }[];
}

interface IpLinkJson {
  ifname: string; ifindex: number; mtu: number; flags?: string[]; master?: string; address?: string; link_type?: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string; pi?: boolean; vnet_hdr?: boolean; multi_queue?: boolean; persist?: boolean } };
}

/**
 * The real host, through the `ip` command of iproute2. With `netns`, every
 * `ip` call is made with `-n NETNS` (tests use this; sysctls are always those
 * of fand's own namespace).
 */
export class IpCommand implements HostNet {
  constructor(private readonly netns?: string) {}

  private ip(args: string[]): Promise<string> {
    return runIp(this.netns ? ['-n', this.netns, ...args] : args);
  }

  async links(): Promise<LinkInfo[]> {
    const json = JSON.parse(await this.ip(['-j', '-d', 'link', 'show'])) as IpLinkJson[];
    return json.map((l) => {
      const d = l.linkinfo?.info_data;
      const kind = l.linkinfo?.info_kind;
      return {
        name: l.ifname,
        index: l.ifindex,
        kind,
        mtu: l.mtu,
        up: (l.flags ?? []).includes('UP'),
        master: l.master,
        mac: l.link_type === 'ether' ? l.address : undefined,
        tun: kind === 'tun' && d
          ? { multiQueue: !!d.multi_queue, persist: !!d.persist, vnetHdr: !!d.vnet_hdr, pi: !!d.pi, type: d.type ?? 'tun' }
          : undefined,
      };
    });
  }

  async addresses(): Promise<InterfaceAddrs[]> {
    // Not `-4`: that hides interfaces without an IPv4 address, and the error
    // must say "has no IPv4 address", not "no such interface".
    const json = JSON.parse(await this.ip(['-j', 'addr', 'show'])) as { ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] }[];
    return json.map((l) => ({
      name: l.ifname,
      addresses: (l.addr_info ?? [])
        .filter((a) => a.family === 'inet')
        .map((a) => ({ address: parseIpv4(a.local) ?? 0, prefix: a.prefixlen })),
    }));
  }

  async routes(): Promise<RouteInfo[]> {
    const json = JSON.parse(await this.ip(['-j', '-4', 'route', 'show', 'table', 'main'])) as { dst: string; dev?: string; prefsrc?: string; gateway?: string }[];
    return json.map((r) => ({ dst: r.dst, dev: r.dev, prefsrc: r.prefsrc, gateway: r.gateway }));
  }

  async rules(): Promise<RuleInfo[]> {
    const json = JSON.parse(await this.ip(['-j', '-4', 'rule', 'show'])) as { priority: number; iif?: string; action?: string }[];
    return json.map((r) => ({ priority: r.priority, iif: r.iif, action: r.action }));
  }

  async defaultRouteIface(): Promise<string | undefined> {
    return (await this.routes()).find((r) => r.dst === 'default')?.dev;
  }

  apply(commands: readonly string[][], opts: { force?: boolean } = {}): Promise<void> {
    if (commands.length === 0) return Promise.resolve();
    // One process for the whole batch; `-force` is not used, so the first
    // failing line stops it and its message names the line.
    return new Promise((resolve, reject) => {
      const child = spawn('ip', [...(this.netns ? ['-n', this.netns] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      // ip stops reading at the first failing line: its exit status and stderr tell why, not EPIPE.
      child.stdin.on('error', () => undefined);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('error', (e) => reject(new HostNetError(`ip -batch: ${e.message}`)));
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new HostNetError(`ip -batch failed: ${stderr.trim() || `exit ${code}`}`));
      });
      child.stdin.end(commands.map((c) => c.map(quoteBatchWord).join(' ')).join('\n') + '\n');
    });
  }

  async netlink(message: Uint8Array): Promise<{ errno: number; message?: string }> {
    if (this.netns) throw new HostNetError('netlink requests go to fand\'s own network namespace only');
    const { native } = await import('../native/index.js');
    const { parseAck } = await import('../dataplane/kernel-fan/netlink.js');
    return parseAck(native.netlinkRequest(message, 5000));
  }

  nat(): Promise<Nat | undefined> {
    return detectNat(this.netns);
  }

  async readSysctl(key: string): Promise<string | undefined> {
    try {
      return (await readFile(sysctlPath(key), 'utf8')).trim();
    } catch {
      return undefined;
    }
  }

  async writeSysctl(key: string, value: string): Promise<void> {
    try {
      await writeFile(sysctlPath(key), value);
    } catch (e) {
      throw new HostNetError(`sysctl ${key}=${value}: ${(e as Error).message}`);
    }
  }
}

export function sysctlPath(key: string): string {
  return '/proc/sys/' + key.replace(/\./g, '/');
}

function quoteBatchWord(w: string): string {
  // Interface names and addresses never need quoting; refuse anything that would.
  if (!/^[A-Za-z0-9_.:/@+-]+$/.test(w)) throw new HostNetError(`refusing to pass ${JSON.stringify(w)} to ip -batch`);
  return w;
}
