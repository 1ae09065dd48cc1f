// `fand install-service`: puts systemd/fand.service in place with ExecStart
// pointing at this installation of fand, and asks systemd to reload.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const UNIT_TEMPLATE = fileURLToPath(new URL('../../../systemd/fand.service', import.meta.url));
const FAND_BIN = fileURLToPath(new URL('../../../bin/fand.js', import.meta.url));

/** The unit text for this installation: ExecStart runs this node on this fand. */
export async function unitText(): Promise<string> {
  const template = await readFile(UNIT_TEMPLATE, 'utf8');
  return template.replace(/@FAND@/g, `${process.execPath} ${FAND_BIN}`);
}

export async function installService(unitDir = '/etc/systemd/system'): Promise<string[]> {
  await mkdir(unitDir, { recursive: true });
  const path = join(unitDir, 'fand.service');
  await writeFile(path, await unitText(), { mode: 0o644 });
  const lines = [`installed ${path} (ExecStart=${process.execPath} ${FAND_BIN} run --config /etc/network/fan)`];
  if (existsSync('/run/systemd/system') && unitDir === '/etc/systemd/system') {
    await new Promise<void>((resolve, reject) => execFile('systemctl', ['daemon-reload'], (e, _o, err) => (e ? reject(new Error(`systemctl daemon-reload: ${err || e.message}`)) : resolve())));
    lines.push('systemd reloaded');
  } else {
    lines.push('systemd is not running here: run `systemctl daemon-reload` on the target host');
  }
  if (!existsSync('/etc/network/fan')) lines.push('next: describe your fans in /etc/network/fan, e.g. "250.0.0.0/8 eth0/16"');
  lines.push('then: systemctl enable --now fand');
  return lines;
}
