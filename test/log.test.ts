// Logs for people and machines: text with ISO 8601 times on a terminal (a
// real pty, from script(1)), JSON with ISO `time` otherwise, --log-format to
// choose, --log-level debug that says what fand ran, the last words of a
// stopping daemon not lost, and underlay messages that say what is wrong.
import test from 'ava';
import { spawn } from 'node:child_process';
import { FAND_BIN, Lab, OVERLAY } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';

/** ISO 8601 with milliseconds and an offset, as the text form prints it: [2025-01-31T12:34:56.789+01:00]. */
const TEXT_LINE = /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): \S/;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * fand run in a host namespace, its stdout a terminal (script(1) gives it a
 * pty) or a pipe; stopped with SIGTERM once up. Returns what it wrote, line by line.
 */
async function runDaemon(lab: Lab, extra: string[], terminal = true): Promise<string[]> {
  const h = lab.hosts[0]!;
  const cmd = ['ip', 'netns', 'exec', h.ns, process.execPath, FAND_BIN, 'run', '--overlay', OVERLAY, '--underlay', 'eth0/16', '--workers', '1', ...extra];
  const child = terminal
    ? spawn('script', ['-qfec', cmd.join(' '), '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    // Up: the control socket answers (a condition, with a generous cap).
    const until = Date.now() + 120_000;
    let pid: number | undefined;
    while (pid === undefined) {
      if (Date.now() > until) throw new Error(`fand not up: ${out}`);
      if (child.exitCode !== null) throw new Error(`fand exited: ${out}`);
      pid = await inNs(h.ns, process.execPath, [FAND_BIN, 'show', '--json'], 20_000)
        .then((r) => (JSON.parse(r.stdout) as { pid: number }).pid, () => undefined);
      if (pid === undefined) await new Promise((r) => setTimeout(r, 200));
    }
    process.kill(pid, 'SIGTERM');
    await exited;
  } finally {
    child.kill('SIGKILL');
  }
  // the pty turns \n into \r\n; colours are on for a terminal
  return out.replace(/\r/g, '').replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((l) => l !== '');
}

test.serial('on a terminal: text lines with local ISO 8601 times, to the last words of the stop', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('logt'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const lines = await runDaemon(lab, []);
  t.true(lines.length > 5, lines.join('\n'));
  for (const l of lines) t.regex(l, TEXT_LINE);
  t.true(lines.some((l) => / INFO: fand is up /.test(`${l} `)), lines.join('\n'));
  t.true(lines.some((l) => l.includes('INFO: received SIGTERM, stopping')), lines.join('\n'));
  // the very last line is written before the process exits (synchronous output)
  t.regex(lines[lines.length - 1]!, /INFO: fand stopped/);
});

test.serial('on a terminal, --log-format json: JSON lines with ISO time', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('logj'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const lines = await runDaemon(lab, ['--log-format', 'json']);
  const records = lines.map((l) => JSON.parse(l) as { time: string; level: number; msg: string });
  for (const r of records) t.regex(r.time, ISO_UTC);
  t.is(records.find((r) => r.msg === 'fand is up')?.level, 30);
  t.regex(records[records.length - 1]!.msg, /^fand stopped/);
});

test.serial('not a terminal: JSON by default; --log-level debug logs every host change and the configuration read', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('logd'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  const quiet = (await runDaemon(lab, [], false)).map((l) => JSON.parse(l) as { time: string; level: number; msg: string });
  for (const r of quiet) t.regex(r.time, ISO_UTC);
  t.regex(quiet[quiet.length - 1]!.msg, /^fand stopped/);
  t.false(quiet.some((l) => l.level === 20), 'debug lines at level info');
  const f = await lab.startFand(h, ['--workers', '1', '--log-level', 'debug'], 120_000);
  const debug = f.logs.filter((l) => l['level'] === 20).map((l) => String(l['msg']));
  t.true(debug.includes('configuration: 1 fan(s) from the command line'), debug.join('\n'));
  // Changes go over rtnetlink where fand knows the request (host/netlink/change.ts), else ip -batch: both are logged.
  const linkAdd = new RegExp(`^(?:rtnetlink|ip -batch): (link add ${h.bridge} (address [0-9a-f:]+ )?type bridge) \\(ok\\)$`);
  t.true(debug.some((m) => linkAdd.test(m)), debug.join('\n'));
  t.true(debug.some((m) => /^(?:rtnetlink|ip -batch): route replace 250\.0\.0\.0\/8 dev ftun-250 src 250\.1\.10\.1 \(ok\)$/.test(m)), debug.join('\n'));
  t.true(debug.some((m) => /^ip -batch: tuntap add mode tun multi_queue vnet_hdr name ftun-250 \(ok\)$/.test(m)), debug.join('\n'));
  t.true(debug.includes('sysctl net.ipv4.ip_forward=1'), debug.join('\n'));
  const batch = f.logs.find((l) => linkAdd.test(String(l['msg'])))!;
  t.deepEqual(batch['commands'], [linkAdd.exec(String(batch['msg']))![1]]);
  t.is(batch['exit'], 0);
  await lab.stopFand(h);
  // teardown commands too
  t.true(f.logs.some((l) => l['level'] === 20 && /^(?:rtnetlink|ip -batch): link del dev /.test(String(l['msg'])) && String(l['msg']).includes(`link del dev ${h.bridge}`)));
});

test.serial('the underlay down, without carrier, or without its address: the message says which, and the fix', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('logu'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  // Direct sends are the userspace dataplane's (auto takes ebpf where the kernel has it).
  const f = await lab.startFand(h, ['--dataplane', 'userspace', '--workers', '1'], 120_000);
  const direct = /^outbound IPIP: direct sends \(AF_PACKET\) to the next hops the kernel has resolved on eth0;/;
  const rawOnly = /^outbound IPIP: every packet through the raw socket/;
  // Each wait starts from a mark taken before the change: fand reacts to rtnetlink events, maybe before the wait begins.
  await lab.waitForLog(h, direct, 60_000, 0);
  let mark = f.logs.length;
  await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'down']);
  const down = await lab.waitForLog(h, rawOnly, 60_000, mark);
  t.is(down['msg'], 'outbound IPIP: every packet through the raw socket, no direct sends: underlay eth0 is down (bring it up: ip link set eth0 up)');
  t.is(down['level'], 40);
  mark = f.logs.length;
  await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
  await lab.waitForLog(h, direct, 60_000, mark);
  // no carrier: the underlay bridge's port of this host goes down
  mark = f.logs.length;
  await run('ip', ['-n', lab.underlayNs, 'link', 'set', 'u1', 'down']);
  const noCarrier = await lab.waitForLog(h, rawOnly, 60_000, mark);
  t.is(noCarrier['msg'], 'outbound IPIP: every packet through the raw socket, no direct sends: underlay eth0 has no carrier (its cable, switch port or veth peer is down)');
  mark = f.logs.length;
  await run('ip', ['-n', lab.underlayNs, 'link', 'set', 'u1', 'up']);
  await lab.waitForLog(h, direct, 60_000, mark);
  mark = f.logs.length;
  await run('ip', ['-n', h.ns, 'addr', 'del', '172.16.1.10/16', 'dev', 'eth0']);
  const noAddr = await lab.waitForLog(h, rawOnly, 60_000, mark);
  t.is(noAddr['msg'], 'outbound IPIP: every packet through the raw socket, no direct sends: underlay eth0 does not have this host\'s underlay address 172.16.1.10 (give it back, or reload fand for the new one)');
  t.false(f.logs.some((l) => /no underlay interface with its address/.test(String(l['msg']))));
});
