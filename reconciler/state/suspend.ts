/**
 * Suspension: an operator stops the agent from changing the host (apply, drift healing, secret re-renders) with a
 * reason, until `resume`. Persisted as `<stateDir>/suspend.json`, so it survives restarts and shows in `status`.
 * Also the one gate the daemon asks before applying: suspension first, then the maintenance windows.
 */
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from '../host/host.js';
import { applyAllowed, type MaintenanceConfig } from '../config/schedule.js';
import { writeFileAtomic } from './state-store.js';

/** `suspend.json`: why, since when and by whom the host is suspended. */
export interface Suspension {
  reason: string;
  /** ISO time the suspension began. */
  at: string;
  by?: string;
}

/** The suspension file of a state dir. */
export function suspensionPath(stateDir: string): string {
  return join(stateDir, 'suspend.json');
}

/** Suspends the host (replacing an earlier suspension); the reason must say something. */
export async function suspendHost(stateDir: string, reason: string, by?: string, now: Date = new Date()): Promise<Suspension> {
  const text = reason.trim();
  if (text === '') throw new Error('a suspension needs a reason: say why the host must not change (it is shown in status)');
  const suspension: Suspension = { reason: text, at: now.toISOString(), ...(by ? { by } : {}) };
  await writeFileAtomic(suspensionPath(stateDir), `${JSON.stringify(suspension, null, 2)}\n`);
  return suspension;
}

/** Lifts a suspension; returns the one lifted, or undefined when the host was not suspended. */
export async function resumeHost(stateDir: string): Promise<Suspension | undefined> {
  const previous = await readSuspension(stateDir);
  if (!previous) return undefined;
  await unlink(suspensionPath(stateDir)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  await syncDir(stateDir);
  return previous;
}

/**
 * The current suspension, or undefined. A suspend.json that cannot be read as one still suspends the host (it only
 * exists because someone suspended it); its reason says what is wrong, and `resume` removes it.
 */
export async function readSuspension(stateDir: string): Promise<Suspension | undefined> {
  const path = suspensionPath(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { reason: `${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): run resume to lift it`, at: new Date(0).toISOString() };
  }
  try {
    const value = JSON.parse(text) as Partial<Suspension>;
    if (typeof value.reason === 'string' && typeof value.at === 'string') {
      return { reason: value.reason, at: value.at, ...(typeof value.by === 'string' ? { by: value.by } : {}) };
    }
  } catch {
    // falls through: a damaged file still suspends
  }
  return { reason: `${path} is damaged: run resume to lift it`, at: new Date(0).toISOString() };
}

/** Whether the daemon may apply now, and if not why and until when. */
export interface ApplyGate {
  allowed: boolean;
  /** `SUSPENDED` or `MAINTENANCE_WINDOW` when refused. */
  code?: 'SUSPENDED' | 'MAINTENANCE_WINDOW';
  reason: string;
  /** When the windows refuse: the first minute they allow again (a suspension has no end time). */
  nextOpen?: Date;
}

/**
 * The gate before any change to the host. A suspension always holds (even for `reconcile --now`: resume first);
 * the maintenance windows hold unless the run is manual (`reconcile --now`), which overrides them.
 */
export function applyGate(options: { suspension?: Suspension; maintenance: MaintenanceConfig; now: Date; manual?: boolean }): ApplyGate {
  const { suspension, maintenance, now, manual } = options;
  if (suspension) {
    const by = suspension.by ? ` by ${suspension.by}` : '';
    return { allowed: false, code: 'SUSPENDED', reason: `host suspended${by} since ${suspension.at}: ${suspension.reason}` };
  }
  const decision = applyAllowed(maintenance, now);
  if (decision.allowed) return { allowed: true, reason: decision.reason };
  if (manual) return { allowed: true, reason: `manual run overrides the maintenance windows (${decision.reason})` };
  return { allowed: false, code: 'MAINTENANCE_WINDOW', reason: decision.reason, ...(decision.nextOpen ? { nextOpen: decision.nextOpen } : {}) };
}
