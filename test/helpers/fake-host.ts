// A HostNet that records what it is asked to do, for testing setup logic
// that cannot run on this kernel (kernel-fan).
import type { HostNet, LinkInfo, RouteInfo, RuleInfo } from '../../src/host/ip.js';
import type { InterfaceAddrs } from '../../src/config/underlay.js';
import { parseAck } from '../../src/dataplane/kernel-fan/netlink.js';

export class FakeHost implements HostNet {
  readonly applied: string[][] = [];
  readonly netlinkSent: Uint8Array[] = [];
  readonly sysctls = new Map<string, string>([['net.ipv4.ip_forward', '0']]);
  netlinkErrno = 0;
  constructor(public linkList: LinkInfo[], public addrList: InterfaceAddrs[] = [], public routeList: RouteInfo[] = []) {}
  async links() { return this.linkList; }
  async addresses() { return this.addrList; }
  async routes() { return this.routeList; }
  async rules(): Promise<RuleInfo[]> { return []; }
  async defaultRouteIface() { return undefined; }
  async apply(commands: readonly string[][]) { this.applied.push(...commands.map((c) => [...c])); }
  readonly natApplied: string[][] = [];
  natRemoved = 0;
  async nat() {
    return { backend: 'nftables' as const, apply: async (o: readonly string[]) => { this.natApplied.push([...o]); }, remove: async () => { this.natRemoved++; } };
  }
  /** Answers netlink requests like a kernel would (a test's model of it); without one, netlink() ACKs with netlinkErrno. */
  kernel?: { request(message: Uint8Array): Uint8Array };
  async netlink(message: Uint8Array) {
    this.netlinkSent.push(message);
    if (this.kernel) return parseAck(this.kernel.request(message));
    return { errno: this.netlinkErrno };
  }
  async netlinkQuery(message: Uint8Array): Promise<Uint8Array> {
    if (!this.kernel) throw new Error('FakeHost: netlinkQuery needs a kernel model');
    this.netlinkSent.push(message);
    return this.kernel.request(message);
  }
  async readSysctl(key: string) { return this.sysctls.get(key); }
  async writeSysctl(key: string, value: string) { this.sysctls.set(key, value); }
}

export function link(name: string, index: number, kind?: string, mtu = 1500): LinkInfo {
  return { name, index, kind, mtu, up: true, master: undefined, tun: undefined };
}
