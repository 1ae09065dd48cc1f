// The command line: map, plan, and every kind of bad input exiting 2 with a
// message that names the problem, before anything on the host is touched.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAND_BIN, Lab } from '../src/demo/lab.js';
import { run } from '../src/demo/exec.js';
import { fand } from './helpers/fand-cli.js';


test('map: overlay address to its underlay host', async (t) => {
  const r = await fand(['map', '--overlay', '250.0.0.0/8', '--underlay', '172.16.0.0/16', '250.5.6.7']);
  t.is(r.code, 0);
  t.is(r.stdout, '172.16.5.6\n');
});

test('map: underlay host to its slice, bridge and bridge address', async (t) => {
  const r = await fand(['map', '--overlay', '250.0.0.0/8', '--underlay', '172.16.0.0/16', '172.16.5.6']);
  t.is(r.code, 0);
  t.is(r.stdout, 'slice   250.5.6.0/24\nbridge  fan-250-5-6\naddress 250.5.6.1\n');
  const j = await fand(['map', '--overlay', '10.0.0.0/8', '--underlay', '192.168.16.0/20', '--json', '10.37.16.9']);
  t.is(j.code, 0);
  t.like(JSON.parse(j.stdout), { overlay: '10.0.0.0/8', underlay: '192.168.16.0/20', slice: '10.37.16.0/20', bridge: 'fan-10-37-16', host: '192.168.18.81' });
});

const bad: [string, string[], RegExp][] = [
  ['overlay with host bits', ['--overlay', '250.1.0.0/8', '--underlay', '172.16.0.0/16'], /overlay 250\.1\.0\.0\/8 has host bits set/],
  ['prefix out of range', ['--overlay', '250.0.0.0/33', '--underlay', '172.16.0.0/16'], /--overlay.*33/],
  ['slice longer than /30', ['--overlay', '250.0.0.0/8', '--underlay', '172.16.0.0/31'], /\/30|slice|underlay/],
  ['multicast overlay', ['--overlay', '224.0.0.0/8', '--underlay', '172.16.0.0/16'], /multicast|224/],
  ['overlapping overlay and underlay', ['--overlay', '172.0.0.0/8', '--underlay', '172.16.0.0/16'], /overlap/],
  ['not an address', ['--overlay', 'fan', '--underlay', '172.16.0.0/16'], /--overlay/],
  ['unknown option', ['--overlya', '250.0.0.0/8'], /overlya/],
  ['unpaired overlay', ['--overlay', '250.0.0.0/8'], /pairs/],
  ['bad worker count', ['--overlay', '250.0.0.0/8', '--underlay', '172.16.0.0/16', '--workers', '0'], /--workers 0/],
  ['bad dataplane', ['--overlay', '250.0.0.0/8', '--underlay', '172.16.0.0/16', '--dataplane', 'fast'], /--dataplane fast/],
];
for (const [name, args, message] of bad) {
  test(`plan rejects ${name} with exit 2`, async (t) => {
    const r = await fand(['plan', ...args]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
  });
}

test('unknown command exits 2', async (t) => {
  const r = await fand(['frobnicate']);
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown command 'frobnicate'/);
});

test('--help for every verb', async (t) => {
  for (const verb of ['run', 'map', 'plan', 'show', 'demo']) {
    const r = await fand([verb, '--help']);
    t.is(r.code, 0);
    t.regex(r.stdout, new RegExp(`fand .*${verb === 'run' ? '' : verb}`));
  }
});

test('config file errors carry file and line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'fan');
  writeFileSync(file, '# fans\n250.0.0.0/8 172.16.0.0/16 dhcp\n\n10.0.0.0/8 192.168.0.0/16 dhcpp\n');
  const r = await fand(['plan', '--config', file]);
  t.is(r.code, 2);
  t.regex(r.stderr, new RegExp(`${file}:4: unknown option 'dhcpp'`));
  writeFileSync(file, '250.0.0.0/8 172.16.0.0/16\n250.128.0.0/9 10.1.0.0/16\n');
  const o = await fand(['plan', '--config', file]);
  t.is(o.code, 2);
  t.regex(o.stderr, /overlap/);
  const missing = await fand(['plan', '--config', join(dir, 'nope')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /no such file/);
});

test('every mistake in a config file at once, each with file:line, in line order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'fan');
  writeFileSync(file, [
    '250.0.0.0/8 172.16.0.0/16 dhcpp',          // 1: unknown option
    '10.0.0.0/8 192.168.0.0/16 host-reserve 0',  // 2: bad value
    '240.0.0.0/8 172.16.0.0/33',                 // 3: underlay prefix
    '# a comment',                               // 4
    '10.128.0.0/9 192.168.0.0/16 bridge b1',     // 5: fine alone
    '10.0.0.0/8 172.17.0.0/16',                  // 6: overlaps line 5's overlay
    '',
  ].join('\n'));
  const r = await fand(['plan', '--config', file]);
  t.is(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.deepEqual(lines.map((l) => /^fand: .*\/fan:(\d+): /.exec(l)?.[1]), ['1', '2', '3', '6', undefined], r.stderr);
  t.regex(lines[0]!, new RegExp(`^fand: ${file}:1: unknown option 'dhcpp'`));
  t.regex(lines[1]!, new RegExp(`^fand: ${file}:2: host-reserve '0' must be a whole number`));
  t.regex(lines[2]!, new RegExp(`^fand: ${file}:3: underlay 172\\.16\\.0\\.0/33: prefix length '33'`));
  t.is(lines[3], `fand: ${file}:6: overlay 10.0.0.0/8 overlaps overlay 10.128.0.0/9 (${file}:5); each fan needs its own overlay`);
  t.is(lines[4], 'fand: 4 problems; nothing on the host was changed');
});

test('a config path that is a directory, unreadable or empty: said in words, not as an errno', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const isDir = await fand(['plan', '--config', dir]);
  t.is(isDir.code, 2);
  t.is(isDir.stderr, `fand: --config ${dir}: is a directory; give the fan file itself (e.g. /etc/network/fan)\n`);
  const empty = join(dir, 'empty');
  writeFileSync(empty, '# nothing yet\n');
  const e = await fand(['plan', '--config', empty]);
  t.is(e.code, 2);
  t.regex(e.stderr, new RegExp(`^fand: --config ${empty}: no fans in it \\(one per line: OVERLAY UNDERLAY`));
  // unreadable: a root-only file read by nobody (plan needs no root)
  chmodSync(dir, 0o755);
  const secret = join(dir, 'secret');
  writeFileSync(secret, '250.0.0.0/8 172.16.0.0/16\n', { mode: 0o600 });
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => execFile('setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, FAND_BIN, 'plan', '--config', secret], { timeout: 60_000 },
    (err, _out, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr })));
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr, `fand: --config ${secret}: permission denied: fand (uid 65534) cannot read it; run fand as root or make the file readable\n`);
  t.notRegex(r.stderr, /EACCES|EISDIR/);
});

test('plan and run on a test host: the plan for an interface underlay; bad interfaces exit 2 and touch nothing', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('cli'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  await run('ip', ['-n', h.ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
  const r = await fand(['plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--json'], h.ns);
  t.is(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { dataplane: { mode: string; reason: string }; fans: { slice: string; bridge: string; mtu: number }[]; resources: { kind: string; id: string }[] };
  // This machine's kernel has BPF and clsact but no ipip module: auto takes ebpf.
  t.is(plan.dataplane.mode, 'ebpf');
  t.regex(plan.dataplane.reason, /^no kernel Fan: creating an ipip device failed: EOPNOTSUPP.*: ebpf$/);
  t.like(plan.fans[0], { slice: '250.1.10.0/24', bridge: 'fan-250-1-10', mtu: 1480 });
  t.deepEqual(plan.resources.map((x) => x.id), [
    'sysctl:net.ipv4.ip_forward', 'bridge:fan-250-1-10', 'address:fan-250-1-10:250.1.10.1/24', 'tun:ftun-250', 'route:250.0.0.0/8',
    'tc-bpf:ftun-250:egress', 'tc-bpf:eth0:ingress', 'nat',
  ]);
  const noNat = JSON.parse((await fand(['plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--json', '--no-nat'], h.ns)).stdout) as typeof plan;
  t.false(noNat.resources.some((x) => x.kind === 'nat'));
  const human = await fand(['plan', '--overlay', '250.0.0.0/8', '--underlay', '172.16.0.0/16'], h.ns);
  t.regex(human.stdout, /route   250\.0\.0\.0\/8 dev ftun-250 src 250\.1\.10\.1/);

  const noIface = await fand(['--overlay', '250.0.0.0/8', '--underlay', 'eth9/16'], h.ns);
  t.is(noIface.code, 2);
  t.regex(noIface.stderr, /underlay eth9\/16: no such interface \(have: .*eth0.*\)/);
  const noIpv4 = await fand(['--overlay', '250.0.0.0/8', '--underlay', 'v0/16'], h.ns);
  t.is(noIpv4.code, 2);
  t.regex(noIpv4.stderr, /v0.*no IPv4 address/);
  const forced = await fand(['--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--dataplane', 'kernel-fan'], h.ns);
  t.is(forced.code, 2);
  t.regex(forced.stderr, /--dataplane kernel-fan: this host cannot run it: no kernel Fan: creating an ipip device failed: EOPNOTSUPP/);
  // nothing was created by the failed runs
  const links = (JSON.parse((await run('ip', ['-n', h.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
  t.deepEqual(links.sort(), ['eth0', 'lo', 'v0', 'v1']);
});

test('a bridge name held by another kind of device: plan and run refuse it alike (exit 2), naming it, and nothing is left', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('clash'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  await run('ip', ['-n', h.ns, 'link', 'add', h.bridge, 'type', 'veth', 'peer', 'name', 'v1']);
  const said = `fand: bridge ${h.bridge}: ${h.bridge} is a veth device that fand did not create, and fand will not take it over; choose another --bridge name\n`;
  const plan = await fand(['plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16'], h.ns);
  t.is(plan.code, 2, plan.stderr);
  t.is(plan.stderr, said);
  const r = await fand(['--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--log-level', 'silent'], h.ns);
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr, said);
  t.notRegex(r.stderr, /ip link del/, 'fand suggested deleting a device it did not create');
  const links = (JSON.parse((await run('ip', ['-n', h.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
  t.deepEqual(links.sort(), ['eth0', h.bridge, 'lo', 'v1'].sort());
  const fwd = (await run('ip', ['netns', 'exec', h.ns, 'cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim();
  t.is(fwd, '0', 'nothing was changed: ip_forward is still 0');
});

test('--bridge naming the underlay interface or lo: plan and run refuse it, and never advise deleting it', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('brname'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  const cases: [string, string][] = [
    ['eth0', 'fand: bridge eth0: eth0 is the underlay interface of 250.0.0.0/8, which fand does not create or change; choose another --bridge name\n'],
    ['lo', 'fand: bridge lo: lo is the loopback device, and fand will not take it over; choose another --bridge name\n'],
  ];
  for (const [name, said] of cases) {
    for (const verb of ['plan', 'run']) {
      const r = await fand([verb, '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--bridge', name, '--log-level', 'silent'], h.ns);
      t.is(r.code, 2, `${verb} --bridge ${name}: ${r.stderr}`);
      t.is(r.stderr, said, `${verb} --bridge ${name}`);
      t.notRegex(r.stderr, /ip link del|remove it/);
    }
  }
  // in a file, the fix names the line
  const dir = mkdtempSync(join(tmpdir(), 'fand-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'fan');
  writeFileSync(file, '250.0.0.0/8 eth0/16 bridge eth0\n10.0.0.0/8 eth0/16 bridge lo\n');
  const r = await fand(['plan', '--config', file], h.ns);
  t.is(r.code, 2);
  t.is(r.stderr, [
    `fand: ${file}:1: bridge eth0: eth0 is the underlay interface of 250.0.0.0/8 and 10.0.0.0/8, which fand does not create or change; choose another name with 'bridge NAME' on ${file}:1`,
    `fand: ${file}:2: bridge lo: lo is the loopback device, and fand will not take it over; choose another name with 'bridge NAME' on ${file}:2`,
    'fand: 2 problems; nothing on the host was changed',
    '',
  ].join('\n'));
  const links = (JSON.parse((await run('ip', ['-n', h.ns, '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
  t.deepEqual(links.sort(), ['eth0', 'lo']);
});

test('underlay errors found on the host carry file:line, all of them at once', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('ulerr'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'fand-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'fan');
  writeFileSync(file, '# two fans this host cannot have\n250.0.0.0/8 eth9/16\n10.0.0.0/8 192.168.0.0/16\n');
  for (const verb of ['plan', 'run']) {
    const r = await fand([verb, '--config', file, '--log-level', 'silent'], h.ns);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, new RegExp(`^fand: ${file}:2: underlay eth9/16: no such interface \\(have: .*eth0.*\\)$`, 'm'));
    t.regex(r.stderr, new RegExp(`^fand: ${file}:3: underlay 192\\.168\\.0\\.0/16: no local address in it`, 'm'));
    t.regex(r.stderr, /^fand: 2 problems; nothing on the host was changed$/m);
  }
});
