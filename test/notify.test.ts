// systemd's notify protocol, against a socket the test listens on (no
// systemd needed): READY once traffic passes, WATCHDOG=1 from the workers
// while they turn and not when they are wedged, STOPPING at the end.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../src/demo/lab.js';
import { request } from '../src/control/server.js';

const LISTENER = `
import socket, sys, json, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
s.settimeout(30)
while True:
    try:
        d = s.recv(4096)
    except socket.timeout:
        break
    print(json.dumps({"t": time.time(), "msg": d.decode()}), flush=True)
`;

interface Note { t: number; msg: string }

test('READY after the dataplane passes traffic, WATCHDOG from live workers only, STOPPING on stop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fand-notify-'));
  const sock = join(dir, 'notify.sock');
  const lab = new Lab(Lab.uniquePrefix('nfy'));
  const listener = spawn('python3', ['-c', LISTENER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(async () => { listener.kill(); await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const notes: Note[] = [];
  let buf = '';
  await new Promise<void>((resolve) => {
    listener.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const o = JSON.parse(buf.slice(0, nl)) as { listening?: boolean } & Note;
        buf = buf.slice(nl + 1);
        if (o.listening) resolve(); else notes.push(o);
      }
    });
  });
  await lab.build(2, 1);
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  await lab.startFand(h2, ['--dataplane', 'userspace', '--workers', '1']);
  await lab.attachContainers(h2);
  // 400 ms watchdog: WATCHDOG=1 every 200 ms while the workers turn
  // The userspace workers' watchdog (the ebpf dataplane's slow path sends it the same way).
  await lab.startFand(h1, ['--dataplane', 'userspace', '--workers', '2'], undefined, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '400000', FAND_TEST_HOOKS: '1' });
  // The datagram and fand's "up" log line travel different pipes: give the listener a moment.
  for (let i = 0; i < 40 && !notes.some((n) => n.msg.includes('READY=1')); i++) await new Promise((r) => setTimeout(r, 50));
  const ready = notes.find((n) => n.msg.includes('READY=1'));
  t.truthy(ready, `no READY=1 among ${JSON.stringify(notes)}`);
  t.regex(ready!.msg, /STATUS=userspace \(2 workers\): fan-250-1-10 250\.1\.10\.0\/24 mtu 1480/);
  t.regex(ready!.msg, new RegExp(`MAINPID=\\d+`));
  // READY means traffic passes: the very first ping from the host across the fan answers
  t.true(await lab.ping(h1.ns, h2.containers[0]!.address, 1, 10), 'no ping answered within 10 s of READY');

  const watchdogs = (from: number, to: number) => notes.filter((n) => n.msg === 'WATCHDOG=1' && n.t >= from && n.t < to).length;
  await new Promise((r) => setTimeout(r, 1500));
  let now = Date.now() / 1000;
  const alive = watchdogs(now - 1.2, now);
  t.true(alive >= 3, `only ${alive} WATCHDOG=1 in 1.2 s while alive`);

  // wedge the workers: the watchdog stops although the main thread is fine
  await request(lab.controlSocket(h1), { cmd: 'wedge' });
  const wedgedAt = Date.now() / 1000;
  await new Promise((r) => setTimeout(r, 1500));
  now = Date.now() / 1000;
  t.is(watchdogs(wedgedAt + 0.3, now), 0, 'WATCHDOG=1 was sent while the workers were wedged');
  await request(lab.controlSocket(h1), { cmd: 'unwedge' });
  const unwedgedAt = Date.now() / 1000;
  await new Promise((r) => setTimeout(r, 1200));
  t.true(watchdogs(unwedgedAt, Date.now() / 1000) >= 2, 'the watchdog did not resume');

  t.is(await lab.stopFand(h1), 0);
  await new Promise((r) => setTimeout(r, 200));
  t.true(notes.some((n) => n.msg.includes('STOPPING=1')), 'no STOPPING=1');
});

test('the control socket refuses a request it does not know, and test hooks are off without FAND_TEST_HOOKS', async (t) => {
  const lab = new Lab(Lab.uniquePrefix('hk'));
  t.teardown(() => lab.destroy());
  await lab.build(1, 0);
  const h = lab.hosts[0]!;
  await lab.startFand(h, ['--workers', '1']);
  t.deepEqual(await request(lab.controlSocket(h), { cmd: 'wedge' }), { error: 'unknown command "wedge"' });
});
