// fand's entry point: parse, check privileges, dispatch, and map errors to
// exit statuses: 0 ok, 1 runtime failure, 2 usage or configuration error,
// 4 insufficient privileges (as LSB init scripts and systemctl use it).
import { existsSync, readFileSync } from 'node:fs';
import { fansFromArgs, parseCommandLine, UsageError, type Args } from './args.js';
import { ConfigError, eachError, type FanSpec } from '../config/fanfile.js';
import { DEFAULT_CONFIG, loadFanFile, type ConfigLog } from '../config/load.js';
import { FanError } from '../fan/fanmap.js';
import { DataplaneError } from '../dataplane/select.js';
import { makeLogger, type Logger } from '../log.js';
import { mainHelp, usageLines, verbHelp } from './help.js';
import { verbSpec } from './options.js';
import { privilegeProblem } from './privileges.js';
import { mapAddress, formatMap } from './map.js';
import { formatShow } from './show.js';

export { DEFAULT_CONFIG };

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_PRIVILEGE = 4;

/** Errors that mean "the input is wrong": exit status 2. */
function isConfigError(e: unknown): boolean {
  return e instanceof UsageError || e instanceof ConfigError || e instanceof FanError || e instanceof DataplaneError;
}

/** fand's version, from the package it is installed from. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The fans to run: from --overlay/--underlay, or --config FILE, or /etc/network/fan. */
export function loadSpecs(a: Args, debug?: ConfigLog): FanSpec[] {
  const fromArgs = fansFromArgs(a);
  if (fromArgs.length > 0 && a.config) throw new UsageError('give either --overlay/--underlay or --config, not both', a.verb);
  let specs = fromArgs;
  if (specs.length > 0) {
    debug?.(`configuration: ${specs.length} fan(s) from the command line`);
  } else {
    const file = a.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
    if (!file) throw new UsageError(`no fan configured: give --overlay and --underlay, or --config FILE (${DEFAULT_CONFIG} does not exist)`, a.verb);
    debug?.(a.config ? `configuration: --config ${file}` : `configuration: ${DEFAULT_CONFIG} (neither --overlay nor --config given)`);
    specs = loadFanFile(file, a.config ? `--config ${file}` : file, debug);
  }
  if (specs.every((s) => s.off)) throw new ConfigError('every fan in the configuration is marked off: nothing to run');
  debug?.(`configuration: ${specs.filter((s) => !s.off).length} fan(s) to bring up, ${specs.filter((s) => s.off).length} marked off`);
  return specs;
}

/** Prints an error in fand's words; returns the exit status. */
function report(e: unknown): number {
  const out = (line: string) => process.stderr.write(`fand: ${line}\n`);
  if (e instanceof UsageError) {
    out(e.message);
    if (e.verb) process.stderr.write(`${usageLines(e.verb)}\n'fand ${e.verb} --help' lists its options.\n`);
    return EXIT_USAGE;
  }
  if (e instanceof ConfigError) {
    const all = eachError(e);
    for (const one of all) out(one.message);
    if (all.length > 1) out(`${all.length} problems; nothing on the host was changed`);
    return EXIT_USAGE;
  }
  out((e as Error).message);
  const config = isConfigError(e);
  if (!config && process.env['FAND_DEBUG']) process.stderr.write(`${(e as Error).stack}\n`);
  return config ? EXIT_USAGE : EXIT_FAILURE;
}

export async function main(argv: readonly string[]): Promise<number> {
  let a: Args;
  try {
    a = parseCommandLine(argv);
  } catch (e) {
    return report(e);
  }
  if (a.help || a.verb === 'help') {
    const topic = a.help ? (a.verbGiven ? a.verb : undefined) : a.positionals[0];
    process.stdout.write(topic ? verbHelp(topic as Args['verb']) : mainHelp());
    return EXIT_OK;
  }
  if (a.version || a.verb === 'version') {
    process.stdout.write(`fand ${version()}\n`);
    return EXIT_OK;
  }
  const denied = privilegeProblem(verbSpec(a.verb));
  if (denied) {
    process.stderr.write(`fand: ${denied}\n`);
    return EXIT_PRIVILEGE;
  }
  try {
    return await dispatch(a);
  } catch (e) {
    return report(e);
  }
}

/** Logs of the commands whose stdout is their result go to stderr. */
function logFor(a: Args, fd: 1 | 2): Logger {
  return makeLogger(a.logLevel, { format: a.logFormat, fd });
}

async function lookOnlyPlan(a: Args, log: Logger) {
  const { prepare } = await import('../daemon/index.js');
  const { IpCommand } = await import('../host/ip.js');
  const { checkHost } = await import('../host/preflight.js');
  const host = new IpCommand();
  const specs = loadSpecs(a, (m, f) => log.debug(f ?? {}, m));
  const { plan } = await prepare({ specs, dataplane: a.dataplane, workers: a.workers, mtu: a.mtu, checkInnerSource: a.checkInnerSource, nat: a.nat, lookOnly: true, log }, host);
  // The same conflicts the daemon refuses, so plan approves only what run accepts.
  await checkHost(plan, host);
  return plan;
}

async function dispatch(a: Args): Promise<number> {
  switch (a.verb) {
    case 'map': {
      const r = await mapAddress(a);
      process.stdout.write(a.json ? JSON.stringify(r, null, 2) + '\n' : formatMap(r));
      return EXIT_OK;
    }
    case 'plan': {
      const { describe } = await import('../host/resources.js');
      const plan = await lookOnlyPlan(a, logFor(a, 2));
      if (a.json) {
        process.stdout.write(JSON.stringify(plan, null, 2) + '\n');
      } else {
        const lines = [`dataplane: ${plan.dataplane.mode} (${plan.dataplane.reason})`];
        if (plan.dataplane.fanEvidence) lines.push(`kernel Fan: ${plan.dataplane.fanEvidence}`);
        if (plan.dataplane.mode === 'userspace') lines.push(`workers:   ${plan.workers}`);
        for (const f of plan.fans) {
          const encap = f.encapsulation === 'vxlan' ? `vxlan (vni ${f.vni}, udp port ${f.port})` : 'ipip';
          lines.push(`fan ${f.overlay} over ${f.underlay} on ${f.iface}: ${encap}, slice ${f.slice}, bridge ${f.bridge} ${f.bridgeAddress}/${f.subnet.split('/')[1]}, mtu ${f.mtu}, containers ${f.containers}`);
          if (f.dhcp) lines.push(`  dhcp: dnsmasq on ${f.bridge} hands out ${f.containers}, netmask /${f.subnet.split('/')[1]}, router ${f.bridgeAddress}, mtu ${f.mtu}`);
        }
        lines.push('would configure:', ...plan.resources.map((r) => `  ${describe(r)}`));
        process.stdout.write(lines.join('\n') + '\n');
      }
      return EXIT_OK;
    }
    case 'show': {
      const { runtimePaths } = await import('../control/paths.js');
      const { request } = await import('../control/server.js');
      const reply = await request(runtimePaths(a.runtimeDir).socket, { cmd: 'show' });
      process.stdout.write(a.json ? JSON.stringify(reply, null, 2) + '\n' : formatShow(reply as Parameters<typeof formatShow>[0]));
      return EXIT_OK;
    }
    case 'down': {
      const { down, DownRefused } = await import('../daemon/down.js');
      const { runtimePaths } = await import('../control/paths.js');
      const { IpCommand } = await import('../host/ip.js');
      try {
        const r = await down(new IpCommand(), runtimePaths(a.runtimeDir), a.force);
        process.stdout.write(r.removed.length ? r.removed.map((l) => `${l}\n`).join('') : 'nothing of fand\'s is configured in this network namespace\n');
        for (const e of r.errors) process.stderr.write(`fand: down: ${e}\n`);
        return r.errors.length ? EXIT_FAILURE : EXIT_OK;
      } catch (e) {
        if (e instanceof DownRefused) { process.stderr.write(`fand: down: ${e.message}\n`); return EXIT_FAILURE; }
        throw e;
      }
    }
    case 'demo': {
      const { runDemo } = await import('../demo/demo.js');
      return await runDemo({ hosts: a.hosts, workers: a.workers, encap: a.encap });
    }
    case 'integrate': {
      const { formatIntegration, isIntegration } = await import('../integrate/index.js');
      const kind = a.positionals[0];
      if (!isIntegration(kind)) throw new UsageError(`integrate: unknown kind '${kind}'`, a.verb); // the parser checked it
      const { chooseSource, summaryOf } = await import('../integrate/source.js');
      const { runtimePaths } = await import('../control/paths.js');
      const { request } = await import('../control/server.js');
      // The running daemon's fans first: the engine must match what runs.
      const reply = await request(runtimePaths(a.runtimeDir).socket, { cmd: 'show' }, 2000).catch(() => undefined) as { fans?: Record<string, unknown>[] } | undefined;
      const running = reply?.fans?.map(summaryOf);
      let configured;
      if (fansFromArgs(a).length > 0 || a.config || existsSync(DEFAULT_CONFIG) || !running) {
        // plan.fans holds only the fans not marked off.
        configured = (await lookOnlyPlan(a, logFor(a, 2))).fans;
      }
      const source = chooseSource(running, configured);
      // Notes: comments in the docker script, stderr for the YAML and JSON outputs.
      if (kind === 'docker' && !a.json) process.stdout.write(source.notes.map((n) => `# NOTE: ${n}\n`).join(''));
      else for (const n of source.notes) process.stderr.write(`fand: integrate: ${n}\n`);
      process.stdout.write(source.fans.map((f) => formatIntegration(kind, f, a.json)).join(''));
      return EXIT_OK;
    }
    case 'install-service': {
      const { installService, InstallError } = await import('./install-service.js');
      try {
        process.stdout.write((await installService(a.values['root'] as string | undefined)).join('\n') + '\n');
      } catch (e) {
        if (!(e instanceof InstallError)) throw e;
        process.stderr.write(`fand: ${e.message}\n`);
        return EXIT_FAILURE;
      }
      return EXIT_OK;
    }
    case 'completion': {
      const { bashCompletion } = await import('./completion.js');
      process.stdout.write(bashCompletion());
      return EXIT_OK;
    }
    case 'run': {
      const log = logFor(a, 1);
      // The daemon re-reads the configuration on SIGHUP and every 2 s (to
      // follow the underlay): its decisions are logged when they change.
      let told = '';
      const specsNow = () => {
        const said: [string, object | undefined][] = [];
        const specs = loadSpecs(a, (m, f) => said.push([m, f]));
        const key = said.map(([m]) => m).join('\n');
        if (key !== told) for (const [m, f] of said) log.debug(f ?? {}, m);
        told = key;
        return specs;
      };
      const specs = specsNow();
      const { runDaemon } = await import('../daemon/index.js');
      const { IpCommand } = await import('../host/ip.js');
      const host = new IpCommand(undefined, (msg, fields) => log.debug(fields, msg));
      return await runDaemon({
        specs, dataplane: a.dataplane, workers: a.workers, mtu: a.mtu, runtimeDir: a.runtimeDir, host,
        checkInnerSource: a.checkInnerSource, nat: a.nat, directSend: a.directSend, portRedirect: a.portRedirect, metrics: a.metrics, log, reloadSpecs: specsNow,
      });
    }
    case 'version':
    case 'help':
      return EXIT_OK; // answered before dispatch
  }
}
