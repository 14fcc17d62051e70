/**
 * The wave gate of a running agent: before a host applies a commit it does not run yet, it asks who of the
 * earlier waves runs it. The source of truth is the forge's commit statuses when a forge is configured (with the
 * peers' `/status` as the fallback while the forge cannot be read), else the peers' `/status` over the mesh.
 * Waiting past the wave timeout halts the host for that commit.
 */
import type { DesiredState } from '../model.js';
import type { Logger, WaveGate, WaveVerdict } from '../run-context.js';
import type { WaveStatus } from '../state/status.js';
import { peerReports, type PeerSourceOptions } from './peer-source.js';
import { decideWave, describeDecision, earlierWaves, waveIndexOf, type HostReport } from './waves.js';

/** Reads what hosts report about a commit from the forge; throws when the forge cannot be read. */
export type ForgeReports = (sha: string, hosts: readonly string[]) => Promise<Map<string, HostReport>>;

/** Options of the gate. */
export interface WaveGateOptions {
  host: string;
  log: Logger;
  forge?: ForgeReports;
  /** The URL of a peer's `/status`, from its `address` in the inventory and the config (fleet-config's `peerStatusUrls`). */
  peerStatusUrl: (host: string, address: string) => string | undefined;
  isDescendant: PeerSourceOptions['isDescendant'];
  /** How long a host waits for the earlier waves before it halts (0: for ever). */
  timeoutSeconds: number;
  now?: () => Date;
}

/** How many commits the gate remembers the start of a wait for. */
const REMEMBERED = 16;

/** The gate; one per agent, so a wait's start survives from one re-check to the next. */
export class AgentWaveGate implements WaveGate {
  private readonly since = new Map<string, Date>();

  constructor(private readonly options: WaveGateOptions) {}

  /** Decides whether this host may apply `revision` now. */
  async check(revision: string, desired: DesiredState): Promise<WaveVerdict> {
    const { host, log } = this.options;
    const waves = desired.edge.waves;
    const index = waveIndexOf(waves, host);
    const earlier = earlierWaves(waves, index).flat();
    if (earlier.length === 0) return { wave: { index } };
    const reports = await this.reports(revision, earlier, desired);
    const decision = decideWave(waves, host, reports);
    if (decision.kind === 'go') {
      this.since.delete(revision);
      return { wave: { index } };
    }
    if (decision.kind === 'halted') {
      this.since.delete(revision);
      const reason = describeDecision(decision);
      return {
        hold: { result: 'halted', code: 'WAVE_HALTED', reason: `${reason}; staying on the live commit` },
        wave: { index, halted: { wave: decision.wave, host: decision.host, reason: decision.reason } },
      };
    }
    const now = this.options.now?.() ?? new Date();
    const since = this.startOfWait(revision, now);
    const waited = (now.getTime() - since.getTime()) / 1000;
    const waitingFor: WaveStatus['waitingFor'] = { wave: decision.wave, hosts: decision.hosts, since: since.toISOString() };
    // A peer's own wait is said in its first words only: waits of waits must not nest.
    const details = decision.hosts.map((member) => `${member} ${(reports.get(member)?.detail ?? 'unknown').split(' (')[0]}`).join('; ');
    if (this.options.timeoutSeconds > 0 && waited >= this.options.timeoutSeconds) {
      const reason = `wave ${decision.wave} did not run ${revision.slice(0, 12)} within ${this.options.timeoutSeconds} s (${details})`;
      log.warn({ revision, wave: decision.wave, hosts: decision.hosts }, `halted: ${reason}`);
      return {
        hold: { result: 'halted', code: 'WAVE_TIMEOUT', reason: `halted: ${reason}; staying on the live commit` },
        wave: { index, waitingFor, halted: { wave: decision.wave, host: decision.hosts[0] ?? '', reason: `timed out after ${this.options.timeoutSeconds} s` } },
      };
    }
    log.info({ revision, wave: decision.wave, hosts: decision.hosts, details }, describeDecision(decision));
    return { hold: { result: 'waiting', code: 'WAVE_WAITING', reason: `${describeDecision(decision)} (${details})` }, wave: { index, waitingFor } };
  }

  private startOfWait(revision: string, now: Date): Date {
    const known = this.since.get(revision);
    if (known) return known;
    this.since.set(revision, now);
    if (this.since.size > REMEMBERED) this.since.delete(this.since.keys().next().value as string);
    return now;
  }

  /** The forge's statuses, or the peers' `/status` without a forge or while it cannot be read. */
  private async reports(revision: string, hosts: string[], desired: DesiredState): Promise<Map<string, HostReport>> {
    const peers = (): Promise<Map<string, HostReport>> =>
      peerReports(hosts, revision, {
        statusUrlOf: (name) => this.options.peerStatusUrl(name, desired.hosts.get(name)?.address ?? ''),
        isDescendant: this.options.isDescendant,
      });
    if (!this.options.forge) return peers();
    try {
      return await this.options.forge(revision, hosts);
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message?.split('\n')[0] }, 'cannot read the commit statuses from the forge: asking the peers over the mesh');
      return peers();
    }
  }
}
