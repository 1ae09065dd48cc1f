// fand's entry point: parse, dispatch, map errors to exit statuses
// (0 ok, 2 usage or configuration error, 1 runtime failure).
import { existsSync, readFileSync } from 'node:fs';
import { fansFromArgs, HELP, parseCommandLine, UsageError, type Args } from './args.js';
import { parseFanFile, checkFans, ConfigError, type FanSpec } from '../config/fanfile.js';
import { FanError } from '../fan/fanmap.js';
import { DataplaneError } from '../dataplane/select.js';
import { makeLogger } from '../log.js';
import { mapAddress, formatMap } from './map.js';
import { formatShow } from './show.js';

export const DEFAULT_CONFIG = '/etc/network/fan';

/** Errors that mean "the input is wrong": exit status 2. */
function isConfigError(e: unknown): boolean {
  return e instanceof UsageError || e instanceof ConfigError || e instanceof FanError || e instanceof DataplaneError;
}

export function loadSpecs(a: Args): FanSpec[] {
  const fromArgs = fansFromArgs(a);
  if (fromArgs.length > 0 && a.config) throw new UsageError('give either --overlay/--underlay or --config, not both');
  let specs = fromArgs;
  if (specs.length === 0) {
    const file = a.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
    if (!file) throw new UsageError(`no fan configured: give --overlay and --underlay, or --config FILE (${DEFAULT_CONFIG} does not exist)`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`--config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    specs = parseFanFile(text, file);
  }
  checkFans(specs);
  if (specs.every((s) => s.off)) throw new UsageError('every fan in the configuration is marked off: nothing to run');
  return specs;
}

export async function main(argv: readonly string[]): Promise<number> {
  let a: Args;
  try {
    a = parseCommandLine(argv);
  } catch (e) {
    process.stderr.write(`fand: ${(e as Error).message}\n(try 'fand --help')\n`);
    return 2;
  }
  if (a.help || a.verb === 'help') {
    process.stdout.write(HELP[a.help ? a.verb : 'help']);
    return 0;
  }
  try {
    switch (a.verb) {
      case 'map': {
        const r = await mapAddress(a);
        process.stdout.write(a.json ? JSON.stringify(r, null, 2) + '\n' : formatMap(r));
        return 0;
      }
      case 'plan': {
        const { prepare } = await import('../daemon/index.js');
        const { IpCommand } = await import('../host/ip.js');
        const { describe } = await import('../host/resources.js');
        const specs = loadSpecs(a);
        const { plan } = await prepare({ specs, dataplane: a.dataplane, workers: a.workers, mtu: a.mtu, checkInnerSource: a.checkInnerSource, nat: a.nat, lookOnly: true, log: makeLogger('silent') }, new IpCommand());
        if (a.json) {
          process.stdout.write(JSON.stringify(plan, null, 2) + '\n');
        } else {
          const lines = [`dataplane: ${plan.dataplane.mode} (${plan.dataplane.reason})`];
          if (plan.dataplane.mode === 'userspace') lines.push(`workers:   ${plan.workers}`);
          for (const f of plan.fans) {
            const encap = f.encapsulation === 'vxlan' ? `vxlan (vni ${f.vni}, udp port ${f.port})` : 'ipip';
            lines.push(`fan ${f.overlay} over ${f.underlay} on ${f.iface}: ${encap}, slice ${f.slice}, bridge ${f.bridge} ${f.bridgeAddress}/${f.subnet.split('/')[1]}, mtu ${f.mtu}, containers ${f.containers}`);
            if (f.dhcp) lines.push(`  dhcp: dnsmasq on ${f.bridge} hands out ${f.containers}, netmask /${f.subnet.split('/')[1]}, router ${f.bridgeAddress}, mtu ${f.mtu}`);
          }
          lines.push('would configure:', ...plan.resources.map((r) => `  ${describe(r)}`));
          process.stdout.write(lines.join('\n') + '\n');
        }
        return 0;
      }
      case 'show': {
        const { runtimePaths } = await import('../control/paths.js');
        const { request } = await import('../control/server.js');
        const reply = await request(runtimePaths(a.runtimeDir).socket, { cmd: 'show' });
        process.stdout.write(a.json ? JSON.stringify(reply, null, 2) + '\n' : formatShow(reply as Parameters<typeof formatShow>[0]));
        return 0;
      }
      case 'down': {
        if (a.positionals.length) throw new UsageError(`unexpected argument '${a.positionals[0]}'`);
        const { down, DownRefused } = await import('../daemon/down.js');
        const { runtimePaths } = await import('../control/paths.js');
        const { IpCommand } = await import('../host/ip.js');
        try {
          const r = await down(new IpCommand(), runtimePaths(a.runtimeDir), a.force);
          process.stdout.write(r.removed.length ? r.removed.map((l) => `${l}\n`).join('') : 'nothing of fand\'s is configured in this network namespace\n');
          for (const e of r.errors) process.stderr.write(`fand: down: ${e}\n`);
          return r.errors.length ? 1 : 0;
        } catch (e) {
          if (e instanceof DownRefused) { process.stderr.write(`fand: down: ${e.message}\n`); return 1; }
          throw e;
        }
      }
      case 'demo': {
        const { runDemo } = await import('../demo/demo.js');
        return await runDemo({ hosts: a.hosts, workers: a.workers, encap: a.encap });
      }
      case 'integrate': {
        // INTEGRATE-VERB
        const { INTEGRATIONS, isIntegration, formatIntegration } = await import('../integrate/index.js');
        const kind = a.positionals[0];
        if (!isIntegration(kind)) {
          throw new UsageError(kind === undefined ? `integrate: say for what (${INTEGRATIONS.join(', ')})` : `integrate: unknown kind '${kind}' (kinds: ${INTEGRATIONS.join(', ')})`);
        }
        if (a.positionals.length > 1) throw new UsageError(`unexpected argument '${a.positionals[1]}'`);
        const { chooseSource, summaryOf } = await import('../integrate/source.js');
        const { runtimePaths } = await import('../control/paths.js');
        const { request } = await import('../control/server.js');
        // The running daemon's fans first: the engine must match what runs.
        const reply = await request(runtimePaths(a.runtimeDir).socket, { cmd: 'show' }, 2000).catch(() => undefined) as { fans?: Record<string, unknown>[] } | undefined;
        const running = reply?.fans?.map(summaryOf);
        let configured;
        if (fansFromArgs(a).length > 0 || a.config || existsSync(DEFAULT_CONFIG) || !running) {
          const { prepare } = await import('../daemon/index.js');
          const { IpCommand } = await import('../host/ip.js');
          const specs = loadSpecs(a);
          configured = (await prepare({ specs, dataplane: a.dataplane, workers: a.workers, mtu: a.mtu, checkInnerSource: a.checkInnerSource, nat: a.nat, lookOnly: true, log: makeLogger('silent') }, new IpCommand())).plan.fans;
        }
        const source = chooseSource(running, configured);
        // Notes: comments in the docker script, stderr for the YAML and JSON outputs.
        if (kind === 'docker' && !a.json) process.stdout.write(source.notes.map((n) => `# NOTE: ${n}\n`).join(''));
        else for (const n of source.notes) process.stderr.write(`fand: integrate: ${n}\n`);
        process.stdout.write(source.fans.map((f) => formatIntegration(kind, f, a.json)).join(''));
        return 0;
      }
      case 'install-service': {
        const { installService } = await import('./install-service.js');
        if (a.positionals.length > 1) throw new UsageError('install-service takes at most one argument: the unit directory');
        process.stdout.write((await installService(a.positionals[0])).join('\n') + '\n');
        return 0;
      }
      case 'run': {
        if (a.positionals.length) throw new UsageError(`unexpected argument '${a.positionals[0]}'`);
        const specs = loadSpecs(a);
        const { runDaemon } = await import('../daemon/index.js');
        return await runDaemon({
          specs, dataplane: a.dataplane, workers: a.workers, mtu: a.mtu, runtimeDir: a.runtimeDir,
          checkInnerSource: a.checkInnerSource, nat: a.nat, directSend: a.directSend, metrics: a.metrics, log: makeLogger(a.logLevel), reloadSpecs: () => loadSpecs(a),
        });
      }
    }
  } catch (e) {
    const config = isConfigError(e);
    process.stderr.write(`fand: ${(e as Error).message}\n`);
    if (!config && process.env['FAND_DEBUG']) process.stderr.write(`${(e as Error).stack}\n`);
    return config ? 2 : 1;
  }
}
