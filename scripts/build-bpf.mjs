#!/usr/bin/env node
// Builds bpf/fan.bpf.o, the eBPF dataplane's tc programs, from
// bpf/fan.bpf.c with clang. The object is committed (like cilium/ebpf's
// bpf2go output), so hosts that install fand need no compiler; a test
// (test/ebpf-build.test.ts) rebuilds it with this script and compares the
// bytes, so the committed object is always what the source says.
//
//   node scripts/build-bpf.mjs            rebuild bpf/fan.bpf.o (after editing the source)
//   node scripts/build-bpf.mjs --out F    build into F instead (the test does this)
//
// The build is reproducible for a given clang: no debug information (the
// object carries no paths), a fixed relative source name, fixed flags. The
// committed object was built with the clang named in bpf/fan.bpf.o.clang
// (Debian 12's clang 14); another clang version may emit other bytes, and
// the check says so. -target bpfel: the object is little-endian BPF (x86_64,
// arm64 and every other little-endian host).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bpfDir = path.join(root, 'bpf');

export const CLANG_FLAGS = ['-O2', '-g0', '-target', 'bpfel', '-mcpu=v2', '-Wall', '-Wextra', '-Werror'];

/** The directory holding asm/types.h for the linux headers (Debian's multiarch layout). */
function asmIncludeDir() {
  const r = spawnSync('cc', ['-print-multiarch'], { encoding: 'utf8' });
  const triple = r.status === 0 && r.stdout.trim() ? r.stdout.trim() : `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  return `/usr/include/${triple}`;
}

/** `clang --version`'s first line, or undefined without clang. */
export function clangVersion() {
  const r = spawnSync('clang', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0].trim() : undefined;
}

/** Compiles bpf/fan.bpf.c into `out`; throws with clang's own words on failure. */
export function buildBpf(out) {
  const version = clangVersion();
  if (!version) throw new Error('clang is not installed: the eBPF programs are compiled with it (Debian: apt-get install clang)');
  const args = [...CLANG_FLAGS, '-I', asmIncludeDir(), '-c', 'fan.bpf.c', '-o', out];
  const r = spawnSync('clang', args, { cwd: bpfDir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`clang ${args.join(' ')} failed:\n${r.stderr || r.error}`);
  return version;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const out = i > 0 ? path.resolve(process.argv[i + 1]) : path.join(bpfDir, 'fan.bpf.o');
  try {
    const version = buildBpf(out);
    if (i < 0) writeFileSync(path.join(bpfDir, 'fan.bpf.o.clang'), `${version}\n`);
    console.log(`fand: built ${path.relative(root, out)} with ${version} (${readFileSync(out).length} bytes)`);
  } catch (e) {
    console.error(`fand: ${e.message}`);
    process.exit(1);
  }
}
