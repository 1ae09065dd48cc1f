// The control socket: a unix stream socket in a root-only directory (0700),
// itself 0600, speaking one JSON request and one JSON reply per connection.
import { createServer, createConnection, type Server } from 'node:net';
import { chmod, mkdir, rm } from 'node:fs/promises';

export type Handler = (request: { cmd: string }) => unknown;

export async function listenControl(path: string, dir: string, handle: Handler): Promise<Server> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await rm(path, { force: true }); // a stale socket from a killed daemon (liveness was checked before)
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > 4096) { sock.destroy(); return; }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let reply: unknown;
      try {
        reply = handle(JSON.parse(buf.slice(0, nl)) as { cmd: string });
      } catch (e) {
        reply = { error: (e as Error).message };
      }
      sock.end(JSON.stringify(reply) + '\n');
    });
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); resolve(); });
  });
  await chmod(path, 0o600);
  return server;
}

export class ControlError extends Error {
  constructor(message: string, readonly code?: string) { super(message); }
}

/** Sends one request; rejects with code ENOENT/ECONNREFUSED when no daemon listens, EACCES when not root. */
export function request(path: string, req: { cmd: string }, timeoutMs = 3000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new ControlError(`no answer from ${path} within ${timeoutMs} ms`, 'ETIMEDOUT')); }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => { buf += d; });
    sock.on('end', () => {
      clearTimeout(timer);
      try { resolve(JSON.parse(buf)); } catch { reject(new ControlError(`bad reply from ${path}`)); }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = e.code === 'EACCES' ? 'permission denied: the control socket is for root only'
        : e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'no fand daemon is running in this network namespace'
        : e.message;
      reject(new ControlError(`${why} (${path})`, e.code));
    });
  });
}
