// Loading bpf/fan.bpf.o: the maps it declares are created, their fds
// patched into its two programs, and the programs loaded (the addon makes
// the bpf(2) calls, native/bpf.c). Errors are the kernel's: the command,
// the errno, and for a refused program the end of the verifier's log, with
// what usually causes it.
//
// Nothing is pinned: the maps live as long as a program that uses them or
// an fd of fand's, and the programs as long as an attached filter or an fd.
// Closing everything here and removing the filters frees them all.
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { fileURLToPath } from 'node:url';
import { native, isNativeError } from '../../native/index.js';
import { parseBpfObject, relocate, type BpfObject } from './elf.js';
import { CONFIG_SIZE, COUNTERS_SIZE, FAN_MAX, PORT_SIZE, parseCpuList } from './layout.js';

/** include/uapi/linux/bpf.h */
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_LPM_TRIE = 11;
export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_ANY = 0;

export class EbpfError extends Error {}

/** The compiled programs, next to their source. */
export function fanObjectPath(): string {
  return fileURLToPath(new URL('../../../../bpf/fan.bpf.o', import.meta.url));
}

/** Maps the programs expect, with the shape bpf/fan.h gives them. */
const EXPECTED: Record<string, { type: number; keySize: number; valueSize: number; maxEntries?: number }> = {
  fand_config: { type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: CONFIG_SIZE, maxEntries: 1 },
  fand_counters: { type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, valueSize: COUNTERS_SIZE, maxEntries: FAN_MAX },
  fand_ports: { type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: PORT_SIZE },
  fand_tuns: { type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 4, maxEntries: FAN_MAX },
  fand_locals: { type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 4, maxEntries: FAN_MAX },
  fand_overlays: { type: BPF_MAP_TYPE_LPM_TRIE, keySize: 8, valueSize: 4, maxEntries: FAN_MAX },
};
const PROGRAMS = ['fand_egress', 'fand_ingress'] as const;

export interface FanMaps {
  readonly config: number;
  readonly counters: number;
  readonly ports: number;
  /** Slot maps: overlay device ifindex, local underlay address, overlay prefix -> fan slot. */
  readonly tuns: number;
  readonly locals: number;
  readonly overlays: number;
}
export interface FanPrograms { readonly egress: number; readonly ingress: number }

export interface LoadedFan {
  readonly maps: FanMaps;
  readonly programs: FanPrograms;
  /** Possible CPUs: per-CPU values hold one entry each. */
  readonly cpus: number;
  /** Kernel ids, tags and sizes of the loaded programs (for logs and `fand show`). */
  readonly info: Record<string, { id: number; tag: string; insns: number }>;
  close(): void;
}

/** Why a bpf(2) call failed, in the kernel's words plus what usually causes it. */
export function explain(e: unknown, what: string, log = ''): EbpfError {
  if (!isNativeError(e)) return new EbpfError(`${what}: ${(e as Error).message}`);
  const base = `${e.syscall}: ${e.message.replace(/^[^:]*\): /, '').replace(/: [^:]*$/, '')}`;
  let hint = '';
  if (e.code === 'EPERM') hint = 'needs CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN before Linux 5.8)';
  else if (/prohibited for !root|corrupt spilled pointer/.test(log)) hint = `the verifier's checks for a loader without CAP_PERFMON refused it (grant CAP_PERFMON, or report this): ${lastLines(log, 3)}`;
  else if (e.code === 'ENOSYS') hint = 'this kernel has no bpf() system call (CONFIG_BPF_SYSCALL)';
  else if (e.code === 'EINVAL' && /unknown func|invalid func/.test(log)) hint = `the kernel lacks a helper the program needs (Linux >= 5.10): ${lastLines(log, 3)}`;
  else if (log) hint = `the verifier refused it: ${lastLines(log, 6)}`;
  return new EbpfError(`${base}${hint ? `: ${hint}` : ''} (${what})`);
}

function lastLines(log: string, n: number): string {
  return log.trim().split('\n').slice(-n).join(' | ');
}

export function possibleCpus(): number {
  return parseCpuList(readFileSync('/sys/devices/system/cpu/possible', 'utf8'));
}

/** Creates the maps and loads the programs of the object (default: bpf/fan.bpf.o). */
export function loadFan(objectBytes?: Uint8Array): LoadedFan {
  if (endianness() !== 'LE') throw new EbpfError('bpf/fan.bpf.o is little-endian BPF; on this big-endian host rebuild it with clang -target bpfeb');
  let obj: BpfObject;
  try {
    obj = parseBpfObject(objectBytes ?? readFileSync(fanObjectPath()));
  } catch (e) {
    throw new EbpfError(`${fanObjectPath()}: ${(e as Error).message}`);
  }
  const opened: number[] = [];
  const closeAll = () => { for (const fd of opened.splice(0)) { try { native.close(fd); } catch { /* already closed */ } } };
  try {
    const fds = new Map<string, number>();
    for (const [name, want] of Object.entries(EXPECTED)) {
      const m = obj.maps.find((x) => x.name === name);
      if (!m) throw new EbpfError(`bpf/fan.bpf.o declares no map ${name}: rebuild it (node scripts/build-bpf.mjs)`);
      if (m.type !== want.type || m.keySize !== want.keySize || m.valueSize !== want.valueSize || (want.maxEntries !== undefined && m.maxEntries !== want.maxEntries)) {
        throw new EbpfError(`bpf/fan.bpf.o: map ${name} is ${JSON.stringify(m)}, but fand expects ${JSON.stringify(want)}: the object and src/dataplane/ebpf/layout.ts disagree`);
      }
    }
    for (const m of obj.maps) {
      let fd: number;
      try { fd = native.bpfMapCreate(m.type, m.keySize, m.valueSize, m.maxEntries, m.flags, m.name); } catch (e) { throw explain(e, `map ${m.name}`); }
      opened.push(fd);
      fds.set(m.name, fd);
    }
    const progs: Record<string, number> = {};
    const info: Record<string, { id: number; tag: string; insns: number }> = {};
    for (const name of PROGRAMS) {
      const p = obj.programs.find((x) => x.name === name);
      if (!p) throw new EbpfError(`bpf/fan.bpf.o has no program ${name}: rebuild it (node scripts/build-bpf.mjs)`);
      const insns = relocate(p, fds);
      let fd: number;
      try {
        fd = native.bpfProgLoad(BPF_PROG_TYPE_SCHED_CLS, insns, obj.license, name, new Uint8Array(0));
      } catch (first) {
        // Load again with the verifier's log, only now: a log costs time and memory.
        const log = new Uint8Array(4 << 20);
        try {
          fd = native.bpfProgLoad(BPF_PROG_TYPE_SCHED_CLS, insns, obj.license, name, log);
        } catch (e) {
          const end = log.indexOf(0);
          throw explain(e, `program ${name}`, new TextDecoder().decode(log.subarray(0, end < 0 ? log.length : end)));
        }
        void first;
      }
      opened.push(fd);
      progs[name] = fd;
      const pi = native.bpfProgInfo(fd);
      info[name] = { id: pi.id, tag: pi.tag, insns: insns.length / 8 };
    }
    return {
      maps: {
        config: fds.get('fand_config')!, counters: fds.get('fand_counters')!, ports: fds.get('fand_ports')!,
        tuns: fds.get('fand_tuns')!, locals: fds.get('fand_locals')!, overlays: fds.get('fand_overlays')!,
      },
      programs: { egress: progs['fand_egress']!, ingress: progs['fand_ingress']! },
      cpus: possibleCpus(),
      info,
      close: closeAll,
    };
  } catch (e) {
    closeAll();
    throw e;
  }
}
