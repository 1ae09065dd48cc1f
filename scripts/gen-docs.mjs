#!/usr/bin/env node
// Writes man/man8/fand.8 from fand's table of commands and options
// (src/cli/manpage.ts, compiled to dist/). Run by `npm run build`, `npm test`
// and `npm pack` (prepare), so the page always matches the code.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { fandManPage } = await import(path.join(root, 'dist/src/cli/manpage.js'));
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
mkdirSync(path.join(root, 'man/man8'), { recursive: true });
writeFileSync(path.join(root, 'man/man8/fand.8'), fandManPage(version));
