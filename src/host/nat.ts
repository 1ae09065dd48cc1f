// Masquerading the fan to the rest of the world. Containers have overlay
// addresses (250.x) that nothing outside the fan routes back to, so traffic
// from an overlay to a destination outside every overlay of this host leaves
// with the host's own address. MASQUERADE rather than a fixed SNAT address:
// the kernel picks the source address of the outgoing interface per packet,
// so NAT follows the default route when it changes (nf_nat_masquerade.c
// also drops the conntrack entries of an interface that goes down).
// Traffic whose source and destination both lie in the host's overlays
// stays inside the fan and is never NATed.
//
// fand owns its rules and nothing else: with nftables a table `ip fand` that
// is replaced whole on apply and deleted whole on stop; with iptables only,
// a chain FAND-POSTROUTING in the nat table, jumped to from POSTROUTING.
// The rules are data (pure functions below); `Nat` runs them.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { parseNetwork } from '../fan/fanmap.js';
import { formatCidr } from '../fan/ipv4.js';

export type NatBackend = 'nftables' | 'iptables';

export interface Nat {
  readonly backend: NatBackend;
  /** Makes the host masquerade `overlays` to the outside; replaces what a previous apply left. */
  apply(overlays: readonly string[]): Promise<void>;
  /** Removes fand's NAT rules; nothing to remove is fine. */
  remove(): Promise<void>;
}

export class NatError extends Error {}

export const NFT_TABLE = 'fand';
export const IPT_CHAIN = 'FAND-POSTROUTING';

/** Validated, canonical and deduplicated overlay CIDRs (an nft interval set rejects duplicates). */
function canonical(overlays: readonly string[]): string[] {
  return [...new Set(overlays.map((o) => formatCidr(parseNetwork(o, 'nat: overlay'))))];
}

/**
 * A complete `nft -f` script. Declaring the table empty and deleting it
 * first makes the script replace any previous `ip fand` table in one
 * transaction: nft applies a whole file atomically, so there is no moment
 * without the rule, and applying twice leaves one copy. With no overlays
 * the set is empty and nothing is masqueraded.
 */
export function nftRuleset(overlays: readonly string[]): string {
  const nets = canonical(overlays);
  return [
    `table ip ${NFT_TABLE} {}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    '  set overlays {',
    '    type ipv4_addr',
    '    flags interval',
    '    auto-merge',
    ...(nets.length ? [`    elements = { ${nets.join(', ')} }`] : []),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    '    ip saddr @overlays ip daddr != @overlays counter masquerade',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Deletes the table; declaring it first makes this succeed when it is absent (nft < 1.0.8 has no `destroy`). */
export function nftRemoveScript(): string {
  return `table ip ${NFT_TABLE} {}\ndelete table ip ${NFT_TABLE}\n`;
}

/**
 * `iptables` argument vectors (without the leading `iptables`), in order.
 * Two of them are ensure-steps that the runner skips when their effect is
 * already there (see `iptablesPrecondition`): creating the chain, and the
 * jump from POSTROUTING, which is inserted first so that a host's catch-all
 * `-o eth0 -j MASQUERADE` cannot NAT traffic inside the fan before our
 * RETURNs see it. The chain is flushed and refilled, so applying twice
 * leaves one copy of each rule.
 */
export function iptablesCommands(overlays: readonly string[]): string[][] {
  const nets = canonical(overlays);
  return [
    ['-t', 'nat', '-N', IPT_CHAIN],
    ['-t', 'nat', '-F', IPT_CHAIN],
    ...nets.map((o) => ['-t', 'nat', '-A', IPT_CHAIN, '-d', o, '-j', 'RETURN']),
    ...nets.map((o) => ['-t', 'nat', '-A', IPT_CHAIN, '-s', o, '-j', 'MASQUERADE']),
    ['-t', 'nat', '-I', 'POSTROUTING', '1', '-j', IPT_CHAIN],
  ];
}

/** Undoes `iptablesCommands`; each step runs only when what it removes is there. */
export function iptablesRemoveCommands(): string[][] {
  return [
    ['-t', 'nat', '-D', 'POSTROUTING', '-j', IPT_CHAIN],
    ['-t', 'nat', '-F', IPT_CHAIN],
    ['-t', 'nat', '-X', IPT_CHAIN],
  ];
}

/**
 * What makes an iptables step idempotent: a check command, and whether the
 * step runs when the check fails (`-N`, `-I`: only if not there yet) or
 * while it succeeds (`-D`: every copy; `-F`, `-X`: only if the chain exists).
 */
export function iptablesPrecondition(cmd: readonly string[]): { check: string[]; run: 'unless' | 'while' | 'if' } | undefined {
  const i = cmd.findIndex((a) => ['-N', '-I', '-D', '-F', '-X'].includes(a));
  if (i < 0) return undefined;
  const table = cmd.slice(0, i);
  const chain = cmd[i + 1]!;
  switch (cmd[i]) {
    case '-N': return { check: [...table, '-S', chain], run: 'unless' };
    case '-F':
    case '-X': return { check: [...table, '-S', chain], run: 'if' };
    case '-I': {
      const rest = cmd.slice(i + 2);
      const rule = /^\d+$/.test(rest[0] ?? '') ? rest.slice(1) : rest;
      return { check: [...table, '-C', chain, ...rule], run: 'unless' };
    }
    case '-D': return { check: [...table, '-C', ...cmd.slice(i + 1)], run: 'while' };
  }
  return undefined;
}

/** Lines for `fand plan`. */
export function describeNat(backend: NatBackend, overlays: readonly string[]): string[] {
  const nets = canonical(overlays);
  const not = nets.map((o) => `!${o}`).join(',');
  const where = backend === 'nftables' ? `nftables table ip ${NFT_TABLE}` : `iptables nat chain ${IPT_CHAIN} (jump from POSTROUTING)`;
  if (!nets.length) return [`nat     ${where}: nothing to masquerade (no overlays)`];
  return nets.map((o) => `nat     ${where}: masquerade ${o} -> ${not}`);
}

// ---- running the rules ----

const TIMEOUT_MS = 10_000;

const resolved = new Map<string, string>();
/**
 * The system's `nft`/`iptables`, by absolute path: under `npm run`/`npx`
 * PATH starts with node_modules/.bin, where @vercel/nft (a dependency of
 * ava) installs a JavaScript `nft` that would be run instead of nftables'.
 * Falls back to a PATH lookup when none of the usual directories has it.
 */
export function systemCommand(name: string): string {
  let path = resolved.get(name);
  if (path === undefined) {
    path = name;
    for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
      try { accessSync(`${dir}/${name}`, constants.X_OK); path = `${dir}/${name}`; break; } catch { /* not here */ }
    }
    resolved.set(name, path);
  }
  return path;
}

interface Ran { ok: boolean; code: unknown; killed: boolean; stdout: string; stderr: string; message: string }

/** Runs a command (through `ip netns exec` with a netns), bounded in time, never through a shell. */
function exec(netns: string | undefined, cmd: string, args: readonly string[], input?: string): Promise<Ran> {
  const bin = systemCommand(cmd);
  const [file, argv] = netns ? ['ip', ['netns', 'exec', netns, bin, ...args]] : [bin, [...args]];
  return new Promise((resolve) => {
    const child = execFile(file, argv, { timeout: TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ ok: !err, code: err ? ((err as NodeJS.ErrnoException).code ?? err.signal) : 0, killed: err?.killed ?? false, stdout, stderr, message: err?.message ?? '' });
    });
    child.stdin?.on('error', () => { /* the command exited early; its error is reported above */ });
    child.stdin?.end(input ?? '');
  });
}

async function must(netns: string | undefined, cmd: string, args: readonly string[], input?: string): Promise<string> {
  const r = await exec(netns, cmd, args, input);
  if (!r.ok) {
    const where = netns ? ` (netns ${netns})` : '';
    const why = r.killed ? `no answer within ${TIMEOUT_MS / 1000} s`
      : r.stderr.trim() || (r.code === 'ENOENT' ? 'command not found' : r.message);
    throw new NatError(`nat: ${cmd} ${args.join(' ')}${where}: ${why}`);
  }
  return r.stdout;
}

export function makeNftNat(netns?: string): Nat {
  return {
    backend: 'nftables',
    async apply(overlays) {
      const script = nftRuleset(overlays);
      await must(netns, 'nft', ['-f', '-'], script);
    },
    async remove() {
      await must(netns, 'nft', ['-f', '-'], nftRemoveScript());
    },
  };
}

export function makeIptablesNat(netns?: string): Nat {
  const runAll = async (cmds: string[][]) => {
    for (const cmd of cmds) {
      const pre = iptablesPrecondition(cmd);
      if (!pre) { await must(netns, 'iptables', ['-w', '5', ...cmd]); continue; }
      const present = async () => (await exec(netns, 'iptables', ['-w', '5', ...pre.check])).ok;
      if (pre.run === 'unless') {
        if (!(await present())) await must(netns, 'iptables', ['-w', '5', ...cmd]);
      } else if (pre.run === 'if') {
        if (await present()) await must(netns, 'iptables', ['-w', '5', ...cmd]);
      } else {
        // every copy (bounded: a rule that `-C` finds but `-D` cannot delete must not loop forever)
        for (let n = 0; n < 64 && (await present()); n++) await must(netns, 'iptables', ['-w', '5', ...cmd]);
      }
    }
  };
  return {
    backend: 'iptables',
    apply: (overlays) => runAll(iptablesCommands(overlays)),
    remove: () => runAll(iptablesRemoveCommands()),
  };
}

/**
 * nftables when `nft` is installed and the kernel answers it, else iptables
 * when `iptables -t nat` works (Debian's `iptables` is iptables-nft or
 * iptables-legacy as the alternatives system says), else undefined.
 */
export async function detectNat(netns?: string): Promise<Nat | undefined> {
  if ((await exec(netns, 'nft', ['list', 'tables'])).ok) return makeNftNat(netns);
  if ((await exec(netns, 'iptables', ['-w', '5', '-t', 'nat', '-S'])).ok) return makeIptablesNat(netns);
  return undefined;
}
