// kernel-ipip: the stock ipip module does all the work. Decapsulation needs
// only the fallback tunnel tunl0 to be up: it accepts IPIP from any source
// (ip_tunnel_lookup() falls back to it). Encapsulation needs one route per
// remote slice through tunl0 (routes.ts). No packet passes through fand.
import { execFile } from 'node:child_process';
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
  private stats = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxErrors: 0, txErrors: 0 };
  private timer: NodeJS.Timeout | undefined;

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
    await this.refresh();
    this.timer = setInterval(() => { void this.refresh(); }, 2000).unref();
  }

  /** tunl0's own counters: the kernel does the forwarding, so that is what there is to show. */
  private refresh(): Promise<void> {
    return new Promise((resolve) => {
      execFile('ip', ['-s', '-j', 'link', 'show', 'dev', TUNL0], (err, stdout) => {
        if (!err) {
          try {
            const l = (JSON.parse(stdout) as { stats64?: { rx: { packets: number; bytes: number; errors: number }; tx: { packets: number; bytes: number; errors: number } } }[])[0];
            if (l?.stats64) {
              this.stats = { rxPackets: l.stats64.rx.packets, rxBytes: l.stats64.rx.bytes, rxErrors: l.stats64.rx.errors,
                txPackets: l.stats64.tx.packets, txBytes: l.stats64.tx.bytes, txErrors: l.stats64.tx.errors };
            }
          } catch { /* keep the last reading */ }
        }
        resolve();
      });
    });
  }

  async update(fans: readonly ResolvedFan[]): Promise<void> {
    this.fans = fans; // the kernel forwards by routes and devices, which the host setup already changed
  }

  counters(): FanCounters[] {
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
    clearInterval(this.timer);
  }
}
