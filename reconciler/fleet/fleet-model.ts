/**
 * The fleet as the page and `status --fleet` show it: one row per host of the inventory, made from that host's
 * `/status` document (its own, read from the state dir, or a peer's, read over the mesh). A peer's document is
 * untrusted input: every field is picked by type, unknown ones are ignored, long texts are cut.
 */

/** How a host is doing, worst last: the page's colour and the table's word. */
export type FleetHealth = 'ok' | 'held' | 'waiting' | 'unknown' | 'failing' | 'unreachable';

/** The wave a host is in and whether it waits (the `wave` field of /status, or edge.yaml's `waves`). */
export interface FleetWave {
  /** 1-based; undefined when the host is in no wave. */
  index?: number;
  /** `wave 2`, `no wave`, `no waves`. */
  label: string;
  /** `waiting for wave 1: lod-standby, model-gateway` or `halted: wave 1 failed on lod-standby: …`. */
  detail?: string;
  waiting: boolean;
  halted: boolean;
}

/** One app release, from /status `apps`. */
export interface FleetApp {
  app: string;
  sha: string;
  /** `failed <sha>: <reason>` when the newest release did not build or start. */
  failed?: string;
}

/** One host of the fleet. */
export interface FleetRow {
  host: string;
  address: string;
  /** The host serving the page or running the command. */
  self: boolean;
  /** Whether its /status was read; false: `problem` says why. */
  reachable: boolean;
  problem?: string;
  health: FleetHealth;
  /** A few words on the health: `healthy`, `rolled back`, `suspended`, `unreachable: timed out after 2 s`. */
  healthLabel: string;
  live?: { revision: string; short: string; subject?: string; generation?: number; since?: string };
  lastRun?: { result: string; at: string; durationMs?: number; revision?: string; code?: string; check?: string; reason?: string };
  drift: string[];
  suspended?: { reason: string; at?: string; by?: string };
  pinned?: { generation?: number; reason: string };
  wave: FleetWave;
  /** Undefined when the host's status has no `apps` (no app releases there). */
  apps?: FleetApp[];
  /** What the agent does right now (its worker), when it said. */
  activity?: string;
}

/** The whole page. */
export interface FleetView {
  /** The host that gathered the view. */
  servedBy: string;
  generatedAt: string;
  /** The revision whose hosts/*.yaml and edge.yaml gave the inventory. */
  inventoryRevision?: string;
  /** Why the inventory is only this host, when it is. */
  inventoryProblem?: string;
  refreshSeconds: number;
  rows: FleetRow[];
}

/** Where a host sits in the inventory. */
export interface InventoryHost {
  name: string;
  address: string;
}

/** The longest text taken from a status document (reasons, messages). */
export const MAX_TEXT = 240;

type Json = Record<string, unknown>;

function record(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

function text(value: unknown, max = MAX_TEXT): string | undefined {
  if (typeof value !== 'string') return undefined;
  // Control characters would garble a terminal; the page escapes the rest.
  const clean = [...value].map((char) => (isControl(char.charCodeAt(0)) ? ' ' : char)).join('');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** C0 and C1 control characters except tab and newline. */
function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09 && code !== 0x0a) || (code >= 0x7f && code <= 0x9f);
}

function integer(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : undefined;
}

function revisionOf(value: unknown): string | undefined {
  const revision = text(value, 80);
  return revision && /^[0-9a-f]{7,64}$|^tree:[0-9a-f]{7,64}$/.test(revision) ? revision : undefined;
}

/** A revision as people read it: 7 hex digits (`tree:` sources keep their prefix). */
export function shortRevision(revision: string): string {
  return revision.startsWith('tree:') ? `tree:${revision.slice(5, 12)}` : revision.slice(0, 7);
}

const HEALTHY = new Set(['applied', 'unchanged', 'recovered', 'drifted']);
const HELD = new Set(['pinned', 'suspended', 'outside-window', 'halted']);
const WAITING = new Set(['waiting']);
const LABELS: Record<string, string> = { halted: 'halted by an earlier wave', waiting: 'waiting for its wave', 'rolled-back': 'rolled back', 'outside-window': 'outside window', refused: 'refused', invalid: 'invalid commit', failed: 'failed' };

/** The wave of a host from its status (`wave`), else its place in edge.yaml's waves. */
export function waveOf(status: Json | undefined, host: string, waves: readonly (readonly string[])[]): FleetWave {
  const wave = record(status?.wave);
  const listed = waves.findIndex((members) => members.includes(host));
  const index = integer(wave?.index) ?? (listed >= 0 ? listed + 1 : undefined);
  const label = index !== undefined && index > 0 ? `wave ${index}` : waves.length > 0 || wave ? 'no wave' : 'no waves';
  const waitingFor = record(wave?.waitingFor);
  const halted = record(wave?.halted);
  if (halted) {
    const reason = text(halted.reason) ?? 'no reason given';
    return { ...(index ? { index } : {}), label, waiting: false, halted: true, detail: `halted: wave ${integer(halted.wave) ?? '?'} failed on ${text(halted.host, 64) ?? '?'}: ${reason}` };
  }
  if (waitingFor) {
    const hosts = Array.isArray(waitingFor.hosts) ? waitingFor.hosts.map((entry) => text(entry, 64)).filter((entry): entry is string => !!entry) : [];
    const since = text(waitingFor.since, 40);
    return {
      ...(index ? { index } : {}),
      label,
      waiting: true,
      halted: false,
      detail: `waiting for wave ${integer(waitingFor.wave) ?? '?'}: ${hosts.join(', ') || '?'}${since ? ` since ${since}` : ''}`,
    };
  }
  return { ...(index ? { index } : {}), label, waiting: false, halted: false };
}

function lastRunOf(run: Json | undefined): FleetRow['lastRun'] {
  const result = text(run?.result, 40);
  const at = text(run?.at, 40);
  if (!run || !result || !at) return undefined;
  const check = record(run.failedCheck);
  const checkName = text(check?.name, 80);
  const checkText = checkName ? `${checkName}${check?.message ? `: ${text(check.message) ?? ''}` : ''}` : undefined;
  const durationMs = integer(run.durationMs);
  const revision = revisionOf(run.revision);
  const code = text(run.code, 60);
  // A reason built from a problem ends with its code, which the page shows already.
  const reason = text(code ? (typeof run.reason === 'string' ? run.reason.split(` [${code}]`).join('') : undefined) : run.reason);
  return { result, at, ...(durationMs !== undefined ? { durationMs } : {}), ...(revision ? { revision } : {}), ...(code ? { code } : {}), ...(checkText ? { check: checkText } : {}), ...(reason ? { reason } : {}) };
}

function appsOf(value: unknown): FleetApp[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.flatMap((entry): FleetApp[] => {
    const app = record(entry);
    const name = text(app?.app, 80);
    const sha = text(app?.sha, 64);
    if (!app || !name || !sha) return [];
    const failed = record(app.failed);
    const failedText = failed ? `failed ${shortRevision(text(failed.sha, 64) ?? '?')}: ${text(failed.reason) ?? 'no reason given'}` : undefined;
    return [{ app: name, sha: shortRevision(sha), ...(failedText ? { failed: failedText } : {}) }];
  });
}

function activityOf(daemon: Json | undefined): string | undefined {
  const state = text(daemon?.state, 20);
  if (!state || state === 'idle') return undefined;
  if (state === 'backing-off') return `backing off until ${text(daemon?.backoffUntil, 40) ?? '?'}`;
  return state === 'running' ? 'reconciling now' : state;
}

/** The row of a host whose /status document was read (any JSON value: a peer's answer is not trusted). */
export function rowFromStatus(host: InventoryHost, document: unknown, options: { self: boolean; waves: readonly (readonly string[])[] }): FleetRow {
  const status = record(document);
  const lastApplied = record(status?.lastApplied);
  const liveRevision = revisionOf(lastApplied?.revision);
  const lastRun = lastRunOf(record(status?.lastAttempted));
  const suspendedDoc = record(status?.suspended);
  const pinnedDoc = record(status?.pinned);
  const wave = waveOf(status, host.name, options.waves);
  const drift = Array.isArray(record(status?.lastAttempted)?.drift)
    ? ((record(status?.lastAttempted)?.drift as unknown[]).map((path) => text(path, 200)).filter(Boolean) as string[]).slice(0, 20)
    : [];
  const row: FleetRow = {
    host: host.name,
    address: host.address,
    self: options.self,
    reachable: true,
    health: 'unknown',
    healthLabel: 'no run yet',
    drift,
    wave,
  };
  if (liveRevision) {
    const generation = integer(lastApplied?.generation);
    const since = text(lastApplied?.at, 40);
    row.live = { revision: liveRevision, short: shortRevision(liveRevision), ...(generation !== undefined ? { generation } : {}), ...(since ? { since } : {}) };
  }
  if (lastRun) row.lastRun = lastRun;
  if (suspendedDoc) {
    const at = text(suspendedDoc.at, 40);
    const by = text(suspendedDoc.by, 80);
    row.suspended = { reason: text(suspendedDoc.reason) ?? 'no reason given', ...(at ? { at } : {}), ...(by ? { by } : {}) };
  }
  if (pinnedDoc) {
    const generation = integer(pinnedDoc.generation);
    row.pinned = { reason: text(pinnedDoc.reason) ?? 'pinned', ...(generation !== undefined ? { generation } : {}) };
  }
  const apps = appsOf(status?.apps);
  if (apps) row.apps = apps;
  const activity = activityOf(record(status?.daemon));
  if (activity) row.activity = activity;
  Object.assign(row, judge(row));
  return row;
}

/** The health of a read row: failures first, then holds and waits, then the last run. */
function judge(row: FleetRow): Pick<FleetRow, 'health' | 'healthLabel'> {
  const result = row.lastRun?.result;
  if (result && !HEALTHY.has(result) && !HELD.has(result) && !WAITING.has(result)) return { health: 'failing', healthLabel: LABELS[result] ?? result };
  if (row.apps?.some((app) => app.failed)) return { health: 'failing', healthLabel: 'app release failed' };
  if (row.suspended) return { health: 'held', healthLabel: 'suspended' };
  if (row.pinned) return { health: 'held', healthLabel: 'pinned' };
  // Halted: an earlier wave failed this commit; this host stays on its live one, which is fine in itself.
  if (row.wave.halted) return { health: 'held', healthLabel: 'halted by an earlier wave' };
  if (row.wave.waiting || (result && WAITING.has(result))) return { health: 'waiting', healthLabel: 'waiting for its wave' };
  if (result && HELD.has(result)) return { health: 'held', healthLabel: LABELS[result] ?? result };
  if (!row.live) return { health: 'unknown', healthLabel: result ? 'nothing live yet' : 'no run yet' };
  if (row.drift.length > 0) return { health: 'ok', healthLabel: 'healthy, drifted' };
  return { health: 'ok', healthLabel: 'healthy' };
}

/** The row of a peer that did not answer (or answered nonsense). */
export function unreachableRow(host: InventoryHost, problem: string, waves: readonly (readonly string[])[]): FleetRow {
  return {
    host: host.name,
    address: host.address,
    self: false,
    reachable: false,
    problem,
    health: 'unreachable',
    healthLabel: `unreachable: ${problem}`,
    drift: [],
    wave: waveOf(undefined, host.name, waves),
  };
}

/** How many hosts are in each health, for the page's summary line. */
export function healthCounts(rows: readonly FleetRow[]): Record<FleetHealth, number> {
  const counts: Record<FleetHealth, number> = { ok: 0, held: 0, waiting: 0, unknown: 0, failing: 0, unreachable: 0 };
  for (const row of rows) counts[row.health] += 1;
  return counts;
}
