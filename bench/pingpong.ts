// UDP ping-pong for round-trip latency where sockperf is not available.
//   node dist/bench/pingpong.js server ADDRESS PORT
//     echoes every datagram back to its sender; prints "listening" when bound.
//   node dist/bench/pingpong.js client ADDRESS PORT SECONDS
//     sends one 64-byte datagram at a time for SECONDS, timing each round trip
//     with process.hrtime.bigint; prints {"avgUs","p99Us","samples","lost"}.
//     The first 0.2 s are warm-up and not counted; a reply missing for 100 ms
//     counts as lost and the next datagram goes out.
import { createSocket } from 'node:dgram';

const [mode, address = '', portArg = '', secondsArg = '5'] = process.argv.slice(2);
const port = Number(portArg);

if (mode === 'server') {
  const sock = createSocket('udp4');
  sock.on('message', (msg, from) => sock.send(msg, from.port, from.address));
  sock.bind(port, address, () => process.stdout.write('listening\n'));
} else if (mode === 'client') {
  const sock = createSocket('udp4');
  const payload = Buffer.alloc(64);
  const rtts: number[] = [];
  let lost = 0;
  let seq = 0;
  let onReply: ((seq: number) => void) | undefined;
  sock.on('message', (msg) => onReply?.(msg.readUInt32BE(0)));
  await new Promise<void>((r) => sock.connect(port, address, r));
  const start = process.hrtime.bigint();
  const warmupEnd = start + 200_000_000n;
  const end = start + BigInt(Math.round(Number(secondsArg) * 1e9));
  for (let now = start; now < end; now = process.hrtime.bigint()) {
    payload.writeUInt32BE(++seq >>> 0, 0);
    const sent = process.hrtime.bigint();
    const want = seq;
    const got = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 100);
      onReply = (s) => { if (s === want) { clearTimeout(timer); resolve(true); } };
      sock.send(payload);
    });
    const rtt = process.hrtime.bigint() - sent;
    if (sent < warmupEnd) continue;
    if (got) rtts.push(Number(rtt) / 1000);
    else lost++;
  }
  sock.close();
  rtts.sort((a, b) => a - b);
  const avgUs = rtts.reduce((a, b) => a + b, 0) / rtts.length;
  const p99Us = rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * 0.99))]!;
  process.stdout.write(JSON.stringify({ avgUs, p99Us, samples: rtts.length, lost }) + '\n');
} else {
  process.stderr.write('usage: pingpong.js server ADDRESS PORT | client ADDRESS PORT SECONDS\n');
  process.exit(2);
}
