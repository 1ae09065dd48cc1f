// Counting the processes a daemon starts, from the kernel's own account:
// the proc connector (NETLINK_CONNECTOR, CN_IDX_PROC; include/uapi/linux/
// cn_proc.h) multicasts an event for every fork and exec on the machine.
// A fork whose parent is the daemon (or one of its descendants) and whose
// child is a new process (child pid == child tgid; a thread has its own pid
// in its parent's tgid) is a process the daemon started. Nothing is polled,
// so nothing that lives a millisecond is missed. Needs root and the initial
// network namespace (the connector exists only there).
import { endianness } from 'node:os';
import { buildMessage, NETLINK_CONNECTOR, NLMSG_DONE, type Message } from '../src/host/netlink/codec.js';
import { NetlinkSocket } from '../src/host/netlink/socket.js';

const LE = endianness() === 'LE';
const CN_IDX_PROC = 1;
const CN_VAL_PROC = 1;
const PROC_CN_MCAST_LISTEN = 1;
const PROC_EVENT_FORK = 0x1;
const PROC_EVENT_EXEC = 0x2;
/** sizeof(struct cn_msg): struct cb_id { u32 idx, val }, u32 seq, u32 ack, u16 len, u16 flags. */
const CN_MSG_LEN = 20;
/** struct proc_event: u32 what, u32 cpu, u64 timestamp_ns, then event_data. */
const EVENT_DATA = CN_MSG_LEN + 16;

export interface ForkCount {
  /** New processes whose parent is the watched process or a descendant. */
  processes: number;
  /** New threads in those processes. */
  threads: number;
  /** Programs run (exec) by those processes, by path of /proc/PID/comm at the time. */
  execs: number;
}

export class ForkCounter {
  private readonly sock: NetlinkSocket;
  private readonly family = new Set<number>();
  readonly count: ForkCount = { processes: 0, threads: 0, execs: 0 };

  constructor(root: number) {
    this.family.add(root);
    this.sock = new NetlinkSocket({ protocol: NETLINK_CONNECTOR, groups: [CN_IDX_PROC], rcvbuf: 8 << 20 });
    this.sock.onEvents = (msgs) => { for (const m of msgs) this.onEvent(m); };
    this.sock.onOverrun = () => { throw new Error('proc connector: events were lost (ENOBUFS); the count would be wrong'); };
    const body = new Uint8Array(CN_MSG_LEN + 4);
    const v = new DataView(body.buffer);
    v.setUint32(0, CN_IDX_PROC, LE);
    v.setUint32(4, CN_VAL_PROC, LE);
    v.setUint16(16, 4, LE);
    v.setUint32(CN_MSG_LEN, PROC_CN_MCAST_LISTEN, LE);
    // The connector takes its requests as NLMSG_DONE messages (cn_proc.c, drivers/connector).
    void this.sock.request('proc connector listen', (seq) => buildMessage(NLMSG_DONE, 0, seq, body), { timeoutMs: 200 }).catch(() => undefined);
  }

  private onEvent(m: Message): void {
    if (m.payload.length < EVENT_DATA + 8) return;
    const v = new DataView(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
    if (v.getUint32(0, LE) !== CN_IDX_PROC) return;
    const what = v.getUint32(CN_MSG_LEN, LE);
    if (what === PROC_EVENT_FORK && m.payload.length >= EVENT_DATA + 16) {
      const parentTgid = v.getInt32(EVENT_DATA + 4, LE);
      const childPid = v.getInt32(EVENT_DATA + 8, LE);
      const childTgid = v.getInt32(EVENT_DATA + 12, LE);
      if (!this.family.has(parentTgid)) return;
      if (childPid === childTgid) { this.count.processes++; this.family.add(childTgid); } else this.count.threads++;
    } else if (what === PROC_EVENT_EXEC) {
      if (this.family.has(v.getInt32(EVENT_DATA + 4, LE)) && !this.isRoot(v.getInt32(EVENT_DATA + 4, LE))) this.count.execs++;
    }
  }

  private isRoot(tgid: number): boolean {
    return [...this.family][0] === tgid;
  }

  /** Starts counting from zero. */
  reset(): void {
    this.count.processes = 0;
    this.count.threads = 0;
    this.count.execs = 0;
  }

  close(): void {
    this.sock.close();
  }
}
