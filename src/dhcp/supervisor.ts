// One dnsmasq per fan that asks for DHCP: started after the bridge exists,
// stopped with the fan, restarted by DhcpServer when it dies. Its lease file
// goes when the fan goes (forget()), not when dnsmasq stops: a fan a clean
// stop keeps for its containers keeps their leases for the next fand. After a
// `kill -9` of fand its dnsmasq processes live on; the next fand finds them
// by their lease-file argument (which names fand's runtime directory and
// network namespace) and ends them before starting its own.
import { readFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DhcpServer } from './dnsmasq.js';
import type { ResolvedFan } from '../fan/resolved.js';
import type { RuntimePaths } from '../control/paths.js';
import { netnsId } from '../control/paths.js';
import { formatIpv4 } from '../fan/ipv4.js';
import type { Logger } from '../log.js';

interface Running { readonly key: string; readonly server: DhcpServer }

export class DhcpSupervisor {
  private readonly running = new Map<string, Running>();
  private swept = false;
  private readonly leasePrefix: string;

  constructor(paths: RuntimePaths, private readonly log: Logger) {
    this.leasePrefix = join(paths.dir, `dhcp-${netnsId()}-`);
  }

  /** Makes the set of running dnsmasq processes match the fans that want DHCP. */
  async sync(fans: readonly ResolvedFan[]): Promise<void> {
    if (!this.swept) { this.swept = true; await this.sweepLeftovers(); }
    const wanted = new Map(fans.filter((f) => f.spec.dhcp).map((f) => [f.bridge, f]));
    for (const [bridge, r] of [...this.running]) {
      const f = wanted.get(bridge);
      if (!f || this.key(f) !== r.key) {
        await r.server.stop();
        this.running.delete(bridge);
        this.log.info({ fan: bridge }, `dhcp: stopped dnsmasq on ${bridge}`);
      }
    }
    for (const [bridge, f] of wanted) {
      if (this.running.has(bridge)) continue;
      const server = new DhcpServer({
        bridge,
        first: formatIpv4(f.slice.dhcpFirst),
        last: formatIpv4(f.slice.dhcpLast),
        prefixLen: f.bridgePrefix, // the containers' netmask: the overlay's on a VXLAN fan
        router: formatIpv4(f.slice.bridgeAddress),
        mtu: f.mtu,
        leaseFile: this.leaseFile(bridge),
      }, this.log);
      await server.start();
      this.running.set(bridge, { key: this.key(f), server });
      this.log.info({ fan: bridge, pid: server.pid }, `dhcp: dnsmasq on ${bridge} hands out ${formatIpv4(f.slice.dhcpFirst)}-${formatIpv4(f.slice.dhcpLast)}, router ${formatIpv4(f.slice.bridgeAddress)}, mtu ${f.mtu}`);
    }
  }

  /** Stops every dnsmasq; the lease files stay (forget() removes those of fans that go). */
  async stop(): Promise<void> {
    await this.sync([]);
  }

  /**
   * Removes the lease files of fans that are gone (their bridges removed).
   * The files of fans that stay, even with DHCP stopped, are kept: their
   * containers hold those addresses.
   */
  async forget(bridges: readonly string[]): Promise<void> {
    for (const bridge of bridges) {
      if (this.running.has(bridge)) continue; // still served: a reload re-created it
      const file = this.leaseFile(bridge);
      try {
        await rm(file);
        this.log.info({ fan: bridge, file }, `dhcp: removed the lease file of ${bridge}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error({ fan: bridge, file, err: (e as Error).message }, `dhcp: could not remove ${file}`);
      }
    }
  }

  private leaseFile(bridge: string): string {
    return `${this.leasePrefix}${bridge}.leases`;
  }

  private key(f: ResolvedFan): string {
    return `${f.slice.dhcpFirst}-${f.slice.dhcpLast}-${f.slice.bridgeAddress}-${f.bridgePrefix}-${f.mtu}`;
  }

  /**
   * Ends dnsmasq processes a killed fand of this namespace left behind, and
   * waits until they are gone: a new dnsmasq must not start while the old
   * one still holds the lease file and the DHCP socket.
   */
  private async sweepLeftovers(): Promise<void> {
    const mark = `--dhcp-leasefile=${this.leasePrefix}`;
    const ended: number[] = [];
    for (const pid of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(pid)) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (!cmd.split('\0').some((a) => a.startsWith(mark))) continue;
      try {
        process.kill(Number(pid), 'SIGTERM');
        ended.push(Number(pid));
        this.log.warn({ pid: Number(pid) }, `dhcp: ended dnsmasq ${pid} left by an earlier fand`);
      } catch { /* gone already */ }
    }
    for (const pid of ended) await waitGone(pid, this.log);
  }
}

/** Running (a zombie waiting for a parent that never reaps it counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits for a process to exit after SIGTERM; SIGKILL after KILL_AFTER_MS (dnsmasq exits at once on SIGTERM). */
async function waitGone(pid: number, log: Logger): Promise<void> {
  // It is not our child: poll. A pid reused within these few seconds would be
  // waited for needlessly, never signalled (only SIGKILL below, and only while
  // its cmdline is still the dnsmasq one).
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (const end = Date.now() + KILL_AFTER_MS; alive(pid) && Date.now() < end;) await sleep(20);
  if (!alive(pid)) return;
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmd.includes('dnsmasq')) return;
  log.warn({ pid }, `dhcp: dnsmasq ${pid} did not exit ${KILL_AFTER_MS} ms after SIGTERM; sending SIGKILL`);
  try { process.kill(pid, 'SIGKILL'); } catch { return; }
  for (const end = Date.now() + KILL_AFTER_MS; alive(pid) && Date.now() < end;) await sleep(20);
}

const KILL_AFTER_MS = 3000;

/** The lease files of this network namespace's fans (`fand down` removes them with the fans). */
export async function leaseFilesOf(paths: RuntimePaths): Promise<string[]> {
  const prefix = `dhcp-${netnsId()}-`;
  const names = await readdir(paths.dir).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(prefix) && n.endsWith('.leases')).map((n) => join(paths.dir, n));
}
