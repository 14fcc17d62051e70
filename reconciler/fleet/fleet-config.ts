/**
 * The fleet settings of a host config: the peers' agent port (`fleet.peerPort`, else the port of `listen`: every
 * agent of a fleet usually listens on the same one), their timeout and the page's refresh.
 */
import { parseListen, type HostConfig } from '../config/host-config.js';
import type { FleetSource } from './fleet-gather.js';

/** The port every agent listens on when `listen` says none (the default listen's). */
const DEFAULT_AGENT_PORT = 9321;

/** The gathering source of a host config; `selfStatus` reads this host's status document. */
export function fleetSourceFromConfig(config: HostConfig, selfStatus: () => Promise<object>, redact?: (text: string) => string): FleetSource {
  const fleet = config.fleet ?? { peerTimeoutSeconds: 2, refreshSeconds: 30 };
  const listenPort = parseListen(config.listen)?.port;
  return {
    repo: config.repo,
    ...(config.path ? { path: config.path } : {}),
    stateDir: config.stateDir,
    host: config.host,
    selfStatus,
    peerPort: fleet.peerPort ?? (listenPort ? listenPort : DEFAULT_AGENT_PORT),
    peerTimeoutMs: Math.round(fleet.peerTimeoutSeconds * 1000),
    refreshSeconds: fleet.refreshSeconds,
    ...(redact ? { redact } : {}),
  };
}
