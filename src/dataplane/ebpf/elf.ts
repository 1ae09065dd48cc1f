// Reading the BPF object (bpf/fan.bpf.o) that clang writes, and patching
// map fds into its programs: what libbpf's bpf_object__open/__load do for
// an object like ours, and no more. Pure functions over bytes.
//
// What an object may contain (anything else is refused with a reason):
// - ELF64, little-endian, e_machine EM_BPF (247), relocatable (ET_REL);
// - one program per executable section, named by its global FUNC symbol
//   (bpf-to-bpf calls are not supported: fan.bpf.c inlines everything);
// - maps as legacy `struct bpf_map_def` (5 x u32: type, key_size,
//   value_size, max_entries, map_flags) in a section named "maps", one
//   symbol each (iproute2's and libbpf's pre-1.0 layout);
// - relocations R_BPF_64_64 from a program's `ld_imm64` to a map symbol:
//   the loader sets the instruction's src_reg to BPF_PSEUDO_MAP_FD and its
//   imm to the map's fd (include/uapi/linux/bpf.h; the kernel then swaps
//   the fd for the map's address when it verifies the program);
// - the license string in section "license".
// References: the System V gABI (ELF64 headers, Elf64_Sym, Elf64_Rel), and
// the BPF relocation types in llvm/lib/Target/BPF (R_BPF_64_64 = 1).

export class BpfObjectError extends Error {}

export interface BpfMapDef {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
}

export interface BpfProgramSpec {
  /** The function's name, e.g. fand_ingress. */
  readonly name: string;
  /** Its ELF section, e.g. tc/ingress. */
  readonly section: string;
  /** struct bpf_insn x n, as in the object (map fds not yet patched). */
  readonly insns: Uint8Array;
  /** Byte offsets of ld_imm64 instructions that load a map, and which. */
  readonly mapRefs: readonly { readonly offset: number; readonly map: string }[];
}

export interface BpfObject {
  readonly license: string;
  readonly maps: readonly BpfMapDef[];
  readonly programs: readonly BpfProgramSpec[];
}

const EM_BPF = 247;
const ET_REL = 1;
const SHT_SYMTAB = 2;
const SHT_REL = 9;
const SHF_EXECINSTR = 0x4;
const STT_FUNC = 2;
const STT_SECTION = 3;
const STB_GLOBAL = 1;
const R_BPF_64_64 = 1;
const MAP_DEF_SIZE = 20;
/** BPF_LD | BPF_IMM | BPF_DW: the first half of a 16-byte ld_imm64. */
const LD_IMM64 = 0x18;
const BPF_PSEUDO_MAP_FD = 1;
const INSN = 8;

interface Section { name: string; type: number; flags: number; offset: number; size: number; link: number; info: number; entsize: number }
interface Sym { name: string; info: number; shndx: number; value: number; size: number }

/** Parses the object; throws BpfObjectError saying what is wrong with it. */
export function parseBpfObject(bytes: Uint8Array): BpfObject {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => { throw new BpfObjectError(`BPF object: ${why}`); };
  const need = (off: number, len: number, what: string) => {
    if (!(off >= 0 && len >= 0 && off + len <= bytes.length)) fail(`${what} (bytes ${off}..${off + len}) lies outside the ${bytes.length}-byte file`);
  };
  need(0, 64, 'ELF header');
  if (v.getUint32(0, false) !== 0x7f454c46) fail('not an ELF file');
  if (bytes[4] !== 2) fail('not ELF64');
  if (bytes[5] !== 1) fail('big-endian object: this loader reads little-endian BPF (clang -target bpfel)');
  if (v.getUint16(16, true) !== ET_REL) fail('not a relocatable object (ET_REL)');
  if (v.getUint16(18, true) !== EM_BPF) fail(`e_machine ${v.getUint16(18, true)} is not EM_BPF (247)`);
  const shoff = u64(v, 40, fail);
  const shentsize = v.getUint16(58, true);
  const shnum = v.getUint16(60, true);
  const shstrndx = v.getUint16(62, true);
  if (shentsize !== 64) fail(`section header size ${shentsize} is not 64`);
  need(shoff, shnum * 64, 'section header table');
  const raw: (Omit<Section, 'name'> & { nameOff: number })[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * 64;
    raw.push({
      nameOff: v.getUint32(o, true), type: v.getUint32(o + 4, true), flags: Number(v.getBigUint64(o + 8, true) & 0xffffn),
      offset: u64(v, o + 24, fail), size: u64(v, o + 32, fail), link: v.getUint32(o + 40, true), info: v.getUint32(o + 44, true),
      entsize: u64(v, o + 56, fail),
    });
  }
  if (shstrndx >= shnum) fail(`section name table index ${shstrndx} is out of range`);
  const strtab = (s: { offset: number; size: number }, off: number, what: string): string => {
    need(s.offset, s.size, what);
    if (off >= s.size) fail(`${what}: name offset ${off} outside its string table`);
    let end = s.offset + off;
    while (end < s.offset + s.size && bytes[end] !== 0) end++;
    return new TextDecoder().decode(bytes.subarray(s.offset + off, end));
  };
  const shstr = raw[shstrndx]!;
  const sections: Section[] = raw.map((s) => ({ ...s, name: strtab(shstr, s.nameOff, 'section name') }));

  const symtabIndex = sections.findIndex((s) => s.type === SHT_SYMTAB);
  if (symtabIndex < 0) fail('no symbol table');
  const symtab = sections[symtabIndex]!;
  if (symtab.entsize !== 24) fail(`symbol size ${symtab.entsize} is not 24`);
  need(symtab.offset, symtab.size, 'symbol table');
  const symstr = sections[symtab.link];
  if (!symstr) fail('symbol table links to no string table');
  const syms: Sym[] = [];
  for (let o = symtab.offset; o + 24 <= symtab.offset + symtab.size; o += 24) {
    syms.push({
      name: strtab(symstr!, v.getUint32(o, true), 'symbol name'), info: bytes[o + 4]!, shndx: v.getUint16(o + 6, true),
      value: u64(v, o + 8, fail), size: u64(v, o + 16, fail),
    });
  }

  const licenseSec = sections.find((s) => s.name === 'license');
  if (!licenseSec) fail('no "license" section');
  need(licenseSec!.offset, licenseSec!.size, 'license');
  const license = new TextDecoder().decode(bytes.subarray(licenseSec!.offset, licenseSec!.offset + licenseSec!.size)).replace(/\0.*$/s, '');

  const mapsIndex = sections.findIndex((s) => s.name === 'maps');
  const maps: BpfMapDef[] = [];
  if (mapsIndex >= 0) {
    const ms = sections[mapsIndex]!;
    need(ms.offset, ms.size, 'maps section');
    for (const s of syms.filter((x) => x.shndx === mapsIndex && (x.info & 0xf) !== STT_SECTION && x.name !== '')) {
      if (s.value % 4 !== 0 || s.value + MAP_DEF_SIZE > ms.size) fail(`map ${s.name}: its definition lies outside the maps section`);
      const o = ms.offset + s.value;
      maps.push({
        name: s.name, type: v.getUint32(o, true), keySize: v.getUint32(o + 4, true), valueSize: v.getUint32(o + 8, true),
        maxEntries: v.getUint32(o + 12, true), flags: v.getUint32(o + 16, true),
      });
    }
  }
  const mapAt = (offset: number): string | undefined =>
    syms.find((s) => s.shndx === mapsIndex && (s.info & 0xf) !== STT_SECTION && s.value === offset && s.name !== '')?.name;

  const programs: BpfProgramSpec[] = [];
  sections.forEach((sec, index) => {
    if (!(sec.flags & SHF_EXECINSTR) || sec.size === 0) return;
    need(sec.offset, sec.size, `section ${sec.name}`);
    if (sec.size % INSN !== 0) fail(`section ${sec.name}: ${sec.size} bytes is not a whole number of instructions`);
    const funcs = syms.filter((s) => s.shndx === index && (s.info & 0xf) === STT_FUNC);
    if (funcs.length !== 1 || funcs[0]!.value !== 0 || (funcs[0]!.info >> 4) !== STB_GLOBAL) {
      fail(`section ${sec.name}: expected one global function starting the section, found ${funcs.map((f) => f.name).join(', ') || 'none'} (bpf-to-bpf calls are not supported: inline them)`);
    }
    // A copy (a Buffer's slice() would share the file's memory).
    const insns = new Uint8Array(bytes.subarray(sec.offset, sec.offset + sec.size));
    const mapRefs: { offset: number; map: string }[] = [];
    for (const rel of sections.filter((s) => s.type === SHT_REL && s.info === index)) {
      need(rel.offset, rel.size, `relocations of ${sec.name}`);
      for (let o = rel.offset; o + 16 <= rel.offset + rel.size; o += 16) {
        const at = u64(v, o, fail);
        const type = v.getUint32(o + 8, true);
        const symIndex = v.getUint32(o + 12, true);
        const sym = syms[symIndex];
        if (!sym) fail(`${sec.name}: relocation at ${at} names symbol ${symIndex}, which does not exist`);
        if (type !== R_BPF_64_64) fail(`${sec.name}: relocation type ${type} at ${at} for ${sym!.name || 'a section'} is not supported (only map references, R_BPF_64_64)`);
        if (at % INSN !== 0 || at + 2 * INSN > sec.size) fail(`${sec.name}: relocation at ${at} is not on an instruction`);
        if (insns[at] !== LD_IMM64) fail(`${sec.name}: relocation at ${at} is not on an ld_imm64`);
        if (sym!.shndx !== mapsIndex || mapsIndex < 0) fail(`${sec.name}: relocation at ${at} refers to ${sym!.name || 'a section'}, which is not a map (global data is not supported)`);
        // A reference through the section symbol carries the map's offset in the instruction.
        const map = (sym!.info & 0xf) === STT_SECTION ? mapAt(new DataView(insns.buffer, insns.byteOffset).getInt32(at + 4, true)) : sym!.name;
        if (!map) fail(`${sec.name}: relocation at ${at} points into the maps section but at no map`);
        mapRefs.push({ offset: at, map: map! });
      }
    }
    programs.push({ name: funcs[0]!.name, section: sec.name, insns, mapRefs });
  });
  if (programs.length === 0) fail('no programs');
  return { license, maps, programs };
}

function u64(v: DataView, off: number, fail: (why: string) => never): number {
  const x = v.getBigUint64(off, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) fail(`a 64-bit offset or size at ${off} is implausibly large`);
  return Number(x);
}

/**
 * The program's instructions with map fds patched in: for each map
 * reference, src_reg = BPF_PSEUDO_MAP_FD and imm = the map's fd. Throws
 * when a referenced map has no fd.
 */
export function relocate(p: BpfProgramSpec, fds: ReadonlyMap<string, number>): Uint8Array {
  const out = new Uint8Array(p.insns);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const r of p.mapRefs) {
    const fd = fds.get(r.map);
    if (fd === undefined) throw new BpfObjectError(`BPF object: ${p.name} uses map ${r.map}, which was not created`);
    out[r.offset + 1] = (out[r.offset + 1]! & 0x0f) | (BPF_PSEUDO_MAP_FD << 4);
    v.setInt32(r.offset + 4, fd, true);
    v.setInt32(r.offset + INSN + 4, 0, true);
  }
  return out;
}
