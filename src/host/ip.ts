// The host's network configuration: read over rtnetlink (host/netlink/),
// changed over rtnetlink where host/netlink/change.ts knows the command and
// through iproute2's `ip -batch` otherwise. Everything that touches the
// host's network stack goes through the `HostNet` interface so that
// `fand plan` and the tests can use a fake.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { InterfaceAddrs } from '../config/underlay.js';
import { formatIpv4 } from '../fan/ipv4.js';
import { detectNat, type Nat } from './nat.js';
import { RT_TABLE_MAIN, type NlLink } from './netlink/codec.js';
import { Rtnetlink } from './netlink/rtnl.js';
import { changeMessage, devicesOf, NoSuchDevice, parseIpWords, type Change } from './netlink/change.js';
import { NetlinkError } from './netlink/socket.js';
import { native } from '../native/index.js';

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
  /** Sends one rtnetlink request and returns the kernel's first reply datagram as it is (a GET's answer). */
  netlinkQuery(message: Uint8Array): Promise<Uint8Array>;
  /** The firewall fand's NAT goes through (nftables, else iptables), or undefined when there is neither. */
  nat(): Promise<Nat | undefined>;
  readSysctl(key: string): Promise<string | undefined>;
  writeSysctl(key: string, value: string): Promise<void>;
}

export class HostNetError extends Error {}

/** Told about every change made to the host, as it completes (`--log-level debug`). */
export type CommandLog = (msg: string, fields: object) => void;

/** A route's destination as `ip -j route` prints it: 'default', '10.0.0.1' (a /32) or '10.0.0.0/8'. */
export function routeDst(dst: number, len: number): string {
  if (len === 0) return 'default';
  return len === 32 ? formatIpv4(dst) : `${formatIpv4(dst)}/${len}`;
}

/**
 * The real host. Reads go over rtnetlink (host/netlink/rtnl.ts): no process,
 * a dump each. Changes (start-up, reload and repair only, never while
 * nothing changes) go over rtnetlink too, except tuntap, next hops and the
 * bulk slice routes, which go to one `ip -batch` per list.
 * With `netns`, reads and changes are made in that named namespace (tests
 * use this; sysctls are always those of fand's own namespace).
 */
export class LinuxHost implements HostNet {
  private readonly rtnl: Rtnetlink;

  /** @param debug told every change (`rtnetlink: WORDS` or `ip -batch: LINES`) and sysctl written, with its outcome. */
  constructor(private readonly netns?: string, private readonly debug?: CommandLog) {
    this.rtnl = new Rtnetlink(netns);
  }

  async links(): Promise<LinkInfo[]> {
    return linkInfos(await this.rtnl.links());
  }

  /** One device with its counters (IFLA_STATS64), undefined when there is none. */
  link(name: string): Promise<NlLink | undefined> {
    return this.rtnl.link(name);
  }

  async addresses(): Promise<InterfaceAddrs[]> {
    // Every interface, also those without an IPv4 address: the error must
    // say "has no IPv4 address", not "no such interface".
    const [links, addrs] = await Promise.all([this.rtnl.links(), this.rtnl.addresses()]);
    return links.map((l) => ({
      name: l.name,
      addresses: addrs.filter((a) => a.index === l.index).map((a) => ({ address: a.address, prefix: a.prefix })),
    }));
  }

  async routes(): Promise<RouteInfo[]> {
    const [links, routes] = await Promise.all([this.rtnl.links(), this.rtnl.routes()]);
    const name = new Map(links.map((l) => [l.index, l.name]));
    return routes.filter((r) => r.table === RT_TABLE_MAIN).map((r) => ({
      dst: routeDst(r.dst, r.dstLen),
      dev: r.oif === undefined ? undefined : name.get(r.oif),
      prefsrc: r.prefsrc === undefined ? undefined : formatIpv4(r.prefsrc),
      gateway: r.gateway === undefined ? undefined : formatIpv4(r.gateway),
    }));
  }

  async rules(): Promise<RuleInfo[]> {
    // `ip rule` shows a lookup as "lookup TABLE", other actions by name.
    return (await this.rtnl.rules()).map((r) => ({ priority: r.priority, iif: r.iifname, action: r.action === 'to_tbl' ? undefined : r.action }));
  }

  async defaultRouteIface(): Promise<string | undefined> {
    return (await this.routes()).find((r) => r.dst === 'default')?.dev;
  }

  /**
   * Changes the host. When every command is in the grammar of
   * host/netlink/change.ts, each is sent as the rtnetlink request `ip` would
   * send, in order, without a process; errors read as `ip`'s own ("Cannot
   * find device", "RTNETLINK answers: ..."). Anything else (tuntap, next hops,
   * the bulk slice routes) goes to one `ip -batch` for the whole list.
   */
  async apply(commands: readonly string[][], opts: { force?: boolean } = {}): Promise<void> {
    if (commands.length === 0) return;
    const changes = commands.map(parseIpWords);
    if (changes.every((c): c is Change => c !== undefined)) return this.applyNetlink(changes, commands, opts.force ?? false);
    return this.ipBatch(commands, opts);
  }

  private async applyNetlink(changes: readonly Change[], commands: readonly string[][], force: boolean): Promise<void> {
    let index: Map<string, number> | undefined;
    let first: HostNetError | undefined;
    for (const [i, c] of changes.entries()) {
      const line = commands[i]!.join(' ');
      const words = `ip ${line}`;
      const t0 = process.hrtime.bigint();
      const told = (exit: number | string) => this.debug?.(`rtnetlink: ${line} (${exit === 0 ? 'ok' : `failed: ${exit}`})`,
        { commands: [line], lines: 1, exit, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
      try {
        if (devicesOf(c).length > 0) index ??= new Map((await this.rtnl.links()).map((l) => [l.name, l.index]));
        await this.rtnl.change(words, (seq) => changeMessage(c, seq, (n) => index!.get(n)));
        told(0);
      } catch (e) {
        const err = new HostNetError(`${words}: ${e instanceof NoSuchDevice ? e.message : `RTNETLINK answers: ${rtnlText(e)}`}`);
        told(err.message.slice(words.length + 2));
        if (!force) throw err;
        first ??= err;
      }
      // Names and indexes change with links added or deleted: read again when next needed.
      if (c.kind === 'link-add-bridge' || c.kind === 'link-del') index = undefined;
    }
    if (first) throw first;
  }

  private ipBatch(commands: readonly string[][], opts: { force?: boolean }): Promise<void> {
    // One process for the whole batch; `-force` is not used, so the first
    // failing line stops it and its message names the line.
    let lines: string[];
    try {
      lines = commands.map((c) => c.map(quoteBatchWord).join(' '));
    } catch (e) {
      return Promise.reject(e as Error);
    }
    // A batch of slice routes has thousands of lines: the first few say what it is.
    const shown = lines.length > 8 ? [...lines.slice(0, 4), `... ${lines.length - 4} more lines`] : lines;
    const t0 = process.hrtime.bigint();
    const told = (exit: number | string) => this.debug?.(`ip${opts.force ? ' -force' : ''} -batch: ${shown.join('; ')} (${exit === 0 ? 'ok' : `failed: ${exit}`})`,
      { commands: shown, lines: lines.length, exit, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    return new Promise((resolve, reject) => {
      const child = spawn('ip', [...(this.netns ? ['-n', this.netns] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      // ip stops reading at the first failing line: its exit status and stderr tell why, not EPIPE.
      child.stdin.on('error', () => undefined);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('error', (e) => { told(e.message); reject(new HostNetError(`ip -batch: ${e.message}`)); });
      child.on('close', (code) => {
        told(code === 0 ? 0 : stderr.trim() || `exit ${code}`);
        if (code === 0) resolve();
        else reject(new HostNetError(`ip -batch failed: ${stderr.trim() || `exit ${code}`}`));
      });
      child.stdin.end(lines.join('\n') + '\n');
    });
  }

  async netlink(message: Uint8Array): Promise<{ errno: number; message?: string }> {
    if (this.netns) throw new HostNetError('netlink requests go to fand\'s own network namespace only');
    const { native } = await import('../native/index.js');
    const { parseAck } = await import('../dataplane/kernel-fan/netlink.js');
    return parseAck(native.netlinkRequest(message, 5000));
  }

  async netlinkQuery(message: Uint8Array): Promise<Uint8Array> {
    if (this.netns) throw new HostNetError('netlink requests go to fand\'s own network namespace only');
    const { native } = await import('../native/index.js');
    return native.netlinkRequest(message, 5000);
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
      this.debug?.(`sysctl ${key}=${value}`, { sysctl: key, value });
    } catch (e) {
      throw new HostNetError(`sysctl ${key}=${value}: ${(e as Error).message}`);
    }
  }
}

/** The old name of LinuxHost (reads were `ip -j` then); kept until every caller says LinuxHost. */
export const IpCommand = LinuxHost;

/** rtnetlink links as LinkInfo (the master by name). */
export function linkInfos(links: readonly NlLink[]): LinkInfo[] {
  const name = new Map(links.map((l) => [l.index, l.name]));
  return links.map((l) => ({
    name: l.name,
    index: l.index,
    kind: l.kind,
    mtu: l.mtu,
    up: l.up,
    master: l.master ? name.get(l.master) : undefined,
    mac: l.mac,
    tun: l.tun ? { multiQueue: l.tun.multiQueue, persist: l.tun.persist, vnetHdr: l.tun.vnetHdr, pi: l.tun.pi, type: l.tun.type } : undefined,
  }));
}

/** The words `ip` prints after "RTNETLINK answers: ": strerror, and the kernel's extended-ACK text when it gave one. */
function rtnlText(e: unknown): string {
  if (e instanceof NetlinkError && e.errno > 0) return `${native.strerror(e.errno)}${e.kernelMessage ? ` (${e.kernelMessage})` : ''}`;
  return (e as Error).message;
}

export function sysctlPath(key: string): string {
  return '/proc/sys/' + key.replace(/\./g, '/');
}

function quoteBatchWord(w: string): string {
  // Interface names and addresses never need quoting; refuse anything that would.
  if (!/^[A-Za-z0-9_.:/@+-]+$/.test(w)) throw new HostNetError(`refusing to pass ${JSON.stringify(w)} to ip -batch`);
  return w;
}
