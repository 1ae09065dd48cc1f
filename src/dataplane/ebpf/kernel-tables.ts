// The kernel tables the port map is built from (ports.ts), over fand's own
// rtnetlink client (src/host/netlink/): dumps of the links, the IPv4
// neighbours and the bridges' forwarding databases, and the kernel's change
// events for the same (RTNLGRP_LINK, RTNLGRP_NEIGH: AF_INET neighbours and
// AF_BRIDGE FDB entries). Events, never a timer.
import { nudNames, type NlLink } from '../../host/netlink/codec.js';
import { formatIpv4 } from '../../fan/ipv4.js';
import type { HostEvent, HostEvents } from '../../host/netlink/events.js';
import type { Rtnetlink } from '../../host/netlink/rtnl.js';
import type { FdbEntry, KernelTables, LinkEntry, NeighbourEntry, Tables } from './ports.js';

const macOf = (b: Uint8Array | undefined) => (b && b.length === 6 ? Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':') : undefined);

export class NetlinkKernelTables implements KernelTables {
  /** ifindex -> name, as of the last read (events name devices by index). */
  private names = new Map<number, string>();

  constructor(private readonly rtnl: Rtnetlink, private readonly events: HostEvents) {}

  async read(): Promise<Tables> {
    const [links, neigh, fdb] = await Promise.all([this.rtnl.links(), this.rtnl.neighbours(), this.rtnl.fdb()]);
    const devices = links.filter((l) => l.family === 0);
    this.names = new Map(devices.map((l) => [l.index, l.name]));
    const name = (i: number) => this.names.get(i) ?? `#${i}`;
    const linkEntries: LinkEntry[] = devices.map((l: NlLink) => ({
      name: l.name, index: l.index, kind: l.kind, mtu: l.mtu, up: l.up,
      master: l.master ? name(l.master) : undefined, mac: l.mac, linkNetnsId: l.linkNetnsId,
    }));
    const neighbours: NeighbourEntry[] = neigh.map((n) => ({ dst: formatIpv4(n.dst), dev: name(n.ifindex), lladdr: macOf(n.lladdr), state: nudNames(n.state) }));
    const fdbEntries: FdbEntry[] = fdb.map((f) => ({ mac: f.mac, dev: name(f.ifindex), master: f.master ? name(f.master) : undefined, flags: f.self ? ['self'] : [] }));
    return { links: linkEntries, neighbours, fdb: fdbEntries };
  }

  watch(onChange: () => void, _onLost: (why: string) => void, concerns: (device: string) => boolean = () => true): () => void {
    const about = (i: number) => { const n = this.names.get(i); return n === undefined || concerns(n); };
    const matters = (e: HostEvent): boolean => {
      switch (e.kind) {
        // A new port is announced before the map knows it: any enslaved device counts.
        case 'link': return concerns(e.link.name) || e.link.master !== 0 || !this.names.has(e.link.index);
        case 'neighbour': return about(e.neighbour.ifindex);
        case 'fdb': return about(e.fdb.master) || about(e.fdb.ifindex);
        // Events were lost: read everything again.
        case 'overrun': return true;
        default: return false;
      }
    };
    return this.events.subscribe(['link', 'neighbour', 'fdb'], (batch) => { if (batch.some(matters)) onChange(); });
  }
}
