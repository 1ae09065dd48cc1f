// What a fan of each encapsulation looks like on the underlay, for the
// suites that run against both (test/suites/*): its device, its MTU, how
// tcpdump captures and prints it, and how a rogue underlay host builds raw
// packets of it (complete IPv4 packets for helpers/inject.js).
import { ENCAP_OVERHEAD, DEFAULT_VXLAN_PORT, defaultVni, type Encap } from '../../src/fan/encap.js';
import { writeU16 } from '../../src/dataplane/packet/ipv4.js';
import { ip, ipipPacket, ipv4Packet } from './packets.js';
import { arpFrame, ethFrame, vxlanPacket } from './vxlan-packets.js';

/** A locally administered unicast MAC that no lab device has: the rogue's frames. */
export const ROGUE_MAC = Uint8Array.from([0x02, 0x66, 0x66, 0, 0, 1]);
const SOME_MAC = Uint8Array.from([0x02, 0x66, 0x66, 0, 0, 2]);

export interface Wire {
  readonly encap: Encap;
  /** The fan's device: the TUN (ipip) or the TAP (vxlan). */
  readonly device: string;
  readonly mtu: number;
  /** The Encap column of `fand show` for this fan. */
  readonly showEncap: string;
  /** The tcpdump filter capturing the fan's packets (AND `also` when given). */
  filter(also?: string): string;
  /** tcpdump options to print them decoded (VXLAN on port 8472, which tcpdump takes for OTV). */
  readonly tcpdumpArgs: readonly string[];
  /** A filter matching encapsulated TCP segments with CWR set. */
  readonly cwrFilter: string;
  /** How tcpdump prints one encapsulated packet from one underlay host to another carrying `inner` (a regex source). */
  line(from: string, to: string, inner: string): RegExp;
  /** A raw IPv4 packet from outerSrc to outerDst carrying the inner IPv4 packet (VXLAN: in an Ethernet frame). */
  packet(outerSrc: number, outerDst: number, inner: Uint8Array): Uint8Array;
  /** Encapsulated junk that only this encapsulation has, each with the drop reason it must be counted under. */
  own(outerSrc: number, outerDst: number, inner: Uint8Array, peerSlice: number, target: number): [string, Uint8Array][];
  /** What a truncated packet of this encapsulation is (counted as in.truncated). */
  truncated(outerSrc: number, outerDst: number, inner: Uint8Array): Uint8Array;
}

const escape = (s: string) => s.replaceAll('.', '\\.');

/** IPv4 + UDP (checksum 0: allowed for IPv4, and what Linux's vxlan devices send) around a payload. */
export function udpPacket(src: number, dst: number, sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  writeU16(u, 0, sport);
  writeU16(u, 2, dport);
  writeU16(u, 4, u.length);
  u.set(payload, 8);
  return ipv4Packet({ src, dst, proto: 17, ttl: 64, df: false, id: 0, payload: u });
}

const ipipWire: Wire = {
  encap: 'ipip',
  device: 'ftun-250',
  mtu: 1500 - ENCAP_OVERHEAD.ipip,
  showEncap: 'ipip',
  filter: (also) => (also ? `ip proto 4 and (${also})` : 'ip proto 4'),
  tcpdumpArgs: [],
  // inner TCP flags of an IPIP packet without options: 20 (outer) + 20 (inner) + 13
  cwrFilter: 'ip proto 4 and ip[53] & 0x80 != 0',
  line: (from, to, inner) => new RegExp(`IP ${escape(from)} > ${escape(to)}: IP ${inner}`),
  packet: (src, dst, inner) => ipipPacket(src, dst, inner),
  own: () => [],
  truncated: (src, dst, inner) => ipipPacket(src, dst, inner.slice(0, 12)),
};

function vxlanWire(overlay: string): Wire {
  const vni = defaultVni({ network: ip(overlay.split('/')[0]!), prefix: Number(overlay.split('/')[1]) });
  const port = DEFAULT_VXLAN_PORT;
  const wrap = (src: number, dst: number, payload: Uint8Array) => udpPacket(src, dst, 40000, port, payload);
  // An IPv4 packet in an IPv4 frame; anything else (version 6) in an IPv6 one.
  const frame = (inner: Uint8Array) => ethFrame(SOME_MAC, ROGUE_MAC, inner[0]! >>> 4 === 4 ? 0x0800 : 0x86dd, inner);
  return {
    encap: 'vxlan',
    device: 'fvx-250',
    mtu: 1500 - ENCAP_OVERHEAD.vxlan,
    showEncap: `vxlan ${vni}:${port}`,
    filter: (also) => (also ? `udp port ${port} and (${also})` : `udp port ${port}`),
    tcpdumpArgs: ['-T', 'vxlan'],
    // inner TCP flags: from the UDP header, 8 (UDP) + 8 (VXLAN) + 14 (Ethernet) + 20 (IPv4) + 13
    cwrFilter: `udp port ${port} and udp[63] & 0x80 != 0`,
    line: (from, to, inner) => new RegExp(`IP ${escape(from)}\\.\\d+ > ${escape(to)}\\.${port}: VXLAN, flags \\[I\\] \\(0x08\\), vni ${vni}\\n(?:[^\\n]*\\n)?IP ${inner}`),
    packet: (src, dst, inner) => wrap(src, dst, vxlanPacket(vni, frame(inner))),
    own: (src, dst, inner, peerSlice, target) => {
      const badFlags = vxlanPacket(vni, frame(inner));
      badFlags[0] = 0x88;
      const reserved = vxlanPacket(vni, frame(inner));
      reserved[7] = 1;
      const badArp = arpFrame(1, ROGUE_MAC, peerSlice, new Uint8Array(6), target);
      badArp[14 + 7] = 9; // operation 9
      return [
        ['in.vni', wrap(src, dst, vxlanPacket(vni ^ 1, frame(inner)))],
        ['in.vxlan-header', wrap(src, dst, badFlags)],
        ['in.vxlan-header', wrap(src, dst, reserved)],
        ['in.arp-malformed', wrap(src, dst, vxlanPacket(vni, badArp))],
        // an ARP request speaking for a slice that is not the sender's
        ['in.spoofed-source', wrap(src, dst, vxlanPacket(vni, arpFrame(1, ROGUE_MAC, peerSlice, new Uint8Array(6), target)))],
      ];
    },
    truncated: (src, dst) => wrap(src, dst, Uint8Array.of(0x08, 0, 0, 0)),
  };
}

export function wireFor(encap: Encap, overlay = '250.0.0.0/8'): Wire {
  return encap === 'vxlan' ? vxlanWire(overlay) : ipipWire;
}
