// Run inside a network namespace holding a multi-queue TUN device argv[2]
// (up, 10.99.0.1/24). Opens two queues, reads a UDP datagram sent to
// 10.99.0.2, writes one back to 10.99.0.1, prints the findings as JSON.
import dgram from 'node:dgram';
import { once } from 'node:events';
import { native, isNativeError } from '../../src/native/index.js';
import { fdFlags, ip, writeUdp } from './native-packets.js';

const name = process.argv[2]!;
const out: Record<string, unknown> = {};
const { POLLIN } = native.constants;
const queues = [native.tunOpen(name, true, false), native.tunOpen(name, true, false)];
out.flags = await fdFlags(queues[0]!);
try {
  native.tunOpen(name, false, false);
  out.singleQueue = 'opened';
} catch (e) {
  out.singleQueue = isNativeError(e) ? { code: e.code, syscall: e.syscall, message: e.message } : String(e);
}

const sock = dgram.createSocket('udp4');
sock.bind(0, '10.99.0.1');
await once(sock, 'listening');
const port = sock.address().port;
const send = (msg: Buffer) => new Promise<void>((ok, fail) =>
  sock.send(msg, 9999, '10.99.0.2', (err) => (err ? fail(err) : ok())));

// Shared memory on purpose: napi_get_typedarray_info must accept SAB views.
const SLOT = 2048;
const buf = new Uint8Array(new SharedArrayBuffer(8 * SLOT));
const sizes = new Int32Array(8);
const fds = Int32Array.from(queues), events = Int32Array.of(POLLIN, POLLIN), revents = new Int32Array(2);

/** Reads both queues until match() accepts a packet (30 s: a cap for a broken path only). */
function readUntil(slot: number, headroom: number, match: (p: Uint8Array, size: number) => boolean): unknown {
  const deadline = Date.now() + 30_000; // a cap for a broken path only: the loop ends when the packets are in
  const seen: number[] = [];
  while (Date.now() < deadline) {
    if (native.poll(fds, events, revents, 2, 100) === 0) continue;
    for (let q = 0; q < 2; q++) {
      if ((revents[q]! & POLLIN) === 0) continue;
      const n = native.tunRead(fds[q]!, buf, slot, headroom, 8, sizes);
      for (let i = 0; i < n; i++) {
        const p = buf.subarray(i * slot + headroom, (i + 1) * slot);
        seen.push(sizes[i]!);
        if (match(p, sizes[i]!)) return { queue: q, size: sizes[i], seen, bytes: Array.from(p.subarray(0, Math.max(0, Math.min(sizes[i]!, 64)))) };
      }
    }
  }
  return { timeout: true, seen };
}

const isOurs = (p: Uint8Array) => p[0] === 0x45 && p[9] === 17 &&
  new DataView(p.buffer, p.byteOffset).getUint32(16) === ip('10.99.0.2');

await send(Buffer.from('hello'));
out.read = readUntil(SLOT, 16, (p, size) => size === 33 && isOurs(p));
// A packet longer than the slot: the kernel copies a prefix, tunRead reports -1.
await send(Buffer.alloc(1000, 0x61));
out.truncated = readUntil(256, 0, (_p, size) => size === -1);

// Write back: garbage (first nibble not 4 or 6 -> EINVAL) then a UDP datagram.
const payload = Buffer.from('from-tun');
buf.fill(0, 0, 16);
const len = writeUdp(buf, 100, ip('10.99.0.2'), ip('10.99.0.1'), 9999, port, payload);
const status = new Int32Array(2);
const received = once(sock, 'message');
out.written = native.tunWrite(fds[1]!, buf, Int32Array.of(0, 100), Int32Array.of(16, len), 2, status);
out.status = Array.from(status);
const timer = setTimeout(() => sock.emit('message', Buffer.from('TIMEOUT'), {}), 3000);
const [msg, rinfo] = await received;
clearTimeout(timer);
out.udp = { data: String(msg), from: `${rinfo.address}:${rinfo.port}` };

sock.close();
for (const fd of queues) native.close(fd);
console.log(JSON.stringify(out));
