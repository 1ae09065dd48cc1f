// Bash completion: `fand completion bash` sourced in a real bash, asked what
// it completes for partial command lines (COMP_WORDS as bash splits them,
// '=' included), inside a namespace for interface names.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAND_BIN, Lab } from '../src/demo/lab.js';
import { run } from '../src/demo/exec.js';
import { VERBS, optionsOf } from '../src/cli/options.js';
import { DATAPLANE_MODES } from '../src/dataplane/dataplane.js';
import { INTEGRATIONS } from '../src/integrate/index.js';

/** Single-quoted for bash. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * What bash's completion of fand offers for `words` (the last is the word
 * being completed), one per line, sorted. Runs bash in `ns` when given.
 */
function complete(words: string[], ns?: string): Promise<string[]> {
  const script = [
    `source <(${q(process.execPath)} ${q(FAND_BIN)} completion bash) || exit 3`,
    'complete -p fand >/dev/null || exit 4',
    `COMP_WORDS=(${words.map(q).join(' ')})`,
    `COMP_CWORD=${words.length - 1}`,
    `COMP_LINE=${q(words.join(' '))}`,
    'COMP_POINT=${#COMP_LINE}',
    '_fand fand "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const [cmd, args] = ns ? ['ip', ['netns', 'exec', ns, 'bash', '-c', script]] : ['bash', ['-c', script]];
  return new Promise((resolve, reject) => execFile(cmd as string, args as string[], { timeout: 60_000 }, (e, stdout, stderr) =>
    (e ? reject(new Error(`bash: ${e.message} ${stderr}`)) : resolve(stdout.split('\n').filter((l) => l !== '').sort()))));
}

const sorted = (xs: readonly string[]) => [...xs].sort();

test('the verbs, for the first word', async (t) => {
  t.deepEqual(await complete(['fand', '']), sorted(VERBS.map((v) => v.name)));
  t.deepEqual(await complete(['fand', 'pl']), ['plan']);
  t.deepEqual(await complete(['fand', 'in']), ['install-service', 'integrate']);
});

test('each verb\'s own options, from the option table', async (t) => {
  for (const v of VERBS) {
    t.deepEqual(await complete(['fand', v.name, '--']), sorted(optionsOf(v.name).map((o) => `--${o.name}`)), v.name);
  }
  t.deepEqual(await complete(['fand', 'plan', '--d']), ['--dataplane', '--dhcp']);
  t.deepEqual(await complete(['fand', 'map', '--d']), [], 'map takes neither --dhcp nor --dataplane');
  // no verb yet: run's options (run is the default command)
  t.deepEqual(await complete(['fand', '--no-']), ['--no-direct-send', '--no-nat', '--no-port-redirect', '--no-source-check']);
});

test('option values: the choices of --dataplane, --log-level, --log-format', async (t) => {
  t.deepEqual(await complete(['fand', 'run', '--dataplane', '']), sorted(['auto', ...DATAPLANE_MODES]));
  t.deepEqual(await complete(['fand', '--dataplane', 'k']), ['kernel-fan', 'kernel-ipip']);
  t.deepEqual(await complete(['fand', 'plan', '--log-format', '']), ['json', 'text']);
  t.deepEqual(await complete(['fand', '--log-level', 'de']), ['debug']);
  // --dataplane=us: bash splits at '='
  t.deepEqual(await complete(['fand', '--dataplane', '=', 'us']), ['userspace']);
  t.deepEqual(await complete(['fand', '--dataplane', '=']), sorted(['auto', ...DATAPLANE_MODES]));
});

test('verb arguments: integrate kinds, completion shells, help topics', async (t) => {
  t.deepEqual(await complete(['fand', 'integrate', '']), sorted(INTEGRATIONS));
  t.deepEqual(await complete(['fand', 'completion', '']), ['bash']);
  t.deepEqual(await complete(['fand', 'help', 'i']), ['install-service', 'integrate']);
  // option values are skipped when finding the verb
  t.deepEqual(await complete(['fand', '--overlay', '250.0.0.0/8', 'pl']), ['plan']);
  t.deepEqual(await complete(['fand', '--dataplane=userspace', 'pl']), ['plan']);
});

test('--config completes files, --runtime-dir directories', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-compl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'fans.d'));
  writeFileSync(join(dir, 'fans'), '');
  t.deepEqual(await complete(['fand', '--config', join(dir, 'fa')]), [join(dir, 'fans'), join(dir, 'fans.d')]);
  t.deepEqual(await complete(['fand', 'show', '--runtime-dir', join(dir, 'fa')]), [join(dir, 'fans.d')]);
});

test('--underlay completes the interfaces of the network namespace it runs in, and default', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('compl'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  await run('ip', ['-n', h.ns, 'link', 'add', 'under9', 'type', 'veth', 'peer', 'name', 'under8']);
  t.deepEqual(await complete(['fand', 'run', '--underlay', ''], h.ns), ['default', 'eth0', 'lo', 'under8', 'under9']);
  t.deepEqual(await complete(['fand', 'plan', '--underlay', 'und'], h.ns), ['under8', 'under9']);
});
