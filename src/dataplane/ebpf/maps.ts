// The loaded programs' maps as the daemon uses them: write the config (one
// element, replaced whole), read a fan's counters (summed over CPUs), put
// and delete port entries. Control plane only: nothing here runs per packet.
import { native } from '../../native/index.js';
import { loadFan, BPF_ANY, type LoadedFan } from './loader.js';
import { COUNTERS_SIZE, encodeConfig, encodePort, lpmKey, portKey, slotEntries, sumCounters, u32, type FanConfig, type Port, type SlotEntries } from './layout.js';

export class FanBpf {
  private readonly zero = new Uint8Array(4);
  private readonly perCpu: Uint8Array;
  private closed = false;

  private constructor(readonly loaded: LoadedFan) {
    this.perCpu = new Uint8Array(((COUNTERS_SIZE + 7) & ~7) * loaded.cpus);
  }

  /** Loads bpf/fan.bpf.o (or the given object bytes). Throws EbpfError with the kernel's reason. */
  static load(objectBytes?: Uint8Array): FanBpf {
    return new FanBpf(loadFan(objectBytes));
  }

  get programs(): LoadedFan['programs'] { return this.loaded.programs; }

  private slots: SlotEntries = { tuns: new Map(), locals: new Map(), overlays: new Map() };

  /**
   * Replaces the whole configuration at once (the programs see the old one
   * or the new one), then points the slot maps at it: new entries are
   * written, changed ones replaced, gone ones deleted. A packet that finds a
   * slot whose fan is gone sees it inactive and is passed on.
   */
  writeConfig(fans: readonly FanConfig[]): void {
    const m = this.loaded.maps;
    native.bpfMapUpdate(m.config, this.zero, encodeConfig(fans), BPF_ANY);
    const next = slotEntries(fans);
    for (const [ifindex, slot] of next.tuns) native.bpfMapUpdate(m.tuns, u32(ifindex), u32(slot), BPF_ANY);
    for (const [addr, slot] of next.locals) native.bpfMapUpdate(m.locals, u32(addr), u32(slot), BPF_ANY);
    for (const o of next.overlays.values()) native.bpfMapUpdate(m.overlays, lpmKey(o.network, o.prefix), u32(o.slot), BPF_ANY);
    for (const ifindex of this.slots.tuns.keys()) if (!next.tuns.has(ifindex)) native.bpfMapDelete(m.tuns, u32(ifindex));
    for (const addr of this.slots.locals.keys()) if (!next.locals.has(addr)) native.bpfMapDelete(m.locals, u32(addr));
    for (const [k, o] of this.slots.overlays) if (!next.overlays.has(k)) native.bpfMapDelete(m.overlays, lpmKey(o.network, o.prefix));
    this.slots = next;
  }

  /** A fan's counters, summed over the CPUs, under the names `fand show` prints. */
  counters(slot: number): Record<string, number> {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, slot, true);
    if (!native.bpfMapLookup(this.loaded.maps.counters, key, this.perCpu)) throw new Error(`ebpf: no counter row ${slot}`);
    return sumCounters(this.perCpu, this.loaded.cpus);
  }

  /** Zeroes a fan's counter row (a slot handed to a new fan starts from zero). */
  resetCounters(slot: number): void {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, slot, true);
    native.bpfMapUpdate(this.loaded.maps.counters, key, new Uint8Array(this.perCpu.length), BPF_ANY);
  }

  setPort(address: number, port: Port): void {
    native.bpfMapUpdate(this.loaded.maps.ports, portKey(address), encodePort(port), BPF_ANY);
  }

  deletePort(address: number): boolean {
    return native.bpfMapDelete(this.loaded.maps.ports, portKey(address));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loaded.close();
  }
}
