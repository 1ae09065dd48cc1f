#!/usr/bin/env node
// Builds native/build/Release/fand_native.node with node-gyp. Run by
// `npm install`. Uses the headers of the running node (nodedir = the prefix
// above bin/node, e.g. /usr for /usr/bin/node -> /usr/include/node) and
// never downloads any.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nodedir = path.resolve(process.execPath, '../..');

function fail(msg) {
  console.error(`fand: cannot build the native addon: ${msg}`);
  process.exit(1);
}

if (!existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) {
  fail(`no Node headers in ${path.join(nodedir, 'include', 'node')} ` +
    `(install the nodejs headers package, e.g. Debian's libnode-dev or nodejs from NodeSource)`);
}

// The node-gyp npm ships: npm sets npm_config_node_gyp when running scripts.
const candidates = [
  process.env.npm_config_node_gyp,
  '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  path.resolve(process.execPath, '../../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
].filter((p) => p && existsSync(p));

const gypArgs = ['rebuild', '--directory=native', `--nodedir=${nodedir}`];
const [cmd, args] = candidates.length > 0
  ? [process.execPath, [candidates[0], ...gypArgs]]
  : ['node-gyp', gypArgs];

console.log(`fand: ${cmd} ${args.join(' ')}`);
const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
if (r.error) {
  fail(r.error.code === 'ENOENT'
    ? 'node-gyp not found (not provided by npm and not on PATH); install it with `npm i -g node-gyp`'
    : String(r.error));
}
if (r.status !== 0) {
  fail(`node-gyp exited with ${r.signal ?? r.status}; needs a C compiler, make and python3 (Debian: apt install build-essential python3)`);
}
const out = path.join(root, 'native', 'build', 'Release', 'fand_native.node');
if (!existsSync(out)) fail(`node-gyp succeeded but ${out} is missing`);
console.log(`fand: built ${path.relative(root, out)}`);
