// The systemd unit: installed by `fand install-service`, verified by systemd's
// own checker, and carrying the ordering and hardening a network daemon needs.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAND_BIN } from '../src/demo/lab.js';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(cmd, args, { timeout: 30_000 }, (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr })));
}

test('install-service writes a unit that systemd-analyze verify accepts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await run(process.execPath, [FAND_BIN, 'install-service', dir]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /installed .*fand\.service/);
  const unit = readFileSync(join(dir, 'fand.service'), 'utf8');
  t.true(unit.includes(`ExecStart=${process.execPath} ${FAND_BIN} run --config /etc/network/fan`));
  t.false(unit.includes('@FAND@'));
  const v = await run('systemd-analyze', ['verify', '--man=no', join(dir, 'fand.service')]);
  t.is(v.code, 0, v.stderr);
  t.is(v.stderr.trim(), '', `systemd-analyze verify complained: ${v.stderr}`);
});

test('the unit is Type=notify, ordered for a network daemon and hardened', (t) => {
  const unit = readFileSync(new URL('../../systemd/fand.service', import.meta.url), 'utf8');
  for (const line of [
    'Type=notify', 'After=network-online.target', 'Wants=network-online.target', 'Restart=on-failure',
    'ExecReload=/bin/kill -HUP $MAINPID', 'RuntimeDirectory=fand', 'NoNewPrivileges=yes', 'ProtectSystem=strict',
    'ProtectHome=yes', 'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET', 'SystemCallArchitectures=native',
    'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_MODULE', 'WatchdogSec=30s',
  ]) t.true(unit.split('\n').includes(line), `missing: ${line}`);
  t.regex(unit, /^Before=.*docker\.service/m);
});
