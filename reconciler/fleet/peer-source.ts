/**
 * The peers' `/status` over the mesh as a wave source: each host of an earlier wave is asked, with a short
 * timeout, what it runs and what it last did with the commit. A peer that runs the commit or a descendant of it
 * reports success; one whose recent runs refused or rolled the commit back reports failure; anything else
 * (it has not fetched it yet, it is held, it does not answer) is not done yet.
 */
import { fetchPeerStatus } from './fleet-gather.js';
import type { HostReport } from './waves.js';

/** The results of a peer's run that condemn the commit it ran on. */
const FAILED_RESULTS = new Set(['rolled-back', 'invalid', 'refused']);

/** How long one peer may take to answer `/status`. */
export const PEER_TIMEOUT_MS = 3_000;

/** The part of a peer's `/status` that the gate reads. */
interface PeerStatus {
  lastApplied?: { revision?: unknown };
  history?: { revision?: unknown; result?: unknown; code?: unknown }[];
}

/** Options of the peer source. */
export interface PeerSourceOptions {
  /** The URL of each peer's `/status` (`http://100.64.0.21:9321/status`), as the fleet page dials it. */
  statusUrlOf: (host: string) => string | undefined;
  /** Whether `revision` is `ancestor` or descends from it, by the local mirror (false when unknown). */
  isDescendant: (ancestor: string, revision: string) => Promise<boolean>;
  timeoutMs?: number;
}

/** Asks each host for its `/status` and judges it against `revision`. Never throws: a silent peer is `unknown`. */
export async function peerReports(hosts: readonly string[], revision: string, options: PeerSourceOptions): Promise<Map<string, HostReport>> {
  const entries = await Promise.all(hosts.map(async (host) => [host, await peerReport(host, revision, options)] as const));
  return new Map(entries);
}

async function peerReport(host: string, revision: string, options: PeerSourceOptions): Promise<HostReport> {
  const url = options.statusUrlOf(host);
  if (!url) return { state: 'unknown', detail: 'no address' };
  let status: PeerStatus;
  try {
    // The page's reader: JSON only, at most 1 MiB, no redirects, within the timeout.
    status = (await fetchPeerStatus(url, options.timeoutMs ?? PEER_TIMEOUT_MS)) as PeerStatus;
  } catch (error) {
    return { state: 'unknown', detail: `unreachable (${(error as Error).message})` };
  }
  if (typeof status !== 'object' || status === null) return { state: 'unknown', detail: 'its /status is not a status document' };
  return judgePeer(status, revision, options.isDescendant);
}

/** Judges one peer's status document against `revision`. */
export async function judgePeer(status: PeerStatus, revision: string, isDescendant: PeerSourceOptions['isDescendant']): Promise<HostReport> {
  const live = typeof status.lastApplied?.revision === 'string' ? status.lastApplied.revision : undefined;
  if (live === revision) return { state: 'success', detail: 'runs it' };
  if (live && (await isDescendant(revision, live).catch(() => false))) return { state: 'success', detail: `runs a descendant (${live.slice(0, 12)})` };
  const last = (status.history ?? []).find((run) => run.revision === revision);
  if (last && typeof last.result === 'string' && FAILED_RESULTS.has(last.result)) {
    return { state: 'failure', detail: `${last.result}${typeof last.code === 'string' ? ` ${last.code}` : ''}` };
  }
  if (last && typeof last.result === 'string') return { state: 'pending', detail: last.result };
  return { state: 'pending', detail: 'has not taken it yet' };
}
