// The ebpf dataplane: the Fan's IPIP in the kernel without the Fan patch or
// the ipip module. Two tc programs (bpf/fan.bpf.c) do the work: egress on
// each fan's TUN encapsulates and hands the packet to the underlay,
// ingress on each underlay device checks and decapsulates, straight into the
// container's port when the port map (ports.ts) knows it. fand loads them
// (loader.ts), writes their configuration map, attaches them (tc.ts), keeps
// the port map current from the kernel's events, and reads their per-CPU
// counters on demand.
//
// The slow path is the userspace dataplane with its TUN queues and raw IPIP
// socket: what the programs pass up (outer fragments, which the stack
// reassembles; outer IP options; packets the kernel's helpers will not
// resize) reaches it and is checked and forwarded exactly as in userspace
// mode, counted in the same counters.
import { native } from '../../native/index.js';
import { tcBpf, type Resource } from '../../host/resources.js';
import type { Dataplane, FanCounters } from '../dataplane.js';
import type { ResolvedFan } from '../../fan/resolved.js';
import type { Logger } from '../../log.js';
import { formatIpv4 } from '../../fan/ipv4.js';
import { UserspaceDataplane } from '../userspace/index.js';
import { FanBpf } from './maps.js';
import { FAN_MAX, type FanConfig } from './layout.js';
import { Tc, type Direction } from './tc.js';
import { PortMap, type FanBridge, type KernelTables } from './ports.js';
import { NetlinkKernelTables } from './kernel-tables.js';
import { probeEbpf as probeHost } from './probe.js';
import { hostEvents, type HostEvents } from '../../host/netlink/events.js';
import { Rtnetlink } from '../../host/netlink/rtnl.js';

export interface EbpfOptions {
  /** Slow-path worker threads (the userspace dataplane's). */
  readonly workers: number;
  readonly checkInnerSource: boolean;
  /** The kernel has the ipip module (its tunl0 must be neutralised for the slow path). */
  readonly kernelIpip: boolean;
  /** Hand decapsulated packets straight to containers' ports (default); false: through the bridge. */
  readonly redirectPorts: boolean;
  /** The kernel tables behind the port map (tests swap them). */
  readonly tables?: KernelTables;
  /** The host's rtnetlink events (the daemon's shared source). */
  readonly events?: HostEvents;
}

export class EbpfDataplane implements Dataplane {
  readonly mode = 'ebpf' as const;
  /** The slow path's worker 0 sends WATCHDOG=1 (it proves the slow path's loop turns). */
  readonly watchdogFromWorkers = true;
  private readonly slow: UserspaceDataplane;
  private readonly tc = new Tc();
  private bpf: FanBpf | undefined;
  private ports: PortMap | undefined;
  private rtnl: Rtnetlink | undefined;
  private fans: readonly ResolvedFan[] = [];
  private slots = new Map<string, number>();
  private attached = new Set<string>();
  private log!: Logger;

  constructor(private readonly opts: EbpfOptions) {
    this.slow = new UserspaceDataplane(opts.workers, opts.checkInnerSource, opts.kernelIpip, false);
  }

  resources(fan: ResolvedFan): Resource[] {
    // The slow path's TUN (with its route, and tunl0 tamed where the ipip
    // module is loaded), then the two hooks: the TUN's egress, the underlay's ingress.
    return [...this.slow.resources(fan), tcBpf(fan.tun, 'egress'), tcBpf(fan.iface, 'ingress')];
  }

  async start(fans: readonly ResolvedFan[], log: Logger): Promise<void> {
    this.log = log;
    this.bpf = FanBpf.load();
    try {
      const info = this.bpf.loaded.info;
      log.info({ programs: info }, `ebpf: loaded fand_egress (${info['fand_egress']!.insns} instructions, id ${info['fand_egress']!.id}) and fand_ingress (${info['fand_ingress']!.insns}, id ${info['fand_ingress']!.id})`);
      await this.slow.start(fans, log);
      this.apply(fans);
      if (this.opts.redirectPorts) {
        this.rtnl = new Rtnetlink();
        this.ports = new PortMap(this.opts.tables ?? new NetlinkKernelTables(this.rtnl, this.opts.events ?? hostEvents()), this.bpf, log);
        await this.ports.start(this.bridges());
        log.info(`ebpf: decapsulated packets go straight to the container's port where the bridge's FDB and the neighbour table know it (${this.ports.entries().size} now), otherwise through ${fans.map((f) => f.bridge).join(', ')}`);
      } else {
        log.info('ebpf: decapsulated packets go through the bridge (--no-port-redirect)');
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Slots, config, filters for the current fans. */
  private apply(fans: readonly ResolvedFan[]): void {
    const bpf = this.bpf!;
    this.fans = fans;
    for (const b of [...this.slots.keys()]) if (!fans.some((f) => f.bridge === b)) this.slots.delete(b);
    for (const f of fans) {
      if (this.slots.has(f.bridge)) continue;
      let slot = 0;
      while ([...this.slots.values()].includes(slot)) slot++;
      if (slot >= FAN_MAX) throw new Error(`ebpf: at most ${FAN_MAX} fans`);
      this.slots.set(f.bridge, slot);
      bpf.resetCounters(slot);
    }
    const config: FanConfig[] = fans.map((f) => ({
      slot: this.slots.get(f.bridge)!,
      overlay: f.map.overlay,
      underlay: f.map.underlay,
      localUnderlay: f.localUnderlay,
      tunIfindex: this.ifindex(f.tun),
      underlayIfindex: this.ifindex(f.iface),
      checkInnerSource: this.opts.checkInnerSource,
      redirectPorts: this.opts.redirectPorts,
    }));
    // Configuration first: a program attached to a new device finds its fan.
    bpf.writeConfig(config);
    const hooks = new Map<string, [string, Direction, number, string]>();
    for (const f of fans) {
      hooks.set(`${f.tun}:egress`, [f.tun, 'egress', bpf.programs.egress, 'fand_egress']);
      hooks.set(`${f.iface}:ingress`, [f.iface, 'ingress', bpf.programs.ingress, 'fand_ingress']);
    }
    for (const [key, [dev, dir, fd, name]] of hooks) {
      // Always (re)attached: after a reload, or over what a killed predecessor left.
      this.tc.attach(dev, this.ifindex(dev), dir, fd, name);
      if (!this.attached.has(key)) this.log.info(`ebpf: ${name} attached to ${dev} ${dir}`);
    }
    this.attached = new Set(hooks.keys());
    for (const f of fans) {
      const c = config.find((x) => x.slot === this.slots.get(f.bridge))!;
      this.log.info({ fan: f.bridge, slot: c.slot, tun: `${f.tun}#${c.tunIfindex}`, underlay: `${f.iface}#${c.underlayIfindex}` },
        `ebpf: fan ${f.bridge}: ${f.tun} egress encapsulates to ${f.iface}, ${f.iface} ingress decapsulates IPIP for ${formatIpv4(f.localUnderlay)}`);
    }
  }

  private ifindex(dev: string): number {
    const i = native.ifIndex(dev);
    if (i === 0) throw new Error(`ebpf: ${dev}: no such device`);
    return i;
  }

  private bridges(): FanBridge[] {
    return this.fans.map((f) => ({ name: f.bridge, slice: { network: f.slice.network, prefix: f.slice.prefix }, address: f.slice.bridgeAddress }));
  }

  async update(fans: readonly ResolvedFan[]): Promise<void> {
    await this.slow.update(fans);
    this.apply(fans);
    await this.ports?.update(this.bridges());
  }

  counters(): FanCounters[] {
    const slow = this.slow.counters();
    return this.fans.map((f, i) => {
      const total: Record<string, number> = { ...(this.bpf ? this.bpf.counters(this.slots.get(f.bridge) ?? 0) : {}) };
      // The slow path's counts add to the programs': same names, same meaning.
      for (const [k, v] of Object.entries(slow[i]?.total ?? {})) total[k] = (total[k] ?? 0) + v;
      return { fan: f.bridge, perWorker: [], total };
    });
  }

  health(): { alive: number; configured: number } {
    return this.slow.health();
  }

  wedge(on: boolean): void { this.slow.wedge(on); }
  crashWorker(index: number): void { this.slow.crashWorker(index); }

  async stop(): Promise<void> {
    // The filters stay until teardown removes them (they are host
    // resources); closing the fds leaves the programs to them.
    await this.ports?.stop();
    this.rtnl?.close();
    await this.slow.stop();
    this.bpf?.close();
  }
}

/** Why this host cannot run the ebpf dataplane, in the kernel's words; undefined when it can (probe.ts). */
export function probeEbpf(release: string, load: () => { close(): void } = () => FanBpf.load()): string | undefined {
  return probeHost(release, load);
}
