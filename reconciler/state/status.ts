/**
 * The status document (`status.json`): what the agent last tried and what is live, why, and how long each
 * stage took, with a capped history. It is the source for `edge-reconciler status`, `/status` and the metrics.
 */
import type { Stage } from '../errors.js';
import type { GenerationMeta, Pin, StateStore } from './state-store.js';

/** How a reconcile ended. */
export type RunResult =
  | 'applied'
  | 'unchanged'
  | 'drifted'
  | 'pinned'
  | 'suspended'
  | 'outside-window'
  | 'refused'
  | 'invalid'
  | 'rolled-back'
  | 'failed'
  | 'recovered';

/** One reconcile, as the status document remembers it. */
export interface RunRecord {
  revision?: string;
  at: string;
  result: RunResult;
  generation?: number;
  /** The failing stage and error code, for failures. */
  stage?: Stage;
  code?: string;
  reason?: string;
  /** Managed paths that differ from the live generation (drift policy `report`). */
  drift?: string[];
  /** The health check that failed, when health failed. */
  failedCheck?: { name: string; status: string; message: string };
  durationMs: number;
  durations: Partial<Record<Stage, number>>;
}

/** `status.json`. */
export interface StatusDocument {
  host: string;
  updatedAt: string;
  lastAttempted?: RunRecord;
  /** What is live: the last generation that passed health. */
  lastApplied?: { revision: string; generation: number; at: string };
  pinned?: Pin;
  history: RunRecord[];
}

/** How many runs the status keeps. */
export const HISTORY_LIMIT = 20;

/** Reads the status document, or a fresh one. */
export async function readStatus(store: StateStore, host: string): Promise<StatusDocument> {
  return (await store.readJson<StatusDocument>(store.statusPath)) ?? { host, updatedAt: new Date(0).toISOString(), history: [] };
}

/** A waiting run that says what the last one said (polls while suspended): it replaces it, not pushes history out. */
function repeats(previous: RunRecord | undefined, run: RunRecord): boolean {
  if (!previous || !['suspended', 'outside-window', 'pinned', 'refused', 'unchanged'].includes(run.result)) return false;
  return previous.result === run.result && previous.revision === run.revision && previous.reason === run.reason;
}

/** Records one run: lastAttempted, lastApplied when it applied, the pin, and the capped history. */
export async function recordRun(
  store: StateStore,
  host: string,
  run: RunRecord,
  applied?: { revision: string; generation: number },
): Promise<StatusDocument> {
  const status = await readStatus(store, host);
  const pinned = await store.pin();
  const next: StatusDocument = {
    ...status,
    host,
    updatedAt: run.at,
    lastAttempted: run,
    ...(applied ? { lastApplied: { ...applied, at: run.at } } : {}),
    history: [run, ...(repeats(status.history[0], run) ? status.history.slice(1) : status.history)].slice(0, HISTORY_LIMIT),
  };
  if (pinned) next.pinned = pinned;
  else delete next.pinned;
  await store.writeJson(store.statusPath, next);
  return next;
}

/** The generation that is live on a host according to its status document (undefined on a fresh host). */
export async function liveGeneration(store: StateStore, host: string): Promise<GenerationMeta | undefined> {
  const status = await readStatus(store, host);
  return status.lastApplied ? store.readGeneration(status.lastApplied.generation).catch(() => undefined) : undefined;
}
