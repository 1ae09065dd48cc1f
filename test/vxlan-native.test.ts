// The addon's UDP and TAP calls for the VXLAN dataplane (native/udp.c)
// against the real kernel, each in a throw-away network namespace: one send
// with UDP_SEGMENT leaves as its segments, a UDP_GRO socket gets them joined
// with the segment size, the outer TOS travels, the SO_REUSEPORT program
// picks the socket the TypeScript model says, and a frame written as spans
// with writev reaches the kernel whole.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempNetns } from './helpers/netns.js';
import { native } from '../src/native/index.js';

const run = promisify(execFile);
const PROBE = fileURLToPath(new URL('./helpers/native-udp-probe.js', import.meta.url));

async function probe(t: ExecutionContext, mode: string): Promise<Record<string, any>> {
  const ns = await tempNetns(t, 'fandu');
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, PROBE, mode], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, any>;
}

test('this kernel has UDP_SEGMENT, UDP_GRO and getsockopt(UDP_GRO) (Linux 6.18)', (t) => {
  t.deepEqual(native.udpProbe(), { gso: 0, gro: 0, groGet: 0 });
});

test('UDP_SEGMENT: one send of 3 × 1000 + 500 bytes from 8 spans leaves as 4 datagrams; a UDP_GRO socket gets them as one, with the segment size and the TOS', async (t) => {
  const r = await probe(t, 'gso');
  t.like(r['plain'], { sent: 1, result: 1, bytes: 3500 });
  t.deepEqual(r['plain'].got.map((d: { size: number; first: number; last: number; gso: number; tos: number }) => [d.size, d.first, d.last, d.gso, d.tos]),
    [[1000, 1, 1, 0, 2], [1000, 2, 2, 0, 2], [1000, 3, 3, 0, 2], [500, 4, 4, 0, 2]]);
  t.like(r['gro'], { sent: 1, result: 1 });
  t.deepEqual(r['gro'].got.map((d: { size: number; gso: number; tos: number }) => [d.size, d.gso, d.tos]), [[3500, 1000, 2]]);
  t.true(r['groOn']);
});

test('SO_REUSEPORT: the classic BPF program spreads VXLAN packets by inner flow exactly as the model; ARP and junk to socket 0', async (t) => {
  const r = await probe(t, 'reuseport');
  t.deepEqual(r['got'], r['want']);
  t.true((r['want'] as number[]).filter((n) => n > 0).length >= 3, `spread: ${JSON.stringify(r['want'])}`);
});

test('TAP: tapOpen, and tunWriteV of a frame in three spans (virtio-net header, two pieces): the kernel answers the echo request in it', async (t) => {
  const r = await probe(t, 'tap');
  t.like(r, { done: 1, failed: 0 });
  t.like(r['reply'], { type: 0, id: 7, data: 0x5a });
});

test('argument checks: spans outside the buffer and runs outside the spans are RangeErrors, nothing is sent', (t) => {
  const fd = native.udpOpen(0x7f000001, 0, false, 0, 0);
  t.teardown(() => native.close(fd));
  const buf = new Uint8Array(100);
  const status = new Int32Array(4);
  t.throws(() => native.udpSendBatch(fd, buf, Int32Array.of(90, 20), 1, Int32Array.of(0, 1, 0, 0, 0), Uint32Array.of(0x7f000001), 9, new Int32Array(0), 0, 1, status), { instanceOf: RangeError, message: /span 0: offset 90 \+ length 20 is outside the buffer/ });
  t.throws(() => native.udpSendBatch(fd, buf, Int32Array.of(0, 20), 1, Int32Array.of(0, 2, 0, 0, 0), Uint32Array.of(0x7f000001), 9, new Int32Array(0), 0, 1, status), { instanceOf: RangeError, message: /message 0: spans \[0, \+2\) are outside the 1 spans given/ });
  t.throws(() => native.udpSendBatch(fd, buf, Int32Array.of(0, 20), 1, Int32Array.of(0, 1, 0, 0, 0), Uint32Array.of(0x7f000001), 9, Int32Array.of(0, 19, 0, 1), 1, 1, status), { instanceOf: RangeError, message: /checksum 0/ });
  t.throws(() => native.tunWriteV(fd, buf, Int32Array.of(0, 10), 1, Int32Array.of(0, 3), 1, new Int32Array(2)), { instanceOf: RangeError });
  t.deepEqual([...status], [0, 0, 0, 0]);
});
