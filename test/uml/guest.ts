// Tools for the guest side of a UML tier (test/uml/*-fleet.ts): namespaces
// remembered for cleanup, one traffic agent per container (agent.ts), tcpdump
// that is listening before the test sends, ping, ICMP counters, and fand's
// drops read over its control socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { inNs, run } from '../../src/demo/exec.js';
import { request } from '../../src/control/server.js';

const AGENT = fileURLToPath(new URL('./agent.js', import.meta.url));

export class Guest {
  readonly namespaces: string[] = [];
  readonly children: ChildProcess[] = [];
  readonly problems: string[] = [];
  readonly timeline: string[] = [];
  private readonly t0 = Date.now();
  constructor(readonly tmp: string) {}

  check(ok: boolean, what: string): boolean { if (!ok) this.problems.push(what); return ok; }
  stamp(what: string): void { this.timeline.push(`${((Date.now() - this.t0) / 1000).toFixed(1)}s ${what}`); }

  async addNs(name: string): Promise<void> {
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** One agent per namespace, serving TCP on `port` and requests on TMP/NS.sock. */
  async startAgents(nss: readonly string[], port: number): Promise<void> {
    await Promise.all(nss.map((ns) => new Promise<void>((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, AGENT, `${this.tmp}/${ns}.sock`, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.children.push(child);
      let err = '';
      const timer = setTimeout(() => reject(new Error(`agent in ${ns} not ready within 120 s: ${err}`)), 120_000);
      child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('"ready"')) { clearTimeout(timer); resolve(); } });
      child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`agent in ${ns} exited ${code}: ${err}`)); });
    })));
  }

  agentCall(ns: string, req: object, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const s = createConnection(`${this.tmp}/${ns}.sock`);
      let buf = '';
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`agent ${ns}: no answer within ${timeoutMs} ms`)); }, timeoutMs);
      s.on('connect', () => s.write(JSON.stringify(req) + '\n'));
      s.on('data', (d) => { buf += d.toString(); });
      s.on('end', () => { clearTimeout(timer); try { resolve(JSON.parse(buf)); } catch (e) { reject(e); } });
      s.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  /**
   * `bytes` random bytes over TCP from the agent in `from` to `to`:`port`,
   * and whether the agent in `toNs` received exactly them (sha256), from
   * `fromAddress` when given.
   */
  async tcp(from: string, toNs: string, to: string, port: number, bytes: number, fromAddress?: string): Promise<{ ok: boolean; detail: string }> {
    const sent = (await this.agentCall(from, { cmd: 'send', to, port, bytes }, 240_000)) as { bytes?: number; sha256?: string; error?: string };
    let got: { from: string; bytes: number; sha256: string } | undefined;
    for (let w = 0; w < 300 && !got && sent.sha256; w++) {
      const rec = (await this.agentCall(toNs, { cmd: 'received' }, 30_000)) as { from: string; bytes: number; sha256: string }[];
      got = rec.find((r) => r.sha256 === sent.sha256 && (fromAddress === undefined || r.from.endsWith(fromAddress)));
      if (!got) await new Promise((r) => setTimeout(r, 100));
    }
    const ok = sent.bytes === bytes && got?.bytes === bytes;
    return { ok, detail: ok ? `${bytes} bytes identical` : `FAILED ${JSON.stringify(sent)}` };
  }

  /** tcpdump in a namespace, listening when this resolves; stop() ends it and returns what it printed. */
  async capture(ns: string, args: string[]): Promise<{ text: () => string; stop: () => Promise<string> }> {
    // --immediate-mode: each packet as it comes (libpcap otherwise hands over blocks, and a SIGINT can drop the last one).
    const child = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '--immediate-mode', '-n', '-l', '-v', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let text = '';
    child.stdout!.on('data', (d: Buffer) => { text += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcpdump in ${ns} not listening within 60 s`)), 60_000);
      child.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('listening on')) { clearTimeout(timer); resolve(); } });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`tcpdump in ${ns} exited ${code}`)); });
    });
    return {
      text: () => text,
      stop: async () => {
        const done = new Promise<void>((r) => child.on('close', () => r()));
        child.kill('SIGINT');
        await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
        return text;
      },
    };
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    for (const ns of [...this.namespaces].reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

export async function ping(ns: string, to: string, extra: string[] = []): Promise<{ ok: boolean; text: string }> {
  try {
    const r = await inNs(ns, 'ping', ['-n', '-c', '1', '-W', '5', ...extra, to], 30_000);
    return { ok: true, text: r.stdout };
  } catch (e) {
    return { ok: false, text: String((e as { stdout?: string }).stdout ?? '') + (e as Error).message };
  }
}

/** Icmp InEchos of a namespace (/proc/net/snmp): echo requests that reached its stack. */
export async function inEchos(ns: string): Promise<number> {
  const lines = (await inNs(ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  return Number(lines[1]!.split(/\s+/)[lines[0]!.split(/\s+/).indexOf('InEchos')]);
}

/** fand's drops of one reason, summed over its fans (`fand show --json` over the control socket). */
export async function fandDrops(ns: string, reason: string): Promise<number> {
  const sock = `/run/fand/fand-${statSync(`/run/netns/${ns}`).ino}.sock`;
  const r = (await request(sock, { cmd: 'show' }, 10_000)) as { fans: { drops: Record<string, number> }[] };
  return r.fans.reduce((s, f) => s + (f.drops[reason] ?? 0), 0);
}

/** Waits (capped) until `done()` holds; returns whether it did. */
export async function until(done: () => Promise<boolean> | boolean, tries = 100, everyMs = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await done()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return done();
}
