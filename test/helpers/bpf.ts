// A classic BPF (struct sock_filter) checker and interpreter for tests, with
// the kernel's semantics where they matter to us: A and X are uint32, a load
// past the end of the packet ends the program with 0 (the packet is dropped),
// division or modulo by X = 0 returns 0, and a program the kernel would
// refuse at SO_ATTACH_FILTER (bpf_check_classic(), net/core/filter.c:
// unknown opcode, jump out of range, not ending in RET, constant division by
// zero, scratch slot out of range or read before written) throws.

export interface BpfInsn { code: number; jt: number; jf: number; k: number }

export function decodeBpf(bytes: Uint8Array): BpfInsn[] {
  if (bytes.length % 8 !== 0) throw new Error(`bpf: ${bytes.length} bytes is not a whole number of instructions`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: BpfInsn[] = [];
  for (let i = 0; i < bytes.length; i += 8) {
    out.push({ code: v.getUint16(i, true), jt: v.getUint8(i + 2), jf: v.getUint8(i + 3), k: v.getUint32(i + 4, true) });
  }
  return out;
}

const LD = 0x00, LDX = 0x01, STc = 0x02, STXc = 0x03, ALU = 0x04, JMP = 0x05, RET = 0x06, MISC = 0x07;
const W = 0x00, H = 0x08, B = 0x10;
const IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, LEN = 0x80, MSH = 0xa0;
const ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50, LSH = 0x60, RSH = 0x70;
const NEG = 0x80, MOD = 0x90, XOR = 0xa0;
const JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40;
const X_SRC = 0x08;
const RET_A = 0x10;
const TAX = 0x00, TXA = 0x80;

const KNOWN = new Set<number>();
for (const size of [W, H, B]) for (const mode of [ABS, IND]) KNOWN.add(LD | size | mode);
for (const c of [LD | W | IMM, LD | W | MEM, LD | W | LEN, LDX | W | IMM, LDX | W | MEM, LDX | W | LEN, LDX | B | MSH, STc, STXc]) KNOWN.add(c);
for (const op of [ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR]) { KNOWN.add(ALU | op); KNOWN.add(ALU | op | X_SRC); }
KNOWN.add(ALU | NEG);
KNOWN.add(JMP | JA);
for (const op of [JEQ, JGT, JGE, JSET]) { KNOWN.add(JMP | op); KNOWN.add(JMP | op | X_SRC); }
KNOWN.add(RET); KNOWN.add(RET | RET_A);
KNOWN.add(MISC | TAX); KNOWN.add(MISC | TXA);

/** Throws when the kernel would refuse the program. */
export function checkBpf(prog: BpfInsn[]): void {
  if (prog.length === 0 || prog.length > 4096) throw new Error(`bpf: ${prog.length} instructions`);
  // Scratch slots written on every path into each instruction (jumps only go forward).
  const inited: (number | undefined)[] = new Array(prog.length + 1).fill(undefined);
  inited[0] = 0;
  const flow = (to: number, mask: number): void => {
    if (to >= prog.length) throw new Error(`bpf: jump to ${to} past the end`);
    inited[to] = inited[to] === undefined ? mask : (inited[to]! & mask);
  };
  prog.forEach((insn, pc) => {
    const { code, k } = insn;
    if (!KNOWN.has(code)) throw new Error(`bpf: unknown opcode 0x${code.toString(16)} at ${pc}`);
    let mask = inited[pc];
    if (mask === undefined) return; // unreachable
    const cls = code & 0x07;
    const mode = code & 0xe0;
    if ((cls === LD || cls === LDX) && mode === MEM) {
      if (k >= 16) throw new Error(`bpf: scratch slot ${k} at ${pc}`);
      if (!(mask & (1 << k))) throw new Error(`bpf: M[${k}] read before written at ${pc}`);
    }
    if (cls === STc || cls === STXc) {
      if (k >= 16) throw new Error(`bpf: scratch slot ${k} at ${pc}`);
      mask |= 1 << k;
    }
    if (cls === ALU && !(code & X_SRC) && ((code & 0xf0) === DIV || (code & 0xf0) === MOD) && k === 0) {
      throw new Error(`bpf: division by constant 0 at ${pc}`);
    }
    if (cls === RET) return;
    if (cls === JMP) {
      if ((code & 0xf0) === JA) flow(pc + 1 + k, mask);
      else { flow(pc + 1 + insn.jt, mask); flow(pc + 1 + insn.jf, mask); }
      return;
    }
    flow(pc + 1, mask);
  });
  if ((prog[prog.length - 1]!.code & 0x07) !== RET) throw new Error('bpf: program does not end in RET');
}

export interface BpfRun {
  /** What the filter returned: 0 drops, otherwise the bytes to keep. */
  result: number;
  /** True when a load went past the end of the packet (the kernel returns 0). */
  outOfBounds: boolean;
}

export function runBpf(prog: BpfInsn[], pkt: Uint8Array): BpfRun {
  let A = 0, X = 0;
  const M = new Uint32Array(16);
  const len = pkt.length;
  const load = (off: number, size: number): number | undefined => {
    if (off < 0 || off + size > len) return undefined;
    let v = 0;
    for (let i = 0; i < size; i++) v = v * 256 + pkt[off + i]!;
    return v;
  };
  for (let pc = 0, steps = 0; pc < prog.length; pc++, steps++) {
    if (steps > 4096) throw new Error('bpf: runaway program');
    const { code, jt, jf, k } = prog[pc]!;
    const cls = code & 0x07;
    switch (cls) {
      case LD: case LDX: {
        const mode = code & 0xe0;
        const size = (code & 0x18) === W ? 4 : (code & 0x18) === H ? 2 : 1;
        let v: number | undefined;
        if (mode === IMM) v = k;
        else if (mode === LEN) v = len;
        else if (mode === MEM) v = M[k]!;
        else if (mode === ABS) v = load(k | 0, size);
        else if (mode === IND) v = load(X + (k | 0), size);
        else if (mode === MSH) { const b = load(k | 0, 1); v = b === undefined ? undefined : (b & 0xf) << 2; }
        else throw new Error(`bpf: bad load 0x${code.toString(16)}`);
        if (v === undefined) return { result: 0, outOfBounds: true };
        if (cls === LD) A = v >>> 0; else X = v >>> 0;
        break;
      }
      case STc: M[k] = A; break;
      case STXc: M[k] = X; break;
      case ALU: {
        const src = code & X_SRC ? X : k >>> 0;
        switch (code & 0xf0) {
          case ADD: A = (A + src) >>> 0; break;
          case SUB: A = (A - src) >>> 0; break;
          case MUL: A = Math.imul(A, src) >>> 0; break;
          case DIV: if (src === 0) return { result: 0, outOfBounds: false }; A = Math.floor(A / src) >>> 0; break;
          case MOD: if (src === 0) return { result: 0, outOfBounds: false }; A = (A % src) >>> 0; break;
          case OR: A = (A | src) >>> 0; break;
          case AND: A = (A & src) >>> 0; break;
          case XOR: A = (A ^ src) >>> 0; break;
          case LSH: A = src >= 32 ? 0 : (A << src) >>> 0; break;
          case RSH: A = src >= 32 ? 0 : A >>> src; break;
          case NEG: A = -A >>> 0; break;
          default: throw new Error(`bpf: bad alu 0x${code.toString(16)}`);
        }
        break;
      }
      case JMP: {
        const src = code & X_SRC ? X : k >>> 0;
        let cond: boolean;
        switch (code & 0xf0) {
          case JA: pc += k; continue;
          case JEQ: cond = A === src; break;
          case JGT: cond = A > src; break;
          case JGE: cond = A >= src; break;
          case JSET: cond = (A & src) !== 0; break;
          default: throw new Error(`bpf: bad jump 0x${code.toString(16)}`);
        }
        pc += cond ? jt : jf;
        break;
      }
      case RET: return { result: (code & RET_A ? A : k) >>> 0, outOfBounds: false };
      case MISC: if ((code & 0xf8) === TXA) A = X; else X = A; break;
      default: throw new Error(`bpf: bad class at ${pc}`);
    }
  }
  throw new Error('bpf: fell off the end');
}
