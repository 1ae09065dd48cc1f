// Tests of the C addon against the real kernel. Needs root: the TUN and raw
// socket parts run as helper scripts inside throwaway network namespaces
// (a process cannot move itself into one), each deleted on teardown.
import test, { type ExecutionContext } from 'ava';
import { tempNetns } from './helpers/netns.js';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { constants as os, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { NativeError, isNativeError, native } from '../src/native/index.js';
import { fdFlags } from './helpers/native-packets.js';

const run = promisify(execFile);
const helper = (name: string) => fileURLToPath(new URL(`./helpers/${name}`, import.meta.url));
const netns = (t: ExecutionContext) => tempNetns(t, 'fandt');

async function ipn(ns: string, ...args: string[]): Promise<void> {
  await run('ip', ['-n', ns, ...args], { timeout: 5000 });
}

/** Runs a helper script inside ns and parses the JSON it prints. */
async function probe(ns: string, script: string, ...args: string[]): Promise<Record<string, any>> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, helper(script), ...args],
    { timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

test('loads in the main thread and in worker threads', async (t) => {
  t.is(typeof native.tunOpen, 'function');
  t.is(native.constants.MAX_BATCH, 256);
  t.is(native.constants.IPPROTO_IPIP, 4);
  t.is(native.constants.POLLIN, 1);
  t.true(native.ifIndex('lo') > 0);
  t.is(native.ifIndex('nonexistent0'), 0);
  t.is(native.ifIndex('x'.repeat(40)), 0);
  const results = await Promise.all([0, 1].map(async () => {
    const w = new Worker(helper('native-worker.js'));
    const timer = setTimeout(() => void w.terminate(), 10_000);
    try {
      const [msg] = await once(w, 'message');
      return msg;
    } finally {
      clearTimeout(timer);
      await w.terminate();
    }
  }));
  for (const r of results) {
    t.deepEqual(r, { ready: 1, after: 0, maxBatch: 256, lo: native.ifIndex('lo') });
  }
});

test('eventfd, poll and fd flags', async (t) => {
  const efd = native.eventfdOpen();
  t.teardown(() => native.close(efd));
  t.deepEqual(await fdFlags(efd), { nonblock: true, cloexec: true });
  const fds = Int32Array.of(efd), ev = Int32Array.of(native.constants.POLLIN), rev = new Int32Array(1);
  t.is(native.poll(fds, ev, rev, 1, 0), 0);
  t.is(rev[0], 0);
  native.eventfdSignal(efd);
  native.eventfdSignal(efd);
  t.is(native.poll(fds, ev, rev, 1, 1000), 1);
  t.is(rev[0], native.constants.POLLIN);
  native.eventfdDrain(efd);
  native.eventfdDrain(efd); // empty: no error
  t.is(native.poll(fds, ev, rev, 1, 0), 0);
  // A timeout (or a signal: EINTR also returns 0, e.g. SIGCHLD from a child).
  t.is(native.poll(fds, ev, rev, 1, 20), 0);
});

test('batch I/O over SharedArrayBuffer views (eventfd as a stand-in fd)', (t) => {
  // An eventfd reads and writes 8-byte counters, which is enough to check
  // that tunRead/tunWrite address the slots and offsets they are given.
  const efd = native.eventfdOpen();
  t.teardown(() => native.close(efd));
  const buf = new Uint8Array(new SharedArrayBuffer(4 * 64), 0);
  const view = new DataView(buf.buffer);
  view.setBigUint64(70, 5n, true);
  const status = new Int32Array(2);
  t.is(native.tunWrite(efd, buf, Int32Array.of(70), Int32Array.of(8), 1, status), 1);
  t.deepEqual(Array.from(status), [0, 0]);
  const sizes = new Int32Array(4);
  t.is(native.tunRead(efd, buf, 64, 16, 4, sizes), 1); // the second read hits EAGAIN
  t.is(sizes[0], 8);
  t.is(view.getBigUint64(16, true), 5n);
  t.is(native.tunRead(efd, buf, 64, 16, 4, sizes), 0);
  // A write that fails with another errno is skipped and counted: 4 bytes is EINVAL.
  t.is(native.tunWrite(efd, buf, Int32Array.of(0, 70), Int32Array.of(4, 8), 2, status), 2);
  t.deepEqual(Array.from(status), [1, os.errno.EINVAL]);
  // A Uint8Array at a non-zero byteOffset.
  const sub = new Uint8Array(buf.buffer, 64, 128);
  t.is(native.tunRead(efd, sub, 64, 0, 2, sizes), 1);
  t.is(new DataView(sub.buffer, sub.byteOffset).getBigUint64(0, true), 5n);
});

test('bounds and argument checks throw before any syscall', (t) => {
  const efd = native.eventfdOpen();
  t.teardown(() => native.close(efd));
  const buf = new Uint8Array(1000), sizes = new Int32Array(300), status = new Int32Array(2);
  const range = { instanceOf: RangeError };
  t.throws(() => native.tunWrite(efd, buf, Int32Array.of(993), Int32Array.of(8), 1, status), range);
  t.throws(() => native.tunWrite(efd, buf, Int32Array.of(-1), Int32Array.of(8), 1, status), range);
  t.throws(() => native.tunWrite(efd, buf, Int32Array.of(0), Int32Array.of(-8), 1, status), range);
  t.throws(() => native.tunWrite(efd, buf, Int32Array.of(0), Int32Array.of(8), 2, status), range); // arrays too short
  t.throws(() => native.tunWrite(efd, buf, Int32Array.of(0), Int32Array.of(8), 1, new Int32Array(1)), range);
  t.throws(() => native.tunRead(efd, buf, 100, 0, 11, sizes), range); // 11 slots > 1000 bytes
  t.throws(() => native.tunRead(efd, buf, 100, 100, 1, sizes), range); // no room after headroom
  t.throws(() => native.tunRead(efd, buf, 0, 0, 1, sizes), range);
  t.throws(() => native.tunRead(efd, new Uint8Array(300 * 8), 8, 0, 257, sizes), range); // > MAX_BATCH
  t.throws(() => native.rawRecv(efd, buf, 100, 0, 11, sizes), range);
  t.throws(() => native.rawSend(efd, buf, Int32Array.of(990), Int32Array.of(20), Uint32Array.of(1), 1, status), range);
  // sendBatch: a checksum to finish outside the message's first span, arrays too short, an
  // interface without a packet socket, a negative ifindex
  const one = Int32Array.of(0), twenty = Int32Array.of(20), none = Int32Array.of(0), dst = Uint32Array.of(1);
  const rawPath = new Int32Array(3), st5 = new Int32Array(5);
  t.throws(() => native.sendBatch(efd, -1, buf, one, twenty, none, none, dst, rawPath, Int32Array.of(10, 9), 1, st5), range);
  t.throws(() => native.sendBatch(efd, -1, buf, Int32Array.of(100), twenty, none, none, dst, rawPath, Int32Array.of(99, 0), 1, st5), range);
  t.throws(() => native.sendBatch(efd, -1, buf, one, twenty, none, none, dst, rawPath, Int32Array.of(0), 1, st5), range);
  t.throws(() => native.sendBatch(efd, -1, buf, one, twenty, none, none, dst, new Int32Array(2), Int32Array.of(-1, 0), 1, st5), range);
  t.throws(() => native.sendBatch(efd, -1, buf, one, twenty, none, none, dst, Int32Array.of(1, 0, 0), Int32Array.of(-1, 0), 1, st5), range);
  t.throws(() => native.sendBatch(efd, efd, buf, one, twenty, none, none, dst, Int32Array.of(-3, 0, 0), Int32Array.of(-1, 0), 1, st5), range);
  t.throws(() => native.sendBatch(efd, -1, buf, one, twenty, none, none, dst, rawPath, Int32Array.of(-1, 0), 1, status), range); // status < 5
  t.throws(() => native.rawRecv(efd, buf, 100, 0, 4, sizes, new Uint8Array(3)), range);
  t.throws(() => native.poll(new Int32Array(300), new Int32Array(300), new Int32Array(300), 257, 0), range);
  t.throws(() => native.tunRead(efd, buf, 1.5, 0, 1, sizes), range);
  t.throws(() => native.tunRead(efd, new Int8Array(10) as unknown as Uint8Array, 10, 0, 1, sizes),
    { instanceOf: TypeError });
  t.throws(() => native.tunWrite(efd, buf, [0] as unknown as Int32Array, Int32Array.of(8), 1, status),
    { instanceOf: TypeError });
  t.throws(() => native.attachFilter(efd, new Uint8Array(12)), range);
  t.throws(() => native.attachFilter(efd, new Uint8Array(0)), range);
});

test('syscall errors carry code, errno and syscall', (t) => {
  const tooLong = t.throws(() => native.tunOpen('x'.repeat(16), true, false));
  t.true(isNativeError(tooLong));
  t.true(tooLong instanceof NativeError);
  t.like(tooLong as NativeError, { code: 'EINVAL', errno: os.errno.EINVAL, syscall: 'ioctl(TUNSETIFF)' });
  t.regex(tooLong!.message, /^tun: ioctl\(TUNSETIFF\): Invalid argument \(EINVAL\)/);

  const badf = t.throws(() => native.close(999_999));
  t.like(badf as NativeError, { code: 'EBADF', errno: os.errno.EBADF, syscall: 'close' });
  t.is(badf!.message, 'close: Bad file descriptor (EBADF)');

  // A raw socket is not a TUN: TUNSETOFFLOAD fails in the kernel.
  const efd = native.eventfdOpen();
  t.teardown(() => native.close(efd));
  t.like(t.throws(() => native.tunSetOffload(efd, native.constants.TUN_F_CSUM)) as NativeError,
    { syscall: 'ioctl(TUNSETOFFLOAD)' });
  t.like(t.throws(() => native.rawRecv(efd, new Uint8Array(64), 64, 0, 1, new Int32Array(1))) as NativeError,
    { code: 'ENOTSOCK', syscall: 'recvmmsg' });

  // A BPF program the kernel rejects (no return instruction).
  const raw = native.rawOpen(253, 0, 0, false); // 253: reserved for experiments, receives nothing here
  t.teardown(() => native.close(raw));
  const prog = new Uint8Array(8);
  new DataView(prog.buffer).setUint16(0, 0x20, true); // ld [0], then falls off the end
  t.like(t.throws(() => native.attachFilter(raw, prog)) as NativeError,
    { code: 'EINVAL', syscall: 'setsockopt(SO_ATTACH_FILTER)' });
  t.false(isNativeError(new Error('plain')));
  t.false(new RangeError('x') instanceof NativeError);
});

test('TUN: multi-queue read and write in a namespace', async (t) => {
  const ns = await netns(t);
  await ipn(ns, 'link', 'set', 'lo', 'up');
  await ipn(ns, 'tuntap', 'add', 'mode', 'tun', 'multi_queue', 'name', 'ftest0');
  await ipn(ns, 'addr', 'add', '10.99.0.1/24', 'dev', 'ftest0');
  await ipn(ns, 'link', 'set', 'ftest0', 'up');
  const r = await probe(ns, 'native-tun-probe.js', 'ftest0');
  t.deepEqual(r.flags, { nonblock: true, cloexec: true });
  t.like(r.singleQueue, { code: 'EINVAL', syscall: 'ioctl(TUNSETIFF)' });
  t.regex(r.singleQueue.message, /^tun ftest0: /);
  // The UDP datagram "hello" sent to 10.99.0.2 came out of a queue.
  t.falsy(r.read.timeout, JSON.stringify(r.read));
  t.is(r.read.size, 33);
  const b: number[] = r.read.bytes;
  t.is(b[0]! >> 4, 4);
  t.deepEqual(b.slice(16, 20), [10, 99, 0, 2]);
  t.is(Buffer.from(b.slice(28)).toString(), 'hello');
  // A packet larger than the slot is flagged, not passed on cut.
  t.falsy(r.truncated.timeout, JSON.stringify(r.truncated));
  t.is(r.truncated.size, -1);
  // Written: one garbage packet (EINVAL, skipped) and one UDP datagram that
  // reached a socket bound to 10.99.0.1.
  t.is(r.written, 2);
  t.deepEqual(r.status, [1, os.errno.EINVAL]);
  t.deepEqual(r.udp, { data: 'from-tun', from: '10.99.0.2:9999' });
});

test('raw IPIP: batched send and receive, errors skipped, BPF filters', async (t) => {
  const ns = await netns(t);
  await ipn(ns, 'link', 'set', 'lo', 'mtu', '1500', 'up');
  const r = await probe(ns, 'native-raw-probe.js');
  t.deepEqual(r.flags, { nonblock: true, cloexec: true });
  // 12 processed: 10 sent, the no-route and oversized ones skipped.
  t.is(r.sent, 12);
  t.deepEqual(r.status, [2, os.errno.ENETUNREACH]);
  t.is(r.oversizeAlone, 1);
  t.deepEqual(r.oversizeStatus, [1, os.errno.EMSGSIZE]);
  t.is(r.received, 10);
  t.true(r.recvCalls.length <= 2, JSON.stringify(r.recvCalls));
  t.true(r.sizesMatch);
  t.true(r.bytesMatch, `first mismatch at ${r.firstMismatch}`);
  t.is(r.filtered, 5);
  t.is(r.filteredDst, '10.0.0.5');
  t.is(r.dropAll, 0);
  t.deepEqual(r.truncated, { count: 1, size: -1 });
});

test('raw IPIP: sendBatch finishes partial checksums over two spans; rawRecv checks inner checksums', async (t) => {
  const ns = await netns(t);
  await ipn(ns, 'link', 'set', 'lo', 'mtu', '1500', 'up');
  const r = await probe(ns, 'native-csum-probe.js');
  // 48 packets (TCP and UDP, odd and even lengths, spans split at odd and
  // even offsets, half finished by the addon): all arrive as the reference
  // computed them, and the receive call finds every inner checksum right.
  t.is(r.sent, 48);
  t.is(r.bytes, r.expectBytes, 'bytes sent are counted');
  t.is(r.received, 48);
  t.deepEqual(r.mismatches, []);
  t.deepEqual(r.states, new Array(48).fill(1));
  // corrupted TCP, partial-only TCP, UDP without checksum, inner fragment,
  // ICMP, inner length disagreeing, corrupted UDP
  t.deepEqual(r.odd, [2, 2, 0, 0, 0, 0, 2]);
});

test('sendBatch: direct sends (AF_PACKET) and raw-socket sends in one batch; bad interface skipped and counted', async (t) => {
  const ns = await netns(t);
  await ipn(ns, 'link', 'set', 'lo', 'up');
  await ipn(ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  await ipn(ns, 'addr', 'add', '10.9.0.1/24', 'dev', 'v0');
  await ipn(ns, 'addr', 'add', '10.9.0.2/24', 'dev', 'v1');
  await ipn(ns, 'link', 'set', 'v0', 'up');
  await ipn(ns, 'link', 'set', 'v1', 'up');
  // v1 receives from v0's address, which is local too: allow that (accept_local), no rp_filter
  await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.conf.all.accept_local=1', 'net.ipv4.conf.v1.accept_local=1',
    'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.v1.rp_filter=0']);
  const mac = (JSON.parse((await run('ip', ['-n', ns, '-j', 'link', 'show', 'v1'])).stdout) as { address: string }[])[0]!.address;
  const r = await probe(ns, 'native-direct-probe.js', mac);
  // plan 'rrddrdxdwr': 9 sent (4 raw, 5 direct incl. the one to a wrong Ethernet address),
  // the one to interface 999999 skipped with ENXIO/ENODEV
  t.is(r.sent, 9);
  t.is(r.status[0], 1);
  t.true([os.errno.ENXIO, os.errno.ENODEV].includes(r.status[1]), `errno ${r.status[1]}`);
  t.is(r.status[2], 0, 'no full queue');
  t.is(r.status[3], r.expectBytes, 'bytes sent');
  t.is(r.status[4], 5, 'direct sends counted (the wrong-address one is sent, just not received)');
  // what arrives: every raw and direct message, not the ones to the wrong address or interface
  t.deepEqual(r.arrived, [0, 1, 2, 3, 4, 5, 7, 9]);
  t.true(r.intact);
});

test.serial('sdNotify: path and abstract sockets, unset environment', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'fandt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const saved = process.env.NOTIFY_SOCKET;
  t.teardown(() => {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
  });

  /** Binds a datagram socket at addr (python3), returns the first datagram. */
  async function listen(addr: string): Promise<{ ready: Promise<void>; data: Promise<string> }> {
    const py = `
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
a = sys.argv[1]
s.bind('\\0' + a[1:] if a.startswith('@') else a)
print('bound', flush=True)
s.settimeout(3)
try:
    print(json.dumps(s.recv(65536).decode()), flush=True)
except socket.timeout:
    print(json.dumps(None), flush=True)
`;
    const child = spawn('python3', ['-c', py, addr], { stdio: ['ignore', 'pipe', 'inherit'] });
    const killer = setTimeout(() => child.kill(), 10_000);
    t.teardown(() => { clearTimeout(killer); child.kill(); });
    let out = '';
    child.stdout.setEncoding('utf8');
    let onBound: () => void;
    const ready = new Promise<void>((ok) => (onBound = ok));
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.startsWith('bound\n')) onBound();
    });
    const data = once(child, 'exit').then(() => {
      const lines = out.trim().split('\n');
      return JSON.parse(lines[lines.length - 1]!) as string;
    });
    return { ready, data };
  }

  delete process.env.NOTIFY_SOCKET;
  t.false(native.sdNotify('READY=1'));
  process.env.NOTIFY_SOCKET = '';
  t.false(native.sdNotify('READY=1'));

  const file = path.join(dir, 'notify');
  const l1 = await listen(file);
  await l1.ready;
  process.env.NOTIFY_SOCKET = file;
  t.true(native.sdNotify('READY=1'));
  t.is(await l1.data, 'READY=1');

  const abs = `@fandt-${process.pid}-notify`;
  const l2 = await listen(abs);
  await l2.ready;
  process.env.NOTIFY_SOCKET = abs;
  t.true(native.sdNotify('READY=1\nSTATUS=up'));
  t.is(await l2.data, 'READY=1\nSTATUS=up');

  // The explicit path wins over the environment (for worker threads, whose
  // process.env is not the real environment).
  const l3 = await listen(path.join(dir, 'explicit'));
  await l3.ready;
  process.env.NOTIFY_SOCKET = '/nonexistent/socket';
  t.true(native.sdNotify('STOPPING=1', path.join(dir, 'explicit')));
  t.is(await l3.data, 'STOPPING=1');

  // Nobody listening: the error names the call.
  t.like(t.throws(() => native.sdNotify('READY=1')) as NativeError, { code: 'ENOENT', syscall: 'sendto' });
  process.env.NOTIFY_SOCKET = 'relative/path';
  t.like(t.throws(() => native.sdNotify('READY=1')) as NativeError, { code: 'EAFNOSUPPORT' });
});
