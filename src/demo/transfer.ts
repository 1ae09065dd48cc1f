// Traffic for the lab: run inside a container namespace with
// `ip netns exec`. Every mode ends with one JSON line with what it saw, so
// the caller can compare checksums of what was sent and what arrived. Before
// it, while bytes move, a `{"progress": N}` line at most once a second: the
// caller (lab.ts) ends a transfer only when it stops making progress, never
// after a fixed time, because a busy machine is slow, not broken.
//   tcp-server PORT                 receive one connection, hash it
//   tcp-client HOST PORT BYTES      send BYTES random bytes, hash them
//   udp-server PORT COUNT FROM TO   receive datagrams sent from FROM to TO:PORT, check each
//                                   one (intact, once, addressed here); ends when all COUNT
//                                   arrived, or once stdin says "sent" and the
//                                   datagrams have stopped coming (quiet for QUIET_MS)
//   udp-client HOST PORT COUNT SIZE [FLOWS]  send COUNT numbered datagrams from FLOWS source ports
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';

const [mode, ...args] = process.argv.slice(2);
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

/** Reports `count()` once a second while it changes. */
function progress(count: () => number): NodeJS.Timeout {
  let last = -1;
  const t = setInterval(() => { const n = count(); if (n !== last) { last = n; out({ progress: n }); } }, 1000);
  t.unref();
  return t;
}

function tcpServer(port: number): void {
  const server = createServer((sock) => {
    const h = createHash('sha256');
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    const ticker = progress(() => bytes);
    sock.on('data', (d: Buffer) => { h.update(d); bytes += d.length; });
    sock.on('end', () => {
      clearInterval(ticker);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      out({ bytes, sha256: h.digest('hex'), seconds });
      sock.end();
      server.close();
    });
    sock.on('error', (e) => { out({ error: e.message, bytes }); process.exit(1); });
  });
  server.listen(port, () => out({ listening: port }));
}

function tcpClient(host: string, port: number, total: number): void {
  const h = createHash('sha256');
  const sock = connect(port, host);
  let sent = 0;
  const t0 = process.hrtime.bigint();
  progress(() => sent);
  const pump = () => {
    while (sent < total) {
      const chunk = randomBytes(Math.min(256 * 1024, total - sent));
      h.update(chunk);
      sent += chunk.length;
      if (!sock.write(chunk)) { sock.once('drain', pump); return; }
    }
    sock.end();
  };
  sock.on('connect', pump);
  sock.on('close', () => out({ bytes: sent, sha256: h.digest('hex'), seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
  sock.on('error', (e) => { out({ error: e.message, bytes: sent }); process.exit(1); });
}

/**
 * A datagram carries its sequence number, the address and port it is sent
 * to (so one that reaches the wrong receiver is recognised), then a pattern
 * derived from the sequence number (so any changed byte is).
 */
const HEADER = 10;
function fill(buf: Buffer, seq: number, to: string, port: number): void {
  buf.writeUInt32BE(seq, 0);
  to.split('.').forEach((o, i) => { buf[4 + i] = Number(o); });
  buf.writeUInt16BE(port, 8);
  for (let i = HEADER; i < buf.length; i++) buf[i] = (seq + i) & 255;
}

/** How long the receiver waits, once the sender is done, for datagrams still queued on the way. */
const QUIET_MS = 3000;

function udpServer(port: number, count: number, from: string, me: string): void {
  const sock = createSocket('udp4');
  const seen = new Set<number>();
  let bad = 0;
  let duplicates = 0;
  let misdelivered = 0;
  let sent = false;
  let quiet: NodeJS.Timeout | undefined;
  const ticker = progress(() => seen.size);
  const finish = () => {
    clearTimeout(quiet);
    clearInterval(ticker);
    out({ received: seen.size, lost: count - seen.size, bad, duplicates, misdelivered });
    sock.close();
    process.stdin.destroy();
  };
  // Only once the sender is done does silence mean the rest is lost.
  const arm = () => { if (sent) { clearTimeout(quiet); quiet = setTimeout(finish, QUIET_MS); } };
  sock.on('message', (msg: Buffer, rinfo) => {
    const seq = msg.length >= HEADER ? msg.readUInt32BE(0) : -1;
    const to = msg.length >= HEADER ? `${msg[4]}.${msg[5]}.${msg[6]}.${msg[7]}` : '';
    const expect = Buffer.alloc(msg.length);
    if (seq >= 0) fill(expect, seq, to, msg.readUInt16BE(8));
    if (seq < 0 || seq >= count || !expect.equals(msg)) bad++;
    else if (to !== me || msg.readUInt16BE(8) !== port || rinfo.address !== from) misdelivered++;
    else if (seen.has(seq)) duplicates++;
    else seen.add(seq);
    arm(); // even after the last one: a duplicate arrives late
  });
  const senderDone = () => { if (!sent) { sent = true; arm(); } };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => { if (d.includes('sent')) senderDone(); });
  process.stdin.on('end', senderDone); // the caller is gone: nothing more will be sent
  sock.bind(port, () => out({ listening: port }));
}

async function udpClient(host: string, port: number, count: number, size: number, flows: number): Promise<void> {
  if (size < HEADER) throw new Error(`udp-client: size ${size} < ${HEADER}`);
  // Several sockets (source ports) make several flows, which the kernel and
  // fand's workers spread over their queues.
  const socks = Array.from({ length: flows }, () => createSocket('udp4'));
  const buf = Buffer.alloc(size);
  const ticker = progress(() => seq);
  let seq = 0;
  for (; seq < count; seq++) {
    fill(buf, seq, host, port);
    const sock = socks[seq % flows]!;
    await new Promise<void>((r, j) => sock.send(buf, port, host, (e) => (e ? j(e) : r())));
    if (seq % 20 === 19) await new Promise((r) => setTimeout(r, 2)); // pace: this is about integrity, not rate
  }
  clearInterval(ticker);
  for (const s of socks) s.close();
  out({ sent: count });
}

switch (mode) {
  case 'tcp-server': tcpServer(Number(args[0])); break;
  case 'tcp-client': tcpClient(args[0]!, Number(args[1]), Number(args[2])); break;
  case 'udp-server': udpServer(Number(args[0]), Number(args[1]), args[2]!, args[3]!); break;
  case 'udp-client': void udpClient(args[0]!, Number(args[1]), Number(args[2]), Number(args[3] ?? 1200), Number(args[4] ?? 1)); break;
  default: process.stderr.write(`usage: transfer tcp-server|tcp-client|udp-server|udp-client ...\n`); process.exit(2);
}
