/**
 * The status document (`status.json`): what the agent last tried and what is live, why, and how long each
 * stage took, with a capped history. It is the source for `edge-reconciler status`, `/status` and the metrics.
 */
import { rename } from 'node:fs/promises';
import { EdgeError, type Stage } from '../errors.js';
import { stateDamaged, type GenerationMeta, type Pin, type StateStore } from './state-store.js';
import type { AppStatus } from './app-status.js';

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
  | 'recovered'
  | 'waiting'
  | 'halted';

/**
 * The host's place in the waves (`/status` `wave`): its 1-based wave (0: in none), the earlier wave it waits for,
 * or the failure in an earlier wave that halts it.
 */
export interface WaveStatus {
  index: number;
  waitingFor?: { wave: number; hosts: string[]; since: string };
  halted?: { wave: number; host: string; reason: string };
}

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
  /** Where the host stands in the waves, as its last gated run found it. */
  wave?: WaveStatus;
  history: RunRecord[];
  /** Each app's live release, the one before it and its last failure (hosts with app resources only). */
  apps?: AppStatus[];
}

/** How many runs the status keeps. */
export const HISTORY_LIMIT = 20;

/** What to do about a damaged status document: it only repeats the generations, so a run rebuilds it. */
export const STATUS_FIX = 'the next reconcile or `edge-reconciler recover` moves it aside and rebuilds it from the generations';

/** Reads the status document, or a fresh one; a damaged one is STATE_DAMAGED. */
export async function readStatus(store: StateStore, host: string): Promise<StatusDocument> {
  const status = await store.readJson<StatusDocument>(store.statusPath, STATUS_FIX);
  if (status === undefined) return { host, updatedAt: new Date(0).toISOString(), history: [] };
  if (typeof status !== 'object' || status === null || !Array.isArray(status.history)) {
    throw stateDamaged(store.statusPath, 'it is not a status document', STATUS_FIX);
  }
  const live = status.lastApplied;
  if (live !== undefined && (typeof live !== 'object' || live === null || !Number.isInteger(live.generation) || typeof live.revision !== 'string')) {
    throw stateDamaged(store.statusPath, 'its lastApplied names no generation', STATUS_FIX);
  }
  return status;
}

/**
 * Moves a damaged status document aside (to `status.json.damaged`), so the run can rebuild it from the
 * generations; returns where it went, or undefined when it was sound.
 */
export async function setAsideDamagedStatus(store: StateStore, host: string): Promise<string | undefined> {
  const damaged = await readStatus(store, host).then(() => false, (error: unknown) => error instanceof EdgeError && error.code === 'STATE_DAMAGED');
  if (!damaged) return undefined;
  const aside = `${store.statusPath}.damaged`;
  await rename(store.statusPath, aside);
  return aside;
}

/** A waiting run that says what the last one said (polls while suspended): it replaces it, not pushes history out. */
function repeats(previous: RunRecord | undefined, run: RunRecord): boolean {
  if (!previous || !['suspended', 'outside-window', 'pinned', 'refused', 'unchanged', 'waiting', 'halted'].includes(run.result)) return false;
  return previous.result === run.result && previous.revision === run.revision && previous.reason === run.reason;
}

/**
 * Records one run: lastAttempted, lastApplied when it applied, the pin, the capped history, and the wave (given
 * by a run that passed the wave gate or was held by it; a run that applied or found nothing to do clears a wait).
 */
export async function recordRun(
  store: StateStore,
  host: string,
  run: RunRecord,
  applied?: { revision: string; generation: number },
  wave?: WaveStatus,
  /** The apps' statuses when this run may have changed them (undefined keeps what the document says). */
  apps?: AppStatus[],
): Promise<StatusDocument> {
  const status = await readStatus(store, host);
  const pinned = await store.pin();
  const live = applied ? { ...applied, at: run.at } : await liveRecord(store, status);
  const next: StatusDocument = {
    ...status,
    host,
    updatedAt: run.at,
    lastAttempted: run,
    ...(live ? { lastApplied: live } : {}),
    history: [run, ...(repeats(status.history[0], run) ? status.history.slice(1) : status.history)].slice(0, HISTORY_LIMIT),
  };
  if (pinned) next.pinned = pinned;
  else delete next.pinned;
  if (apps && apps.length > 0) next.apps = apps;
  else if (apps) delete next.apps;
  const nextWave = wave ?? (status.wave && (run.result === 'applied' || run.result === 'unchanged') ? { index: status.wave.index } : status.wave);
  if (nextWave) next.wave = nextWave;
  await store.writeJson(store.statusPath, next);
  return next;
}

/** What `lastApplied` must say: the live generation, which the generations know even when a crash kept it out of the status. */
async function liveRecord(store: StateStore, status: StatusDocument): Promise<StatusDocument['lastApplied']> {
  const good = await store.lastGood();
  if (!good || good.generation === status.lastApplied?.generation) return status.lastApplied;
  if (status.lastApplied && good.generation < status.lastApplied.generation) return status.lastApplied;
  return { revision: good.revision, generation: good.generation, at: good.createdAt };
}

/**
 * The generation that is live on a host: the newest good one. Every run marks its generation good before it
 * writes the status document, so a crash between the two leaves the status behind, never ahead. A status that
 * names a newer generation than any good one left means that generation is gone: GENERATION_MISSING, not a
 * fresh host (which would refuse every managed file as unmanaged).
 */
export async function liveGeneration(store: StateStore, host: string): Promise<GenerationMeta | undefined> {
  const status = await readStatus(store, host);
  const good = await store.lastGood();
  const named = status.lastApplied;
  if (!named || (good && good.generation >= named.generation)) return good;
  const meta = await store.readGeneration(named.generation).catch((error: unknown) => {
    if (error instanceof EdgeError && error.code === 'GENERATION_MISSING') return undefined;
    throw error;
  });
  if (meta) return meta;
  throw new EdgeError(
    'GENERATION_MISSING',
    `the live generation ${named.generation} (${named.revision.slice(0, 12)}) is missing from ${store.dir}/generations, so the files it ` +
      'manages are unknown: restore that directory from a backup, or, to start over, move status.json aside and apply a ' +
      'revision whose resources say adopt: true for the files already on the host',
    { stage: 'fetch', retry: 'stuck' },
  );
}
