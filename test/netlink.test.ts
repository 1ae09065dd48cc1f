// The kernel-Fan rtnetlink messages: byte-exact against the uapi layouts,
// walked attribute by attribute, and sent to the real kernel through the
// addon (in a throwaway network namespace for the ones that change links).
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { constants, endianness } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  FAN_MAP_LEN, IFLA_FAN_MAPPING, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_IPTUN_FAN_MAP,
  IFLA_IPTUN_LINK, IFLA_IPTUN_PMTUDISC, IFLA_IPTUN_TTL, IFLA_LINKINFO, IFLA_MTU, NLM_F_ACK, NLM_F_CREATE,
  NLM_F_EXCL, NLM_F_REQUEST, RTM_DELLINK, RTM_NEWLINK, deleteLinkMessage, fanLinkMessage, fanMapIpArgs, parseAck,
} from '../src/dataplane/kernel-fan/netlink.js';
import { isNativeError, native } from '../src/native/index.js';
import { tempNetns } from './helpers/netns.js';

const run = promisify(execFile);
const E = constants.errno;
const LE = endianness() === 'LE';
// The expected bytes below are written for a little-endian host (x86, arm64):
// nlmsghdr, ifinfomsg and nlattr fields are in host byte order.
const testLE = LE ? test : test.skip;

const OVERLAY = { network: 0xfa000000, prefix: 8 };    // 250.0.0.0/8
const UNDERLAY = { network: 0xac100000, prefix: 16 };  // 172.16.0.0/16

const hex = (s: string) => Buffer.from(s.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// ---------------------------------------------------------------------------
// A strict netlink walker for the checks: every attribute starts 4-aligned,
// nla_len >= 4 and stays inside its container, padding is zero, and the
// attributes tile their container exactly.

interface Node {
  type: number;
  len: number;
  payload: Uint8Array;
  children?: Node[];
}

/** Which attribute types nest, by path of parent types ('' = top level). */
const NESTED: Record<string, number[]> = {
  '': [IFLA_LINKINFO],
  [`${IFLA_LINKINFO}`]: [IFLA_INFO_DATA],
  [`${IFLA_LINKINFO}/${IFLA_INFO_DATA}`]: [IFLA_IPTUN_FAN_MAP],
};

function walk(t: ExecutionContext, buf: Uint8Array, start: number, end: number, path: string): Node[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const nodes: Node[] = [];
  let off = start;
  while (off < end) {
    t.is(off % 4, 0, `attribute at ${off} (in ${path || 'top'}) is 4-aligned`);
    t.true(off + 4 <= end, `attribute header at ${off} fits in ${path || 'top'}`);
    const len = view.getUint16(off, LE);
    const type = view.getUint16(off + 2, LE);
    t.true(len >= 4, `nla_len ${len} of type ${type} covers its header`);
    t.true(off + len <= end, `type ${type} (len ${len} at ${off}) ends inside its container (${end})`);
    const padded = (len + 3) & ~3;
    for (let i = off + len; i < off + padded; i++) t.is(buf[i], 0, `padding byte ${i} after type ${type} is zero`);
    const node: Node = { type, len, payload: buf.subarray(off + 4, off + len) };
    if ((NESTED[path] ?? []).includes(type)) {
      node.children = walk(t, buf, off + 4, off + len, path ? `${path}/${type}` : `${type}`);
    }
    nodes.push(node);
    off += padded;
  }
  t.is(off, end, `attributes of ${path || 'top'} tile it exactly`);
  return nodes;
}

interface Parsed {
  len: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
  ifinfo: Uint8Array;
  attrs: Node[];
}

function parseMessage(t: ExecutionContext, msg: Uint8Array): Parsed {
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const len = view.getUint32(0, LE);
  t.is(len, msg.length, 'nlmsg_len equals the message length');
  t.is(len % 4, 0, 'nlmsg_len is 4-aligned');
  return {
    len,
    type: view.getUint16(4, LE),
    flags: view.getUint16(6, LE),
    seq: view.getUint32(8, LE),
    pid: view.getUint32(12, LE),
    ifinfo: msg.subarray(16, 32),
    attrs: walk(t, msg, 32, len, ''),
  };
}

const find = (nodes: Node[] | undefined, type: number) => nodes?.find((n) => n.type === type);
const cstring = (b: Uint8Array) => {
  const z = b.indexOf(0);
  return Buffer.from(b.subarray(0, z < 0 ? b.length : z)).toString();
};

// ---------------------------------------------------------------------------
// Message bytes

testLE('fanLinkMessage: byte-exact RTM_NEWLINK for 250.0.0.0/8 over 172.16.0.0/16', (t) => {
  const msg = fanLinkMessage({
    op: 'new', name: 'ftun-250', overlay: OVERLAY, underlay: UNDERLAY, underlayDev: 2, mtu: 1480, seq: 1,
  });
  const expected = hex(`
    # struct nlmsghdr (include/uapi/linux/netlink.h)
    78000000          # nlmsg_len   = 120
    1000              # nlmsg_type  = RTM_NEWLINK (16)
    0506              # nlmsg_flags = REQUEST|ACK|EXCL|CREATE = 0x0605
    01000000          # nlmsg_seq   = 1
    00000000          # nlmsg_pid   = 0
    # struct ifinfomsg (include/uapi/linux/rtnetlink.h)
    00 00 0000        # ifi_family AF_UNSPEC, pad, ifi_type
    00000000          # ifi_index 0: the device is named by IFLA_IFNAME
    00000000 00000000 # ifi_flags, ifi_change
    # IFLA_IFNAME (3): "ftun-250\\0", len 4+9 = 13, padded to 16
    0d00 0300  6674756e2d323530 00 000000
    # IFLA_MTU (4): u32 1480
    0800 0400  c8050000
    # IFLA_LINKINFO (18), len 4+12+48 = 64
    4000 1200
      # IFLA_INFO_KIND (1): "ipip\\0", len 9, padded to 12
      0900 0100  69706970 00 000000
      # IFLA_INFO_DATA (2), len 4+8+8+8+20 = 48
      3000 0200
        # IFLA_IPTUN_LINK (1): u32 ifindex 2
        0800 0100  02000000
        # IFLA_IPTUN_TTL (4): u8 0 (inherit), padded
        0500 0400  00 000000
        # IFLA_IPTUN_PMTUDISC (10): u8 1, padded
        0500 0a00  01 000000
        # IFLA_IPTUN_FAN_MAP (33), len 4+16 = 20
        1400 2100
          # IFLA_FAN_MAPPING (1): struct ip_tunnel_fan_map, len 4+12 = 16
          1000 0100
          ac100000        # __be32 underlay        172.16.0.0
          fa000000        # __be32 overlay         250.0.0.0
          1000            # __u16  underlay_prefix 16 (host order)
          0800            # __u16  overlay_prefix  8  (host order)
  `);
  t.is(expected.length, 120);
  t.is(toHex(msg), toHex(expected));
});

testLE('deleteLinkMessage: byte-exact RTM_DELLINK', (t) => {
  const expected = hex(`
    30000000 1100 0500 07000000 00000000   # len 48, RTM_DELLINK (17), REQUEST|ACK, seq 7, pid 0
    00000000 00000000 00000000 00000000    # ifinfomsg, all zero
    0d00 0300 6674756e2d323530 00 000000   # IFLA_IFNAME "ftun-250"
  `);
  t.is(toHex(deleteLinkMessage('ftun-250', 7)), toHex(expected));
});

for (const variant of [
  { op: 'new' as const, underlayDev: 2, mtu: 1480 },
  { op: 'new' as const },
  { op: 'change' as const },
]) {
  test(`fanLinkMessage (${JSON.stringify(variant)}): attributes nest and align, the fan map is the struct`, (t) => {
    const msg = fanLinkMessage({ ...variant, name: 'ftun-250', overlay: OVERLAY, underlay: UNDERLAY, seq: 0xfffffffe });
    const m = parseMessage(t, msg);
    t.is(m.type, RTM_NEWLINK);
    t.is(m.flags, NLM_F_REQUEST | NLM_F_ACK | (variant.op === 'new' ? NLM_F_CREATE | NLM_F_EXCL : 0));
    t.is(m.seq, 0xfffffffe);
    t.is(m.pid, 0);
    t.deepEqual([...m.ifinfo], new Array(16).fill(0));

    t.is(cstring(find(m.attrs, IFLA_IFNAME)!.payload), 'ftun-250');
    const mtu = find(m.attrs, IFLA_MTU);
    if (variant.mtu === undefined) t.is(mtu, undefined);
    else t.is(new DataView(mtu!.payload.buffer, mtu!.payload.byteOffset).getUint32(0, LE), variant.mtu);

    const linkinfo = find(m.attrs, IFLA_LINKINFO);
    const kind = find(linkinfo?.children, IFLA_INFO_KIND);
    t.is(kind && cstring(kind.payload), 'ipip');
    t.is(kind?.payload[kind.payload.length - 1], 0, 'kind is NUL-terminated');
    const data = find(linkinfo?.children, IFLA_INFO_DATA);
    t.truthy(data?.children);
    const link = find(data?.children, IFLA_IPTUN_LINK);
    if (variant.underlayDev === undefined) t.is(link, undefined);
    else t.is(link && new DataView(link.payload.buffer, link.payload.byteOffset).getUint32(0, LE), variant.underlayDev);
    t.deepEqual([...find(data?.children, IFLA_IPTUN_TTL)!.payload], [0]);
    t.deepEqual([...find(data?.children, IFLA_IPTUN_PMTUDISC)!.payload], [1]);

    const fanMap = find(data?.children, IFLA_IPTUN_FAN_MAP);
    t.is(fanMap?.children?.length, 1, 'one mapping');
    const mapping = fanMap!.children![0]!;
    t.is(mapping.type, IFLA_FAN_MAPPING);
    t.is(mapping.len, 4 + FAN_MAP_LEN);
    const s = new DataView(mapping.payload.buffer, mapping.payload.byteOffset, mapping.payload.byteLength);
    t.is(toHex(mapping.payload.subarray(0, 4)), 'ac100000', 'underlay 172.16.0.0, network order');
    t.is(toHex(mapping.payload.subarray(4, 8)), 'fa000000', 'overlay 250.0.0.0, network order');
    t.is(s.getUint16(8, LE), 16, 'underlay_prefix, host order');
    t.is(s.getUint16(10, LE), 8, 'overlay_prefix, host order');
  });
}

test('deleteLinkMessage: one IFLA_IFNAME, lengths consistent', (t) => {
  const m = parseMessage(t, deleteLinkMessage('nonexistent0', 3));
  t.is(m.type, RTM_DELLINK);
  t.is(m.flags, NLM_F_REQUEST | NLM_F_ACK);
  t.is(m.attrs.length, 1);
  t.is(cstring(m.attrs[0]!.payload), 'nonexistent0');
});

test('bad arguments are refused before any bytes are built, naming the fix', (t) => {
  const base = { op: 'new' as const, name: 'ftun0', overlay: OVERLAY, underlay: UNDERLAY, seq: 1 };
  t.throws(() => fanLinkMessage({ ...base, name: 'a-very-long-name0' }), { instanceOf: RangeError, message: /1-15 bytes/ });
  t.throws(() => fanLinkMessage({ ...base, name: '' }), { instanceOf: RangeError });
  t.throws(() => fanLinkMessage({ ...base, name: 'a/b' }), { instanceOf: RangeError });
  t.throws(() => fanLinkMessage({ ...base, overlay: { network: 0xfa010000, prefix: 8 } }),
    { instanceOf: RangeError, message: /250\.1\.0\.0\/8 has host bits set; use 250\.0\.0\.0\/8/ });
  t.throws(() => fanLinkMessage({ ...base, underlay: { network: 0xac100000, prefix: 33 } }), { instanceOf: RangeError });
  t.throws(() => fanLinkMessage({ ...base, seq: -1 }), { instanceOf: RangeError });
  t.throws(() => fanLinkMessage({ ...base, underlayDev: 1.5 }), { instanceOf: RangeError });
  t.throws(() => deleteLinkMessage('x'.repeat(16), 1), { instanceOf: RangeError });
});

test('fanMapIpArgs gives the patched iproute2 words', (t) => {
  t.deepEqual(fanMapIpArgs(OVERLAY, UNDERLAY), ['type', 'ipip', 'fan-map', '250.0.0.0/8:172.16.0.0/16']);
  t.deepEqual(fanMapIpArgs({ network: 0x0a000000, prefix: 8 }, { network: 0xc0a80000, prefix: 16 }),
    ['type', 'ipip', 'fan-map', '10.0.0.0/8:192.168.0.0/16']);
});

// ---------------------------------------------------------------------------
// Replies

/** An NLMSG_ERROR reply as the kernel builds it (netlink_ack in net/netlink/af_netlink.c). */
function errorReply(opts: { error: number; seq: number; echoed: Uint8Array; capped: boolean; msg?: string }): Uint8Array {
  const echo = opts.capped ? opts.echoed.subarray(0, 16) : opts.echoed;
  const tlv = opts.msg === undefined ? new Uint8Array(0) : (() => {
    const s = Buffer.from(`${opts.msg}\0`);
    const b = new Uint8Array((4 + s.length + 3) & ~3);
    const v = new DataView(b.buffer);
    v.setUint16(0, 4 + s.length, LE);
    v.setUint16(2, 1, LE);                                     // NLMSGERR_ATTR_MSG
    b.set(s, 4);
    return b;
  })();
  const len = 16 + 4 + ((echo.length + 3) & ~3) + tlv.length;
  const b = new Uint8Array(len);
  const v = new DataView(b.buffer);
  v.setUint32(0, len, LE);
  v.setUint16(4, 2, LE);                                       // NLMSG_ERROR
  v.setUint16(6, (opts.capped ? 0x100 : 0) | (opts.msg !== undefined ? 0x200 : 0), LE);
  v.setUint32(8, opts.seq, LE);
  v.setInt32(16, opts.error, LE);
  b.set(echo, 20);
  b.set(tlv, 20 + ((echo.length + 3) & ~3));
  return b;
}

test('parseAck: ACK, error with and without an extended-ACK message, and junk', (t) => {
  const req = fanLinkMessage({ op: 'new', name: 'ftun0', overlay: OVERLAY, underlay: UNDERLAY, seq: 9 });
  t.deepEqual(parseAck(errorReply({ error: 0, seq: 9, echoed: req, capped: true })), { errno: 0, seq: 9 });
  t.deepEqual(parseAck(errorReply({ error: -E.ENODEV, seq: 9, echoed: req, capped: false })), { errno: E.ENODEV, seq: 9 });
  t.deepEqual(parseAck(errorReply({ error: -E.EOPNOTSUPP, seq: 9, echoed: req, capped: false, msg: 'Unknown device type' })),
    { errno: E.EOPNOTSUPP, seq: 9, message: 'Unknown device type' });
  t.deepEqual(parseAck(errorReply({ error: -E.EINVAL, seq: 9, echoed: req, capped: true, msg: 'bad' })),
    { errno: E.EINVAL, seq: 9, message: 'bad' });
  t.throws(() => parseAck(new Uint8Array(8)), { message: /too short/ });
  t.throws(() => parseAck(req), { message: /expected NLMSG_ERROR/ });
  const lying = errorReply({ error: 0, seq: 1, echoed: req, capped: true });
  new DataView(lying.buffer).setUint32(0, 4096, LE);
  t.throws(() => parseAck(lying), { message: /nlmsg_len 4096/ });
});

// ---------------------------------------------------------------------------
// The real kernel

/** nlmsghdr only: NLMSG_NOOP, which the kernel acks when asked and otherwise ignores. */
function noop(flags: number, seq: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, 16, LE);
  v.setUint16(4, 1, LE);
  v.setUint16(6, flags, LE);
  v.setUint32(8, seq, LE);
  return b;
}

test('netlinkRequest: NLMSG_NOOP is acked; without NLM_F_ACK it times out; bad arguments throw', (t) => {
  const ack = parseAck(native.netlinkRequest(noop(NLM_F_REQUEST | NLM_F_ACK, 42), 2000));
  t.deepEqual(ack, { errno: 0, seq: 42 });

  const started = Date.now();
  const err = t.throws(() => native.netlinkRequest(noop(NLM_F_REQUEST, 43), 100));
  t.true(isNativeError(err));
  t.like(err as object, { code: 'ETIMEDOUT', errno: E.ETIMEDOUT, syscall: 'recv' });
  t.true(Date.now() - started >= 90);

  t.throws(() => native.netlinkRequest(new Uint8Array(8), 100), { instanceOf: RangeError });
  t.throws(() => native.netlinkRequest(noop(NLM_F_REQUEST, 1), -1), { instanceOf: RangeError });
  t.throws(() => native.netlinkRequest(Buffer.alloc(16).toString() as unknown as Uint8Array, 100), { instanceOf: TypeError });
});

const netns = (t: ExecutionContext) => tempNetns(t, 'fandnl');

test('kernel round trip in a namespace: RTM_DELLINK of a missing device, the fan RTM_NEWLINK', async (t) => {
  const ns = await netns(t);
  const helper = fileURLToPath(new URL('./helpers/netlink-probe.js', import.meta.url));
  const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, helper], { timeout: 20_000 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!);
  t.log(JSON.stringify(r));
  // (a) The kernel parsed our message and looked the name up: no such device.
  t.like(r.missing, { errno: E.ENODEV, seq: 1, code: 'ENODEV' });
  // (b) Depends on the kernel: EOPNOTSUPP ("Unknown device type") without
  // the ipip module, 0 on an ipip kernel without the Fan patch (attribute 33
  // is skipped), 0 with the patch. It must be a well-formed reply to seq 2.
  t.is(r.fan.seq, 2);
  t.is(typeof r.fan.errno, 'number');
  if (!existsIpip()) t.not(r.fan.errno, 0, 'no ipip support here: the kernel must refuse');
});

/** Whether this kernel has ipip loaded or built in (then (b) may succeed). */
function existsIpip(): boolean {
  try {
    return statSync('/sys/module/ipip').isDirectory();
  } catch {
    return false;
  }
}
