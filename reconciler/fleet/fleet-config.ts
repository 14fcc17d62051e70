/**
 * The fleet page's settings from a host config: where each peer's agent answers, and the page's timeout and
 * refresh. Peers are dialled as the waves dial them: `waves.peers[host]` (a base URL), else
 * `waves.peerScheme://<address>:waves.peerPort`; a config without a `waves` section dials the port of `listen`
 * over http, as every agent of a fleet usually listens on the same port.
 */
import { parseListen, type HostConfig } from '../config/host-config.js';
import type { FleetSource } from './fleet-gather.js';
import { peerStatusUrl } from './fleet-gather.js';

/** The port an agent listens on by default. */
const DEFAULT_AGENT_PORT = 9321;

/** The part of the waves settings that says where the peers' agents are (read only when the config has it). */
interface PeerSettings {
  peerPort?: number;
  peerScheme?: 'http' | 'https';
  peers?: Record<string, string>;
}

/** The URL of each peer's `/status`, or undefined when its address is no host name or IP. */
export function peerStatusUrls(config: HostConfig): (host: string, address: string) => string | undefined {
  const waves = (config as HostConfig & { waves?: PeerSettings }).waves ?? {};
  const port = waves.peerPort ?? parseListen(config.listen)?.port ?? DEFAULT_AGENT_PORT;
  return (host, address) => {
    const given = waves.peers?.[host];
    if (given) return new URL('status', given.endsWith('/') ? given : `${given}/`).toString();
    return peerStatusUrl(address, port, waves.peerScheme ?? 'http');
  };
}

/** The gathering source of a host config; `selfStatus` reads this host's status document. */
export function fleetSourceFromConfig(config: HostConfig, selfStatus: () => Promise<object>, redact?: (text: string) => string): FleetSource {
  const fleet = config.fleet ?? { peerTimeoutSeconds: 2, refreshSeconds: 30 };
  return {
    repo: config.repo,
    ...(config.path ? { path: config.path } : {}),
    stateDir: config.stateDir,
    host: config.host,
    selfStatus,
    peerUrl: peerStatusUrls(config),
    peerTimeoutMs: Math.round(fleet.peerTimeoutSeconds * 1000),
    refreshSeconds: fleet.refreshSeconds,
    ...(redact ? { redact } : {}),
  };
}
