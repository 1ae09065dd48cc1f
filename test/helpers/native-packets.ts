// Tiny IPv4/UDP builders for the native tests, self-contained on purpose:
// they must not depend on the dataplane code the addon serves.

export function ipv4Checksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += (b[off + i]! << 8) | b[off + i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ip(text: string): number {
  return text.split('.').reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
}

/** Writes a 20-byte IPv4 header at b[off] with a correct checksum. */
export function writeIpv4(b: Uint8Array, off: number, o: {
  src: number; dst: number; proto: number; totalLength: number; id?: number; ttl?: number;
}): void {
  const v = new DataView(b.buffer, b.byteOffset + off, 20);
  v.setUint8(0, 0x45);
  v.setUint8(1, 0);
  v.setUint16(2, o.totalLength);
  v.setUint16(4, o.id ?? 1);
  v.setUint16(6, 0x4000); // DF
  v.setUint8(8, o.ttl ?? 64);
  v.setUint8(9, o.proto);
  v.setUint16(10, 0);
  v.setUint32(12, o.src);
  v.setUint32(16, o.dst);
  v.setUint16(10, ipv4Checksum(b, off, 20));
}

/** IPv4 + UDP (checksum 0 = none) + payload at b[off]; returns the length. */
export function writeUdp(b: Uint8Array, off: number, src: number, dst: number,
  sport: number, dport: number, payload: Uint8Array): number {
  const len = 28 + payload.length;
  writeIpv4(b, off, { src, dst, proto: 17, totalLength: len });
  const v = new DataView(b.buffer, b.byteOffset + off + 20, 8);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, 8 + payload.length);
  v.setUint16(6, 0);
  b.set(payload, off + 28);
  return len;
}

/** O_NONBLOCK and O_CLOEXEC of an fd of this process, from /proc. */
export async function fdFlags(fd: number): Promise<{ nonblock: boolean; cloexec: boolean }> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
  const flags = parseInt(/^flags:\s*([0-7]+)/m.exec(text)![1]!, 8);
  return { nonblock: (flags & 0o4000) !== 0, cloexec: (flags & 0o2000000) !== 0 };
}
