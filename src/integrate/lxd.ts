// An LXD profile that plugs an instance's eth0 into the fan bridge.
import type { FanSummary } from '../plan.js';
import { checkName, fanTitle } from './common.js';

export interface LxdProfileObject {
  readonly name: string;
  readonly description: string;
  readonly config: Record<string, string>;
  readonly devices: {
    readonly eth0: { readonly type: 'nic'; readonly nictype: 'bridged'; readonly parent: string; readonly mtu: string };
  };
}

export interface LxdProfile {
  readonly profile: LxdProfileObject;
  /** For `lxc profile edit NAME < file`; comment lines explain the steps. */
  readonly yaml: string;
}

export function lxdProfile(f: FanSummary, name: string = f.bridge): LxdProfile {
  checkName(name, 'LXD profile');
  const profile: LxdProfileObject = {
    name,
    description: `fand: ${fanTitle(f)}`,
    config: {},
    // LXD device options are strings, the MTU included.
    devices: { eth0: { type: 'nic', nictype: 'bridged', parent: f.bridge, mtu: String(f.mtu) } },
  };
  const d = profile.devices.eth0;
  const lines = [
    `# LXD profile for ${fanTitle(f)}.`,
    `#   lxc profile create ${name} && lxc profile edit ${name} < THIS-FILE`,
    `#   lxc launch IMAGE NAME --profile default --profile ${name}`,
    `# The bridge is fand's, not LXD-managed: LXD hands out no addresses on it.`,
    `# Give each instance a static address in ${f.containers}, /${(f.subnet ?? f.slice).split('/')[1]}, gateway ${f.bridgeAddress}.`,
    `name: ${yamlScalar(profile.name)}`,
    `description: ${yamlScalar(profile.description)}`,
    'config: {}',
    'devices:',
    '  eth0:',
    `    type: ${d.type}`,
    `    nictype: ${d.nictype}`,
    `    parent: ${yamlScalar(d.parent)}`,
    `    mtu: ${yamlScalar(d.mtu)}`,
  ];
  return { profile, yaml: lines.join('\n') + '\n' };
}

/**
 * A YAML scalar that reads back as this string: plain when it cannot be
 * mistaken for a number, boolean or null or hold a special character, else
 * double-quoted (JSON's string syntax is valid YAML).
 */
export function yamlScalar(s: string): string {
  const plain = /^[A-Za-z_][A-Za-z0-9_.\/-]*$/.test(s) && !/^(true|false|yes|no|on|off|null|y|n)$/i.test(s);
  return plain ? s : JSON.stringify(s);
}
