/**
 * The fleet view as a terminal table (`edge-reconciler status --fleet`): the columns of the page, one line per
 * host, then an indented line for each thing that needs words (failed check, wave wait, suspension, apps).
 */
import { ago, formatDuration } from './fleet-page.js';
import type { FleetRow, FleetView } from './fleet-model.js';

const COLUMNS: readonly string[] = 'HOST|HEALTH|LIVE|LAST RUN|DRIFT|HOLD|WAVE'.split('|');

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function cells(row: FleetRow, now: string): string[] {
  const live = !row.reachable ? '?' : row.live ? `${row.live.short} ${cut(row.live.subject ?? '', 36)}`.trim() : '-';
  const run = row.lastRun ? `${row.lastRun.result} ${ago(row.lastRun.at, now)}${row.lastRun.durationMs !== undefined ? ` (${formatDuration(row.lastRun.durationMs)})` : ''}` : row.reachable ? '-' : '?';
  const drift = !row.reachable ? '?' : row.drift.length > 0 ? `${row.drift.length} file${row.drift.length === 1 ? '' : 's'}` : '-';
  const hold = [row.suspended ? 'suspended' : '', row.pinned ? 'pinned' : ''].filter(Boolean).join(', ') || (row.reachable ? '-' : '?');
  const wave = `${row.wave.index !== undefined ? String(row.wave.index) : row.wave.label}${row.wave.waiting ? ' (waiting)' : row.wave.halted ? ' (halted)' : ''}`;
  return [`${row.host}${row.self ? '*' : ''}`, row.health, live, run, drift, hold, wave];
}

function details(row: FleetRow): string[] {
  const lines: string[] = [];
  if (!row.reachable) lines.push(row.self ? (row.problem ?? 'status unreadable') : `unreachable at ${row.address || 'no address'}: ${row.problem ?? 'no answer'}`);
  if (row.lastRun?.check) lines.push(`failed check: ${row.lastRun.check}`);
  else if (row.lastRun?.code && row.health === 'failing') lines.push(`${row.lastRun.code}: ${row.lastRun.reason ?? ''}`.trim());
  if (row.wave.detail) lines.push(row.wave.detail);
  if (row.suspended) lines.push(`suspended${row.suspended.by ? ` by ${row.suspended.by}` : ''}${row.suspended.at ? ` since ${row.suspended.at}` : ''}: ${row.suspended.reason}`);
  if (row.pinned) lines.push(`pinned${row.pinned.generation !== undefined ? ` to generation ${row.pinned.generation}` : ''}: ${row.pinned.reason}`);
  if (row.drift.length > 0) lines.push(`drift: ${row.drift.join(', ')}`);
  if (row.apps && row.apps.length > 0) lines.push(`apps: ${row.apps.map((app) => `${app.app} ${app.sha}${app.failed ? ` (${app.failed})` : ''}`).join(', ')}`);
  if (row.activity) lines.push(row.activity);
  return lines;
}

/** The table: a header, one line per host (`*` marks this host), its details indented below it. */
export function renderFleetTable(view: FleetView): string {
  const rows = view.rows.map((row) => cells(row, view.generatedAt));
  const widths = COLUMNS.map((title, index) => Math.max(title.length, ...rows.map((cellsOf) => (cellsOf[index] ?? '').length)));
  const line = (values: readonly string[]) => values.map((value, index) => value.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  const out = [line(COLUMNS)];
  view.rows.forEach((row, index) => {
    out.push(line(rows[index] ?? []));
    for (const detail of details(row)) out.push(`    ${detail}`);
  });
  const source = view.inventoryRevision ? `hosts of ${view.inventoryRevision.slice(0, 12)}` : `only this host: ${view.inventoryProblem ?? 'inventory unknown'}`;
  out.push('', `* ${view.servedBy}, where this ran; ${source}; ${view.generatedAt}`);
  return out.join('\n');
}
