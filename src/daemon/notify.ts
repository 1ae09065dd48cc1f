// systemd notifications (Type=notify): READY, RELOADING, STOPPING, STATUS and
// the watchdog. The addon sends them (native/notify.c); no socket, no-op.
import { native } from '../native/index.js';
import type { Logger } from '../log.js';

export function notify(log: Logger, state: string): boolean {
  try {
    return native.sdNotify(state);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'sd_notify failed');
    return false;
  }
}

/** RELOADING=1 needs MONOTONIC_USEC (systemd 253's notify-reload). */
export function reloadingMessage(): string {
  return `RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`;
}
