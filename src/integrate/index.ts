// `fand integrate docker|lxd|cni`: what a container engine needs to use a
// fan, from the plan's FanSummary. Pure: the CLI prints the result.
import type { FanSummary } from '../plan.js';
import { dockerNetwork } from './docker.js';
import { lxdProfile } from './lxd.js';
import { cniConflist } from './cni.js';

export { dockerNetwork, dockerPool, MAX_AUX_ADDRESSES, type DockerNetwork, type DockerPool } from './docker.js';
export { lxdProfile, type LxdProfile, type LxdProfileObject } from './lxd.js';
export { cniConflist, type CniConflist } from './cni.js';

export const INTEGRATIONS = ['docker', 'lxd', 'cni'] as const;
export type Integration = (typeof INTEGRATIONS)[number];

export function isIntegration(s: string | undefined): s is Integration {
  return (INTEGRATIONS as readonly (string | undefined)[]).includes(s);
}

/**
 * Text for one fan. docker: a shell script (notes as comments, then the
 * command); lxd: the profile YAML; cni: the conflist JSON. With `json`,
 * docker gives {name, args, command, notes} and lxd the profile object; a
 * conflist is JSON either way.
 */
export function formatIntegration(kind: Integration, f: FanSummary, json: boolean): string {
  switch (kind) {
    case 'docker': {
      const d = dockerNetwork(f);
      return json ? JSON.stringify(d, null, 2) + '\n' : [...d.notes.map((n) => `# ${n}`), d.command].join('\n') + '\n';
    }
    case 'lxd': {
      const l = lxdProfile(f);
      return json ? JSON.stringify(l.profile, null, 2) + '\n' : l.yaml;
    }
    case 'cni':
      return JSON.stringify(cniConflist(f), null, 2) + '\n';
  }
}
