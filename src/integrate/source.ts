// Which fans `fand integrate` describes. A container engine must match the
// daemon that actually runs on the host, not options the operator may have
// typed differently (a forgotten --host-reserve hands Docker the host's own
// addresses). So: the running daemon's fans when one answers on this
// namespace's control socket; the configuration otherwise, with a note; and
// when both exist and differ, the running daemon's, with the differences
// named.
import type { FanSummary } from '../plan.js';

const COMPARED: readonly (keyof FanSummary)[] = ['bridge', 'slice', 'bridgeAddress', 'subnet', 'encapsulation', 'vni', 'port', 'mtu', 'hostReserve', 'containers', 'dhcp'];

/** The fields of a `fand show` reply's fan that make a FanSummary (the reply adds counters). */
export function summaryOf(f: Record<string, unknown>): FanSummary {
  const keys: (keyof FanSummary)[] = ['overlay', 'underlay', 'iface', 'slice', 'bridge', 'bridgeAddress', 'subnet', 'encapsulation', 'vni', 'port', 'tun', 'mtu', 'hostReserve', 'containers', 'dhcp', 'source'];
  return Object.fromEntries(keys.filter((k) => f[k] !== undefined).map((k) => [k, f[k]])) as unknown as FanSummary;
}

/** Where the configuration's fans differ from the running daemon's, one line each (same overlay). */
export function differences(running: readonly FanSummary[], configured: readonly FanSummary[]): string[] {
  const out: string[] = [];
  for (const c of configured) {
    const r = running.find((x) => x.overlay === c.overlay);
    if (!r) { out.push(`fan ${c.overlay} is configured but the running daemon does not serve it (reload it: systemctl reload fand)`); continue; }
    for (const k of COMPARED) {
      if (r[k] !== c[k]) out.push(`fan ${c.overlay}: ${k} is ${String(r[k])} in the running daemon but ${String(c[k])} in the options given; using the running daemon's`);
    }
  }
  for (const r of running) {
    if (!configured.some((c) => c.overlay === r.overlay)) out.push(`fan ${r.overlay} runs but is not in the options given`);
  }
  return out;
}

export interface IntegrationSource {
  readonly fans: readonly FanSummary[];
  /** For the operator (comments in the docker script, stderr otherwise). */
  readonly notes: readonly string[];
}

/**
 * @param running the running daemon's fans, or undefined when none answers
 * @param configured the fans the options/configuration give, or undefined when none were given
 */
export function chooseSource(running: readonly FanSummary[] | undefined, configured: readonly FanSummary[] | undefined): IntegrationSource {
  if (running && running.length > 0) {
    return { fans: running, notes: configured ? differences(running, configured) : [] };
  }
  if (!configured) throw new Error('no fand is running in this network namespace and no fan is configured: start fand, or give --overlay/--underlay or --config');
  return { fans: configured, notes: ['fand is not running in this network namespace: this is computed from the options given; start fand with exactly these options (or this configuration file)'] };
}
