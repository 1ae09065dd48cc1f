// The programs the benchmark drives. Each is looked up with `which`; a missing
// one is installed with apt-get (saying so), after an `apt-get update` if the
// first attempt fails (a fresh machine's package lists may be empty).
import { run } from '../src/demo/exec.js';

async function have(cmd: string): Promise<boolean> {
  return run('which', [cmd]).then(() => true, () => false);
}

async function aptInstall(pkg: string): Promise<void> {
  const install = ['DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '--no-install-recommends', pkg];
  try {
    await run('env', install, 300_000);
  } catch {
    process.stderr.write('bench: apt-get install failed; running apt-get update and trying again\n');
    await run('apt-get', ['update'], 300_000);
    await run('env', install, 300_000);
  }
}

/** True once `cmd` is on the PATH, installing Debian package `pkg` if needed; false if that failed. */
export async function ensureTool(cmd: string, pkg: string): Promise<boolean> {
  if (await have(cmd)) return true;
  if (!(await have('apt-get'))) {
    process.stderr.write(`bench: ${cmd} is not installed and there is no apt-get to install ${pkg} with\n`);
    return false;
  }
  process.stderr.write(`bench: ${cmd} not found; installing Debian package ${pkg} (apt-get install -y ${pkg})\n`);
  try {
    await aptInstall(pkg);
  } catch (e) {
    process.stderr.write(`bench: could not install ${pkg}: ${(e as Error).message.split('\n').slice(-2).join(' ')}\n`);
    return false;
  }
  return have(cmd);
}
