// A traffic agent for one container of the mixed-fleet tier (fleet.ts),
// started once with `ip netns exec CONTAINER node agent.js SOCKET PORT`:
// each `node` start costs 0.5-1 s inside UML, so one process per container
// serves every transfer of the run instead of two per transfer.
//
// - TCP on PORT: every connection is hashed (sha256) as it arrives; when
//   the peer ends it, {from, bytes, sha256} is kept.
// - A unix socket at SOCKET (a path on the guest's /run, reachable from every
//   network namespace): one JSON request per connection, one JSON reply.
//     {"cmd":"send","to":ADDR,"port":N,"bytes":N}  sends N random bytes,
//       replies {bytes, sha256} once the peer has everything, or {error}
//     {"cmd":"received"}  replies [{from, bytes, sha256}, ...] so far
// Prints {"ready":true} once both listen.
import { createServer, connect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';

const [socketPath, portText] = process.argv.slice(2);
if (!socketPath || !portText) { process.stderr.write('usage: agent SOCKET PORT\n'); process.exit(2); }
const received: { from: string; bytes: number; sha256: string }[] = [];

const tcp = createServer((sock) => {
  const h = createHash('sha256');
  let bytes = 0;
  const from = sock.remoteAddress ?? '?';
  sock.on('data', (d: Buffer) => { h.update(d); bytes += d.length; });
  sock.on('end', () => { received.push({ from, bytes, sha256: h.digest('hex') }); sock.end(); });
  sock.on('error', () => sock.destroy());
});

function send(to: string, port: number, total: number): Promise<object> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    let sent = 0;
    const sock: Socket = connect(port, to);
    const pump = () => {
      while (sent < total) {
        const chunk = randomBytes(Math.min(64 * 1024, total - sent));
        h.update(chunk);
        sent += chunk.length;
        if (!sock.write(chunk)) { sock.once('drain', pump); return; }
      }
      sock.end();
    };
    sock.on('connect', pump);
    // 'close' after the peer ended its side: it has read everything.
    sock.on('close', (hadError) => resolve(hadError ? { error: 'connection closed with an error', bytes: sent } : { bytes: sent, sha256: h.digest('hex') }));
    sock.on('error', (e) => resolve({ error: e.message, bytes: sent }));
    sock.resume(); // the peer sends nothing, but its FIN must be read
  });
}

rmSync(socketPath, { force: true });
const control = createServer((c) => {
  let buf = '';
  c.setEncoding('utf8');
  c.on('data', (d: string) => {
    buf += d;
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    const req = JSON.parse(buf.slice(0, nl)) as { cmd: string; to?: string; port?: number; bytes?: number };
    const reply = req.cmd === 'send'
      ? send(req.to!, req.port!, req.bytes!)
      : Promise.resolve(req.cmd === 'received' ? received : { error: `unknown command ${req.cmd}` });
    void reply.then((r) => c.end(JSON.stringify(r) + '\n'));
  });
  c.on('error', () => c.destroy());
});

let listening = 0;
const ready = () => { if (++listening === 2) process.stdout.write(JSON.stringify({ ready: true }) + '\n'); };
tcp.listen(Number(portText), ready);
control.listen(socketPath, ready);
process.on('SIGTERM', () => { rmSync(socketPath, { force: true }); process.exit(0); });
