// kernel-ipip: the stock ipip module does all the work. Decapsulation needs
// only the fallback tunnel tunl0 to be up: it accepts IPIP from any source
// (ip_tunnel_lookup() falls back to it). Encapsulation needs one route per
// remote slice through tunl0 (routes.ts). No packet passes through fand.
import { native } from '../../native/index.js';
import { decodeError, decodeLink, getLinkRequest, parseMessages, type LinkStats } from '../../host/netlink/codec.js';
import { linkUp, sliceRoutes, type Resource } from '../../host/resources.js';
import type { Dataplane, FanCounters } from '../dataplane.js';
import type { ResolvedFan } from '../../fan/resolved.js';
import type { Logger } from '../../log.js';
import { formatCidr, formatIpv4 } from '../../fan/ipv4.js';
import { MAX_REMOTE_HOSTS, remoteHostCount } from './routes.js';
import { DataplaneError } from '../select.js';
import { dropKey } from '../counter-names.js';

export const TUNL0 = 'tunl0';

export class KernelIpipDataplane implements Dataplane {
  readonly mode = 'kernel-ipip' as const;
  private fans: readonly ResolvedFan[] = [];
  private stats: LinkStats = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxErrors: 0, txErrors: 0, rxDropped: 0, txDropped: 0 };
  private log: Logger | undefined;
  private readError = '';

  /** @param countersOf the device whose counters are the dataplane's (tunl0; tests use another). */
  constructor(private readonly countersOf = TUNL0) {}

  private readonly seen: string[] = [];

  /** A small number per fan, stable within one configuration: it spaces the fans' nexthop ids apart. */
  private fanIndex(fan: ResolvedFan): number {
    if (!this.seen.includes(fan.bridge)) this.seen.push(fan.bridge);
    return this.seen.indexOf(fan.bridge);
  }

  resources(fan: ResolvedFan): Resource[] {
    const hosts = remoteHostCount(fan.map.underlay);
    if (hosts > MAX_REMOTE_HOSTS) {
      throw new DataplaneError(`kernel-ipip: underlay ${formatCidr(fan.map.underlay)} has ${hosts} remote hosts; it routes at most ${MAX_REMOTE_HOSTS} (a /12): use a longer underlay prefix or --dataplane userspace`);
    }
    if (this.seen.length >= 16 && !this.seen.includes(fan.bridge)) throw new DataplaneError('kernel-ipip: at most 16 fans per host');
    return [
      linkUp(TUNL0, fan.mtu),
      sliceRoutes(TUNL0, formatCidr(fan.map.overlay), formatCidr(fan.map.underlay), formatIpv4(fan.localUnderlay),
        formatIpv4(fan.slice.bridgeAddress), this.fanIndex(fan), remoteHostCount(fan.map.underlay)),
    ];
  }

  async start(fans: readonly ResolvedFan[], log: Logger): Promise<void> {
    this.fans = fans;
    // The kernel's tunl0 accepts IPIP from any source and forwards whatever
    // inner source it carries: the inner-source check of the userspace
    // dataplane has no kernel equivalent here.
    log.warn('kernel-ipip: the kernel does not check that an inner source belongs to the sending host\'s slice; '
      + 'this mode does not filter spoofed inner sources from the underlay (use the userspace dataplane, or filter the underlay, for that)');
    this.log = log;
    this.read();
  }

  /**
   * tunl0's own counters (the kernel does the forwarding, so that is what
   * there is to show), read when asked: one RTM_GETLINK answered with
   * IFLA_STATS64, a syscall pair of some microseconds on the calling thread
   * (show and scrapes are synchronous), no process, no timer.
   */
  private read(): void {
    let problem = '';
    try {
      const [m] = parseMessages(native.netlinkRequest(getLinkRequest(this.countersOf, 1), 1000));
      const stats = m ? decodeLink(m)?.stats : undefined;
      if (stats) this.stats = stats;
      else problem = m ? `the kernel answered ${decodeError(m)?.errno ? `errno ${decodeError(m)!.errno}` : 'without IFLA_STATS64'}` : 'no answer';
    } catch (e) {
      problem = (e as Error).message;
    }
    // Said once per kind of problem, not at every scrape; the last reading stays.
    if (problem && problem !== this.readError) this.log?.warn({ err: problem }, `kernel-ipip: cannot read the counters of ${this.countersOf}: ${problem}; showing the last reading`);
    this.readError = problem;
  }

  async update(fans: readonly ResolvedFan[]): Promise<void> {
    this.fans = fans; // the kernel forwards by routes and devices, which the host setup already changed
  }

  counters(): FanCounters[] {
    this.read();
    const s = this.stats;
    const total = { 'tx.packets': s.txPackets, 'tx.bytes': s.txBytes, 'rx.packets': s.rxPackets, 'rx.bytes': s.rxBytes,
      [dropKey('in.tunl0-errors')]: s.rxErrors, [dropKey('out.tunl0-errors')]: s.txErrors };
    // tunl0 is shared by every fan of the host: its counters are reported once, on the first fan.
    return this.fans.map((f, i) => ({ fan: f.bridge, perWorker: [], total: i === 0 ? total : {} }));
  }

  health(): { alive: number; configured: number } {
    return { alive: 1, configured: 1 };
  }

  async stop(): Promise<void> {
    // nothing runs between reads
  }
}
