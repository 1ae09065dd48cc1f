// `fand install-service`: puts systemd/fand.service in place with ExecStart
// pointing at this installation of fand, installs the bash completion, and
// asks systemd to reload.
//
// The unit is sandboxed: ProtectHome=yes hides /home, /root and /run/user
// from the service, PrivateTmp=yes gives it its own /tmp and /var/tmp. A
// fand (or a node) under one of those would be installed fine and then fail
// to start with "No such file or directory", so install-service refuses it
// and says how to install fand where the service can run it.
import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bashCompletion } from './completion.js';

const UNIT_TEMPLATE = fileURLToPath(new URL('../../../systemd/fand.service', import.meta.url));
const FAND_BIN = fileURLToPath(new URL('../../../bin/fand.js', import.meta.url));

/**
 * What the service may do, as capabilities(7) names them: the unit's
 * CapabilityBoundingSet= and AmbientCapabilities= are both this list.
 */
export const UNIT_CAPABILITIES: readonly string[] = [
  'CAP_NET_ADMIN', // netlink changes: devices, addresses, routes, rules; TUN
  'CAP_NET_RAW', // raw IPIP sockets, AF_PACKET direct sends
  'CAP_SYS_MODULE', // `modprobe ipip` for the kernel dataplanes
  'CAP_BPF', // the ebpf dataplane's maps and programs (tc programs also need CAP_NET_ADMIN; not CAP_PERFMON: bpf/fan.bpf.c)
];

export const UNIT_PATH = 'etc/systemd/system/fand.service';
/** bash-completion loads completions/NAME on first use of NAME (XDG_DATA_DIRS, and ../share of the command). */
export const COMPLETION_PATH = 'usr/local/share/bash-completion/completions/fand';

export class InstallError extends Error {}

/** The directories a unit's sandbox settings hide from the service, and which setting hides each. */
export function hiddenDirs(unit: string): { dir: string; by: string }[] {
  const on = (key: string) => new RegExp(`^${key}=(yes|true|read-only|tmpfs)$`, 'm').test(unit);
  return [
    ...(on('ProtectHome') ? ['/home', '/root', '/run/user'].map((dir) => ({ dir, by: 'ProtectHome=' })) : []),
    ...(on('PrivateTmp') ? ['/tmp', '/var/tmp'].map((dir) => ({ dir, by: 'PrivateTmp=' })) : []),
  ];
}

/** The hidden directory `path` is under, if any. */
export function hiddenBy(path: string, hidden: readonly { dir: string; by: string }[]): { dir: string; by: string } | undefined {
  return hidden.find((h) => path === h.dir || path.startsWith(h.dir + '/'));
}

/** The unit text for this installation: ExecStart runs this node on this fand. */
export async function unitText(node = process.execPath, bin = FAND_BIN): Promise<string> {
  const template = await readFile(UNIT_TEMPLATE, 'utf8');
  return template.replace(/@FAND@/g, `${node} ${bin}`).replace(/@CAPABILITIES@/g, UNIT_CAPABILITIES.join(' '));
}

/** Refuses a node or fand the sandbox would hide, with how to install fand where the service sees it. */
export function checkReachable(unit: string, node: string, bin: string): void {
  const hidden = hiddenDirs(unit);
  const problems: string[] = [];
  const nodeHidden = hiddenBy(node, hidden);
  if (nodeHidden) {
    problems.push(`node (${node}) is under ${nodeHidden.dir}, which the unit's ${nodeHidden.by}yes hides from the service: `
      + 'install Node.js system-wide (NodeSource\'s nodejs package, or the official tarball under /usr/local; see the README)');
  }
  const binHidden = hiddenBy(bin, hidden);
  if (binHidden) {
    problems.push(`fand (${bin}) is under ${binHidden.dir}, which the unit's ${binHidden.by}yes hides from the service: `
      + 'install fand where a service can run it, then run install-service from there: '
      + 'npm pack && npm install -g ./fand-*.tgz && "$(npm prefix -g)/bin/fand" install-service');
  }
  if (problems.length) throw new InstallError(`install-service: the service could not start this fand, so nothing was installed:\n  ${problems.join('\n  ')}`);
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => execFile(cmd, args, (e, stdout, stderr) => resolve({ ok: !e, out: (stderr || stdout || e?.message || '').trim() })));
}

export async function installService(root = '/'): Promise<string[]> {
  const node = realpathSync(process.execPath);
  const bin = realpathSync(FAND_BIN);
  const unit = await unitText(node, bin);
  checkReachable(unit, node, bin);
  const unitPath = join(root, UNIT_PATH);
  const completionPath = join(root, COMPLETION_PATH);
  await mkdir(join(unitPath, '..'), { recursive: true });
  await writeFile(unitPath, unit, { mode: 0o644 });
  await mkdir(join(completionPath, '..'), { recursive: true });
  await writeFile(completionPath, bashCompletion(), { mode: 0o644 });
  const lines = [
    `installed ${unitPath} (ExecStart=${node} ${bin} run --config /etc/network/fan)`,
    `installed ${completionPath} (bash completion; new shells have it)`,
  ];
  if (!(await run('man', ['-w', 'fand.8'])).ok) {
    lines.push('note: man cannot find fand(8), the unit\'s Documentation=: npm install -g installs it (PREFIX/share/man/man8)');
  }
  if (root === '/' && existsSync('/run/systemd/system')) {
    const r = await run('systemctl', ['daemon-reload']);
    if (!r.ok) throw new InstallError(`systemctl daemon-reload: ${r.out}`);
    lines.push('systemd reloaded');
  } else {
    lines.push('systemd is not running here: run `systemctl daemon-reload` on the target host');
  }
  if (!existsSync(join(root, 'etc/network/fan'))) lines.push('next: describe your fans in /etc/network/fan, e.g. "250.0.0.0/8 eth0/16" (man fand.conf)');
  lines.push('then: systemctl enable --now fand');
  return lines;
}
