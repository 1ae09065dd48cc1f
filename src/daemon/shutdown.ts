// Stopping: end what runs (control socket, metrics, DHCP, the dataplane's
// threads), then remove what fand configured on the host, except the fans
// that still have containers attached (retire.ts): those stay, recorded in
// the state file for the next start to adopt and for `fand down` to remove.
// Also the way out of a failed start-up, so a host is never left half set up.
import { rm } from 'node:fs/promises';
import { teardown } from '../host/ensure.js';
import type { Daemon } from './context.js';
import { bridgesOf, describeKept, planRetirement } from './retire.js';
import { removeState, writeState } from './state.js';

export interface StopResult {
  /** Every removal worked. */
  readonly clean: boolean;
  /** Fans left in place for their containers. */
  readonly kept: readonly { bridge: string; ports: readonly string[] }[];
}

export async function shutDown(d: Daemon): Promise<StopResult> {
  d.server?.close();
  await d.metrics?.close();
  await d.dhcp.stop();
  if (d.dataplaneStarted) await d.dp.stop();
  const r = await planRetirement(d.host, d.created, d.created, false);
  const errors = await teardown(d.host, r.remove, (m) => d.log.info(m));
  for (const e of errors) d.log.error(`teardown: ${e}`);
  // A kept fan keeps its leases: its containers keep their addresses, and
  // the next dnsmasq must not hand them out again.
  await d.dhcp.forget(bridgesOf(r.remove));
  if (r.retain.length > 0) {
    await writeState(d.paths.state, { pid: process.pid, created: r.retain, stopped: { at: new Date().toISOString(), kept: r.kept } });
  } else {
    await removeState(d.paths.state);
  }
  await rm(d.paths.socket, { force: true });
  return { clean: errors.length === 0, kept: r.kept };
}

export function stopMessage(s: StopResult, mode: string): string {
  const how = s.clean ? '' : ' with teardown errors (see above)';
  if (s.kept.length === 0) return `fand stopped${how}; everything it created is removed`;
  const kernel = mode === 'userspace'
    ? 'traffic to other hosts stops until fand is back'
    : `the kernel keeps forwarding (${mode})`;
  return `fand stopped${how}; kept for the containers attached: ${describeKept(s.kept)}: `
    + `they keep their addresses and local traffic, ${kernel}; a restart adopts them; \`fand down\` removes them once they are detached`;
}
