// Help texts, from the tables in options.ts: `fand --help` lists every
// command with one line each (as `ip help` and `systemctl --help` do);
// `fand COMMAND --help` shows its usage, what it does and its options.
import { OPTIONS, VERBS, optionHelp, optionLabel, optionsOf, verbSpec, type VerbName } from './options.js';

const WIDTH = 80;

/** Wraps `text` to WIDTH columns, every line after the first indented by `indent`. */
export function wrap(text: string, indent: number, first = indent): string {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const lines: string[] = [];
  let line = '';
  let room = WIDTH - first;
  for (const w of words) {
    if (line && line.length + 1 + w.length > room) {
      lines.push(line);
      line = w;
      room = WIDTH - indent;
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) lines.push(line);
  return lines.join('\n' + ' '.repeat(indent));
}

function table(rows: [string, string][], gap = 2): string {
  const width = Math.min(Math.max(...rows.map(([l]) => l.length)) + gap, 28);
  return rows.map(([l, r]) => {
    const pad = l.length + gap > width ? `\n${' '.repeat(width + 2)}` : ' '.repeat(width - l.length);
    return `  ${l}${pad}${wrap(r, width + 2, width + 2)}`;
  }).join('\n');
}

export function usageLines(verb: VerbName): string {
  return verbSpec(verb).usage.map((u, i) => `${i === 0 ? 'usage: ' : '       '}fand ${u}`).join('\n');
}

export function mainHelp(): string {
  return `usage: fand [COMMAND] [OPTIONS]

fand gives every Linux host a Fan: an overlay subnet for its containers,
computed from its own underlay address, reachable from every other host.

Commands:
${table(VERBS.map((v) => [v.name, v.summary]))}

Options of every command:
${table(OPTIONS.filter((o) => o.verbs.length === VERBS.length).map((o) => [optionLabel(o), optionHelp(o)]))}

'fand COMMAND --help' shows a command's options; 'man fand' has everything.
`;
}

export function verbHelp(verb: VerbName): string {
  const v = verbSpec(verb);
  const opts = optionsOf(verb);
  const paragraphs = v.description.split('\n\n');
  if (v.needs) paragraphs.push(`Needs root (${v.needs.caps.join(', ')}): ${v.needs.why}.`);
  return `${usageLines(verb)}

${paragraphs.map((p) => wrap(p, 0)).join('\n\n')}

Options:
${table(opts.map((o) => [optionLabel(o), optionHelp(o)]))}
`;
}
