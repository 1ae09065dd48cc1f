// The man pages: they render without a warning from groff or man, fand(8)
// has every command and every option the help texts show, and npm installs
// both (package.json "man").
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VERBS } from '../src/cli/options.js';
import { fandManPage } from '../src/cli/manpage.js';
import { fand } from './helpers/fand-cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGES = [`${ROOT}man/man8/fand.8`, `${ROOT}man/man5/fand.conf.5`];
const PKG = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string; man: string[]; files: string[] };

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 16 << 20, timeout: 60_000 },
    (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr })));
}

/** The page as man shows it, 80 columns, without overstriking. */
async function rendered(page: string): Promise<string> {
  const r = await run('man', ['-l', page], { MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat', MAN_KEEP_FORMATTING: '' });
  if (r.code !== 0) throw new Error(`man -l ${page}: ${r.stderr}`);
  return r.stdout.replace(/.\x08/g, '');
}

for (const page of PAGES) {
  test(`${page.slice(ROOT.length)} renders without warnings (groff -ww, man --warnings)`, async (t) => {
    t.true(existsSync(page), `${page} missing: npm run build writes fand.8`);
    const g = await run('groff', ['-ww', '-man', '-z', page]);
    t.is(g.code, 0, g.stderr);
    t.is(g.stderr, '', `groff: ${g.stderr}`);
    const m = await run('man', ['--warnings', '-l', page], { MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' });
    t.is(m.code, 0, m.stderr);
    t.is(m.stderr, '', `man: ${m.stderr}`);
    t.regex(m.stdout, /NAME/);
  });
}

test('fand.8 is the page the code renders (npm run build keeps it in step with the option table)', (t) => {
  t.is(readFileSync(PAGES[0]!, 'utf8'), fandManPage(PKG.version));
});

test('fand(8) has every command and every option that the help texts show', async (t) => {
  const text = await rendered(PAGES[0]!);
  const commands = text.slice(text.indexOf('\nCOMMANDS\n'), text.indexOf('\nOPTIONS\n'));
  const options = text.slice(text.indexOf('\nOPTIONS\n'), text.indexOf('\nUNDERLAY\n'));
  t.true(commands.length > 0 && options.length > 0, text);
  const helps = [(await fand(['--help'])).stdout];
  for (const v of VERBS) {
    t.regex(commands, new RegExp(`^ {7}${v.name}\\b`, 'm'), `fand.8 COMMANDS lacks ${v.name}`);
    helps.push((await fand([v.name, '--help'])).stdout);
  }
  // the options the help texts list: lines "  [-x, ]--name ..."
  const inHelp = new Set(helps.flatMap((h) => [...h.matchAll(/^ {2}(?:-[a-zA-Z], )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]!)));
  t.true(inHelp.size >= 20, [...inHelp].join(' '));
  for (const o of inHelp) t.regex(options, new RegExp(`^ {7}(-[a-zA-Z], )?${o}\\b`, 'm'), `fand.8 OPTIONS lacks ${o}`);
  for (const section of ['SYNOPSIS', 'DESCRIPTION', 'FILES', 'SIGNALS', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO']) t.regex(text, new RegExp(`^${section}$`, 'm'));
  t.regex(text, new RegExp(`fand ${PKG.version.replace(/\./g, '\\.')}`));
});

test('npm installs both pages (package.json "man" and "files")', (t) => {
  t.deepEqual(PKG.man, ['./man/man8/fand.8', './man/man5/fand.conf.5']);
  t.true(PKG.files.includes('man'));
});
