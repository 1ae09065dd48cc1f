// Traffic for the lab: run inside a container namespace with
// `ip netns exec`. Every mode prints one JSON line with what it saw, so the
// caller can compare checksums of what was sent and what arrived.
//   tcp-server PORT                 receive one connection, hash it
//   tcp-client HOST PORT BYTES      send BYTES random bytes, hash them
//   udp-server PORT COUNT IDLE_MS   receive datagrams, check each one's pattern
//   udp-client HOST PORT COUNT SIZE [FLOWS]  send COUNT numbered datagrams from FLOWS source ports
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';

const [mode, ...args] = process.argv.slice(2);
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

function fill(buf: Buffer, seq: number): void {
  buf.writeUInt32BE(seq, 0);
  for (let i = 4; i < buf.length; i++) buf[i] = (seq + i) & 255;
}

function tcpServer(port: number): void {
  const server = createServer((sock) => {
    const h = createHash('sha256');
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    sock.on('data', (d: Buffer) => { h.update(d); bytes += d.length; });
    sock.on('end', () => {
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

function udpServer(port: number, count: number, idleMs: number): void {
  const sock = createSocket('udp4');
  const seen = new Set<number>();
  let bad = 0;
  let duplicates = 0;
  let timer: NodeJS.Timeout | undefined;
  const finish = () => { out({ received: seen.size, bad, duplicates }); sock.close(); };
  const arm = (ms = idleMs) => { clearTimeout(timer); timer = setTimeout(finish, ms); };
  sock.on('message', (msg: Buffer) => {
    const seq = msg.length >= 4 ? msg.readUInt32BE(0) : -1;
    const expect = Buffer.alloc(msg.length);
    if (seq >= 0) fill(expect, seq);
    if (seq < 0 || !expect.equals(msg)) bad++; else if (seen.has(seq)) duplicates++; else seen.add(seq);
    arm(); // wait out the idle time even after the last one: duplicates arrive late
  });
  // The sender is started only now, and a node process can take seconds to
  // start on a loaded machine: wait longer for the first datagram.
  sock.bind(port, () => { out({ listening: port }); arm(Math.max(idleMs, 10_000)); });
}

async function udpClient(host: string, port: number, count: number, size: number, flows: number): Promise<void> {
  // Several sockets (source ports) make several flows, which the kernel and
  // fand's workers spread over their queues.
  const socks = Array.from({ length: flows }, () => createSocket('udp4'));
  const buf = Buffer.alloc(size);
  for (let seq = 0; seq < count; seq++) {
    fill(buf, seq);
    const sock = socks[seq % flows]!;
    await new Promise<void>((r, j) => sock.send(buf, port, host, (e) => (e ? j(e) : r())));
    if (seq % 20 === 19) await new Promise((r) => setTimeout(r, 2)); // pace: this is about integrity, not rate
  }
  for (const s of socks) s.close();
  out({ sent: count });
}

switch (mode) {
  case 'tcp-server': tcpServer(Number(args[0])); break;
  case 'tcp-client': tcpClient(args[0]!, Number(args[1]), Number(args[2])); break;
  case 'udp-server': udpServer(Number(args[0]), Number(args[1]), Number(args[2] ?? 2000)); break;
  case 'udp-client': void udpClient(args[0]!, Number(args[1]), Number(args[2]), Number(args[3] ?? 1200), Number(args[4] ?? 1)); break;
  default: process.stderr.write(`usage: transfer tcp-server|tcp-client|udp-server|udp-client ...\n`); process.exit(2);
}
