/**
 * The agent's part in the fleet: the wave gate it gives every run (forge statuses or the peers' `/status`), the
 * reporter that posts each outcome to the forge, and the timer that asks the earlier waves again while the host
 * waits. The forge client (octokit) is loaded only when a forge is configured.
 */
import { join } from 'node:path';
import { forgeTarget } from '../config/forge-config.js';
import type { HostConfig } from '../config/host-config.js';
import type { Logger, WaveGate } from '../run-context.js';
import type { Redactor } from '../secrets/redact.js';
import { isDescendant } from '../source/trust.js';
import type { ForgeReporter } from '../fleet/forge-reporter.js';
import { peerStatusUrls } from '../fleet/fleet-config.js';
import { AgentWaveGate, type ForgeReports } from '../fleet/wave-gate.js';

/** What the agent needs of the fleet. */
export interface Fleet {
  /** Absent when waves are off. */
  gate?: WaveGate;
  /** Absent without a forge. */
  reporter?: ForgeReporter;
}

/** Options besides the config. */
export interface FleetOptions {
  log: Logger;
  redact: () => Redactor;
  /** Told after each post to the forge (the metrics count them). */
  onPost?: (ok: boolean) => void;
}

/** Sets up the gate and the reporter of a host config. */
export async function setupFleet(config: HostConfig, options: FleetOptions): Promise<Fleet> {
  const target = forgeTarget(config);
  let reporter: ForgeReporter | undefined;
  let forgeReports: ForgeReports | undefined;
  if (target && config.forge.token) {
    const [{ ForgeClient }, { ForgeReporter: Reporter }] = await Promise.all([import('../fleet/forge-client.js'), import('../fleet/forge-reporter.js')]);
    const client = new ForgeClient({ ...target, token: config.forge.token }, options.log);
    reporter = new Reporter({
      client,
      host: config.host,
      log: options.log,
      redact: (text) => options.redact()(text),
      ...(config.forge.fleetUrl ? { fleetUrl: config.forge.fleetUrl } : {}),
      deployments: config.forge.deployments,
      ...(options.onPost ? { onAttempt: options.onPost } : {}),
    });
    forgeReports = (sha, hosts) => client.hostReports(sha, hosts);
    options.log.info({ forge: target.kind, api: target.apiUrl, repo: `${target.owner}/${target.repo}` }, `posting commit statuses to ${target.kind} ${target.owner}/${target.repo}`);
  }
  const gate = config.waves.enabled
    ? new AgentWaveGate({
        host: config.host,
        log: options.log,
        ...(forgeReports ? { forge: forgeReports } : {}),
        peerStatusUrl: peerStatusUrls(config),
        isDescendant: (ancestor, revision) => isDescendant(join(config.stateDir, 'repo.git'), ancestor, revision),
        timeoutSeconds: config.waves.timeoutSeconds,
      })
    : undefined;
  return { ...(gate ? { gate } : {}), ...(reporter ? { reporter } : {}) };
}

/** Re-triggers a run every `intervalMs` while the host waits for an earlier wave; one timer at most. */
export class WaveRecheck {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly intervalMs: number,
    private readonly trigger: () => void,
  ) {}

  /** After each run: keep asking while it waited, stop otherwise. */
  afterRun(result: string): void {
    this.stop();
    if (result !== 'waiting') return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.trigger();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops asking. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
