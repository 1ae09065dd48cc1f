#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/.
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => { process.stderr.write(`fand: ${e?.stack ?? e}\n`); process.exitCode = 1; },
);
