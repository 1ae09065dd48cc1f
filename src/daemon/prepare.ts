// Everything that can be decided without touching the host: the fans
// resolved against the host's interfaces, the dataplane and why, and the
// plan of host resources. `fand plan` and `fand integrate` stop here.
import { resolveFans } from '../fan/resolve.js';
import { chooseDataplane, probeKernel, type Choice, type KernelFacts } from '../dataplane/select.js';
import { KernelIpipDataplane } from '../dataplane/kernel-ipip/index.js';
import { KernelFanDataplane } from '../dataplane/kernel-fan/index.js';
import type { Dataplane, DataplaneMode } from '../dataplane/dataplane.js';
import { UserspaceDataplane } from '../dataplane/userspace/index.js';
import { UserspaceVxlanDataplane } from '../dataplane/userspace-vxlan/index.js';
import { ByEncapsulation } from '../dataplane/by-encap.js';
import { EbpfDataplane } from '../dataplane/ebpf/index.js';
import { makePlan, type Plan } from '../plan.js';
import type { HostNet } from '../host/ip.js';
import type { ResolvedFan } from '../fan/resolved.js';
import type { DaemonOptions } from './options.js';
import { formatCidr } from '../fan/ipv4.js';

/** Builds the dataplane object for a mode (a lookup, not a chain of ifs). */
const DATAPLANES: Record<DataplaneMode, (o: DaemonOptions, k: KernelFacts) => Dataplane> = {
  // IPIP fans in userspace/, VXLAN fans in userspace-vxlan/.
  userspace: (o, k) => new ByEncapsulation('userspace', {
    ipip: () => new UserspaceDataplane(o.workers, o.checkInnerSource, k.ipip, o.directSend ?? true, o.events),
    vxlan: () => new UserspaceVxlanDataplane(o.workers, o.checkInnerSource),
  }),
  'kernel-ipip': () => new KernelIpipDataplane(),
  'kernel-fan': () => new KernelFanDataplane(),
  ebpf: (o, k) => new EbpfDataplane({ workers: o.workers, checkInnerSource: o.checkInnerSource, kernelIpip: k.ipip, redirectPorts: o.portRedirect ?? true, events: o.events }),
};

export interface Prepared {
  readonly fans: ResolvedFan[];
  readonly choice: Choice;
  readonly dp: Dataplane;
  readonly plan: Plan;
}

export async function prepare(opts: DaemonOptions, host: HostNet): Promise<Prepared> {
  const fans = await resolveFans(opts.specs, host, { mtu: opts.mtu });
  const encaps = [...new Set(fans.map((f) => f.encap.encap))];
  // The ebpf probe loads the programs: only when ebpf may be chosen.
  const facts = await probeKernel(!opts.lookOnly, encaps, opts.dataplane === 'auto' || opts.dataplane === 'ebpf');
  for (const p of [facts.fanProbe, facts.fanVxlanProbe]) {
    for (const l of p?.leftovers ?? []) opts.log.error({ device: l }, `kernel Fan probe: could not remove its probe device ${l}; remove it with ip link del`);
    if (p?.staleRemoved.length) opts.log.warn({ devices: p.staleRemoved }, 'kernel Fan probe: removed probe devices a killed fand left');
  }
  const choice = chooseDataplane(opts.dataplane, facts, encaps);
  const dp = DATAPLANES[choice.mode](opts, facts);
  return { fans, choice, dp, plan: makePlan(fans, choice, opts.workers, dp, opts.nat ?? true) };
}

/** The plan for another set of fans with the same dataplane (reload). */
export async function replan(opts: DaemonOptions, host: HostNet, choice: Choice, dp: Dataplane, specs: DaemonOptions['specs']): Promise<{ fans: ResolvedFan[]; plan: Plan }> {
  const fans = await resolveFans(specs, host, { mtu: opts.mtu });
  const foreign = fans.find((f) => choice.carries && !choice.carries.includes(f.encap.encap));
  if (foreign) {
    throw new Error(`fan ${formatCidr(foreign.map.overlay)} is a ${foreign.encap.encap} fan, which the running ${choice.mode} dataplane cannot carry; restart fand to choose a dataplane for it`);
  }
  return { fans, plan: makePlan(fans, choice, opts.workers, dp, opts.nat ?? true) };
}
