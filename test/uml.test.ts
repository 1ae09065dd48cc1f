// fand on a real kernel that has the ipip module, booted as User-Mode Linux
// (test/uml/harness.ts): the machine's own kernel may have no ipip at all.
// Needs the Debian packages user-mode-linux and busybox-static; without them
// this test fails (it does not skip) and says what to install.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { runInUml } from './uml/harness.js';

const SMOKE = fileURLToPath(new URL('./uml/smoke.js', import.meta.url));

test('userspace dataplane on a kernel with ipip loaded: ping and 2 MiB of TCP between two hosts (UML)', async (t) => {
  // Caps for a hung guest, not expectations: idle, this takes 20-30 s; on a
  // busy machine the guest (one host process per address space) gets a
  // fraction of a CPU, and inside it the lab waits for conditions with its
  // own patience (PATIENCE_MS per daemon start).
  t.timeout(660_000);
  const r = await runInUml({ script: SMOKE, timeoutMs: 600_000 });
  if (!r.ok) t.log(r.console);
  t.log(`UML: ${r.seconds.toFixed(1)} s from launch to exit; guest uptime at init, node start, node exit: ${JSON.stringify(r.uptime)}`);
  t.true(r.ok, `smoke in UML failed (status ${r.status}${r.timedOut ? ', timed out' : ''}): ${JSON.stringify(r.result)}`);
});

const INTEROP = fileURLToPath(new URL('./uml/interop.js', import.meta.url));

test('kernel-ipip and userspace hosts share one fan on a real ipip kernel (UML)', async (t) => {
  t.timeout(400_000);
  const r = await runInUml({ script: INTEROP, timeoutMs: 360_000 });
  const res = r.result as Record<string, unknown> | undefined;
  t.log(`UML: ${r.seconds.toFixed(1)} s; timeline ${JSON.stringify(res?.['timeline'])}`);
  if (!r.ok) t.log(r.console.slice(-6000));
  t.true(r.ok, `interop in UML failed: ${JSON.stringify(res?.['problems'] ?? r.result)}`);
  // What the guest saw, asserted here too so a failure names it.
  t.regex(String(res?.['plan']), /^dataplane: kernel-ipip/);
  t.regex(String(res?.['fanEvidence']), /^kernel Fan: the kernel created an ipip device but dropped its fan-map 240\.0\.0\.0\/8:192\.0\.2\.0\/24 \(read back: 0 maps\): no kernel Fan patch; \/proc\/sys\/net\/fan\/version absent/);
  t.deepEqual(res?.['tcp'], { kernelToUserspace: true, userspaceToKernel: true });
  t.is(res?.['routesOnKernelHost'], 4093);
  t.is(res?.['routesAfterStop'], 4093, 'a clean stop with containers attached keeps the kernel-ipip fan');
  t.is(res?.['routesAfterDown'], 0);
  t.is(res?.['nexthopsAfterDown'], 0);
  t.is(res?.['tunl0UpAfterDown'], false);
  t.is(res?.['userspaceHostOutDestUnreachs'], 0);
});
