// Watching the underlay while fand runs: the interface going down or away
// (logged: the fans on it cannot reach other hosts), and its address
// changing (a DHCP renewal): a different local underlay address is a
// different slice, so the fans move, as a reload would move them, loudly,
// since every container address on the fan changes with it.
//
// Today this polls every 2 s; issue 15 replaces the polling with rtnetlink
// events. The running configuration (d.specs) is resolved again, never the
// file: an edit to /etc/network/fan is applied on SIGHUP only.
import { resolveFans } from '../fan/resolve.js';
import { formatCidr, formatIpv4 } from '../fan/ipv4.js';
import type { ResolvedFan } from '../fan/resolved.js';
import type { Daemon } from './context.js';
import { reload } from './reload.js';

const POLL_MS = 2000;

/** Starts watching; returns the function that stops it. */
export function watchUnderlay(d: Daemon): () => void {
  let problem = '';
  const linkUp = new Map<string, boolean>();
  let busy = false;
  const check = async () => {
    await checkLinks(d, linkUp);
    let now: ResolvedFan[];
    try {
      now = await resolveFans(d.specs, d.host, { mtu: d.opts.mtu });
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== problem) d.log.error({ err: msg }, `underlay: ${msg}; the fans stay as they are until it is back`);
      problem = msg;
      return;
    }
    if (problem) d.log.warn('underlay: resolved again; the fans are unchanged');
    problem = '';
    const moved = movedFans(d, now);
    if (moved.length === 0) return;
    for (const m of moved) {
      d.log.error({ fan: m.bridge, from: m.from, to: m.to, iface: m.iface },
        `underlay address changed on ${m.iface}: ${m.from} -> ${m.to}; slice ${m.fromSlice} -> ${m.toSlice}: every container address on this fan changes; moving the fan`);
    }
    const ifaces = [...new Set(moved.map((m) => m.iface))].join(', ');
    await d.exclusive(() => reload(d, `underlay address changed on ${ifaces}`, d.specs));
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    check().catch((e: Error) => d.log.error({ err: e.message }, `underlay check failed: ${e.message}`)).finally(() => { busy = false; });
  }, POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

async function checkLinks(d: Daemon, linkUp: Map<string, boolean>): Promise<void> {
  const links = await d.host.links();
  for (const iface of new Set(d.plan.fans.map((f) => f.iface))) {
    const l = links.find((x) => x.name === iface);
    const up = !!l && l.up;
    if (up === (linkUp.get(iface) ?? true)) continue;
    if (up) d.log.warn({ iface }, `underlay ${iface} is up again`);
    else d.log.error({ iface }, `underlay ${iface} is ${l ? 'down' : 'gone'}: the fans on it cannot reach other hosts until it is back`);
    linkUp.set(iface, up);
  }
}

interface Move { bridge: string; iface: string; from: string; to: string; fromSlice: string; toSlice: string }

function movedFans(d: Daemon, now: readonly ResolvedFan[]): Move[] {
  const out: Move[] = [];
  for (const f of now) {
    const was = d.plan.fans.find((p) => p.overlay === formatCidr(f.map.overlay));
    const to = `${formatIpv4(f.localUnderlay)}/${f.map.underlay.prefix}`;
    if (!was || was.underlay === to) continue;
    out.push({ bridge: was.bridge, iface: f.iface, from: was.underlay, to, fromSlice: was.slice, toSlice: formatCidr({ network: f.slice.network, prefix: f.slice.prefix }) });
  }
  return out;
}
