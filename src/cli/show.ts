// `fand show`: the daemon's state as a table, in the spirit of `fanctl show`.
// Counter and drop-reason names are counter-names.ts's, as in `show --json`
// and the metrics.
import { droppedTotal } from '../dataplane/counter-names.js';

export interface ShowFan {
  bridge: string; overlay: string; underlay: string; bridgeAddress: string; mtu: number; hostReserve: number; dhcp: boolean;
  /** ipip or vxlan (absent from daemons before VXLAN fans: ipip), and a VXLAN fan's VNI and UDP port. */
  encapsulation?: string; vni?: number; port?: number;
  /** Non-drop counters by key (tx.packets ...). */
  counters: Record<string, number>;
  /** Drops by reason (in.spoofed-source ...). */
  drops: Record<string, number>;
}

export interface ShowReply {
  pid: number;
  dataplane: { mode: string; reason: string; fanEvidence?: string };
  workers: { alive: number; configured: number };
  fans: ShowFan[];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** `reason=count` for every reason that dropped something, most first (ties by name). */
export function formatDrops(drops: Record<string, number>): string {
  return Object.entries(drops).filter(([, n]) => n > 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([reason, n]) => `${reason}=${n}`).join(' ');
}

export function formatShow(r: ShowReply): string {
  const head = [['Bridge', 'Overlay', 'Underlay', 'Flags', 'Dataplane', 'Encap', 'MTU', 'Tx pkts', 'Rx pkts', 'Dropped']];
  const rows = r.fans.map((f) => {
    const c = f.counters;
    const flags = [f.dhcp ? 'dhcp' : '', `host-reserve ${f.hostReserve}`].filter(Boolean).join(' ');
    const encap = f.encapsulation === 'vxlan' ? `vxlan ${f.vni}:${f.port}` : (f.encapsulation ?? 'ipip');
    return [f.bridge, f.overlay, f.underlay, flags, r.dataplane.mode, encap, String(f.mtu), String(c['tx.packets'] ?? 0), String(c['rx.packets'] ?? 0), String(droppedTotal(f.drops))];
  });
  let out = table([...head, ...rows]);
  out += `\ndataplane ${r.dataplane.mode}: ${r.dataplane.reason}; workers ${r.workers.alive}/${r.workers.configured}; pid ${r.pid}\n`;
  if (r.dataplane.fanEvidence) out += `kernel Fan: ${r.dataplane.fanEvidence}\n`;
  for (const f of r.fans) {
    const drops = formatDrops(f.drops);
    if (drops) out += `${f.bridge} dropped: ${drops}\n`;
  }
  return out;
}
