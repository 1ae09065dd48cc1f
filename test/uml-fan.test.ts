// The mixed fleet on the real Fan kernel: reference Ubuntu hosts and fand in
// every mode, in one User-Mode Linux guest running linux-fan.uml (Linux 6.1
// with Ubuntu's Fan patch; ../shared/kernels/README.md). The kernel and the
// reference client fanmap.py live in ../shared/kernels beside the checkout;
// without them this test fails, saying so: it never skips.
import test from 'ava';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FAN_KERNEL, FANMAP_PY, runInUml } from './uml/harness.js';

const FLEET = fileURLToPath(new URL('./uml/fleet.js', import.meta.url));

test('mixed fleet on the Fan kernel: Ubuntu hosts, fand auto (kernel-fan), userspace and kernel-ipip share two fans (UML)', async (t) => {
  t.timeout(900_000);
  for (const f of [FAN_KERNEL, FANMAP_PY]) {
    if (!existsSync(f)) {
      t.fail(`${f} is missing: the mixed-fleet tier needs the Fan-patched UML kernel and fanmap.py in ../shared/kernels beside the checkout (see its README)`);
      return;
    }
  }
  const r = await runInUml({ script: FLEET, args: [FANMAP_PY], kernel: FAN_KERNEL, memMb: 1024, timeoutMs: 840_000 });
  const res = (r.result ?? {}) as Record<string, unknown>;
  t.log(`UML: ${r.seconds.toFixed(1)} s from launch to exit; timeline ${JSON.stringify(res['timeline'])}`);
  for (const k of ['evidence', 'tcpMatrix', 'ecnOnWire', 'pmtu', 'spoof', 'restore', 'migration']) t.log(`${k}: ${JSON.stringify(res[k])}`);
  if (!r.ok) t.log(r.console.slice(-8000));
  t.true(r.ok, `fleet in UML failed (status ${r.status}${r.timedOut ? ', timed out' : ''}): ${JSON.stringify(res['problems'] ?? r.result)}`);
  t.deepEqual(res['problems'], []);
  // What the guest saw, asserted here too so a failure names it.
  const evidence = res['evidence'] as Record<string, { mode: string }> | undefined;
  t.deepEqual(Object.fromEntries(Object.entries(evidence ?? {}).map(([h, e]) => [h, e.mode])), { k: 'kernel-fan', s: 'userspace', i: 'kernel-ipip' });
  const matrix = res['tcpMatrix'] as Record<string, string> | undefined;
  const modes = ['ubuntu', 'kernel-fan', 'userspace', 'kernel-ipip'];
  for (const a of modes) {
    for (const b of modes) {
      if (a === b) continue;
      t.is(matrix?.[`${a} -> ${b} (beta)`], 'identical', `TCP ${a} -> ${b} on 100.64.0.0/10`);
    }
  }
});
