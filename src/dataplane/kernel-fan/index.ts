// kernel-fan: Canonical's Fan patch does everything in the kernel. fand
// configures the host exactly as Ubuntu's fanctl does: the fan map on tunl0
// (netlink.ts builds the RTM_NEWLINK that Ubuntu's `ip link change tunl0
// type ipip fan-map O:U` sends; maps.ts reads every change back), tunl0 up,
// and the overlay routed into it with the bridge address as source. The
// kernel picks each packet's outer destination from its inner one, and
// tunl0, the per-namespace fallback device, decapsulates IPIP from any
// host. All fans share tunl0 (one map each): a second ipip device with the
// same parameters as another is refused (EEXIST), so one device per fan
// would need invented parameters. No packet passes through userspace.
//
// A VXLAN fan (LXD's fan.type vxlan) is one vxlan device per fan carrying
// the map, a port of the fan's bridge (vxlan.ts, vxlan-device.ts); the
// bridge's /8 address makes the whole overlay one Ethernet segment, so
// there is no route. Only where the probe proved the vxlan fan map.
import { fanMap, fanVxlan, linkUp, route, type Resource } from '../../host/resources.js';
import type { Dataplane, FanCounters } from '../dataplane.js';
import type { ResolvedFan } from '../../fan/resolved.js';
import type { Logger } from '../../log.js';
import { formatCidr, formatIpv4 } from '../../fan/ipv4.js';

/** The ipip fallback device every namespace has once ipip is loaded; Ubuntu's fanctl puts its maps there. */
export const TUNNEL = 'tunl0';

export class KernelFanDataplane implements Dataplane {
  readonly mode = 'kernel-fan' as const;
  private fans: readonly ResolvedFan[] = [];

  resources(fan: ResolvedFan): Resource[] {
    if (fan.encap.encap === 'vxlan') {
      return [fanVxlan(fan.tun, fan.bridge, formatCidr(fan.map.overlay), formatCidr(fan.map.underlay), fan.iface,
        formatIpv4(fan.localUnderlay), fan.encap.vni, fan.encap.port, fan.mtu)];
    }
    return [
      linkUp(TUNNEL, fan.mtu),
      fanMap(TUNNEL, formatCidr(fan.map.overlay), formatCidr(fan.map.underlay)),
      route(formatCidr(fan.map.overlay), TUNNEL, formatIpv4(fan.slice.bridgeAddress)),
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
