/**
 * Maintenance windows: cron-like allow and deny windows, evaluated in one IANA time zone, that decide whether the
 * agent may apply right now. Pure: the caller passes the time; nothing here reads the clock or the disk.
 *
 * A window is open when one of its cron occurrences started at most `durationMinutes` ago (default 1: the cron
 * matches the current minute). No windows: always allowed. With allow windows, applying is allowed only inside one
 * of them; an open deny window always wins. See docs/config.md.
 */
import { Cron } from 'croner';

/** What an open window does to applying. */
export type WindowAction = 'allow' | 'deny';

/** One maintenance window of the host config. */
export interface MaintenanceWindow {
  action: WindowAction;
  /** Five fields: `<minute> <hour> <day of month> <month> <day of week>`, in the maintenance time zone. */
  cron: string;
  /** How long each occurrence keeps the window open; default 1 (the minutes the cron matches). */
  durationMinutes?: number;
  description?: string;
}

/** The `maintenance` section of the host config. */
export interface MaintenanceConfig {
  /** IANA time zone name the crons are read in, e.g. `Europe/Berlin`. */
  timezone: string;
  windows: MaintenanceWindow[];
}

/** The verdict of the windows at one instant. */
export interface ApplyDecision {
  allowed: boolean;
  /** Lowercase, names the window that decided (index, cron, description). */
  reason: string;
  /** When applying is refused: the first minute at which it will be allowed (absent if none within a year). */
  nextOpen?: Date;
}

const MINUTE = 60_000;
/** How far ahead `nextOpen` is searched, and how many jumps at most are taken on the way. */
const HORIZON_MS = 366 * 24 * 60 * MINUTE;
const MAX_STEPS = 500;

/** A window with its parsed cron and the shape facts that let the search jump whole hours or days. */
interface CompiledWindow {
  window: MaintenanceWindow;
  index: number;
  cron: Cron;
  durationMs: number;
  /** Single minute and hour: croner moves such a start out of a DST gap, so only its runs tell whether it started. */
  fixedTime: boolean;
  /** The minute (and hour) field is `*`: an open default-duration window stays open to the hour's (day's) end. */
  everyMinute: boolean;
  everyHour: boolean;
}

const crons = new Map<string, Cron>();

/** One parsed cron per expression and zone: the gate runs on every trigger, and parsing is not free. */
function cronFor(expression: string, timezone: string): Cron {
  const key = `${timezone}\u0000${expression}`;
  let cron = crons.get(key);
  if (!cron) {
    cron = new Cron(expression, { timezone, mode: '5-part' });
    crons.set(key, cron);
  }
  return cron;
}

function compile(window: MaintenanceWindow, index: number, timezone: string): CompiledWindow {
  const [minute = '', hour = ''] = window.cron.trim().split(/\s+/);
  return {
    window,
    index,
    cron: cronFor(window.cron, timezone),
    durationMs: (window.durationMinutes ?? 1) * MINUTE,
    fixedTime: /^\d+$/.test(minute) && /^\d+$/.test(hour),
    everyMinute: minute === '*',
    everyHour: hour === '*',
  };
}

/** True when `name` is an IANA time zone that this Node knows (`UTC`, `Europe/Berlin`, ...). */
export function isValidTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** Why a window's cron expression is unusable (does not parse, or never occurs), or undefined when it is fine. */
export function cronProblem(expression: string, timezone: string): string | undefined {
  if (expression.trim().split(/\s+/).length !== 5) {
    return `cron "${expression}" must have five fields: <minute> <hour> <day of month> <month> <day of week>`;
  }
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone, mode: '5-part' });
  } catch (error) {
    const detail = error instanceof Error ? error.message.replace(/^CronPattern: /, '') : String(error);
    return `cron "${expression}" does not parse: ${detail.charAt(0).toLowerCase()}${detail.slice(1)}`;
  }
  if (cron.nextRun(new Date()) === null && cron.previousRuns(1, new Date()).length === 0) {
    return `cron "${expression}" never occurs`;
  }
  return undefined;
}

/** The latest occurrence that started at or before `minute` (a whole minute), or undefined. */
function lastStart(compiled: CompiledWindow, minute: number): number | undefined {
  // previousRuns includes a run earlier in the same second as the reference: one second later includes `minute`.
  const [run] = compiled.cron.previousRuns(1, new Date(minute + 1000));
  return run?.getTime();
}

function isOpen(compiled: CompiledWindow, minute: number): boolean {
  if (compiled.durationMs === MINUTE && !compiled.fixedTime) return compiled.cron.match(new Date(minute));
  const start = lastStart(compiled, minute);
  return start !== undefined && start + compiled.durationMs > minute;
}

/** The start of the next wall-clock hour (or day) in the zone, through croner so that DST is handled once. */
function nextBoundary(unit: 'hour' | 'day', timezone: string, minute: number): number | undefined {
  return cronFor(unit === 'hour' ? '0 * * * *' : '0 0 * * *', timezone).nextRun(new Date(minute))?.getTime();
}

interface Search {
  timezone: string;
  steps: number;
  limit: number;
}

/** The first minute after `minute` at which the open window is closed; undefined past the search's limits. */
function closeTime(compiled: CompiledWindow, minute: number, search: Search): number | undefined {
  let at: number | undefined = minute;
  while (at !== undefined && isOpen(compiled, at)) {
    if (++search.steps > MAX_STEPS || at > search.limit) return undefined;
    if (compiled.durationMs > MINUTE || compiled.fixedTime) at = (lastStart(compiled, at) as number) + compiled.durationMs;
    else if (compiled.everyMinute && compiled.everyHour) at = nextBoundary('day', search.timezone, at);
    else if (compiled.everyMinute) at = nextBoundary('hour', search.timezone, at);
    else at += MINUTE;
  }
  return at;
}

function describe(compiled: CompiledWindow): string {
  const { window, index } = compiled;
  return `${window.action} window ${index} (${window.cron}${window.description ? `: ${window.description}` : ''})`;
}

interface Verdict {
  allowed: boolean;
  reason: string;
  /** The deny window that refused, or none when no allow window was open. */
  deny?: CompiledWindow;
}

function verdictAt(windows: CompiledWindow[], minute: number): Verdict {
  if (windows.length === 0) return { allowed: true, reason: 'no maintenance windows: applying is always allowed' };
  const deny = windows.find((w) => w.window.action === 'deny' && isOpen(w, minute));
  if (deny) return { allowed: false, reason: `inside ${describe(deny)}`, deny };
  const allows = windows.filter((w) => w.window.action === 'allow');
  if (allows.length === 0) return { allowed: true, reason: 'no deny window is open' };
  const allow = allows.find((w) => isOpen(w, minute));
  if (allow) return { allowed: true, reason: `inside ${describe(allow)}` };
  return { allowed: false, reason: 'outside every allow window' };
}

/**
 * The first minute after `from` at which applying is allowed: past each open deny window's end, then on to the
 * next allow window's start, until both hold. `reached` is how far the search got when it gave up.
 */
function findNextOpen(windows: CompiledWindow[], timezone: string, from: number): { next?: number; reached: number } {
  const search: Search = { timezone, steps: 0, limit: from + HORIZON_MS };
  const allows = windows.filter((w) => w.window.action === 'allow');
  let at = from;
  while (++search.steps <= MAX_STEPS && at <= search.limit) {
    const verdict = verdictAt(windows, at);
    if (verdict.allowed) return { next: at, reached: at };
    let jump: number | undefined;
    if (verdict.deny) {
      jump = closeTime(verdict.deny, at, search);
    } else {
      const starts = allows.map((w) => w.cron.nextRun(new Date(at))?.getTime()).filter((t): t is number => t !== undefined);
      jump = starts.length > 0 ? Math.min(...starts) : undefined;
    }
    if (jump === undefined) break;
    at = jump;
  }
  return { reached: Math.min(at, search.limit) };
}

/** Formats an instant as wall-clock time in the zone, e.g. `2026-03-30 02:00 Europe/Berlin`. */
export function formatInZone(date: Date, timezone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone: timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(date)
      .map((part) => [part.type, part.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${timezone}`;
}

/** Whether the maintenance windows allow applying at `now`, why, and when they next will if not. */
export function applyAllowed(maintenance: MaintenanceConfig, now: Date): ApplyDecision {
  const minute = Math.floor(now.getTime() / MINUTE) * MINUTE;
  const windows = maintenance.windows.map((window, index) => compile(window, index, maintenance.timezone));
  const verdict = verdictAt(windows, minute);
  if (verdict.allowed) return { allowed: true, reason: verdict.reason };
  const { next, reached } = findNextOpen(windows, maintenance.timezone, minute);
  if (next === undefined) {
    return { allowed: false, reason: `${verdict.reason}; no opening found before ${formatInZone(new Date(reached), maintenance.timezone)}` };
  }
  const nextOpen = new Date(next);
  return { allowed: false, reason: `${verdict.reason}; next open ${formatInZone(nextOpen, maintenance.timezone)}`, nextOpen };
}
