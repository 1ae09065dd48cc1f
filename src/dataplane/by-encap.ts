// One dataplane mode for fans of both encapsulations: each fan goes to the
// part made for its encapsulation (the userspace mode runs IPIP fans in
// userspace/ and VXLAN fans in userspace-vxlan/), and a part runs only while
// it has fans (a reload may add the first VXLAN fan, or remove the last).
// Counters come back in the order of the fans.
import type { Dataplane, DataplaneMode, FanCounters } from './dataplane.js';
import type { ResolvedFan } from '../fan/resolved.js';
import type { Resource } from '../host/resources.js';
import type { Logger } from '../log.js';
import type { Encap } from '../fan/encap.js';

export class ByEncapsulation implements Dataplane {
  private readonly parts = new Map<Encap, Dataplane>();
  private readonly running = new Set<Encap>();
  private fans: readonly ResolvedFan[] = [];
  private log!: Logger;

  constructor(readonly mode: DataplaneMode, private readonly make: Record<Encap, () => Dataplane>) {}

  private part(e: Encap): Dataplane {
    let p = this.parts.get(e);
    if (!p) { p = this.make[e](); this.parts.set(e, p); }
    return p;
  }

  private of(e: Encap, fans: readonly ResolvedFan[]): ResolvedFan[] {
    return fans.filter((f) => f.encap.encap === e);
  }

  resources(fan: ResolvedFan): Resource[] {
    return this.part(fan.encap.encap).resources(fan);
  }

  /** True when every running part sends WATCHDOG=1 from its own threads. */
  get watchdogFromWorkers(): boolean {
    const parts = [...this.running].map((e) => this.part(e));
    return parts.length > 0 && parts.every((p) => p.watchdogFromWorkers === true);
  }

  async start(fans: readonly ResolvedFan[], log: Logger): Promise<void> {
    this.log = log;
    this.fans = fans;
    try {
      for (const e of ['ipip', 'vxlan'] as const) {
        const mine = this.of(e, fans);
        if (mine.length === 0) continue;
        await this.part(e).start(mine, log);
        this.running.add(e);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async update(fans: readonly ResolvedFan[]): Promise<void> {
    for (const e of ['ipip', 'vxlan'] as const) {
      const mine = this.of(e, fans);
      if (this.running.has(e) && mine.length === 0) {
        await this.part(e).stop();
        this.running.delete(e);
        this.parts.delete(e); // a stopped part is not restarted: the next fan gets a new one
      } else if (this.running.has(e)) {
        await this.part(e).update(mine);
      } else if (mine.length > 0) {
        await this.part(e).start(mine, this.log);
        this.running.add(e);
      }
    }
    this.fans = fans;
  }

  counters(): FanCounters[] {
    const byFan = new Map<string, FanCounters>();
    for (const e of this.running) for (const c of this.part(e).counters()) byFan.set(c.fan, c);
    return this.fans.map((f) => byFan.get(f.bridge) ?? { fan: f.bridge, perWorker: [], total: {} });
  }

  health(): { alive: number; configured: number } {
    let alive = 0;
    let configured = 0;
    for (const e of this.running) {
      const h = this.part(e).health();
      alive += h.alive;
      configured += h.configured;
    }
    return this.running.size === 0 ? { alive: 1, configured: 1 } : { alive, configured };
  }

  wedge(on: boolean): void {
    for (const e of this.running) this.part(e).wedge?.(on);
  }

  crashWorker(index: number): void {
    const first = [...this.running][0];
    if (first === undefined) throw new Error('no worker runs');
    const p = this.part(first);
    if (!p.crashWorker) throw new Error(`the ${this.mode} dataplane has no workers to crash`);
    p.crashWorker(index);
  }

  async stop(): Promise<void> {
    for (const e of [...this.running]) {
      await this.part(e).stop();
      this.running.delete(e);
    }
  }
}
