#!/usr/bin/env node
// Passes ava's TAP output through and ends with the line CI reads:
// "N passed, N failed". Exits non-zero when anything failed, when nothing
// ran, or when the TAP stream was cut short (a crashed test process).
import { createInterface } from 'node:readline';

let passed = 0, failed = 0, skipped = 0, bailed = false, plan = -1;
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  process.stdout.write(line + '\n');
  if (/^ok \d+/.test(line)) { if (/# SKIP/i.test(line)) skipped++; else passed++; }
  else if (/^not ok \d+/.test(line)) { if (/# TODO/i.test(line)) skipped++; else failed++; }
  else if (/^Bail out!/.test(line)) bailed = true;
  else { const m = /^1\.\.(\d+)/.exec(line); if (m) plan = Number(m[1]); }
});
rl.on('close', () => {
  const ran = passed + failed + skipped;
  const truncated = plan >= 0 && ran < plan;
  if (bailed || truncated || plan < 0) failed += Math.max(1, plan - ran);
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exit(failed > 0 || passed === 0 ? 1 : 0);
});
