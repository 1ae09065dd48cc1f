// One measurement each: iperf3 TCP and UDP, round-trip latency (sockperf, or
// bench/pingpong.ts where sockperf is missing), machine CPU time, and the
// resident memory of daemons. Every server is started for one measurement,
// waited for until it listens, and killed afterwards; every client is bounded.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inNs } from '../src/demo/exec.js';
import type { BenchPath } from './paths.js';
import { startIn } from './proc.js';

const IPERF_PORT = '5201';
const LATENCY_PORT = '11111';

/** Runs `client` while an iperf3 server (one test, then it exits) listens on the path's server side. */
async function withIperfServer<T>(path: BenchPath, seconds: number, client: () => Promise<T>): Promise<T> {
  const server = await startIn(path.serverNs, 'iperf3', ['-s', '-1', '--forceflush', '-B', path.address, '-p', IPERF_PORT], /Server listening/, (seconds + 30) * 1000);
  try {
    return await client();
  } finally {
    await server.stop();
  }
}

interface IperfSum { seconds: number; bytes: number; bits_per_second: number; packets?: number; lost_packets?: number; lost_percent?: number }
interface IperfJson { end: { sum?: IperfSum; sum_received?: IperfSum } }

async function iperfClient(path: BenchPath, seconds: number, args: readonly string[]): Promise<IperfJson> {
  const argv = ['-c', path.address, '-p', IPERF_PORT, '-t', String(seconds), '-J', ...args];
  let stdout: string;
  try {
    stdout = (await inNs(path.clientNs, 'iperf3', argv, (seconds + 20) * 1000)).stdout;
  } catch (e) {
    // With -J, iperf3 reports its errors in the JSON on stdout.
    const why = /"error":\s*"([^"]*)"/.exec((e as { stdout?: string }).stdout ?? '')?.[1];
    throw new Error(`iperf3 ${argv.join(' ')} in ${path.clientNs}: ${why ?? (e as Error).message}`);
  }
  return JSON.parse(stdout) as IperfJson;
}

// Machine-wide CPU time from /proc/stat (not namespaced): user + nice +
// system + irq + softirq over all CPUs, in USER_HZ ticks (100 a second on
// Linux for every architecture we run on; `getconf CLK_TCK`).
const USER_HZ = 100;
function busyTicks(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = cpu;
  return user + nice + system + irq + softirq;
}

export interface TcpResult { gbit: number; coreSecondsPerGbit: number }

/** iperf3 TCP with `streams` parallel streams; CPU time of the whole machine while the client ran. */
export async function tcp(path: BenchPath, seconds: number, streams: number): Promise<TcpResult> {
  return withIperfServer(path, seconds, async () => {
    const before = busyTicks();
    const j = await iperfClient(path, seconds, ['-P', String(streams)]);
    const coreSeconds = (busyTicks() - before) / USER_HZ;
    const r = j.end.sum_received!;
    const gbitTransferred = (r.bytes * 8) / 1e9;
    return { gbit: r.bits_per_second / 1e9, coreSecondsPerGbit: coreSeconds / gbitTransferred };
  });
}

export interface UdpResult { pps: number; gbit: number; lossPercent: number }

/** iperf3 UDP, datagrams of `size` bytes sent as fast as the sender can (-b 0); what the receiver got. */
export async function udp(path: BenchPath, seconds: number, size: number): Promise<UdpResult> {
  return withIperfServer(path, seconds, async () => {
    const j = await iperfClient(path, seconds, ['-u', '-l', String(size), '-b', '0']);
    // iperf3 3.12 reports the receiver in sum_received; older ones only in `sum`.
    const r = j.end.sum_received ?? j.end.sum!;
    const received = (r.packets ?? 0) - (r.lost_packets ?? 0);
    return { pps: received / r.seconds, gbit: r.bits_per_second / 1e9, lossPercent: r.lost_percent ?? 0 };
  });
}

export interface LatencyResult { avgUs: number; p99Us: number }

/** sockperf ping-pong, 64-byte UDP messages one at a time, full round trips. */
export async function sockperfRtt(path: BenchPath, seconds: number): Promise<LatencyResult> {
  const server = await startIn(path.serverNs, 'sockperf', ['server', '-i', path.address, '-p', LATENCY_PORT], /block on socket/, (seconds + 30) * 1000);
  try {
    const out = await inNs(path.clientNs, 'sockperf', ['ping-pong', '-i', path.address, '-p', LATENCY_PORT, '-t', String(seconds), '-m', '64', '--full-rtt'], (seconds + 20) * 1000);
    const text = out.stdout + out.stderr;
    const avg = /avg-rtt=\s*([\d.]+)/.exec(text);
    const p99 = /percentile 99\.000 =\s*([\d.]+)/.exec(text);
    if (!avg || !p99) throw new Error(`sockperf ping-pong to ${path.address}: no avg-rtt or p99 in its output: ${text.slice(-300)}`);
    return { avgUs: Number(avg[1]), p99Us: Number(p99[1]) };
  } finally {
    await server.stop();
  }
}

const PINGPONG_JS = fileURLToPath(new URL('./pingpong.js', import.meta.url));

/** The same measurement with bench/pingpong.ts: a Node echo server and a client sending one datagram at a time. */
export async function nodeRtt(path: BenchPath, seconds: number): Promise<LatencyResult> {
  const server = await startIn(path.serverNs, process.execPath, [PINGPONG_JS, 'server', path.address, LATENCY_PORT], /listening/, (seconds + 30) * 1000);
  try {
    const out = await inNs(path.clientNs, process.execPath, [PINGPONG_JS, 'client', path.address, LATENCY_PORT, String(seconds)], (seconds + 20) * 1000);
    return JSON.parse(out.stdout) as LatencyResult;
  } finally {
    await server.stop();
  }
}

/**
 * Samples VmRSS of the given processes every `intervalMs` until stopped;
 * `max` holds the largest value seen per pid, in bytes.
 */
export class RssSampler {
  readonly max = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private pids: readonly number[] = [];

  start(pids: readonly number[], intervalMs = 200): void {
    this.pids = pids;
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  private sample(): void {
    for (const pid of this.pids) {
      const kb = readVmRssKb(pid);
      if (kb !== undefined) this.max.set(pid, Math.max(this.max.get(pid) ?? 0, kb * 1024));
    }
  }
}

function readVmRssKb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // exited between samples
  }
}
