// The VXLAN fan on the real Fan kernel: LXD-style reference hosts (a vxlan
// device with the fan map, built with fanmap.py vxlan-add) and fand with
// kernel-fan (its own vxlan device with the map, proven by reading it back)
// and with the userspace VXLAN dataplane, in one fan, in one User-Mode Linux
// guest running linux-fan.uml. The kernel and fanmap.py live in
// ../shared/kernels beside the checkout; without them this test fails,
// saying so: it never skips.
import test from 'ava';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FAN_KERNEL, FANMAP_PY, runInUml } from './uml/harness.js';

const FLEET = fileURLToPath(new URL('./uml/vxlan-fleet.js', import.meta.url));

test('VXLAN fan on the Fan kernel: LXD-style hosts, fand kernel-fan (vxlan fan map) and fand userspace VXLAN share one /8 segment (UML)', async (t) => {
  t.timeout(900_000);
  for (const f of [FAN_KERNEL, FANMAP_PY]) {
    if (!existsSync(f)) {
      t.fail(`${f} is missing: the VXLAN fan tier needs the Fan-patched UML kernel and fanmap.py in ../shared/kernels beside the checkout (see its README)`);
      return;
    }
  }
  const r = await runInUml({ script: FLEET, args: [FANMAP_PY], kernel: FAN_KERNEL, memMb: 1024, timeoutMs: 840_000 });
  const res = (r.result ?? {}) as Record<string, unknown>;
  t.log(`UML: ${r.seconds.toFixed(1)} s from launch to exit; timeline ${JSON.stringify(res['timeline'])}`);
  for (const k of ['evidence', 'kernelFanDevice', 'vniOnWire', 'arp', 'tcpMatrix', 'spoof', 'restore']) t.log(`${k}: ${JSON.stringify(res[k])}`);
  if (!r.ok) t.log(r.console.slice(-8000));
  t.true(r.ok, `VXLAN fleet in UML failed (status ${r.status}${r.timedOut ? ', timed out' : ''}): ${JSON.stringify(res['problems'] ?? r.result)}`);
  t.deepEqual(res['problems'], []);
  const evidence = res['evidence'] as Record<string, { mode: string }> | undefined;
  t.deepEqual(Object.fromEntries(Object.entries(evidence ?? {}).map(([h, e]) => [h, e.mode])), { k: 'kernel-fan', s: 'userspace' });
  const matrix = res['tcpMatrix'] as Record<string, string> | undefined;
  t.is(Object.keys(matrix ?? {}).length, 12, 'every ordered pair of the four hosts');
  t.true(Object.values(matrix ?? {}).every((v) => v === 'identical'), JSON.stringify(matrix));
});
