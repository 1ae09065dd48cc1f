// `fand show`: the daemon's state as a table, in the spirit of `fanctl show`.
export interface ShowReply {
  pid: number;
  dataplane: { mode: string; reason: string };
  workers: { alive: number; configured: number };
  fans: { bridge: string; overlay: string; underlay: string; bridgeAddress: string; mtu: number; hostReserve: number; dhcp: boolean; counters: Record<string, number> }[];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function formatShow(r: ShowReply): string {
  const head = [['Bridge', 'Overlay', 'Underlay', 'Flags', 'Dataplane', 'MTU', 'Tx pkts', 'Rx pkts', 'Dropped']];
  const rows = r.fans.map((f) => {
    const c = f.counters;
    const dropped = Object.entries(c).filter(([k]) => k.startsWith('drop.')).reduce((s, [, v]) => s + v, 0);
    const flags = [f.dhcp ? 'dhcp' : '', `host-reserve ${f.hostReserve}`].filter(Boolean).join(' ');
    return [f.bridge, f.overlay, f.underlay, flags, r.dataplane.mode, String(f.mtu), String(c['tx.packets'] ?? 0), String(c['rx.packets'] ?? 0), String(dropped)];
  });
  let out = table([...head, ...rows]);
  out += `\ndataplane ${r.dataplane.mode}: ${r.dataplane.reason}; workers ${r.workers.alive}/${r.workers.configured}; pid ${r.pid}\n`;
  for (const f of r.fans) {
    const drops = Object.entries(f.counters).filter(([k, v]) => k.startsWith('drop.') && v > 0);
    if (drops.length) out += `${f.bridge} drops: ${drops.map(([k, v]) => `${k.slice(5)}=${v}`).join(' ')}\n`;
  }
  return out;
}
