// Run in a container namespace: receives one UDP datagram on PORT and prints
// its length and sha256 as JSON (after a first line {"listening": PORT}).
//   node udp-sink.js PORT
import { createSocket } from 'node:dgram';
import { createHash } from 'node:crypto';

const port = Number(process.argv[2]);
const sock = createSocket('udp4');
sock.on('message', (m: Buffer, from) => {
  process.stdout.write(JSON.stringify({ bytes: m.length, sha256: createHash('sha256').update(m).digest('hex'), from: from.address }) + '\n');
  sock.close();
});
sock.bind(port, () => process.stdout.write(JSON.stringify({ listening: port }) + '\n'));
