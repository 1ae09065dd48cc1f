// DHCP on a fan bridge: dnsmasq as a supervised child of fand.
//
// dnsmasq does DHCP, and DNS forwarding for the containers: it hands out the
// bridge address as their DNS server (option 6) and forwards their queries
// to the host's own resolvers, read from /etc/resolv.conf (which dnsmasq
// re-reads when it changes). Why forwarding rather than handing out the
// host's resolvers: a host's resolv.conf often names a resolver on the
// host's loopback (systemd-resolved's stub 127.0.0.53, a local dnsmasq or
// unbound on 127.0.0.1), which a container cannot reach (127.0.0.0/8 is its
// own loopback); dnsmasq runs in the host's namespace and reaches it, so
// containers resolve exactly what the host resolves, names the host serves
// locally included, and a change of the host's resolvers (a DHCP renewal on
// the host) needs no new lease. dnsmasq answers only on the bridge's
// addresses (--interface + --bind-dynamic), never on the underlay, and
// does not read the host's /etc/hosts (--no-hosts: its 127.0.1.1 hostname
// entry would send containers to themselves); the host's resolver does
// that, when it is systemd-resolved. Plain names without a dot are not
// forwarded (--domain-needed).
// dnsmasq stays in the foreground and logs to stderr, so fand forwards its
// lines and notices when it dies; it is restarted with a backoff and
// stopped when fand stops.
//
// Choices that the dnsmasq man page (dnsmasq(8), 2.90) explains:
// - `--conf-file=/dev/null`: the presence of -C stops dnsmasq reading
//   /etc/dnsmasq.conf (the compiled-in default of Debian's dnsmasq-base; a bare
//   `--conf-file` without a value does NOT stop it). /etc/dnsmasq.d is only read
//   with -7, which we never pass.
// - `--bind-dynamic` rather than `--bind-interfaces`: both give each instance
//   its own sockets (one dnsmasq per fan bridge can share a namespace), and
//   dnsmasq reports "DHCP, sockets bound exclusively to interface BR".
//   --bind-interfaces additionally prints "LOUD WARNING" lines about DNS
//   amplification on every interface change, and fails when the bridge is
//   recreated; --bind-dynamic follows the bridge. A missing bridge is only a
//   warning with --bind-dynamic, so start() turns that warning into an error.
// - `--dhcp-option-force=option:mtu,N` (option 26, interface-mtu): dnsmasq only
//   sends options a client asked for, and many clients (busybox udhcpc among
//   them) do not ask for the MTU. The fan MTU must reach them all.
// - dnsmasq drops privileges to its compiled-in user (`nobody` on Debian)
//   after opening the lease file, so the lease file may live in a root-only
//   directory: it is opened, and rewritten through the same descriptor, as root.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';

export interface DnsmasqOptions {
  /** The fan bridge, e.g. fan-250-1-10. */
  readonly bridge: string;
  /** First and last address handed out (dotted quads). */
  readonly first: string;
  readonly last: string;
  /** Prefix length of the slice; the netmask is derived from it. */
  readonly prefixLen: number;
  /** The bridge address, handed out as the default router (option 3) and DNS server (option 6). */
  readonly router: string;
  /** The fan MTU, handed out as interface-mtu (option 26). */
  readonly mtu: number;
  /** Lease database, under fand's runtime directory. */
  readonly leaseFile: string;
  /** dnsmasq lease time: `1h`, `30m`, `infinite`, seconds. Default 1h. */
  readonly leaseTime?: string;
}

export interface DhcpServerOptions extends DnsmasqOptions {
  /** Run dnsmasq inside this network namespace (`ip netns exec NS`). */
  readonly netns?: string;
  /** The dnsmasq binary; default: findDnsmasq(). */
  readonly binary?: string;
}

export interface DhcpLog {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

export const DNSMASQ_PACKAGE = 'dnsmasq-base';
export const DNSMASQ_MISSING =
  `dhcp: dnsmasq not found (looked for /usr/sbin/dnsmasq and on PATH); install it: apt-get install ${DNSMASQ_PACKAGE}`;

export function netmaskOf(prefixLen: number): string {
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) {
    throw new Error(`dhcp: prefix length ${prefixLen}: must be an integer 0..32`);
  }
  const m = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 0xff).join('.');
}

/** The dnsmasq command line for DHCP on one fan bridge. Pure. */
export function dnsmasqArgs(o: DnsmasqOptions): string[] {
  if (!Number.isInteger(o.mtu) || o.mtu < 68 || o.mtu > 65535) {
    throw new Error(`dhcp: mtu ${o.mtu}: must be an integer 68..65535 (RFC 2132 interface-mtu)`);
  }
  for (const [what, v] of [['bridge', o.bridge], ['lease file', o.leaseFile], ['lease time', o.leaseTime ?? '1h']] as const) {
    if (v === '' || /[,\s]/.test(v)) throw new Error(`dhcp: ${what} ${JSON.stringify(v)}: must be non-empty, without commas or spaces`);
  }
  return [
    '--conf-file=/dev/null',
    '--keep-in-foreground',
    '--log-facility=-',
    '--no-hosts',
    '--domain-needed',
    `--interface=${o.bridge}`,
    '--except-interface=lo',
    '--bind-dynamic',
    `--dhcp-range=${o.first},${o.last},${netmaskOf(o.prefixLen)},${o.leaseTime ?? '1h'}`,
    `--dhcp-option=option:router,${o.router}`,
    `--dhcp-option=option:dns-server,${o.router}`,
    `--dhcp-option-force=option:mtu,${o.mtu}`,
    '--dhcp-authoritative',
    `--dhcp-leasefile=${o.leaseFile}`,
    // An empty pid file name: no pid file (fand knows the pid).
    '--pid-file=',
  ];
}

function executable(p: string): boolean {
  try { accessSync(p, constants.X_OK); return true; } catch { return false; }
}

/** /usr/sbin/dnsmasq, else the first dnsmasq on PATH. */
export function findDnsmasq(): string | undefined {
  if (executable('/usr/sbin/dnsmasq')) return '/usr/sbin/dnsmasq';
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'dnsmasq'))) return join(dir, 'dnsmasq');
  }
  return undefined;
}

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
/** A run this long counts as healthy: the next failure starts the backoff afresh. */
const STABLE_MS = 60_000;
/**
 * dnsmasq 2.90 logs "DHCP, IP range" once its DHCP socket is set up, and
 * start() waits for that line. Only a dnsmasq that never logs it (another
 * version's wording) counts as started when it is still alive after this
 * long: generous, because on a busy machine the line can take seconds.
 */
const SETTLE_MS = 10_000;
const KILL_AFTER_MS = 3000;

/**
 * One supervised dnsmasq. start() resolves once dnsmasq runs (it logged its
 * DHCP range, or lived SETTLE_MS) and rejects with its stderr if it exits at
 * once. After that, an unexpected exit is logged and dnsmasq restarted after
 * 1 s, 2 s, 4 s ... at most 30 s. stop() ends it for good.
 */
export class DhcpServer {
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** start() has resolved: from now on an exit means restart. */
  private running = false;
  private stopped = false;
  private failures = 0;
  private restartCount = 0;

  constructor(private readonly opts: DhcpServerOptions, private readonly log: DhcpLog) {}

  /** How many times dnsmasq was restarted after dying. */
  get restarts(): number { return this.restartCount; }

  /** pid of the running dnsmasq, if one runs. */
  get pid(): number | undefined {
    const c = this.child;
    return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
  }

  start(): Promise<void> {
    if (this.child || this.stopped) return Promise.reject(new Error(`dhcp ${this.opts.bridge}: start() called twice or after stop()`));
    const bridge = this.opts.bridge;
    const missing = new RegExp(`interface ${escapeRe(bridge)} does not currently exist`);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let settle: NodeJS.Timeout | undefined;
      const stderr: string[] = [];
      let failure: Error | undefined;
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(settle);
        if (err) { this.stopped = true; reject(err); } else { this.running = true; resolve(); }
      };
      let child: ChildProcess;
      try {
        child = this.spawnOnce({
          onLine: (line) => {
            if (settled) return;
            stderr.push(line);
            if (missing.test(line) && !failure) {
              // --bind-dynamic would wait for the bridge; fand creates the
              // bridge first, so its absence at start is an error. Reject once
              // the process is gone, so a failed start leaves nothing behind.
              failure = new Error(`dhcp ${bridge}: no such interface (dnsmasq: ${line.trim()}); the fan bridge must exist before DHCP starts`);
              this.stopped = true;
              clearTimeout(settle);
              child.kill('SIGKILL');
            } else if (/DHCP, IP range/.test(line) && !failure) done();
          },
          onClose: (code, signal, err) => {
            const why = err ? err.message : signal ?? `code ${code}`;
            done(failure ?? new Error(`dhcp ${bridge}: dnsmasq exited at start (${why}): ${stderr.join('\n').trim() || 'no output'}`));
          },
        });
      } catch (e) {
        done(e as Error);
        return;
      }
      settle = setTimeout(() => { if (this.pid !== undefined) done(); }, SETTLE_MS);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    let kill: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => { kill = setTimeout(() => r(true), KILL_AFTER_MS); });
    if (await Promise.race([exited.then(() => false), timedOut])) {
      this.log.warn({ bridge: this.opts.bridge, pid: c.pid }, `dnsmasq did not exit ${KILL_AFTER_MS} ms after SIGTERM; sending SIGKILL`);
      c.kill('SIGKILL');
      await exited;
    }
    clearTimeout(kill);
  }

  /** Spawn dnsmasq once; `hooks` are start()'s, for the first process only. */
  private spawnOnce(hooks?: {
    onLine(line: string): void;
    onClose(code: number | null, signal: NodeJS.Signals | null, err?: Error): void;
  }): ChildProcess {
    const binary = this.opts.binary ?? findDnsmasq();
    if (!binary) throw new Error(DNSMASQ_MISSING);
    const args = dnsmasqArgs(this.opts);
    const [cmd, argv] = this.opts.netns ? ['ip', ['netns', 'exec', this.opts.netns, binary, ...args]] : [binary, args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    const startedAt = Date.now();
    const bridge = this.opts.bridge;
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.log.info({ dnsmasq: true, bridge, pid: child.pid }, line);
      hooks?.onLine(line);
    });
    let ended = false;
    const onEnd = (code: number | null, signal: NodeJS.Signals | null, err?: Error) => {
      if (ended) return;
      ended = true;
      // Before start() resolved, the exit is start()'s to report (on 'close',
      // once all of stderr is read); after stop(), it is expected.
      if (this.stopped || !this.running || this.child !== child) return;
      this.scheduleRestart(child, Date.now() - startedAt, code, signal, err);
    };
    child.once('exit', (code, signal) => onEnd(code, signal));
    // spawn failures (ENOENT, EACCES) come as 'error', maybe without 'exit'
    child.once('error', (err) => { onEnd(null, null, err); hooks?.onClose(null, null, err); });
    if (hooks) child.once('close', (code, signal) => hooks.onClose(code, signal));
    return child;
  }

  private scheduleRestart(child: ChildProcess, ranMs: number, code: number | null, signal: NodeJS.Signals | null, err?: Error): void {
    if (ranMs >= STABLE_MS) this.failures = 0;
    const delayMs = Math.min(FIRST_DELAY_MS * 2 ** this.failures, MAX_DELAY_MS);
    this.failures++;
    this.log.warn(
      { bridge: this.opts.bridge, pid: child.pid, code, signal, err: err?.message, ranMs, delayMs, restarts: this.restartCount },
      `dnsmasq exited unexpectedly (${err?.message ?? signal ?? `code ${code}`}); restarting in ${delayMs} ms`,
    );
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.restartCount++;
      try {
        const c = this.spawnOnce();
        this.log.info({ bridge: this.opts.bridge, pid: c.pid, restarts: this.restartCount }, 'dnsmasq restarted');
      } catch (e) {
        this.log.error({ bridge: this.opts.bridge, err: (e as Error).message }, 'dnsmasq restart failed; DHCP is off on this bridge');
      }
    }, delayMs);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
