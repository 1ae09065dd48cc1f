// The port map: where each container address of this host's slices lives,
// so the ingress program can hand a decapsulated packet straight to the
// container's port (or into its namespace) instead of through the bridge.
//
// The kernel already knows: the neighbour table maps a container's address
// to its Ethernet address (the host resolved it to forward to it), and the
// bridge's forwarding database maps that Ethernet address to the port it was
// learned on. portsFor() joins the two (pure); PortMap keeps the BPF map
// equal to that join, re-reading the tables when the kernel reports a change
// (neighbour, FDB or link events), never on a timer. An address that is not
// in the map takes the normal path: the kernel forwards it through the bridge,
// resolving it as usual, and then the map learns it.
import type { Logger } from '../../log.js';
import { formatIpv4, parseIpv4, type Cidr } from '../../fan/ipv4.js';
import type { Port } from './layout.js';

export interface NeighbourEntry {
  readonly dst: string;
  readonly dev: string;
  readonly lladdr?: string;
  /** NUD states, e.g. ['REACHABLE'] (`ip -j neigh` spells them so). */
  readonly state: readonly string[];
}

export interface FdbEntry {
  readonly mac: string;
  /** The port the address was learned on (or the bridge itself, for its own). */
  readonly dev: string;
  /** The bridge, for entries of a bridge port. */
  readonly master?: string;
  /** 'self' entries belong to a device's own table, not the bridge's. */
  readonly flags: readonly string[];
}

export interface LinkEntry {
  readonly name: string;
  readonly index: number;
  readonly kind?: string;
  readonly mtu: number;
  readonly up: boolean;
  readonly master?: string;
  readonly mac?: string;
  /** Set for a veth whose peer is in another network namespace (`link-netnsid`). */
  readonly linkNetnsId?: number;
}

export interface Tables {
  readonly neighbours: readonly NeighbourEntry[];
  readonly fdb: readonly FdbEntry[];
  readonly links: readonly LinkEntry[];
}

/** The kernel's tables and their change events; the daemon's is kernel-tables.ts, tests give their own. */
export interface KernelTables {
  read(): Promise<Tables>;
  /**
   * Calls onChange after the kernel reports a change that may matter (a
   * neighbour, FDB entry or link), and onLost when events may have been
   * missed (the source died); returns a function that stops watching.
   * An implementation may leave out events about devices for which
   * `concerns` says false (they cannot change the map).
   */
  watch(onChange: () => void, onLost: (why: string) => void, concerns?: (device: string) => boolean): () => void;
}

export interface FanBridge {
  readonly name: string;
  /** The slice: only its addresses are looked up. */
  readonly slice: Cidr;
  /** The bridge's own address in the slice (the host itself: never redirected). */
  readonly address: number;
}

/** NUD states in which the kernel itself sends to the neighbour's address (include/net/neighbour.h NUD_VALID). */
const VALID = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);

const mask = (p: number) => (p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0);

/**
 * address -> port for the fans' bridges: a neighbour on the bridge in a valid
 * state, whose Ethernet address the bridge learned on a port that is up and
 * enslaved to that bridge. Pure.
 */
export function portsFor(bridges: readonly FanBridge[], t: Tables): Map<number, Port> {
  const out = new Map<number, Port>();
  const links = new Map(t.links.map((l) => [l.name, l]));
  for (const b of bridges) {
    const br = links.get(b.name);
    if (!br?.mac) continue;
    const m = mask(b.slice.prefix);
    // Ethernet address -> port, from the bridge's own entries (not 'self').
    const portOf = new Map<string, string>();
    for (const f of t.fdb) {
      if (f.master === b.name && f.dev !== b.name && !f.flags.includes('self')) portOf.set(f.mac.toLowerCase(), f.dev);
    }
    for (const n of t.neighbours) {
      if (n.dev !== b.name || !n.lladdr || !n.state.some((s) => VALID.has(s))) continue;
      const a = parseIpv4(n.dst);
      if (a === undefined || ((a & m) >>> 0) !== b.slice.network || a === b.address) continue;
      const portName = portOf.get(n.lladdr.toLowerCase());
      const port = portName === undefined ? undefined : links.get(portName);
      if (!port || port.master !== b.name || !port.up) continue;
      out.set(a, {
        ifindex: port.index, mtu: port.mtu, peer: port.kind === 'veth' && port.linkNetnsId !== undefined,
        mac: n.lladdr.toLowerCase(), bridgeMac: br.mac.toLowerCase(),
      });
    }
  }
  return out;
}

const samePort = (a: Port, b: Port) => a.ifindex === b.ifindex && a.mtu === b.mtu && a.peer === b.peer && a.mac === b.mac && a.bridgeMac === b.bridgeMac;

/** What to write and delete to turn `from` into `to`. Pure. */
export function diffPorts(from: ReadonlyMap<number, Port>, to: ReadonlyMap<number, Port>): { set: [number, Port][]; del: number[] } {
  const set: [number, Port][] = [];
  const del: number[] = [];
  for (const [a, p] of to) { const q = from.get(a); if (!q || !samePort(p, q)) set.push([a, p]); }
  for (const a of from.keys()) if (!to.has(a)) del.push(a);
  return { set, del };
}

export interface PortSink {
  setPort(address: number, port: Port): void;
  deletePort(address: number): boolean;
}

/**
 * Keeps the BPF port map equal to portsFor(bridges, kernel tables). Each
 * event schedules one re-read (several events close together make one); a
 * re-read that fails, or a lost event source, empties the map (every packet
 * then takes the normal path) until the next good read.
 */
export class PortMap {
  private bridges: readonly FanBridge[] = [];
  private current = new Map<number, Port>();
  private stopWatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastProblem = '';
  /** Re-reads done (tests wait on it). */
  refreshes = 0;

  constructor(private readonly tables: KernelTables, private readonly sink: PortSink, private readonly log: Logger, private readonly delayMs = 20) {}

  async start(bridges: readonly FanBridge[]): Promise<void> {
    this.bridges = bridges;
    // Watch first, then read: a change between the two is not missed.
    this.stopWatch = this.tables.watch(() => this.schedule(), (why) => {
      this.log.error({ err: why }, `ebpf port map: lost the kernel's change events (${why}); every packet takes the normal path until they are back`);
      this.apply(new Map());
    }, (dev) => this.concerns(dev));
    await this.refresh();
  }

  /** Reload: other bridges (or slices). */
  async update(bridges: readonly FanBridge[]): Promise<void> {
    this.bridges = bridges;
    await this.refresh();
  }

  /** Devices whose events can change the map: the bridges and their ports. */
  private devices = new Set<string>();

  private concerns(dev: string): boolean {
    return this.devices.has(dev) || this.bridges.some((b) => b.name === dev);
  }

  /** The map as last written (address -> port). */
  entries(): ReadonlyMap<number, Port> { return this.current; }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.refresh(); }, this.delayMs);
  }

  /** Reads the tables and writes the difference; one read at a time (a change during one makes another). */
  refresh(): Promise<void> {
    if (this.running) { this.again = true; return this.running; }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          const t = await this.tables.read();
          if (this.stopped) return;
          this.devices = new Set(t.links.filter((l) => l.master !== undefined && this.bridges.some((b) => b.name === l.master)).map((l) => l.name));
          this.apply(portsFor(this.bridges, t));
          if (this.lastProblem) { this.log.warn('ebpf port map: the kernel tables can be read again'); this.lastProblem = ''; }
        } catch (e) {
          const msg = (e as Error).message;
          if (msg !== this.lastProblem) this.log.error({ err: msg }, `ebpf port map: cannot read the kernel tables (${msg}); every packet takes the normal path`);
          this.lastProblem = msg;
          this.apply(new Map());
        }
        this.refreshes++;
      } while (this.again && !this.stopped);
    })().finally(() => { this.running = undefined; });
    return this.running;
  }

  private apply(next: Map<number, Port>): void {
    const { set, del } = diffPorts(this.current, next);
    for (const a of del) this.sink.deletePort(a);
    for (const [a, p] of set) this.sink.setPort(a, p);
    if (set.length || del.length) {
      this.log.debug({ set: set.map(([a, p]) => `${formatIpv4(a)} ${p.mac} ifindex ${p.ifindex}${p.peer ? ' peer' : ''}`), deleted: del.map(formatIpv4) }, 'ebpf port map changed');
    }
    this.current = next;
  }

  /**
   * Stops following the kernel and empties the map: the programs may outlive
   * fand (a clean stop keeps fans that have containers), and a map nobody
   * keeps current must not send packets to ports that may go away.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopWatch?.();
    await this.running;
    this.apply(new Map());
  }
}
