// Splitting inbound IPIP between workers. The kernel delivers every IPIP
// packet to every raw IPPROTO_IPIP socket (raw_v4_input() clones it for each
// matching socket), so each worker's socket carries a classic BPF filter
// (SO_ATTACH_FILTER) that keeps only that worker's share. The filter runs
// with the packet starting at the outer IPv4 header (raw_rcv() pushes back
// to the network header before sock_queue_rcv_skb()).
//
// Share: a hash of the inner flow, h = src ^ dst ^ (ports word for TCP, UDP
// and SCTP when the inner packet is not a fragment), mixed as
// h ^= h >> 16; h *= 0x9e3779b1; h >>= 16, taken modulo the worker count.
// All fragments of a datagram (MF set or offset non-zero) hash on the
// addresses alone, so they stay together; a flow's unfragmented packets stay
// together too.
//
// A classic BPF load past the end of the packet ends the filter with 0,
// which would drop the packet for every worker without anyone counting it.
// So the program compares the packet length with each load's reach first,
// and any packet too short for a load goes to worker 0 alone, whose
// decapsulate() then counts it (InTruncated, InOuterMalformed, ...).

// struct sock_filter opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_IND = 0x40, LD_H_IND = 0x48, LD_B_IND = 0x50;
const LD_W_ABS = 0x20, LD_H_ABS = 0x28, LD_B_ABS = 0x30;
const LD_W_LEN = 0x80, LD_MEM = 0x60;
const LDX_W_LEN = 0x81, LDX_MEM = 0x61, LDX_B_MSH = 0xb1;
const ST = 0x02;
const ALU_ADD_K = 0x04, ALU_MUL_K = 0x24, ALU_AND_K = 0x54, ALU_LSH_K = 0x64, ALU_RSH_K = 0x74;
const ALU_MOD_K = 0x94, ALU_XOR_X = 0xac, ALU_ADD_X = 0x0c;
const JMP_JEQ_K = 0x15, JMP_JGE_K = 0x35, JMP_JGT_X = 0x2d, JMP_JSET_K = 0x45;
const RET_K = 0x06, RET_A = 0x16;
const TAX = 0x07, TXA = 0x87;

/** Return value that keeps the whole packet. */
export const BPF_ACCEPT = 0xffffffff;
export const MAX_WORKERS = 64;

// Scratch memory slots.
const M_HASH = 0, M_PORTS = 1;

interface Insn { code: number; k: number; jt?: string; jf?: string; label?: string }

function assemble(prog: Insn[]): Uint8Array {
  const labels = new Map<string, number>();
  prog.forEach((insn, i) => { if (insn.label !== undefined) labels.set(insn.label, i); });
  const out = new Uint8Array(prog.length * 8);
  const view = new DataView(out.buffer);
  const target = (from: number, label: string | undefined): number => {
    if (label === undefined) return 0;
    const to = labels.get(label);
    if (to === undefined) throw new Error(`bpf: no label ${label}`);
    const d = to - from - 1;
    if (d < 0 || d > 255) throw new Error(`bpf: jump to ${label} out of range`);
    return d;
  };
  prog.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, target(i, insn.jt));
    view.setUint8(i * 8 + 3, target(i, insn.jf));
    view.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return out;
}

/**
 * The classic BPF program (consecutive 8-byte struct sock_filter in host,
 * little-endian, byte order, ready for SO_ATTACH_FILTER) with which worker
 * `index` of `workers` accepts exactly its share of inbound IPIP packets.
 * For one worker it is a single `ret #-1`, which the caller may as well not
 * attach. Throws RangeError on bad arguments (1..64 workers, 0 <= index < workers).
 */
export function fanoutFilter(workers: number, index: number): Uint8Array {
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw new RangeError(`fanout: ${workers} workers: need an integer 1..${MAX_WORKERS}`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= workers) {
    throw new RangeError(`fanout: worker index ${index}: need an integer 0..${workers - 1}`);
  }
  if (workers === 1) return assemble([{ code: RET_K, k: BPF_ACCEPT }]);

  const mine = { code: RET_K, k: BPF_ACCEPT, label: 'mine' };
  const notMine = { code: RET_K, k: 0, label: 'notMine' };
  const short = { code: RET_K, k: index === 0 ? BPF_ACCEPT : 0, label: 'short' };
  return assemble([
    // Outer IHL needs byte 0.
    { code: LD_W_LEN, k: 0 },
    { code: JMP_JGE_K, k: 1, jf: 'short' },
    // The inner header's fields up to its destination: need outer IHL + 20 bytes.
    { code: LDX_B_MSH, k: 0 },                   // X = 4 * (pkt[0] & 0xf): outer header length
    { code: TXA, k: 0 },
    { code: ALU_ADD_K, k: 20 },
    { code: LDX_W_LEN, k: 0 },
    { code: JMP_JGT_X, k: 0, jt: 'short' },      // outer IHL + 20 > len
    { code: LDX_B_MSH, k: 0 },
    { code: LD_W_IND, k: 12 },                   // inner source
    { code: ST, k: M_HASH },
    { code: LD_W_IND, k: 16 },                   // inner destination
    { code: LDX_MEM, k: M_HASH },
    { code: ALU_XOR_X, k: 0 },
    { code: ST, k: M_HASH },
    { code: LDX_B_MSH, k: 0 },
    { code: LD_B_IND, k: 9 },                    // inner protocol
    { code: JMP_JEQ_K, k: 6, jt: 'ports' },
    { code: JMP_JEQ_K, k: 17, jt: 'ports' },
    { code: JMP_JEQ_K, k: 132, jt: 'ports', jf: 'mix' },
    { code: LD_H_IND, k: 6, label: 'ports' },    // inner flags / fragment offset
    { code: JMP_JSET_K, k: 0x3fff, jt: 'mix' },  // a fragment: addresses only
    { code: LD_B_IND, k: 0 },                    // inner version/IHL
    { code: ALU_AND_K, k: 0x0f },
    { code: ALU_LSH_K, k: 2 },
    { code: ALU_ADD_X, k: 0 },                   // A = offset of the L4 ports
    { code: ST, k: M_PORTS },
    { code: ALU_ADD_K, k: 4 },
    { code: LDX_W_LEN, k: 0 },
    { code: JMP_JGT_X, k: 0, jt: 'short' },      // ports offset + 4 > len
    { code: LDX_MEM, k: M_PORTS },
    { code: LD_W_IND, k: 0 },                    // source port << 16 | destination port
    { code: LDX_MEM, k: M_HASH },
    { code: ALU_XOR_X, k: 0 },
    { code: ST, k: M_HASH },
    { code: LD_MEM, k: M_HASH, label: 'mix' },
    { code: TAX, k: 0 },
    { code: ALU_RSH_K, k: 16 },
    { code: ALU_XOR_X, k: 0 },                   // h ^= h >> 16
    { code: ALU_MUL_K, k: 0x9e3779b1 },          // Fibonacci hashing: the high half is well mixed
    { code: ALU_RSH_K, k: 16 },
    { code: ALU_MOD_K, k: workers },
    { code: JMP_JEQ_K, k: index, jt: 'mine', jf: 'notMine' },
    mine,
    notMine,
    short,
  ]);
}

/**
 * The worker a packet at buf[off, off+len) belongs to: the same computation
 * as the filters, in TypeScript, for tests and for a single-socket fallback.
 */
export function fanoutWorker(buf: Uint8Array, off: number, len: number, workers: number): number {
  if (len < 1) return 0;
  const x = (buf[off] & 0x0f) << 2;
  if (x + 20 > len) return 0;
  const i = off + x;
  let h = (readWord(buf, i + 12) ^ readWord(buf, i + 16)) >>> 0;
  const proto = buf[i + 9];
  if ((proto === 6 || proto === 17 || proto === 132) && (((buf[i + 6] << 8) | buf[i + 7]) & 0x3fff) === 0) {
    const p = x + ((buf[i] & 0x0f) << 2);
    if (p + 4 > len) return 0;
    h = (h ^ readWord(buf, off + p)) >>> 0;
  }
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x9e3779b1) >>> 16;
  return h % workers;
}

function readWord(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

// ---------------------------------------------------------------------------
// VXLAN: the same share, chosen by the kernel's SO_REUSEPORT group.
//
// The workers' UDP sockets share one port (SO_REUSEPORT); without a program
// the kernel picks a socket by the outer 4-tuple, and every packet from one
// sending host's worker (one source port) would land on one receiving
// worker, whatever the flows inside. A classic BPF program attached with
// SO_ATTACH_REUSEPORT_CBPF returns the index of the socket instead
// (net/core/sock_reuseport.c, run_bpf_filter(): it runs with the packet
// starting at the UDP payload, the VXLAN header; an index past the group's
// size falls back to the 4-tuple hash). The index is the inner flow's hash as
// above: IPv4 behind Ethernet at 8 + 14; anything else (ARP, junk, a
// packet too short for a load) goes to socket 0.

const VX_IP = 8 + 14;

/** The SO_ATTACH_REUSEPORT_CBPF program spreading VXLAN packets over `workers` sockets by inner flow. */
export function vxlanReuseportProgram(workers: number): Uint8Array {
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw new RangeError(`fanout: ${workers} workers: need an integer 1..${MAX_WORKERS}`);
  }
  const zero = { code: RET_K, k: 0, label: 'zero' };
  return assemble([
    { code: LD_W_LEN, k: 0 },
    { code: JMP_JGE_K, k: VX_IP + 20, jf: 'zero' },   // VXLAN + Ethernet + a minimal IPv4 header
    // Fixed offsets are absolute loads: an indexed one adds X, which holds the hash below.
    { code: LD_H_ABS, k: 20 },                        // ethertype
    { code: JMP_JEQ_K, k: 0x0800, jf: 'zero' },
    { code: LD_W_ABS, k: VX_IP + 12 },                // inner source
    { code: ST, k: M_HASH },
    { code: LD_W_ABS, k: VX_IP + 16 },                // inner destination
    { code: LDX_MEM, k: M_HASH },
    { code: ALU_XOR_X, k: 0 },
    { code: ST, k: M_HASH },
    { code: LD_B_ABS, k: VX_IP + 9 },                 // inner protocol
    { code: JMP_JEQ_K, k: 6, jt: 'ports' },
    { code: JMP_JEQ_K, k: 17, jt: 'ports' },
    { code: JMP_JEQ_K, k: 132, jt: 'ports', jf: 'mix' },
    { code: LD_H_ABS, k: VX_IP + 6, label: 'ports' },  // inner flags / fragment offset
    { code: JMP_JSET_K, k: 0x3fff, jt: 'mix' },        // a fragment: addresses only
    { code: LDX_B_MSH, k: VX_IP },                     // X = inner IHL
    { code: TXA, k: 0 },
    { code: ALU_ADD_K, k: VX_IP + 4 },
    { code: LDX_W_LEN, k: 0 },
    { code: JMP_JGT_X, k: 0, jt: 'mix' },              // ports past the end: addresses only
    { code: LDX_B_MSH, k: VX_IP },
    { code: LD_W_IND, k: VX_IP },                      // source port << 16 | destination port
    { code: LDX_MEM, k: M_HASH },
    { code: ALU_XOR_X, k: 0 },
    { code: ST, k: M_HASH },
    { code: LD_MEM, k: M_HASH, label: 'mix' },
    { code: TAX, k: 0 },
    { code: ALU_RSH_K, k: 16 },
    { code: ALU_XOR_X, k: 0 },
    { code: ALU_MUL_K, k: 0x9e3779b1 },
    { code: ALU_RSH_K, k: 16 },
    { code: ALU_MOD_K, k: workers },
    { code: RET_A, k: 0 },
    zero,
  ]);
}


/** The socket vxlanReuseportProgram picks for the VXLAN packet at buf[off, off+len) (for tests). */
export function vxlanReuseportIndex(buf: Uint8Array, off: number, len: number, workers: number): number {
  if (len < VX_IP + 20 || buf[off + 20] !== 0x08 || buf[off + 21] !== 0x00) return 0;
  const i = off + VX_IP;
  let h = (readWord(buf, i + 12) ^ readWord(buf, i + 16)) >>> 0;
  const proto = buf[i + 9];
  if ((proto === 6 || proto === 17 || proto === 132) && (((buf[i + 6] << 8) | buf[i + 7]) & 0x3fff) === 0) {
    const p = VX_IP + ((buf[i] & 0x0f) << 2);
    if (p + 4 <= len) h = (h ^ readWord(buf, off + p)) >>> 0;
  }
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x9e3779b1) >>> 16;
  return h % workers;
}
