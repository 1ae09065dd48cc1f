// The ebpf dataplane next to kernel-ipip and userspace hosts on a real
// kernel that has the ipip module (Debian's UML kernel, 6.1: BPF, clsact and
// cls_bpf, the last two loaded by the guest script). test/uml/ebpf.ts is the
// guest side. The Fan kernel of the mixed-fleet tier (linux-fan.uml) has no
// clsact and no cls_bpf, so the ebpf dataplane cannot run there.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { runInUml } from './uml/harness.js';

const EBPF = fileURLToPath(new URL('./uml/ebpf.js', import.meta.url));

test('ebpf, kernel-ipip and userspace hosts share one fan on a real ipip kernel (UML)', async (t) => {
  t.timeout(700_000);
  const r = await runInUml({ script: EBPF, timeoutMs: 600_000 });
  const res = r.result as Record<string, unknown> | undefined;
  t.log(`UML: ${r.seconds.toFixed(1)} s; timeline ${JSON.stringify(res?.['timeline'])}; BPF JIT: ${String(res?.['jit'])}`);
  if (!r.ok) t.log(r.console.slice(-6000));
  t.true(r.ok, `ebpf tier in UML failed: ${JSON.stringify(res?.['problems'] ?? r.result)}`);
  t.deepEqual(res?.['modes'], ['ebpf', 'kernel-ipip', 'userspace']);
  t.deepEqual(res?.['tcp'], { 'ebpf->kernel-ipip': true, 'kernel-ipip->ebpf': true, 'ebpf->userspace': true, 'userspace->ebpf': true });
  t.is(res?.['spoofedDropped'], 3);
  t.false(((res?.['h1QdiscsAfterStop'] ?? ['clsact']) as string[]).includes('clsact'), 'clsact left on the underlay');
});
