// The paths the benchmark compares, all between the same two lab hosts:
// the bare underlay, kernel VXLAN, fand's userspace dataplane (container to
// container) over an IPIP fan and over a VXLAN fan, and OpenVPN without
// crypto as a userspace tunnel for reference.
// A path says where its client and server run and which address the client
// dials; `start`/`stop` bracket every measurement on it, and `pids` are the
// userspace daemons carrying it (whose memory is sampled).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabHost } from '../src/demo/lab.js';
import { run } from '../src/demo/exec.js';
import { startIn, type Background } from './proc.js';
import type { Encap } from '../src/fan/encap.js';

export interface BenchPath {
  readonly key: string;
  readonly label: string;
  readonly clientNs: string;
  readonly serverNs: string;
  /** The server's address on this path. */
  readonly address: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  pids(): number[];
}

const idle = { start: async () => undefined, stop: async () => undefined, pids: () => [] };

export function barePath(h1: LabHost, h2: LabHost): BenchPath {
  return { key: 'bare', label: 'bare underlay', clientNs: h1.ns, serverNs: h2.ns, address: h2.underlay, ...idle };
}

/** Kernel VXLAN between the two host namespaces, 10.200.0.0/24, MTU 1450 (1500 - 50). */
export async function vxlanPath(h1: LabHost, h2: LabHost): Promise<BenchPath> {
  for (const [h, peer, addr] of [[h1, h2, '10.200.0.1'], [h2, h1, '10.200.0.2']] as const) {
    await run('ip', ['-n', h.ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'remote', peer.underlay, 'local', h.underlay, 'dstport', '4789', 'dev', 'eth0']);
    await run('ip', ['-n', h.ns, 'addr', 'add', `${addr}/24`, 'dev', 'vx0']);
    await run('ip', ['-n', h.ns, 'link', 'set', 'vx0', 'up']);
  }
  return { key: 'vxlan', label: 'kernel VXLAN', clientNs: h1.ns, serverNs: h2.ns, address: '10.200.0.2', ...idle };
}

/**
 * fand between the first container of each host (fand is already running on
 * both), over an IPIP fan (key `fand`) or a VXLAN fan (key `fand-vxlan`:
 * the userspace VXLAN dataplane, in a lab of its own).
 */
export function fandPath(h1: LabHost, h2: LabHost, workers: string, encap: Encap = 'ipip', variant?: 'ebpf' | 'ebpf-bridge'): BenchPath {
  const c1 = h1.containers[0]!;
  const c2 = h2.containers[0]!;
  const label = variant === 'ebpf' ? 'fand IPIP ebpf' : variant === 'ebpf-bridge' ? 'fand IPIP ebpf, no port redirect'
    : `fand ${encap === 'vxlan' ? 'VXLAN' : 'IPIP userspace'} (${workers} workers)`;
  return {
    key: variant ? `fand-${variant}` : encap === 'vxlan' ? 'fand-vxlan' : 'fand', label,
    clientNs: c1.ns, serverNs: c2.ns, address: c2.address,
    start: async () => undefined, stop: async () => undefined,
    pids: () => [h1.fand?.child.pid, h2.fand?.child.pid].filter((p): p is number => p !== undefined),
  };
}

/**
 * OpenVPN 2.6 in peer-to-peer mode with neither cipher nor HMAC (no TLS, no
 * static key: the payload travels as is in UDP), tun devices 10.201.0.1 and
 * .2, MTU 1450 like VXLAN so the outer packet is never fragmented. Started
 * afresh for every measurement; OpenVPN is single-threaded.
 */
export class OpenVpnPath implements BenchPath {
  readonly key = 'openvpn';
  readonly label = 'OpenVPN (no crypto)';
  readonly clientNs: string;
  readonly serverNs: string;
  readonly address = '10.201.0.2';
  private readonly dir = mkdtempSync(join(tmpdir(), 'fand-bench-ovpn-'));
  private daemons: Background[] = [];

  constructor(private readonly lab: Lab, private readonly h1: LabHost, private readonly h2: LabHost) {
    this.clientNs = h1.ns;
    this.serverNs = h2.ns;
    for (const [h, peer, local, remote] of [[h1, h2, '10.201.0.1', '10.201.0.2'], [h2, h1, '10.201.0.2', '10.201.0.1']] as const) {
      writeFileSync(join(this.dir, `${h.index}.conf`), [
        'dev ovpn0', 'dev-type tun', 'proto udp',
        `local ${h.underlay}`, 'lport 1194', `remote ${peer.underlay}`, 'rport 1194',
        `ifconfig ${local} ${remote}`, 'tun-mtu 1450',
        'cipher none', 'auth none', 'fast-io', 'verb 1', '',
      ].join('\n'));
    }
  }

  async start(): Promise<void> {
    for (const h of [this.h1, this.h2]) {
      this.daemons.push(await startIn(h.ns, 'openvpn', ['--config', join(this.dir, `${h.index}.conf`)], /link remote/, 24 * 3600_000, 10_000));
    }
    // No handshake without TLS: the tunnel carries traffic once both ends are up.
    for (let i = 0; i < 50; i++) if (await this.lab.ping(this.clientNs, this.address, 1, 1)) return;
    throw new Error(`OpenVPN between ${this.h1.ns} and ${this.h2.ns}: ${this.address} does not answer; ${this.daemons.map((d) => d.output().trim().split('\n').slice(-2).join(' / ')).join('; ')}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.stop()));
    this.daemons = [];
  }

  pids(): number[] {
    return this.daemons.map((d) => d.child.pid).filter((p): p is number => p !== undefined);
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
