// A CNI network configuration list (spec 1.0.0) for a fan: the reference
// bridge plugin on fand's bridge, host-local addresses from the container
// range, and portmap for published ports.
import type { FanSummary } from '../plan.js';
import { formatIpv4 } from '../fan/ipv4.js';
import { addressesOf, checkName } from './common.js';

export interface CniConflist {
  readonly cniVersion: '1.0.0';
  readonly name: string;
  readonly plugins: readonly [CniBridge, CniPortmap];
}

export interface CniBridge {
  readonly type: 'bridge';
  readonly bridge: string;
  readonly isGateway: false;
  readonly ipMasq: false;
  readonly mtu: number;
  readonly ipam: {
    readonly type: 'host-local';
    readonly ranges: readonly (readonly { subnet: string; rangeStart: string; rangeEnd: string; gateway: string }[])[];
    readonly routes: readonly { dst: string }[];
  };
}

export interface CniPortmap {
  readonly type: 'portmap';
  readonly capabilities: { readonly portMappings: true };
}

export function cniConflist(f: FanSummary, name: string = f.bridge): CniConflist {
  checkName(name, 'CNI network');
  const a = addressesOf(f);
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge: f.bridge,
        // isGateway would make the plugin put the gateway address on the
        // bridge itself (ensureAddr in plugins/main/bridge/bridge.go): a
        // no-op while fand's address is there, an error if it differs, and a
        // second writer of fand's bridge if a container starts before fand.
        // The containers' default route does not need it: host-local returns
        // `gateway` with the address and the plugin routes 0.0.0.0/0 via it.
        isGateway: false,
        ipMasq: false,            // fand translates traffic leaving the fan
        mtu: f.mtu,               // the veth's MTU; the bridge keeps fand's
        ipam: {
          type: 'host-local',
          ranges: [[{
            subnet: a.subnetText,
            rangeStart: formatIpv4(a.first),
            rangeEnd: formatIpv4(a.last),
            gateway: formatIpv4(a.gateway),
          }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}
