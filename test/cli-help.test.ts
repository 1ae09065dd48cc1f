// First contact with the CLI: help that lists every command, per-command
// help with every option, --version, mistakes explained in fand's words
// (never Node's parseArgs text), and the privilege check up front.
import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { FAND_BIN } from '../src/demo/lab.js';
import { OPTIONS, VERBS, optionsOf } from '../src/cli/options.js';
import { closest } from '../src/cli/args.js';
import { effectiveCaps, missingCaps } from '../src/cli/privileges.js';
import { DATAPLANE_MODES } from '../src/dataplane/dataplane.js';
import { fand } from './helpers/fand-cli.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** What Node's util.parseArgs says about a bad option: fand must never show it. */
const NODE_TEXT = /positional argument|ERR_PARSE_ARGS|TypeError|place it at the end|argument is ambiguous/;

for (const argv of [['--help'], ['-h'], ['help']]) {
  test(`fand ${argv.join(' ')} lists every command with one line each`, async (t) => {
    const r = await fand(argv);
    t.is(r.code, 0, r.stderr);
    for (const v of VERBS) {
      const line = r.stdout.split('\n').find((l) => new RegExp(`^  ${v.name} +\\S`).test(l));
      t.truthy(line, `no line for ${v.name} in:\n${r.stdout}`);
      t.true(line!.includes(v.summary.slice(0, 20)), line);
    }
    t.regex(r.stdout, /--version/);
  });
}

test('fand COMMAND --help and fand help COMMAND show its usage and every option it takes', async (t) => {
  for (const v of VERBS) {
    for (const argv of [[v.name, '--help'], ['help', v.name]]) {
      const r = await fand(argv);
      t.is(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
      t.true(r.stdout.startsWith(`usage: fand ${v.usage[0]}`), `${argv.join(' ')}:\n${r.stdout}`);
      for (const o of optionsOf(v.name)) t.regex(r.stdout, new RegExp(`--${o.name}\\b`), `${argv.join(' ')} lacks --${o.name}`);
    }
  }
  // run's help names every dataplane mode
  const run = await fand(['run', '--help']);
  for (const m of DATAPLANE_MODES) t.true(run.stdout.includes(m), m);
});

test('fand --version, fand -V and fand version print the package version', async (t) => {
  for (const argv of [['--version'], ['-V'], ['version'], ['plan', '--version']]) {
    const r = await fand(argv);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `fand ${VERSION}\n`);
  }
});

const mistakes: [string, string[], RegExp, string][] = [
  ['a misspelt option', ['--overlya', '250.0.0.0/8', '--underlay', 'eth0/16'], /^fand: unknown option '--overlya' \(did you mean --overlay\?\)$/m, 'run'],
  ['a misspelt option after a command', ['plan', '--dataplan', 'userspace'], /^fand: unknown option '--dataplan' \(did you mean --dataplane\?\)$/m, 'plan'],
  ['an unknown short option', ['plan', '-x'], /^fand: unknown option '-x'$/m, 'plan'],
  ['a missing value at the end', ['plan', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16', '--bridge'], /^fand: --bridge needs a value: --bridge NAME$/m, 'plan'],
  ['a missing value before the next option', ['run', '--bridge', '--dhcp'], /^fand: --bridge needs a value: --bridge NAME$/m, 'run'],
  ['an empty value', ['run', '--config='], /^fand: --config needs a value: --config FILE$/m, 'run'],
  ['a value for a flag', ['run', '--dhcp=yes'], /^fand: --dhcp takes no value \(got --dhcp=yes\)$/m, 'run'],
  ['a value not among the choices', ['run', '--dataplane', 'fast'], /^fand: --dataplane fast: must be one of auto, kernel-fan, ebpf, kernel-ipip, userspace$/m, 'run'],
  ['a number out of range', ['plan', '--mtu', '100'], /^fand: --mtu 100: must be between 576 and 65515$/m, 'plan'],
  ['an option given twice', ['run', '--bridge', 'a', '--bridge', 'b'], /^fand: --bridge given twice \(a and b\); give it once$/m, 'run'],
  ['an option of another command', ['map', '--dhcp', '--overlay', '250.0.0.0/8'], /^fand: option '--dhcp' is not an option of 'map' \(it is one of: run, plan, integrate\)$/m, 'map'],
  ['a stray argument', ['run', 'now'], /^fand: 'run' takes no argument, but 'now' was given$/m, 'run'],
  ['a missing argument', ['integrate'], /^fand: 'integrate' needs KIND \(docker, lxd, cni\)$/m, 'integrate'],
  ['an unknown argument', ['integrate', 'podman'], /^fand: integrate: unknown kind 'podman' \(kinds: docker, lxd, cni\)$/m, 'integrate'],
];
for (const [name, argv, message, verb] of mistakes) {
  test(`${name} is explained in fand's words with the usage (exit 2)`, async (t) => {
    const r = await fand(argv);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
    t.notRegex(r.stderr, NODE_TEXT);
    t.true(r.stderr.includes(`usage: fand ${VERBS.find((v) => v.name === verb)!.usage[0]}`), r.stderr);
    t.true(r.stderr.includes(`'fand ${verb} --help' lists its options.`), r.stderr);
    t.is(r.stdout, '');
  });
}

test('an unknown command is named, with the nearest command and the list', async (t) => {
  const r = await fand(['pln']);
  t.is(r.code, 2);
  t.regex(r.stderr, /^fand: unknown command 'pln' \(did you mean 'plan'\?\); 'fand help' lists the commands \(run, plan, /m);
  const far = await fand(['frobnicate']);
  t.regex(far.stderr, /^fand: unknown command 'frobnicate'; 'fand help'/m);
});

test('did-you-mean: close names only', (t) => {
  const names = OPTIONS.map((o) => o.name);
  t.is(closest('overlya', names), 'overlay');
  t.is(closest('dataplan', names), 'dataplane');
  t.is(closest('no-nta', names), 'no-nat');
  t.is(closest('log', names), 'log-level');
  t.is(closest('zzzzzz', names), undefined);
});

// ------------------------------------------------------------ privileges

test('effective capabilities from /proc status text', (t) => {
  t.is(effectiveCaps('Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n'), 0x1ffffffffffn);
  t.is(effectiveCaps('Name:\tnode\n'), undefined);
  const all = 0x1ffffffffffn;
  const noRaw = all & ~(1n << 13n);
  t.deepEqual(missingCaps(['CAP_NET_ADMIN', 'CAP_NET_RAW'], all, 0), []);
  t.deepEqual(missingCaps(['CAP_NET_ADMIN', 'CAP_NET_RAW'], noRaw, 0), ['CAP_NET_RAW']);
  t.deepEqual(missingCaps(['CAP_NET_ADMIN', 'CAP_NET_RAW'], 0n, 65534), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  // root owns fand's files: uid 0 reaches the control socket without CAP_DAC_OVERRIDE
  t.deepEqual(missingCaps(['CAP_DAC_OVERRIDE'], 0n, 0), []);
  t.deepEqual(missingCaps(['CAP_DAC_OVERRIDE'], 0n, 65534), ['CAP_DAC_OVERRIDE']);
});

/** Runs fand through setpriv (util-linux): as nobody, or as root without some capabilities. */
function fandAs(setpriv: string[], args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('setpriv', [...setpriv, '--', process.execPath, FAND_BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
/** Root, with CAP_NET_RAW out of the bounding set (so exec cannot grant it). */
const ROOT_NO_NET_RAW = ['--bounding-set=-net_raw', '--inh-caps=-net_raw'];

test('run, show and demo as nobody: fand must run as root, and which capabilities are missing (exit 4)', async (t) => {
  const run = await fandAs(NOBODY, ['run', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16']);
  t.is(run.code, 4, run.stderr);
  t.regex(run.stderr, /^fand: fand must run as root \(CAP_NET_ADMIN, CAP_NET_RAW\): .*this process \(uid 65534\) lacks CAP_NET_ADMIN, CAP_NET_RAW/);
  t.notRegex(run.stderr, /EACCES|lstat|state\.json/);
  const implied = await fandAs(NOBODY, ['--overlay', '250.0.0.0/8', '--underlay', 'eth0/16']);
  t.is(implied.code, 4, implied.stderr);
  const show = await fandAs(NOBODY, ['show']);
  t.is(show.code, 4, show.stderr);
  t.regex(show.stderr, /must run as root.*permission denied/);
  const demo = await fandAs(NOBODY, ['demo']);
  t.is(demo.code, 4, demo.stderr);
  t.regex(demo.stderr, /lacks CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN/);
  // what needs no root still works
  const plan = await fandAs(NOBODY, ['map', '--overlay', '250.0.0.0/8', '--underlay', '172.16.0.0/16', '250.1.2.3']);
  t.is(plan.code, 0, plan.stderr);
  const help = await fandAs(NOBODY, ['run', '--help']);
  t.is(help.code, 0, help.stderr);
});

test('root without CAP_NET_RAW: the check reads capabilities, not the uid, and names the missing one', async (t) => {
  const r = await fandAs(ROOT_NO_NET_RAW, ['run', '--overlay', '250.0.0.0/8', '--underlay', 'eth0/16']);
  t.is(r.code, 4, r.stderr);
  t.regex(r.stderr, /fand must run as root \(CAP_NET_ADMIN, CAP_NET_RAW\): .*this process \(uid 0\) lacks CAP_NET_RAW\./);
});

test('bin/fand.js in a clone where npm ci has not run says so, instead of a stack trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-clone-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(FAND_BIN, join(dir, 'bin', 'fand.js'));
  copyFileSync(new URL('../../package.json', import.meta.url), join(dir, 'package.json'));
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => execFile(process.execPath, [join(dir, 'bin', 'fand.js'), '--help'], { timeout: 60_000 },
    (e, _o, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stderr })));
  t.is(r.code, 1);
  t.is(r.stderr, `fand: this checkout is not built (dist/src/cli/main.js and native/build/Release/fand_native.node missing): `
    + `run npm ci in ${dir}/ first (it builds the addon and compiles the TypeScript), then run ${dir}/bin/fand.js\n`);
});

test('bin/fand.js on a Node older than 20.19 names the version and where to get a newer one', async (t) => {
  // Node 18 as Debian 12 ships it, seen by the launcher: process.version(s) replaced before it runs.
  const dir = mkdtempSync(join(tmpdir(), 'fand-oldnode-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const preload = join(dir, 'node18.mjs');
  writeFileSync(preload, "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '18.19.0' } });\n"
    + "Object.defineProperty(process, 'version', { value: 'v18.19.0' });\n");
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => execFile(process.execPath, ['--import', preload, FAND_BIN, '--version'], { timeout: 60_000 },
    (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr })));
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.is(r.stderr, `fand: needs Node.js >= 20.19; ${process.execPath} is v18.19.0 (Debian 12's nodejs is 18: `
    + 'install Node 20 or 22 from NodeSource or nodejs.org, see the README)\n');
});
