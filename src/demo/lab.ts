// A Fan on one machine: N "hosts" as network namespaces on one underlay
// bridge (itself in a namespace of its own, so nothing touches the real
// network), each running fand, with "containers" as namespaces attached to
// the host's fan bridge. Used by `fand demo` and by the end-to-end tests.
// Every name carries a per-lab prefix, and `destroy` removes it all.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { inNs, run } from './exec.js';
import { bridgeNameFor, makeFanMap, parseNetwork, sliceFor } from '../fan/fanmap.js';
import { formatIpv4, parseIpv4 } from '../fan/ipv4.js';
import { ENCAP_OVERHEAD, type Encap } from '../fan/encap.js';

export const FAND_BIN = fileURLToPath(new URL('../../../bin/fand.js', import.meta.url));
export const OVERLAY = '250.0.0.0/8';

/**
 * How long the lab waits for something that takes a second on an idle
 * machine (a daemon up, a log line, a first ping reply, a transfer making
 * progress) before calling it broken. Generous on purpose: a CI machine is
 * busy, and a test that waits for a condition passes as soon as it holds, so
 * only a real failure ever waits this long. Nothing in the lab is a deadline.
 */
export const PATIENCE_MS = 120_000;

export interface LabHost {
  readonly index: number;
  readonly ns: string;
  readonly underlay: string;      // 172.16.i.10
  /** This host's slice (250.i.10.0/24 with the default /16 underlay). */
  readonly slice: { readonly network: string; readonly prefix: number; readonly gateway: string };
  readonly bridge: string;        // fan-250-i-10
  readonly containers: LabContainer[];
  fand?: Fand;
}

export interface LabContainer {
  readonly ns: string;
  readonly address: string;
  readonly host: LabHost;
}

export interface Fand {
  readonly child: ChildProcess;
  /** The log records, `time` as epoch ms (fand writes ISO 8601 UTC). */
  readonly logs: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
}

const LIVE = new Set<Lab>();
process.once('exit', () => { for (const lab of LIVE) lab.destroySync(); });
for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => { for (const lab of LIVE) lab.destroySync(); process.exit(128 + (sig === 'SIGTERM' ? 15 : 1)); });
}

export class Lab {
  readonly hosts: LabHost[] = [];
  readonly underlayNs: string;
  private readonly namespaces: string[] = [];
  private readonly nsInodes: string[] = [];

  /**
   * @param underlayPrefix hosts are 172.16.i.10 on 172.16.0.0/underlayPrefix
   *   (at most /20 with up to 15 hosts). A longer prefix means fewer remote
   *   hosts, which is what a kernel-ipip test inside UML can afford.
   */
  /** The lab fan's encapsulation: `fand --encap`, the containers' netmask and MTU follow it. */
  readonly encap: Encap;
  /**
   * `fand --dataplane` for every daemon the lab starts (unless its options
   * name one): given, or FAND_TEST_DATAPLANE (the suites that run once per
   * dataplane set it), or none (auto).
   */
  readonly dataplane: string | undefined;

  constructor(readonly prefix: string, readonly underlayPrefix = 16, opts: { encap?: Encap; dataplane?: string } = {}) {
    this.underlayNs = `${prefix}-ul`;
    this.encap = opts.encap ?? 'ipip';
    this.dataplane = opts.dataplane ?? process.env['FAND_TEST_DATAPLANE'];
    LIVE.add(this);
  }

  /** The lab fan's MTU on a 1500-byte underlay. */
  get fanMtu(): number {
    return 1500 - ENCAP_OVERHEAD[this.encap];
  }

  /** fand's options for the lab fan (none with --config: the file has the fans), and its dataplane. */
  fanArgs(extra: readonly string[] = []): string[] {
    const dp = this.dataplane && !extra.includes('--dataplane') ? ['--dataplane', this.dataplane] : [];
    if (extra.includes('--config')) return dp;
    return ['--overlay', OVERLAY, '--underlay', `eth0/${this.underlayPrefix}`, ...(this.encap === 'vxlan' ? ['--encap', 'vxlan'] : []), ...dp];
  }

  /**
   * Last-resort cleanup when the process exits without destroy() (a test
   * runner's timeout, an uncaught exception): synchronous, so it runs in an
   * 'exit' handler. Killing a namespace's processes is left to the kernel:
   * deleting the namespace removes its devices, routes and rules.
   */
  destroySync(): void {
    for (const h of this.hosts) { try { h.fand?.child.kill('SIGKILL'); } catch { /* gone */ } }
    for (const ns of [...this.namespaces].reverse()) {
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
    }
    this.namespaces.length = 0;
    for (const ino of this.nsInodes) {
      rmSync(`/run/fand/fand-${ino}.state.json`, { force: true });
      rmSync(`/run/fand/fand-${ino}.sock`, { force: true });
    }
    LIVE.delete(this);
  }

  static uniquePrefix(tag = 'fd'): string {
    return `${tag}${process.pid % 100000}${Math.floor(Math.random() * 1000)}`;
  }

  private async addNs(name: string): Promise<void> {
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    try { this.nsInodes.push(String(statSync(`/run/netns/${name}`).ino)); } catch { /* only used for cleanup */ }
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /**
   * `hosts` hosts, each with `containersPerHost` containers (not yet attached),
   * on an underlay bridge; or, with `directPair` and two hosts, on one veth
   * pair between them and nothing else (the benchmark's underlay: no bridge
   * and its netfilter hooks on the path).
   */
  async build(hosts: number, containersPerHost: number, underlayMtu = 1500, directPair = false): Promise<void> {
    if (directPair && hosts !== 2) throw new Error(`a direct veth pair joins exactly 2 hosts, not ${hosts}`);
    if (!directPair) {
      await this.addNs(this.underlayNs);
      await run('ip', ['-n', this.underlayNs, 'link', 'add', 'br0', 'type', 'bridge']);
      await run('ip', ['-n', this.underlayNs, 'link', 'set', 'br0', 'up']);
    }
    for (let i = 1; i <= hosts; i++) {
      const ns = `${this.prefix}-h${i}`;
      await this.addNs(ns);
      if (!directPair) {
        await run('ip', ['-n', this.underlayNs, 'link', 'add', `u${i}`, 'mtu', String(underlayMtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(underlayMtu), 'netns', ns]);
        await run('ip', ['-n', this.underlayNs, 'link', 'set', `u${i}`, 'master', 'br0', 'up']);
      } else if (i === 2) {
        const h1 = `${this.prefix}-h1`;
        await run('ip', ['-n', h1, 'link', 'add', 'eth0', 'mtu', String(underlayMtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(underlayMtu), 'netns', ns]);
        await run('ip', ['-n', h1, 'addr', 'add', `172.16.1.10/${this.underlayPrefix}`, 'dev', 'eth0']);
        await run('ip', ['-n', h1, 'link', 'set', 'eth0', 'up']);
        await run('ip', ['-n', h1, 'route', 'add', 'default', 'via', '172.16.0.1', 'dev', 'eth0']);
      }
      const underlay = `172.16.${i}.10`;
      // Like a real host: a default route (to a gateway nobody answers for,
      // inside the lab) and strict reverse-path filtering, as many
      // distributions set it. fand must work under both. (Host 1 of a direct
      // pair gets its eth0 with host 2's.)
      if (!(directPair && i === 1)) {
        await run('ip', ['-n', ns, 'addr', 'add', `${underlay}/${this.underlayPrefix}`, 'dev', 'eth0']);
        await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
        await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', '172.16.0.1', 'dev', 'eth0']);
      }
      await inNs(ns, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 1 > /proc/sys/net/ipv4/conf/default/rp_filter']);
      const map = makeFanMap(parseNetwork(OVERLAY, 'overlay'), { network: parseIpv4('172.16.0.0')!, prefix: this.underlayPrefix });
      const slice = sliceFor(map, parseIpv4(underlay)!);
      const host: LabHost = {
        index: i, ns, underlay,
        slice: { network: formatIpv4(slice.network), prefix: slice.prefix, gateway: formatIpv4(slice.bridgeAddress) },
        bridge: bridgeNameFor(slice), containers: [],
      };
      for (let j = 1; j <= containersPerHost; j++) {
        const cns = `${ns}c${j}`;
        await this.addNs(cns);
        await run('ip', ['-n', ns, 'link', 'add', `c${j}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cns]);
        host.containers.push({ ns: cns, address: formatIpv4(slice.network + 10 + j), host });
      }
      this.hosts.push(host);
    }
  }

  /** A namespace on the underlay bridge that runs no fand: the rogue sender of the tests. */
  async addUnderlayPeer(name: string, address: string): Promise<string> {
    const ns = `${this.prefix}-${name}`;
    await this.addNs(ns);
    const port = `p${this.namespaces.length}`;
    await run('ip', ['-n', this.underlayNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run('ip', ['-n', this.underlayNs, 'link', 'set', port, 'master', 'br0', 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', `${address}/${this.underlayPrefix}`, 'dev', 'eth0']);
    await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    return ns;
  }

  /** Starts fand in a host namespace and resolves once it logs that it is up (or rejects when it exits first). */
  async startFand(host: LabHost, extra: readonly string[] = [], timeoutMs = PATIENCE_MS, env: Record<string, string> = {}): Promise<Fand> {
    // With --config the fans come from the file; otherwise the lab's fan.
    const child = spawn('ip', ['netns', 'exec', host.ns, process.execPath, FAND_BIN, 'run', ...this.fanArgs(extra), ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const logs: Record<string, unknown>[] = [];
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let lineBuf = '';
    const up = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fand in ${host.ns} not up within ${timeoutMs} ms; stderr: ${stderr}; logs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
      child.stdout!.on('data', (d: Buffer) => {
        lineBuf += d.toString();
        let nl;
        while ((nl = lineBuf.indexOf('\n')) >= 0) {
          const line = lineBuf.slice(0, nl);
          lineBuf = lineBuf.slice(nl + 1);
          try {
            const o = JSON.parse(line) as Record<string, unknown>;
            // fand writes `time` in ISO 8601; tests and benchmarks subtract times: epoch ms here.
            if (typeof o['time'] === 'string') o['time'] = Date.parse(o['time']);
            logs.push(o);
            if (o['msg'] === 'fand is up') { clearTimeout(timer); resolve(); }
          } catch { /* not a log line */ }
        }
      });
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      void exited.then((code) => { clearTimeout(timer); reject(new Error(`fand in ${host.ns} exited with ${code} before it was up: ${stderr}`)); });
    });
    const fand: Fand = { child, logs, exited };
    host.fand = fand;
    await up;
    return fand;
  }

  /**
   * Resolves with the first log line of the host's fand whose msg matches,
   * from now on, or from log line `from` (logs.length taken before the
   * change the line answers: an event-driven daemon may log before this runs).
   */
  async waitForLog(host: LabHost, msg: RegExp, timeoutMs = PATIENCE_MS, from?: number): Promise<Record<string, unknown>> {
    const f = host.fand;
    if (!f) throw new Error(`no fand on ${host.ns}`);
    from ??= f.logs.length;
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = f.logs.slice(from).find((l) => msg.test(String(l['msg'])));
      if (hit) return hit;
      if (Date.now() > until) throw new Error(`fand on ${host.ns} logged nothing matching ${msg} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The control socket of the daemon running in a host namespace (reachable from any namespace). */
  controlSocket(host: LabHost): string {
    return `/run/fand/fand-${statSync(`/run/netns/${host.ns}`).ino}.sock`;
  }

  /** Stops fand; SIGKILL after `timeoutMs` (teardown of many routes on a slow kernel takes a while). */
  async stopFand(host: LabHost, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = PATIENCE_MS): Promise<number | null> {
    const f = host.fand;
    if (!f) return null;
    if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill(signal);
    const code = await Promise.race([f.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref())]);
    if (code === 'timeout') { f.child.kill('SIGKILL'); await f.exited; }
    host.fand = undefined;
    return code === 'timeout' ? null : code;
  }

  /**
   * Attaches the host's containers to its fan bridge (which fand created) and
   * addresses them: with the slice's prefix on an ipip fan, with the
   * overlay's on a VXLAN fan (one Ethernet segment: they ARP for containers
   * on other hosts), as DHCP would.
   */
  async attachContainers(host: LabHost, mtu = this.fanMtu): Promise<void> {
    const prefix = this.encap === 'vxlan' ? Number(OVERLAY.split('/')[1]) : host.slice.prefix;
    for (const [j, c] of host.containers.entries()) {
      await run('ip', ['-n', host.ns, 'link', 'set', `c${j + 1}`, 'master', host.bridge, 'mtu', String(mtu), 'up']);
      await run('ip', ['-n', c.ns, 'link', 'set', 'eth0', 'mtu', String(mtu), 'up']);
      await run('ip', ['-n', c.ns, 'addr', 'replace', `${c.address}/${prefix}`, 'dev', 'eth0']);
      await run('ip', ['-n', c.ns, 'route', 'replace', 'default', 'via', host.slice.gateway]);
    }
  }

  containers(): LabContainer[] {
    return this.hosts.flatMap((h) => h.containers);
  }

  /**
   * True once `count` echo replies have come back from `to`, probing every
   * 0.2 s for at most `deadlineS` (ping -w: it keeps sending until it has
   * `count` replies). A reply lost on a busy machine is not a broken path.
   */
  async ping(from: string, to: string, count = 1, deadlineS = PATIENCE_MS / 1000): Promise<boolean> {
    try {
      await inNs(from, 'ping', ['-c', String(count), '-i', '0.2', '-w', String(deadlineS), '-q', to], (deadlineS + 10) * 1000);
      return true;
    } catch {
      return false;
    }
  }

  /** Every container pings every other, one ordered pair after another (ping() with `deadlineS`). */
  async pingMatrix(deadlineS = PATIENCE_MS / 1000): Promise<{ from: LabContainer; to: LabContainer; ok: boolean }[]> {
    const out: { from: LabContainer; to: LabContainer; ok: boolean }[] = [];
    for (const from of this.containers()) {
      for (const to of this.containers()) if (from !== to) out.push({ from, to, ok: await this.ping(from.ns, to.address, 1, deadlineS) });
    }
    return out;
  }

  /** True when `to` sends no echo reply for `seconds` of probes every 0.2 s: for paths that must be cut. */
  async silent(from: string, to: string, seconds: number): Promise<boolean> {
    try {
      await inNs(from, 'ping', ['-c', '1', '-i', '0.2', '-w', String(seconds), '-q', to], (seconds + 10) * 1000);
      return false;
    } catch {
      return true;
    }
  }

  async destroy(): Promise<void> {
    for (const h of this.hosts) { try { await this.stopFand(h); } catch { /* keep cleaning */ } }
    for (const ns of [...this.namespaces].reverse()) {
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    this.namespaces.length = 0;
    LIVE.delete(this);
    // State and sockets of daemons that were killed would otherwise be read by
    // a later daemon in a namespace that happens to get the same inode.
    for (const ino of this.nsInodes) {
      await rm(`/run/fand/fand-${ino}.state.json`, { force: true });
      await rm(`/run/fand/fand-${ino}.sock`, { force: true });
      // dnsmasq lease databases outlive a daemon on purpose, not a deleted namespace
      for (const f of await readdir('/run/fand').catch(() => [] as string[])) {
        if (f.startsWith(`dhcp-${ino}-`)) await rm(`/run/fand/${f}`, { force: true });
      }
    }
  }
}

const TRANSFER_JS = fileURLToPath(new URL('./transfer.js', import.meta.url));

export interface ScriptOptions {
  /** Kill the script when it has printed nothing for this long (it is stuck, not slow). */
  readonly stallMs?: number;
  /** Give the script a stdin pipe (`child.stdin`); otherwise stdin is /dev/null. */
  readonly stdin?: boolean;
}

/**
 * Runs a node script in a namespace, killed after timeoutMs (or once it is
 * silent for `stallMs`). Its stdout is one JSON object per line: `first`
 * resolves with the first (or rejects if it exits before printing), `done`
 * with all of them once it exits 0.
 */
export function runNodeScript(ns: string, script: string, args: readonly string[], timeoutMs: number, opts: ScriptOptions = {}):
  { first: Promise<Record<string, unknown>>; done: Promise<Record<string, unknown>[]>; child: ChildProcess } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, ...args], { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  child.stdin?.on('error', () => undefined); // the script may be gone when the caller writes
  let killedFor = '';
  const kill = (why: string) => { if (!killedFor) { killedFor = why; child.kill('SIGKILL'); } };
  let stall: NodeJS.Timeout | undefined;
  const watch = () => {
    if (opts.stallMs === undefined) return;
    clearTimeout(stall);
    stall = setTimeout(() => kill(`killed: silent for ${opts.stallMs} ms`), opts.stallMs);
  };
  watch();
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  let stderr = '';
  let onFirst: (o: Record<string, unknown>) => void = () => undefined;
  const first = new Promise<Record<string, unknown>>((r) => { onFirst = r; });
  child.stdout!.on('data', (d: Buffer) => {
    watch();
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const o = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      lines.push(o);
      if (lines.length === 1) onFirst(o);
    }
  });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => kill(`killed after ${timeoutMs} ms`), timeoutMs);
  const done = new Promise<Record<string, unknown>[]>((resolve, reject) => {
    // 'close', not 'exit': at 'exit' the last line may still be unread in the pipe.
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      clearTimeout(stall);
      if (code === 0) resolve(lines);
      else reject(new Error(`${script} ${args.join(' ').slice(0, 80)} in ${ns}: exit ${code ?? sig}${killedFor ? ` (${killedFor})` : ''}; ${stderr.trim()} ${JSON.stringify(lines.slice(-5))}`));
    });
  });
  void done.catch(() => undefined);
  const printed = Promise.race([first, done.then((): Record<string, unknown> => { throw new Error(`${script} in ${ns} exited before printing`); })]);
  void printed.catch(() => undefined);
  return { first: printed, done, child };
}

/** A transfer that has moved nothing for this long is stuck (its `progress` lines stopped). */
export const STALL_MS = 60_000;
/** The last resort for a transfer that keeps trickling: no lab transfer should come near it. */
const TRANSFER_CAP_MS = 30 * 60_000;

/** `transfer.js` in a namespace: `last` is its final JSON line. */
function startTransfer(ns: string, args: readonly string[], stallMs: number, stdin = false): { first: Promise<Record<string, unknown>>; last: Promise<Record<string, unknown>>; child: ChildProcess } {
  const r = runNodeScript(ns, TRANSFER_JS, args, TRANSFER_CAP_MS, { stallMs, stdin });
  const last = r.done.then((lines) => {
    const l = lines.filter((x) => !('progress' in x)).pop();
    if (!l) throw new Error(`transfer ${args.join(' ')} in ${ns}: printed nothing`);
    return l;
  });
  void last.catch(() => undefined);
  return { first: r.first, last, child: r.child };
}

export interface TransferResult { sent: { bytes: number; sha256: string; seconds: number }; received: { bytes: number; sha256: string; seconds: number } }

/**
 * TCP: `bytes` random bytes from one namespace to an address served in
 * another; both sides hash. Ended only when it stops making progress for
 * `stallMs`, never for being slow.
 */
export async function tcpTransfer(fromNs: string, toNs: string, toAddress: string, bytes: number, port = 5201, stallMs = STALL_MS): Promise<TransferResult> {
  const server = startTransfer(toNs, ['tcp-server', String(port)], stallMs);
  try {
    await Promise.race([server.first, server.last]);
    const client = startTransfer(fromNs, ['tcp-client', toAddress, String(port), String(bytes)], stallMs);
    const [sent, received] = await Promise.all([client.last, server.last]);
    return { sent: sent as TransferResult['sent'], received: received as TransferResult['received'] };
  } finally {
    server.child.kill('SIGKILL'); // when the client failed, the server would wait for its stall limit
  }
}

export interface UdpResult {
  readonly sent: number;
  /** Arrived intact, at the right socket, from the right sender, once. */
  readonly received: number;
  /** Never arrived: lost on the way (queues of a busy machine). Counted, not an error. */
  readonly lost: number;
  /** Arrived with other bytes than were sent. Always an error. */
  readonly bad: number;
  /** Arrived more than once. Always an error. */
  readonly duplicates: number;
  /** Arrived here but was sent to another address or port, or came from another source. Always an error. */
  readonly misdelivered: number;
}

/**
 * UDP: `count` numbered datagrams, each checked by the receiver. The
 * receiver counts until the sender has finished and the datagrams still on
 * the way have arrived (transfer.ts); loss is reported, not judged here.
 */
export async function udpTransfer(fromNs: string, toNs: string, toAddress: string, count: number, size = 1200, flows = 1, port = 5202, fromAddress?: string): Promise<UdpResult> {
  const from = fromAddress ?? await firstAddress(fromNs);
  const server = startTransfer(toNs, ['udp-server', String(port), String(count), from, toAddress], STALL_MS, true);
  try {
    await Promise.race([server.first, server.last]);
    const client = startTransfer(fromNs, ['udp-client', toAddress, String(port), String(count), String(size), String(flows)], STALL_MS);
    await client.last.finally(() => server.child.stdin?.end('sent\n'));
    return { sent: count, ...(await server.last) } as unknown as UdpResult;
  } finally {
    server.child.kill('SIGKILL');
  }
}

/** The first global IPv4 address in a namespace (a lab container has one). */
async function firstAddress(ns: string): Promise<string> {
  const links = JSON.parse((await run('ip', ['-n', ns, '-j', '-4', 'addr', 'show', 'scope', 'global'])).stdout) as { addr_info: { local: string }[] }[];
  const a = links.flatMap((l) => l.addr_info)[0]?.local;
  if (!a) throw new Error(`no IPv4 address in namespace ${ns}`);
  return a;
}
