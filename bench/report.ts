// Summaries and the markdown tables: per metric and path the median with the
// range over repetitions, then each path's median relative to kernel VXLAN.

export interface Metric {
  readonly key: string;
  readonly label: string;
  readonly digits: number;
  /** Whether a ratio to the reference path means anything (not for loss %, not for daemon memory). */
  readonly ratio: boolean;
}

export interface PathInfo { readonly key: string; readonly label: string }

/** metric key -> path key -> one value per repetition (null: that measurement failed). */
export type Samples = Record<string, Record<string, (number | null)[]>>;

export interface Summary { median: number; min: number; max: number; n: number }

export function summarize(values: readonly (number | null)[] | undefined): Summary | undefined {
  const xs = (values ?? []).filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = xs.length >> 1;
  const median = xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  return { median, min: xs[0]!, max: xs[xs.length - 1]!, n: xs.length };
}

export function ratio(samples: Samples, metric: Metric, path: string, reference: string): number | undefined {
  if (!metric.ratio) return undefined;
  const a = summarize(samples[metric.key]?.[path]);
  const b = summarize(samples[metric.key]?.[reference]);
  return a && b && b.median !== 0 ? a.median / b.median : undefined;
}

function cell(values: readonly (number | null)[] | undefined, digits: number): string {
  if (!values || values.length === 0) return '—';
  const s = summarize(values);
  if (!s) return 'failed';
  const f = (x: number) => x.toFixed(digits);
  const failed = values.length - s.n;
  return (s.n > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median)) + (failed ? ` [${failed} failed]` : '');
}

export function tables(samples: Samples, metrics: readonly Metric[], paths: readonly PathInfo[], reference: string): string {
  const lines = [`| metric | ${paths.map((p) => p.label).join(' | ')} |`, `|---|${paths.map(() => '---:|').join('')}`];
  for (const m of metrics) lines.push(`| ${m.label} | ${paths.map((p) => cell(samples[m.key]?.[p.key], m.digits)).join(' | ')} |`);
  const others = paths.filter((p) => p.key !== reference);
  const ref = paths.find((p) => p.key === reference)?.label;
  if (!ref || others.length === 0) return lines.join('\n');
  lines.push('', `| ratio to ${ref} (medians) | ${others.map((p) => p.label).join(' | ')} |`, `|---|${others.map(() => '---:|').join('')}`);
  for (const m of metrics.filter((x) => x.ratio)) {
    lines.push(`| ${m.label} | ${others.map((p) => ratio(samples, m, p.key, reference)?.toFixed(2) ?? '—').join(' | ')} |`);
  }
  return lines.join('\n');
}
