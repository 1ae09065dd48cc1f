// Run inside a fresh network namespace (ip netns exec). Sends real rtnetlink
// requests through native.netlinkRequest and prints the kernel's answers as
// JSON: (a) RTM_DELLINK of a device that does not exist, (b) the fan
// RTM_NEWLINK for ftun-250 (250.0.0.0/8 over 172.16.0.0/16, bound to lo).
import { constants } from 'node:os';
import { deleteLinkMessage, fanLinkMessage, parseAck } from '../../src/dataplane/kernel-fan/netlink.js';
import { isNativeError, native } from '../../src/native/index.js';

const errnoName = (n: number) =>
  Object.entries(constants.errno).find(([, v]) => v === n)?.[0] ?? (n === 0 ? 'OK' : `E${n}`);

function ask(msg: Uint8Array, timeoutMs = 2000): Record<string, unknown> {
  try {
    const ack = parseAck(native.netlinkRequest(msg, timeoutMs));
    return { ...ack, code: errnoName(ack.errno) };
  } catch (e) {
    return isNativeError(e) ? { thrown: e.code, errno: e.errno, syscall: e.syscall, message: e.message } : { thrown: String(e) };
  }
}

const out: Record<string, unknown> = {};
out.missing = ask(deleteLinkMessage('nonexistent0', 1));
out.fan = ask(fanLinkMessage({
  op: 'new',
  name: 'ftun-250',
  overlay: { network: 0xfa000000, prefix: 8 },
  underlay: { network: 0xac100000, prefix: 16 },
  underlayDev: native.ifIndex('lo'),
  seq: 2,
}));
console.log(JSON.stringify(out));
