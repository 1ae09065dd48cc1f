// The systemd unit, as an operator gets it: fand installed with npm from its
// package, `fand install-service` writing the unit and the bash completion,
// systemd's own checker accepting the unit (its Documentation= included), the
// unit's ExecStart running with the sandbox's hidden directories really
// hidden, and a checkout the sandbox would hide refused with the fix.
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAND_BIN } from '../src/demo/lab.js';
import { COMPLETION_PATH, UNIT_CAPABILITIES, UNIT_PATH, checkReachable, hiddenBy, hiddenDirs, unitText } from '../src/cli/install-service.js';
import { bashCompletion } from '../src/cli/completion.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The directories ProtectHome=yes and PrivateTmp=yes hide from a service. */
const HIDDEN = ['/home', '/root', '/run/user', '/tmp', '/var/tmp'];

interface Result { code: number; stdout: string; stderr: string }
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): Promise<Result> {
  return new Promise((resolve) => execFile(cmd, args, { timeout, env: { ...process.env, ...env }, maxBuffer: 16 << 20 },
    (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr })));
}

/** `systemd-analyze verify` of a unit file, man(1) looking only in `manpath`: exit status and complaints. */
function verify(unit: string, manpath: string): Promise<Result> {
  return run('systemd-analyze', ['verify', unit], { MANPATH: manpath });
}

/** Runs argv in a mount namespace where the sandbox's hidden directories are empty tmpfs, as systemd makes them. */
function inSandbox(argv: string[]): Promise<Result> {
  const hide = HIDDEN.map((d) => `if [ -d ${d} ]; then mount -t tmpfs tmpfs ${d} || exit 99; fi`).join('; ');
  return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${hide}; exec "$@"`, 'sandbox', ...argv]);
}

function execStart(unit: string): string[] {
  const line = unit.split('\n').find((l) => l.startsWith('ExecStart='));
  return line!.slice('ExecStart='.length).split(' ');
}

test('the unit is Type=notify, ordered for a network daemon, hardened, and documented by installed pages', async (t) => {
  const unit = await unitText();
  for (const line of [
    'Type=notify', 'After=network-online.target', 'Wants=network-online.target', 'Restart=on-failure',
    'ExecReload=/bin/kill -HUP $MAINPID', 'RuntimeDirectory=fand', 'NoNewPrivileges=yes', 'ProtectSystem=strict',
    'ProtectHome=yes', 'PrivateTmp=yes', 'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET', 'SystemCallArchitectures=native',
    `CapabilityBoundingSet=${UNIT_CAPABILITIES.join(' ')}`, `AmbientCapabilities=${UNIT_CAPABILITIES.join(' ')}`, 'WatchdogSec=30s',
    'Documentation=man:fand(8) man:fand.conf(5)',
  ]) t.true(unit.split('\n').includes(line), `missing: ${line}`);
  t.deepEqual([...UNIT_CAPABILITIES].slice(0, 3), ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_MODULE']);
  t.regex(unit, /^Before=.*docker\.service/m);
  t.notRegex(unit, /@[A-Z]+@/);
  t.deepEqual(hiddenDirs(unit).map((h) => h.dir), HIDDEN);
});

test('paths under /root, /home, /run/user, /tmp and /var/tmp are the ones refused', (t) => {
  const hidden = hiddenDirs('ProtectHome=yes\nPrivateTmp=yes\n');
  for (const p of ['/root/fand/bin/fand.js', '/home/op/src/fand/bin/fand.js', '/run/user/0/fand/bin/fand.js', '/tmp/fand/bin/fand.js', '/var/tmp/x', '/root']) {
    t.truthy(hiddenBy(p, hidden), p);
  }
  for (const p of ['/usr/local/lib/node_modules/fand/bin/fand.js', '/opt/fand/bin/fand.js', '/rootfs/fand', '/homeland/x', '/usr/bin/node']) {
    t.is(hiddenBy(p, hidden), undefined, p);
  }
  t.deepEqual(hiddenDirs('ProtectHome=no\nPrivateTmp=no\n'), []);
  t.throws(() => checkReachable('ProtectHome=yes\n', '/root/.nvm/versions/node/v20.19.0/bin/node', '/usr/local/lib/node_modules/fand/bin/fand.js'),
    { message: /node \(\/root\/\.nvm\/versions\/node\/v20\.19\.0\/bin\/node\) is under \/root, which the unit's ProtectHome=yes hides from the service: install Node\.js system-wide/ });
});

/**
 * This checkout's fand, or, when the checkout itself lies where the unit's
 * sandbox hides it (a clone under /root, /home or /tmp: refused, see the tests
 * above), a copy of its runnable parts under `dir` (not hidden), so the test
 * checks the same install wherever the suite is run from.
 */
async function visibleCheckout(dir: string): Promise<string> {
  if (!hiddenBy(realpathSync(FAND_BIN), hiddenDirs(await unitText()))) return FAND_BIN;
  const copy = join(dir, 'checkout');
  mkdirSync(copy);
  for (const part of ['package.json', 'bin', 'dist', 'man', 'node_modules', 'systemd', 'bpf', 'native/build/Release']) {
    mkdirSync(dirname(join(copy, part)), { recursive: true });
    cpSync(join(ROOT, part), join(copy, part), { recursive: true, verbatimSymlinks: true });
  }
  return join(copy, 'bin', 'fand.js');
}

test('install-service from this checkout: unit and completion written, and systemd-analyze verify accepts the unit only with fand(8) installed', async (t) => {
  const root = mkdtempSync(join('/var/lib', 'fand-unit-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const bin = await visibleCheckout(root);
  const r = await run(process.execPath, [bin, 'install-service', '--root', root]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^installed ${root}/etc/systemd/system/fand\\.service`, 'm'));
  const unitFile = join(root, UNIT_PATH);
  const unit = readFileSync(unitFile, 'utf8');
  t.deepEqual(execStart(unit), [realpathSync(process.execPath), realpathSync(bin), 'run', '--config', '/etc/network/fan']);
  t.is(readFileSync(join(root, COMPLETION_PATH), 'utf8'), bashCompletion());
  // systemd's checker runs `man fand.8` for Documentation=: with the checkout's pages it passes ...
  const ok = await verify(unitFile, join(ROOT, 'man'));
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stderr.trim(), '', `systemd-analyze verify complained: ${ok.stderr}`);
  // ... and without them it fails: the test would catch a page that is not installed.
  const empty = join(root, 'no-man');
  mkdirSync(empty);
  const bad = await verify(unitFile, empty);
  t.not(bad.code, 0, 'verify passed without the man page');
  t.regex(bad.stderr, /man fand\(8\)/);
  // the checkout (not under a hidden directory) runs in the sandbox
  const v = await inSandbox([...execStart(unit).slice(0, 2), '--version']);
  t.is(v.code, 0, v.stderr);
  t.is(v.stdout, `fand ${VERSION}\n`);
});

test('npm install -g from the package: fand, its man pages, and a unit the sandbox can run', async (t) => {
  // Not under /tmp: the sandbox hides it, which is the point of the test.
  const work = mkdtempSync(join('/var/lib', 'fand-npm-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work, ROOT], {}, 300_000);
  t.is(pack.code, 0, pack.stderr);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
  const prefix = join(work, 'prefix');
  // The package's install script builds the addon, as it would on the operator's host.
  const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball)], {}, 300_000);
  t.is(inst.code, 0, `${inst.stdout}\n${inst.stderr}`);
  const fandBin = join(prefix, 'bin', 'fand');
  const ver = await run(fandBin, ['--version']);
  t.is(ver.stdout, `fand ${VERSION}\n`, ver.stderr);
  for (const page of ['man8/fand.8', 'man5/fand.conf.5']) t.true(existsSync(join(prefix, 'share', 'man', page)), `npm did not install ${page}`);
  const man = await run('man', ['-w', 'fand.8'], { MANPATH: join(prefix, 'share', 'man') });
  t.is(man.code, 0, man.stderr);

  const root = join(work, 'root');
  const r = await run(fandBin, ['install-service', '--root', root]);
  t.is(r.code, 0, r.stderr);
  const unitFile = join(root, UNIT_PATH);
  const unit = readFileSync(unitFile, 'utf8');
  const [node, bin] = execStart(unit);
  t.is(bin, join(realpathSync(prefix), 'lib', 'node_modules', 'fand', 'bin', 'fand.js'));
  t.is(node, realpathSync(process.execPath));
  const ok = await verify(unitFile, join(prefix, 'share', 'man'));
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stderr.trim(), '', `systemd-analyze verify complained: ${ok.stderr}`);
  const v = await inSandbox([node!, bin!, '--version']);
  t.is(v.code, 0, v.stderr);
  t.is(v.stdout, `fand ${VERSION}\n`);
  const help = await inSandbox([node!, bin!, 'run', '--help']);
  t.is(help.code, 0, help.stderr);
});

/** install-service run from a copy of this checkout that appears under `place` (bind mount in a private mount namespace). */
async function installFrom(place: string, setup: string, out: string): Promise<Result> {
  const script = `${setup}; mkdir -p ${place} && mount --bind ${ROOT} ${place} && exec ${process.execPath} ${place}/bin/fand.js install-service --root ${out}`;
  return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]);
}

test('install-service refuses a fand the sandbox would hide (/home, /root, /tmp), says why and how, and writes nothing', async (t) => {
  const out = mkdtempSync(join('/var/lib', 'fand-refused-'));
  const tmpPlace = mkdtempSync(join(tmpdir(), 'fand-checkout-'));
  t.teardown(() => { rmSync(out, { recursive: true, force: true }); rmSync(tmpPlace, { recursive: true, force: true }); });
  const cases: [string, string, string][] = [
    ['/home/op/src/fand', 'mount -t tmpfs tmpfs /home', 'ProtectHome=yes'],
    ['/root/fand', 'mount -t tmpfs tmpfs /root', 'ProtectHome=yes'],
    [tmpPlace, 'true', 'PrivateTmp=yes'],
  ];
  for (const [place, setup, by] of cases) {
    const r = await installFrom(place, setup, out);
    t.is(r.code, 1, `${place}: ${r.stdout} ${r.stderr}`);
    const top = `/${place.split('/')[1]}`;
    t.true(r.stderr.includes(`fand (${place}/bin/fand.js) is under ${top}, which the unit's ${by} hides from the service`), r.stderr);
    t.regex(r.stderr, /npm pack && npm install -g \.\/fand-\*\.tgz && "\$\(npm prefix -g\)\/bin\/fand" install-service/);
    t.regex(r.stderr, /nothing was installed/);
  }
  t.deepEqual(readdirSync(out), [], 'a refused install wrote files');
});

test('install-service refuses a node the sandbox would hide (nvm under /root)', async (t) => {
  const out = mkdtempSync(join('/var/lib', 'fand-refused-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const node = '/root/.nvm/versions/node/v20/bin/node';
  const script = `mount -t tmpfs tmpfs /root && mkdir -p ${node.replace(/\/node$/, '')} && touch ${node} && mount --bind ${process.execPath} ${node}`
    + ` && exec ${node} ${FAND_BIN} install-service --root ${out}`;
  const r = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]);
  t.is(r.code, 1, r.stderr);
  t.true(r.stderr.includes(`node (${node}) is under /root, which the unit's ProtectHome=yes hides from the service`), r.stderr);
  t.deepEqual(readdirSync(out), []);
});
