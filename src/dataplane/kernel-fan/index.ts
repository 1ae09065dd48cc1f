// kernel-fan: Canonical's Fan patch does everything in the kernel. fand
// creates one ipip device per fan carrying the fan map (netlink.ts builds
// the RTM_NEWLINK, as Ubuntu's `ip link add … type ipip fan-map O:U` does)
// and routes the overlay through it; the kernel picks each packet's outer
// destination from its inner one. No packet passes through userspace.
import { fanTunnel, route, type Resource } from '../../host/resources.js';
import type { Dataplane, FanCounters } from '../dataplane.js';
import type { ResolvedFan } from '../../fan/resolved.js';
import type { Logger } from '../../log.js';
import { formatCidr, formatIpv4 } from '../../fan/ipv4.js';

export class KernelFanDataplane implements Dataplane {
  readonly mode = 'kernel-fan' as const;
  private fans: readonly ResolvedFan[] = [];

  resources(fan: ResolvedFan): Resource[] {
    return [
      fanTunnel(fan.tun, formatCidr(fan.map.overlay), formatCidr(fan.map.underlay), fan.iface, fan.mtu),
      route(formatCidr(fan.map.overlay), fan.tun, formatIpv4(fan.slice.bridgeAddress)),
    ];
  }

  async start(fans: readonly ResolvedFan[], log: Logger): Promise<void> {
    this.fans = fans;
    log.info('kernel-fan: the kernel forwards; fand only keeps the configuration. Note the kernel Fan does not check inner sources.');
  }

  async update(fans: readonly ResolvedFan[]): Promise<void> {
    this.fans = fans; // the kernel forwards by routes and devices, which the host setup already changed
  }

  counters(): FanCounters[] {
    return this.fans.map((f) => ({ fan: f.bridge, perWorker: [], total: {} }));
  }

  health(): { alive: number; configured: number } {
    return { alive: 1, configured: 1 };
  }

  async stop(): Promise<void> { /* the devices go with teardown */ }
}
