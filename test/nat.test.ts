// NAT: the nftables ruleset and iptables commands as data, then the real
// thing in network namespaces: a fan host with a container on its bridge,
// an outside machine that has no route to the overlay, and another slice
// of the overlay routed through the host (standing in for a remote fan host).
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  describeNat, detectNat, iptablesCommands, iptablesPrecondition, iptablesRemoveCommands,
  makeIptablesNat, makeNftNat, nftRemoveScript, nftRuleset, systemCommand, type Nat,
} from '../src/host/nat.js';
import { inNs, run } from '../src/demo/exec.js';

// ---- pure ----

test('nft ruleset: one table replaced atomically, a set of overlays, masquerade to outside them', (t) => {
  const s = nftRuleset(['250.0.0.0/8', '10.0.0.0/8', '250.0.0.0/8']);
  const lines = s.split('\n');
  t.deepEqual(lines.slice(0, 3), ['table ip fand {}', 'delete table ip fand', 'table ip fand {']);
  t.true(lines.includes('    elements = { 250.0.0.0/8, 10.0.0.0/8 }'), 'deduplicated, in order');
  t.true(lines.includes('    flags interval'));
  t.true(lines.includes('    type nat hook postrouting priority srcnat; policy accept;'));
  t.is(lines.filter((l) => l.includes('masquerade')).length, 1);
  t.true(lines.includes('    ip saddr @overlays ip daddr != @overlays counter masquerade'));
  t.true(s.endsWith('}\n'));
  t.false(nftRuleset([]).includes('elements'), 'no overlays: an empty set, nothing masqueraded');
  t.is(nftRemoveScript(), 'table ip fand {}\ndelete table ip fand\n');
});

test('overlays are validated before they reach a ruleset', (t) => {
  t.throws(() => nftRuleset(['250.1.2.3/8']), { message: /nat: overlay 250\.1\.2\.3\/8 has host bits set; did you mean 250\.0\.0\.0\/8\?/ });
  t.throws(() => iptablesCommands(['250.0.0.0/8; flush ruleset']), { message: /nat: overlay/ });
  t.throws(() => describeNat('nftables', ['fe80::/10']), { message: /IPv6/ });
});

test('iptables commands: own chain, RETURN inside the fan, MASQUERADE out, one jump', (t) => {
  t.deepEqual(iptablesCommands(['250.0.0.0/8', '10.0.0.0/8']), [
    ['-t', 'nat', '-N', 'FAND-POSTROUTING'],
    ['-t', 'nat', '-F', 'FAND-POSTROUTING'],
    ['-t', 'nat', '-A', 'FAND-POSTROUTING', '-d', '250.0.0.0/8', '-j', 'RETURN'],
    ['-t', 'nat', '-A', 'FAND-POSTROUTING', '-d', '10.0.0.0/8', '-j', 'RETURN'],
    ['-t', 'nat', '-A', 'FAND-POSTROUTING', '-s', '250.0.0.0/8', '-j', 'MASQUERADE'],
    ['-t', 'nat', '-A', 'FAND-POSTROUTING', '-s', '10.0.0.0/8', '-j', 'MASQUERADE'],
    ['-t', 'nat', '-I', 'POSTROUTING', '1', '-j', 'FAND-POSTROUTING'],
  ]);
  t.deepEqual(iptablesRemoveCommands(), [
    ['-t', 'nat', '-D', 'POSTROUTING', '-j', 'FAND-POSTROUTING'],
    ['-t', 'nat', '-F', 'FAND-POSTROUTING'],
    ['-t', 'nat', '-X', 'FAND-POSTROUTING'],
  ]);
  // what makes each step idempotent
  const pre = (c: string[]) => iptablesPrecondition(c);
  t.deepEqual(pre(['-t', 'nat', '-N', 'FAND-POSTROUTING']), { check: ['-t', 'nat', '-S', 'FAND-POSTROUTING'], run: 'unless' });
  t.deepEqual(pre(['-t', 'nat', '-I', 'POSTROUTING', '1', '-j', 'FAND-POSTROUTING']), { check: ['-t', 'nat', '-C', 'POSTROUTING', '-j', 'FAND-POSTROUTING'], run: 'unless' });
  t.deepEqual(pre(['-t', 'nat', '-D', 'POSTROUTING', '-j', 'FAND-POSTROUTING']), { check: ['-t', 'nat', '-C', 'POSTROUTING', '-j', 'FAND-POSTROUTING'], run: 'while' });
  t.deepEqual(pre(['-t', 'nat', '-X', 'FAND-POSTROUTING']), { check: ['-t', 'nat', '-S', 'FAND-POSTROUTING'], run: 'if' });
  t.is(pre(['-t', 'nat', '-A', 'FAND-POSTROUTING', '-s', '250.0.0.0/8', '-j', 'MASQUERADE']), undefined);
});

test('plan lines', (t) => {
  t.deepEqual(describeNat('nftables', ['250.0.0.0/8']), ['nat     nftables table ip fand: masquerade 250.0.0.0/8 -> !250.0.0.0/8']);
  t.deepEqual(describeNat('iptables', ['250.0.0.0/8', '10.0.0.0/8']), [
    'nat     iptables nat chain FAND-POSTROUTING (jump from POSTROUTING): masquerade 250.0.0.0/8 -> !250.0.0.0/8,!10.0.0.0/8',
    'nat     iptables nat chain FAND-POSTROUTING (jump from POSTROUTING): masquerade 10.0.0.0/8 -> !250.0.0.0/8,!10.0.0.0/8',
  ]);
});

// ---- real namespaces ----

const works = async (cmd: string, args: string[]) => { try { await run(cmd, args, 5000); return true; } catch { return false; } };
// decided synchronously: ava wants every test declared before the first await
const installed = (cmd: string) => { try { execFileSync(systemCommand(cmd), ['--version'], { stdio: 'ignore', timeout: 5000 }); return true; } catch { return false; } };
const isRoot = process.getuid?.() === 0;
const hasNft = isRoot && installed('nft');
const hasIptables = isRoot && installed('iptables');

const PORT = 8099;
// not node_modules/.bin/nft (see systemCommand)
const NFT = systemCommand('nft');
const IPTABLES = systemCommand('iptables');

interface NatLab {
  host: string; container: string; outside: string; far: string;
}

/**
 * host:      bridge fan-test 250.1.10.1/24, uplink 10.99.0.1/24 to outside,
 *            farlink 250.2.10.1/24 to far; ip_forward on
 * container: eth0 250.1.10.11/24 on fan-test, default via 250.1.10.1
 * outside:   eth0 10.99.0.2/24, no route to 250.0.0.0/8
 * far:       eth0 250.2.10.11/24, default via 250.2.10.1 (another slice of the fan)
 */
async function buildLab(t: ExecutionContext, tag: string): Promise<NatLab> {
  const p = `nat${tag}${process.pid % 100000}${Math.floor(Math.random() * 1000)}`;
  const lab = { host: `${p}-h`, container: `${p}-c`, outside: `${p}-o`, far: `${p}-f` };
  const servers: ChildProcess[] = [];
  t.teardown(async () => {
    for (const s of servers) s.kill('SIGKILL');
    for (const ns of Object.values(lab)) await run('ip', ['netns', 'del', ns]).catch(() => {});
  });
  for (const ns of Object.values(lab)) {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  const ip = (ns: string, ...a: string[]) => run('ip', ['-n', ns, ...a]);
  const { host, container, outside, far } = lab;
  await ip(host, 'link', 'add', 'fan-test', 'type', 'bridge');
  await ip(host, 'addr', 'add', '250.1.10.1/24', 'dev', 'fan-test');
  await ip(host, 'link', 'set', 'fan-test', 'up');
  const wire = async (hostDev: string, hostCidr: string, other: string, otherCidr: string, gw?: string) => {
    await ip(host, 'link', 'add', hostDev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', other);
    if (hostDev === 'ctr0') await ip(host, 'link', 'set', hostDev, 'master', 'fan-test');
    else await ip(host, 'addr', 'add', hostCidr, 'dev', hostDev);
    await ip(host, 'link', 'set', hostDev, 'up');
    await ip(other, 'addr', 'add', otherCidr, 'dev', 'eth0');
    await ip(other, 'link', 'set', 'eth0', 'up');
    if (gw) await ip(other, 'route', 'add', 'default', 'via', gw);
  };
  await wire('ctr0', '', container, '250.1.10.11/24', '250.1.10.1');
  await wire('uplink', '10.99.0.1/24', outside, '10.99.0.2/24');
  await wire('farlink', '250.2.10.1/24', far, '250.2.10.11/24', '250.2.10.1');
  await inNs(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // a TCP server in outside and in far that answers with the peer address it sees
  for (const [ns, addr] of [[outside, '10.99.0.2'], [far, '250.2.10.11']] as const) {
    const s = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
      `require('net').createServer((s) => s.end(s.remoteAddress)).listen(${PORT}, '${addr}', () => console.log('ready'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    servers.push(s);
    await new Promise<void>((resolve, reject) => {
      s.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
      s.once('exit', (code) => reject(new Error(`server in ${ns} exited ${code}`)));
    });
  }
  return lab;
}

const pings = (lab: NatLab, dst: string) => works('ip', ['netns', 'exec', lab.container, 'ping', '-c1', '-W1', '-q', dst]);

/** The source address a TCP server at dst sees for a connection from the container. */
async function peerSeenBy(lab: NatLab, dst: string): Promise<string> {
  const { stdout } = await inNs(lab.container, process.execPath, ['-e',
    `const c = require('net').connect(${PORT}, '${dst}'); let s = ''; c.on('data', (d) => s += d); c.on('end', () => console.log(s)); c.setTimeout(3000, () => process.exit(2));`], 10_000);
  return stdout.trim();
}

interface Inspect {
  /** Describes fand's rules compactly enough to assert "exactly one copy". */
  rules(ns: string): Promise<string[]>;
  /** Packets (first of each connection: nat chains see no more) that hit the masquerade rule. */
  masqueraded(ns: string): Promise<number>;
}

const nftInspect: Inspect = {
  async rules(ns) {
    const tables = (await inNs(ns, NFT, ['list', 'tables'])).stdout.split('\n').filter(Boolean);
    if (!tables.includes('table ip fand')) return tables;
    const body = (await inNs(ns, NFT, ['list', 'table', 'ip', 'fand'])).stdout;
    return [...tables, ...body.split('\n').map((l) => l.trim()).filter((l) => /^(elements|ip saddr)/.test(l)).map((l) => l.replace(/counter packets \d+ bytes \d+ /, ''))];
  },
  async masqueraded(ns) {
    const m = /counter packets (\d+)/.exec((await inNs(ns, NFT, ['list', 'table', 'ip', 'fand'])).stdout);
    return Number(m?.[1]);
  },
};

const iptInspect: Inspect = {
  async rules(ns) {
    return (await inNs(ns, IPTABLES, ['-t', 'nat', '-S'])).stdout.split('\n').filter((l) => l.includes('FAND'));
  },
  async masqueraded(ns) {
    const out = (await inNs(ns, IPTABLES, ['-t', 'nat', '-L', 'FAND-POSTROUTING', '-v', '-x', '-n'])).stdout;
    const line = out.split('\n').find((l) => l.includes('MASQUERADE'));
    return Number(line?.trim().split(/\s+/)[0]);
  },
};

async function natFlow(t: ExecutionContext, tag: string, make: (ns: string) => Nat, inspect: Inspect, expected: string[]): Promise<void> {
  const lab = await buildLab(t, tag);
  const nat = make(lab.host);
  t.false(await pings(lab, '10.99.0.2'), 'without NAT the outside cannot answer 250.1.10.11');
  t.true(await pings(lab, '250.2.10.11'), 'inside the fan the host routes without NAT');

  await nat.apply(['250.0.0.0/8']);
  await nat.apply(['250.0.0.0/8']);
  t.deepEqual(await inspect.rules(lab.host), expected, 'applying twice leaves exactly one copy');

  t.true(await pings(lab, '10.99.0.2'), 'masqueraded, the outside answers');
  t.is(await peerSeenBy(lab, '10.99.0.2'), '10.99.0.1', 'the outside sees the host uplink address');
  const before = await inspect.masqueraded(lab.host);
  t.true(before >= 2, `masquerade counter ${before}`);

  // another slice of the fan, routed through the host: not NATed
  t.true(await pings(lab, '250.2.10.11'));
  t.is(await peerSeenBy(lab, '250.2.10.11'), '250.1.10.11', 'inside the fan the peer sees the container itself');
  t.is(await inspect.masqueraded(lab.host), before, 'the masquerade rule never saw the traffic inside the fan');

  await nat.remove();
  await nat.remove();
  t.deepEqual(await inspect.rules(lab.host), [], 'removed, and removing again is fine');
  t.false(await pings(lab, '10.99.0.2'), 'without NAT again, no answer');
}

(hasNft ? test : test.skip)('nftables: masquerade out of the fan, never inside it, apply twice, remove', async (t) => {
  await natFlow(t, 'n', makeNftNat, nftInspect, [
    'table ip fand',
    'elements = { 250.0.0.0/8 }',
    'ip saddr @overlays ip daddr != @overlays masquerade',
  ]);
});

(hasIptables ? test : test.skip)('iptables: masquerade out of the fan, never inside it, apply twice, remove', async (t) => {
  await natFlow(t, 'i', makeIptablesNat, iptInspect, [
    '-N FAND-POSTROUTING',
    '-A POSTROUTING -j FAND-POSTROUTING',
    '-A FAND-POSTROUTING -d 250.0.0.0/8 -j RETURN',
    '-A FAND-POSTROUTING -s 250.0.0.0/8 -j MASQUERADE',
  ]);
});

(hasNft ? test : test.skip)('detectNat picks nftables where nft works; errors name the command and its stderr', async (t) => {
  const ns = `natd${process.pid % 100000}${Math.floor(Math.random() * 1000)}`;
  await run('ip', ['netns', 'add', ns]);
  t.teardown(() => run('ip', ['netns', 'del', ns]).catch(() => {}));
  const nat = await detectNat(ns);
  t.is(nat?.backend, 'nftables');
  await nat!.apply(['250.0.0.0/8']);
  t.true((await inNs(ns, NFT, ['list', 'tables'])).stdout.includes('table ip fand'));
  await nat!.remove();
  const gone = makeNftNat(`${ns}-missing`);
  await t.throwsAsync(gone.apply(['250.0.0.0/8']), { message: new RegExp(`^nat: nft -f - \\(netns ${ns}-missing\\): .*${ns}-missing`) });
  t.is(await detectNat(`${ns}-missing`), undefined, 'nothing works in a namespace that does not exist');
});
