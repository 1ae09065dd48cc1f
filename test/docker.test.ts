// The Docker tier: Debian's docker.io, one dockerd inside each of two lab
// hosts' network namespaces (test/helpers/docker.ts), the network created
// exactly as `fand integrate docker` prints it, busybox containers from a
// `docker import`ed root file system. Checked: the containers' addresses,
// MTU and routes; ping and TCP between containers on different hosts; a
// SIGTERM of fand and a new start leave the Docker containers connected
// without anyone re-attaching them (issue 11, findings 1 and 7); a dockerd
// that restarts while fand is stopped keeps the FORWARD policy ACCEPT,
// because ip_forward stays on (dockerd sets the policy to DROP when it has
// to turn ip_forward on itself, after which other hosts cannot reach its
// containers); removing a container leaves the others' gateway where it
// was (the bridge's MAC is fixed; it used to take its lowest port's).
// Needs root, docker.io and busybox-static: without them the tier fails and
// says what to install.
import test from 'ava';
import { Lab, PATIENCE_MS, tcpTransfer, FAND_BIN, type LabHost } from '../src/demo/lab.js';
import { inNs, run } from '../src/demo/exec.js';
import { busyboxRootfsTar, cgroup2Root, checkDocker, dockerBase, DockerCleanup, Dockerd, IMAGE } from './helpers/docker.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

const lab = new Lab(Lab.uniquePrefix('dk'));
const engines: Dockerd[] = [];
let cleanup: DockerCleanup | undefined;
/** `ip netns attach` names given to containers' namespaces (so the lab's tools reach them). */
const attached = new Set<string>();

interface Container { readonly name: string; readonly host: LabHost; readonly engine: Dockerd; ns: string; address: string }
const containers = new Map<string, Container>();

async function json<T>(d: Dockerd, args: string[]): Promise<T> {
  return JSON.parse((await d.docker(args)).stdout) as T;
}

/** The container's address on the fan network, and its namespace under a name `ip netns exec` knows. */
async function locate(c: Container): Promise<void> {
  const [info] = await json<{ State: { Pid: number; Running: boolean }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[]>(c.engine, ['inspect', c.name]);
  if (!info!.State.Running) throw new Error(`container ${c.name} is not running`);
  c.address = info!.NetworkSettings.Networks[c.host.bridge]!.IPAddress;
  if (attached.has(c.ns)) await run('ip', ['netns', 'del', c.ns]);
  await run('ip', ['netns', 'attach', c.ns, String(info!.State.Pid)]);
  attached.add(c.ns);
}

async function startContainer(host: LabHost, engine: Dockerd, name: string): Promise<Container> {
  await engine.docker(['run', '-d', '--name', name, '--network', host.bridge, '--restart=always', IMAGE, 'sleep', '100000']);
  const c: Container = { name, host, engine, ns: `${lab.prefix}-${name}`, address: '' };
  await locate(c);
  containers.set(name, c);
  return c;
}

/** The host-side veths on a fan bridge, with their interface indexes. */
async function ports(h: LabHost): Promise<{ ifname: string; ifindex: number; address: string }[]> {
  return (JSON.parse((await run('ip', ['-n', h.ns, '-j', 'link', 'show', 'master', h.bridge])).stdout) as { ifname: string; ifindex: number; address: string }[])
    .map(({ ifname, ifindex, address }) => ({ ifname, ifindex, address })).sort((a, b) => a.ifindex - b.ifindex);
}

async function bridgeMac(h: LabHost): Promise<string> {
  return (JSON.parse((await run('ip', ['-n', h.ns, '-j', 'link', 'show', 'dev', h.bridge])).stdout) as { address: string }[])[0]!.address;
}

async function forwardPolicy(h: LabHost): Promise<string> {
  return /^-P FORWARD (\w+)/m.exec((await inNs(h.ns, 'iptables', ['-S', 'FORWARD'])).stdout)?.[1] ?? '?';
}

async function pingFrom(c: Container, to: string): Promise<boolean> {
  // busybox ping inside the container: -w keeps probing until the first reply
  try { await c.engine.docker(['exec', c.name, 'ping', '-c', '1', '-w', String(PATIENCE_MS / 1000), to]); return true; } catch { return false; }
}

async function tcpBothWays(a: Container, b: Container, port: number): Promise<void> {
  for (const [x, y] of [[a, b], [b, a]] as const) {
    const r = await tcpTransfer(x.ns, y.ns, y.address, 4 << 20, port++);
    if (r.received.bytes !== 4 << 20 || r.received.sha256 !== r.sent.sha256) throw new Error(`TCP ${x.name} -> ${y.name}: ${JSON.stringify(r)}`);
  }
}

test.before(async () => {
  checkDocker();
  await lab.build(2, 0);
  const base = await dockerBase();
  const cgroups = lab.hosts.map((h) => join(cgroup2Root(), `fandtest-${lab.prefix}-h${h.index}`));
  cleanup = new DockerCleanup(base, lab.hosts.map((h) => h.ns), cgroups, `${lab.prefix}-`);
  const tar = await busyboxRootfsTar(base);
  for (const h of lab.hosts) {
    await lab.startFand(h, ['--workers', '1']);
    const dir = join(base, `h${h.index}`);
    await mkdir(dir);
    const engine = await Dockerd.start(h.ns, dir, `${lab.prefix}-h${h.index}`);
    engines.push(engine);
    await engine.docker(['import', tar, IMAGE]);
  }
});

test.after.always(async () => {
  for (const n of attached) await run('ip', ['netns', 'del', n]).catch(() => undefined);
  for (const e of engines) {
    await e.docker(['rm', '-f', ...[...containers.values()].filter((c) => c.engine === e).map((c) => c.name)]).catch(() => undefined);
    await e.stop().catch(() => undefined);
  }
  await cleanup?.destroy();
  await lab.destroy();
});

test.serial('the network as `fand integrate docker` prints it: containers get addresses in the slice, the fan MTU, the bridge as gateway', async (t) => {
  for (const [i, h] of lab.hosts.entries()) {
    const engine = engines[i]!;
    const script = (await inNs(h.ns, process.execPath, [FAND_BIN, 'integrate', 'docker'], PATIENCE_MS)).stdout;
    t.regex(script, /^docker network create /m);
    // exactly what it prints, run by a shell, with Debian's docker talking to this host's engine
    await inNs(h.ns, 'sh', ['-ec', `export DOCKER_HOST='${engine.dockerEnv['DOCKER_HOST']}' DOCKER_CONFIG='${engine.dockerEnv['DOCKER_CONFIG']}' PATH=/usr/bin:/usr/sbin:/bin:/sbin\n${script}`], PATIENCE_MS)
      .catch((e: Error) => { t.log(engine.log().slice(-3000)); throw e; });
  }
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const a1 = await startContainer(h1, engines[0]!, 'a1');
  const a2 = await startContainer(h1, engines[0]!, 'a2');
  const b1 = await startContainer(h2, engines[1]!, 'b1');
  for (const c of [a1, a2, b1]) {
    const net = c.host.slice.network.split('.').slice(0, 3).join('.');
    t.regex(c.address, new RegExp(`^${net.replaceAll('.', '\\.')}\\.(\\d+)$`));
    t.not(c.address, c.host.slice.gateway);
    const link = (JSON.parse((await run('ip', ['-n', c.ns, '-j', 'link', 'show', 'eth0'])).stdout) as { mtu: number }[])[0]!;
    t.is(link.mtu, 1480, `${c.name}: eth0 MTU`);
    const route = (await run('ip', ['-n', c.ns, 'route', 'show', 'default'])).stdout;
    t.regex(route, new RegExp(`^default via ${c.host.slice.gateway.replaceAll('.', '\\.')} dev eth0`), `${c.name}: ${route}`);
  }
  // Docker adopted fand's bridge: its veths are ports of it
  t.is((await ports(h1)).length, 2);
  t.is((await ports(h2)).length, 1);
  t.is(await forwardPolicy(h1), 'ACCEPT', 'dockerd started after fand turned ip_forward on');
});

test.serial('Docker containers on different hosts ping each other and move 4 MiB of TCP each way', async (t) => {
  const [a1, b1] = [containers.get('a1')!, containers.get('b1')!];
  t.true(await pingFrom(a1, b1.address));
  t.true(await pingFrom(b1, a1.address));
  await tcpBothWays(a1, b1, 5501);
  t.pass();
});

test.serial('fand stopped (SIGTERM) and started again: the Docker containers stay on the bridge and reach the other host, nobody re-attaches them', async (t) => {
  const h1 = lab.hosts[0]!;
  const [a1, b1] = [containers.get('a1')!, containers.get('b1')!];
  const before = await ports(h1);
  t.is(await lab.stopFand(h1), 0);
  t.deepEqual(await ports(h1), before, 'the clean stop took the containers off the bridge');
  t.is((await inNs(h1.ns, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '1', 'ip_forward went off under the containers');
  const f = await lab.startFand(h1, ['--workers', '1']);
  t.true(f.logs.some((l) => /^adopting what the last fand/.test(String(l['msg']))), 'the new fand did not adopt the kept fan');
  t.deepEqual(await ports(h1), before, 'the ports changed: someone re-attached the containers');
  t.true(await pingFrom(a1, b1.address), 'a1 -> b1 after the restart');
  t.true(await pingFrom(b1, a1.address), 'b1 -> a1 after the restart');
  await tcpBothWays(a1, b1, 5511);
});

test.serial('a dockerd that restarts while fand is stopped keeps FORWARD ACCEPT (ip_forward stays on): other hosts still reach its containers', async (t) => {
  const h1 = lab.hosts[0]!;
  const engine = engines[0]!;
  t.is(await lab.stopFand(h1), 0);
  t.is((await inNs(h1.ns, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '1');
  await engine.restart(); // its containers stop with it and come back (--restart=always)
  t.is(await forwardPolicy(h1), 'ACCEPT', `dockerd set the FORWARD policy: ${engine.log().slice(-2000)}`);
  await lab.startFand(h1, ['--workers', '1']);
  for (const n of ['a1', 'a2']) {
    const c = containers.get(n)!;
    for (const end = Date.now() + PATIENCE_MS; ;) {
      try { await locate(c); break; } catch (e) { if (Date.now() > end) throw e; await new Promise((r) => setTimeout(r, 200)); }
    }
  }
  const [a1, b1] = [containers.get('a1')!, containers.get('b1')!];
  // a new connection from the other host: what a FORWARD policy of DROP stops
  t.true(await pingFrom(b1, a1.address), 'the other host cannot reach the container after dockerd restarted');
  await tcpBothWays(b1, a1, 5521);
});

test.serial("removing the container whose MAC the bridge would have taken leaves the other container's gateway in place", async (t) => {
  const h1 = lab.hosts[0]!;
  const engine = engines[0]!;
  const b1 = containers.get('b1')!;
  const mac = await bridgeMac(h1);
  t.regex(mac, /^02:fa:fa:/, 'the bridge MAC is derived from the slice');
  // the container whose host-side veth has the lowest MAC: a bridge without a fixed MAC takes that one
  const local = ['a1', 'a2'].map((n) => containers.get(n)!);
  const peerOf = async (c: Container) => {
    const iflink = Number((await inNs(c.ns, 'cat', ['/sys/class/net/eth0/iflink'])).stdout.trim());
    return (await ports(h1)).find((p) => p.ifindex === iflink)!;
  };
  const withPeers = await Promise.all(local.map(async (c) => ({ c, peer: await peerOf(c) })));
  withPeers.sort((x, y) => x.peer.address.localeCompare(y.peer.address));
  const [lowest, other] = [withPeers[0]!.c, withPeers[1]!.c];
  t.true(await pingFrom(other, b1.address)); // its neighbour entry for the gateway is fresh
  const gatewayNeigh = async () => (await run('ip', ['-n', other.ns, 'neigh', 'show', h1.slice.gateway])).stdout;
  t.regex(await gatewayNeigh(), new RegExp(`lladdr ${mac}`));

  await engine.docker(['rm', '-f', lowest.name]);
  containers.delete(lowest.name);
  t.is(await bridgeMac(h1), mac, 'the bridge changed its MAC when a port left');
  // the other container's cached gateway address is still the bridge's: nothing waits for an ARP entry to expire
  t.regex(await gatewayNeigh(), new RegExp(`lladdr ${mac}`));
  t.true(await pingFrom(other, b1.address));
});
