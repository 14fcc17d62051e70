/**
 * Waves, the pure part: which wave a host is in, and whether it may apply a commit given what the hosts of the
 * earlier waves report for it. A failure anywhere before halts; otherwise the first earlier wave that is not done
 * is what the host waits for; a host in no wave never waits.
 */

/** What one host reports about a commit (from the forge's statuses or its own `/status`). */
export interface HostReport {
  /** `success`: it runs the commit (or a descendant); `failure`: it refused or rolled it back; else not yet. */
  state: 'success' | 'failure' | 'pending' | 'unknown';
  /** Why, in a few words (the forge's description, the peer's result, or why it could not be asked). */
  detail?: string;
}

/** The `wave` field of the status document and `/status` (see contracts: 1-based index, 0 = in no wave). */
export interface WaveStatus {
  index: number;
  waitingFor?: { wave: number; hosts: string[]; since: string };
  halted?: { wave: number; host: string; reason: string };
}

/** What the gate decided for one commit. */
export type WaveDecision =
  | { kind: 'go'; index: number }
  | { kind: 'waiting'; index: number; wave: number; hosts: string[] }
  | { kind: 'halted'; index: number; wave: number; host: string; reason: string };

/** The 1-based wave of `host` in `waves`, 0 when it is in none. */
export function waveIndexOf(waves: readonly (readonly string[])[], host: string): number {
  return waves.findIndex((wave) => wave.includes(host)) + 1;
}

/** The hosts of the waves before `index` (1-based), wave by wave. */
export function earlierWaves(waves: readonly (readonly string[])[], index: number): string[][] {
  return index <= 1 ? [] : waves.slice(0, index - 1).map((wave) => [...wave]);
}

/**
 * Decides from the reports of the earlier waves' hosts: halted on the first failure (in wave order), waiting for
 * the first wave with a host that has not reported success, go when all have.
 */
export function decideWave(waves: readonly (readonly string[])[], host: string, reports: ReadonlyMap<string, HostReport>): WaveDecision {
  const index = waveIndexOf(waves, host);
  const earlier = earlierWaves(waves, index);
  for (const [i, members] of earlier.entries()) {
    for (const member of members) {
      const report = reports.get(member);
      if (report?.state === 'failure') return { kind: 'halted', index, wave: i + 1, host: member, reason: report.detail ?? 'failed' };
    }
  }
  for (const [i, members] of earlier.entries()) {
    const notDone = members.filter((member) => reports.get(member)?.state !== 'success');
    if (notDone.length > 0) return { kind: 'waiting', index, wave: i + 1, hosts: notDone };
  }
  return { kind: 'go', index };
}

/** The line people read in `status`, `/status` and the logs. */
export function describeDecision(decision: WaveDecision): string {
  if (decision.kind === 'waiting') return `waiting for wave ${decision.wave}: ${decision.hosts.join(', ')}`;
  if (decision.kind === 'halted') return `halted: wave ${decision.wave} failed on ${decision.host} (${decision.reason})`;
  return decision.index === 0 ? 'in no wave' : `wave ${decision.index}: the earlier waves run this commit`;
}
