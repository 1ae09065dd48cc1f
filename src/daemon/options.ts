// What the daemon is started with: the fans and every option that shapes how
// they are served. Built by the CLI (src/cli/main.ts) or a test.
import type { FanSpec } from '../config/fanfile.js';
import type { DataplaneMode } from '../dataplane/dataplane.js';
import type { HostNet } from '../host/ip.js';
import type { HostEvents } from '../host/netlink/events.js';
import type { Logger } from '../log.js';

export interface DaemonOptions {
  readonly specs: readonly FanSpec[];
  readonly dataplane: DataplaneMode | 'auto';
  readonly workers: number;
  readonly mtu?: number;
  readonly runtimeDir?: string;
  readonly checkInnerSource: boolean;
  /** Userspace dataplane: direct sends to resolved next hops (default on; --no-direct-send). */
  readonly directSend?: boolean;
  /** ebpf dataplane: hand decapsulated packets straight to containers' ports (default on; --no-port-redirect). */
  readonly portRedirect?: boolean;
  /** Masquerade traffic leaving the fan (default on; --no-nat). */
  readonly nat?: boolean;
  /** HOST:PORT of the Prometheus endpoint. */
  readonly metrics?: string;
  /** Only look, never load kernel modules (for `fand plan` and `fand integrate`). */
  readonly lookOnly?: boolean;
  readonly log: Logger;
  readonly host?: HostNet;
  /** What changes on the host (rtnetlink events; default: fand's own namespace). */
  readonly events?: HostEvents;
  /** Reads the configuration again, for SIGHUP; throws on invalid input. */
  readonly reloadSpecs?: () => readonly FanSpec[];
}
