// IPv4 addresses as unsigned 32-bit integers. Strings exist only at the
// edges (CLI, config, logs); everything in between, the packet path above
// all, works on numbers.

/** An IPv4 address as an unsigned 32-bit integer (host byte order). */
export type Ipv4 = number;

/** A network: address with host bits clear, and prefix length 0..32. */
export interface Cidr {
  readonly network: Ipv4;
  readonly prefix: number;
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses dotted-quad notation; returns undefined when it is not one. */
export function parseIpv4(text: string): Ipv4 | undefined {
  const m = DOTTED.exec(text);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part[0] === '0') return undefined; // no octal-looking forms
    const o = Number(part);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  return v >>> 0;
}

export function formatIpv4(a: Ipv4): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** The netmask of a prefix length, as a uint32. */
export function maskOf(prefix: number): Ipv4 {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Host bits of a prefix length (the complement of the mask). */
export function hostMaskOf(prefix: number): Ipv4 {
  return ~maskOf(prefix) >>> 0;
}

export function contains(c: Cidr, a: Ipv4): boolean {
  return ((a & maskOf(c.prefix)) >>> 0) === c.network;
}

/** Last address of a network (its broadcast address). */
export function lastOf(c: Cidr): Ipv4 {
  return (c.network | hostMaskOf(c.prefix)) >>> 0;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(p);
  return ((a.network & m) >>> 0) === ((b.network & m) >>> 0);
}

export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.network)}/${c.prefix}`;
}
