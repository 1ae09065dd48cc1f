#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/, the addon in native/build/.
// Before loading them it checks what a fresh clone or an old Node would
// otherwise turn into a stack trace, and says what to do instead.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  process.stderr.write(`fand: needs Node.js >= 20.19; ${process.execPath} is ${process.version} `
    + '(Debian 12\'s nodejs is 18: install Node 20 or 22 from NodeSource or nodejs.org, see the README)\n');
  process.exit(1);
}
const missing = ['dist/src/cli/main.js', 'native/build/Release/fand_native.node'].filter((f) => !existsSync(root + f));
if (missing.length > 0) {
  process.stderr.write(`fand: this checkout is not built (${missing.join(' and ')} missing): `
    + `run npm ci in ${root} first (it builds the addon and compiles the TypeScript), then run ${root}bin/fand.js\n`);
  process.exit(1);
}

const { main } = await import('../dist/src/cli/main.js');
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => { process.stderr.write(`fand: ${e?.stack ?? e}\n`); process.exitCode = 1; },
);
