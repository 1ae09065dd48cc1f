// busybox udhcpc as the DHCP client of the tests: a hook script that applies
// the lease to the interface and prints what it applied on one line,
//   LEASE ip=... mask=... router=... mtu=... dns=...
// and one call that gets a lease in a container namespace.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNs } from '../../src/demo/exec.js';
import { PATIENCE_MS } from '../../src/demo/lab.js';

const SCRIPT = `#!/bin/sh
# udhcpc hook: apply the lease, echo what was applied
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "\${router%% *}" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    echo "LEASE ip=$ip mask=$mask router=$router mtu=$mtu dns=$dns"
    ;;
esac
exit 0
`;

/** Writes the hook into `dir` and returns its path. */
export function udhcpcScript(dir: string): string {
  const script = join(dir, 'udhcpc.sh');
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
  return script;
}

/** One lease for eth0 in `ns` (20 discovers, 2 s apart, then gives up): udhcpc's output with the LEASE line. */
export async function udhcpcLease(ns: string, script: string): Promise<string> {
  return (await inNs(ns, 'busybox', ['udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '20', '-T', '2', '-s', script], PATIENCE_MS)).stdout;
}
