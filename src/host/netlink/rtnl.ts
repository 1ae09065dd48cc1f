// Reads of the host's network state over rtnetlink: one dump request per
// kind of object, on one socket kept open (opening is cheap, but an idle
// socket is free). No process is started: `ip -j ...` took 2-5 ms of CPU per
// call in a fresh process; a dump here is a syscall and a parse.
import {
  AF_BRIDGE, AF_INET, AF_UNSPEC, decodeAddress, decodeFdb, decodeLink, decodeNeighbour, decodeNexthop, decodeRoute, decodeRule,
  dumpRequest, FIB_RULE_HDR_LEN, getLinkRequest, IFADDRMSG_LEN, IFINFOMSG_LEN, NDMSG_LEN, NHMSG_LEN,
  RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH, RTM_GETNEXTHOP, RTM_GETROUTE, RTM_GETRULE, RTMSG_LEN,
  type Message, type NlAddress, type NlFdb, type NlLink, type NlNeighbour, type NlNexthop, type NlRoute, type NlRule,
} from './codec.js';
import { NetlinkError, NetlinkSocket } from './socket.js';

function decodeAll<T>(msgs: readonly Message[], decode: (m: Message) => T | undefined): T[] {
  const out: T[] = [];
  for (const m of msgs) {
    const d = decode(m);
    if (d !== undefined) out.push(d);
  }
  return out;
}

export class Rtnetlink {
  private sock: NetlinkSocket | undefined;

  /** @param netns a named network namespace (tests); default: fand's own. */
  constructor(private readonly netns?: string) {}

  private socket(): NetlinkSocket {
    return (this.sock ??= new NetlinkSocket({ netns: this.netns }));
  }

  private dump(what: string, type: number, family: number, headerLen: number): Promise<Message[]> {
    return this.socket().request(what, (seq) => dumpRequest(type, family, headerLen, seq), { dump: true });
  }

  async links(): Promise<NlLink[]> {
    return decodeAll(await this.dump('dump links', RTM_GETLINK, AF_UNSPEC, IFINFOMSG_LEN), decodeLink);
  }

  /** One device, with its counters (IFLA_STATS64); undefined when there is none. */
  async link(name: string): Promise<NlLink | undefined> {
    try {
      const [m] = await this.socket().request(`get link ${name}`, (seq) => getLinkRequest(name, seq));
      return m ? decodeLink(m) : undefined;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === 19) return undefined; // ENODEV
      throw e;
    }
  }

  async addresses(): Promise<NlAddress[]> {
    return decodeAll(await this.dump('dump IPv4 addresses', RTM_GETADDR, AF_INET, IFADDRMSG_LEN), decodeAddress);
  }

  /** IPv4 routes of every table (filter on .table; RT_TABLE_MAIN = 254). */
  async routes(): Promise<NlRoute[]> {
    return decodeAll(await this.dump('dump IPv4 routes', RTM_GETROUTE, AF_INET, RTMSG_LEN), decodeRoute);
  }

  async rules(): Promise<NlRule[]> {
    return decodeAll(await this.dump('dump IPv4 rules', RTM_GETRULE, AF_INET, FIB_RULE_HDR_LEN), decodeRule);
  }

  async neighbours(): Promise<NlNeighbour[]> {
    return decodeAll(await this.dump('dump IPv4 neighbours', RTM_GETNEIGH, AF_INET, NDMSG_LEN), decodeNeighbour);
  }

  /** Every bridge's forwarding database (`bridge fdb show`): which port each Ethernet address is on. */
  async fdb(): Promise<NlFdb[]> {
    return decodeAll(await this.dump('dump bridge FDB', RTM_GETNEIGH, AF_BRIDGE, NDMSG_LEN), decodeFdb);
  }

  /** Next hop objects (Linux 5.3+); [] on kernels without them. */
  async nexthops(): Promise<NlNexthop[]> {
    try {
      return decodeAll(await this.dump('dump nexthops', RTM_GETNEXTHOP, AF_INET, NHMSG_LEN), decodeNexthop);
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === 95) return []; // EOPNOTSUPP
      throw e;
    }
  }

  /** Sends one change request (built with the sequence number given) and waits for its ACK; rejects with the kernel's error. */
  async change(what: string, build: (seq: number) => Uint8Array): Promise<void> {
    await this.socket().request(what, build);
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}
