/**
 * The fleet page (`GET /` on the agent's listen address): server-rendered HTML, every text escaped, no script at
 * all, a meta refresh, a table that turns into one card per host on a narrow screen. Colours are paired with
 * words (the health column says it), and each pair keeps a contrast ratio above 4.5:1.
 */
import { healthCounts, type FleetHealth, type FleetRow, type FleetView } from './fleet-model.js';

/** The page's Content-Security-Policy: no script, no outside resource, only its own inline style. */
export const FLEET_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => ESCAPES[char] as string);
}

/** An HTML fragment whose text parts were escaped. */
function html(strings: TemplateStringsArray, ...values: (string | number | Safe | undefined)[]): Safe {
  let out = strings[0] ?? '';
  values.forEach((value, index) => {
    out += value instanceof Safe ? value.text : value === undefined ? '' : escapeHtml(String(value));
    out += strings[index + 1] ?? '';
  });
  return new Safe(out);
}

class Safe {
  constructor(readonly text: string) {}
}

function join(parts: Safe[], separator = ''): Safe {
  return new Safe(parts.map((part) => part.text).join(separator));
}

const HEALTH_WORDS: Record<FleetHealth, string> = { ok: 'ok', held: 'held', waiting: 'waiting', unknown: 'unknown', failing: 'failing', unreachable: 'unreachable' };

/** How long ago `at` was, from `now`, in a few characters (`12 s ago`, `3 min ago`, `2 h ago`, `5 d ago`). */
export function ago(at: string | undefined, now: string): string {
  const then = at ? Date.parse(at) : NaN;
  if (Number.isNaN(then)) return '';
  const seconds = Math.max(0, Math.round((Date.parse(now) - then) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** A duration as people read it: `850 ms`, `12.3 s`, `4 min`. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

function time(at: string | undefined, now: string): Safe {
  if (!at) return html``;
  return html`<time datetime="${at}" title="${at}">${ago(at, now)}</time>`;
}

function liveCell(row: FleetRow, now: string): Safe {
  if (!row.reachable) return html`<span class="muted">unknown</span>`;
  if (!row.live) return html`<span class="muted">nothing applied yet</span>`;
  const generation = row.live.generation !== undefined ? html`<span class="muted">generation ${row.live.generation}, since </span>${time(row.live.since, now)}` : html``;
  return html`<code title="${row.live.revision}">${row.live.short}</code> ${row.live.subject ?? ''}<br>${generation}`;
}

function lastRunCell(row: FleetRow, now: string): Safe {
  const run = row.lastRun;
  if (!run) return html`<span class="muted">${row.reachable ? 'none yet' : 'unknown'}</span>`;
  const duration = run.durationMs !== undefined ? html` <span class="muted">in ${formatDuration(run.durationMs)}</span>` : html``;
  const parts = [html`<strong>${run.result}</strong> ${time(run.at, now)}${duration}`];
  if (run.check) parts.push(html`<span class="why">failed check: ${run.check}</span>`);
  else if (run.code) parts.push(html`<span class="why">${run.code}${run.reason ? `: ${run.reason}` : ''}</span>`);
  return join(parts, '<br>');
}

function driftCell(row: FleetRow): Safe {
  if (!row.reachable) return html`<span class="muted">unknown</span>`;
  if (row.drift.length === 0) return html`<span class="muted">none</span>`;
  return html`${row.drift.length} file${row.drift.length === 1 ? '' : 's'}: ${row.drift.join(', ')}`;
}

function holdCell(row: FleetRow, now: string): Safe {
  const parts: Safe[] = [];
  if (row.suspended) parts.push(html`<strong>suspended</strong> ${time(row.suspended.at, now)}${row.suspended.by ? ` by ${row.suspended.by}` : ''}: ${row.suspended.reason}`);
  if (row.pinned) parts.push(html`<strong>pinned</strong>${row.pinned.generation !== undefined ? ` to generation ${row.pinned.generation}` : ''}: ${row.pinned.reason}`);
  if (parts.length === 0) return html`<span class="muted">${row.reachable ? 'none' : 'unknown'}</span>`;
  return join(parts, '<br>');
}

function waveCell(row: FleetRow): Safe {
  const detail = row.wave.detail ? html`<br><span class="why">${row.wave.detail}</span>` : html``;
  return html`<span class="nowrap">${row.wave.label}</span>${detail}`;
}

function appsCell(row: FleetRow): Safe {
  if (!row.apps) return html`<span class="muted">${row.reachable ? 'no apps' : 'unknown'}</span>`;
  if (row.apps.length === 0) return html`<span class="muted">no apps</span>`;
  return join(row.apps.map((app) => html`${app.app} <code>${app.sha}</code>${app.failed ? html` <span class="why">${app.failed}</span>` : html``}`), '<br>');
}

function hostRow(row: FleetRow, now: string): Safe {
  const you = row.self ? html` <span class="muted">(this host)</span>` : html``;
  const word = HEALTH_WORDS[row.health];
  // The badge says the word already: `unreachable: connection refused` becomes `connection refused`.
  const label = row.healthLabel === word ? '' : row.healthLabel.startsWith(`${word}: `) ? row.healthLabel.slice(word.length + 2) : row.healthLabel;
  const activity = row.activity ? html`<br><span class="muted">${row.activity}</span>` : html``;
  return html`<tr class="h-${row.health}" id="host-${row.host}">
<th scope="row" data-label="Host"><span class="name">${row.host}</span>${you}<br><span class="muted">${row.address || 'no address'}</span></th>
<td data-label="Health"><span class="badge b-${row.health}">${word}</span> ${label}${activity}</td>
<td class="live" data-label="Live commit">${liveCell(row, now)}</td>
<td class="run" data-label="Last run">${lastRunCell(row, now)}</td>
<td data-label="Drift">${driftCell(row)}</td>
<td data-label="Suspended / pinned">${holdCell(row, now)}</td>
<td data-label="Wave">${waveCell(row)}</td>
<td data-label="Apps">${appsCell(row)}</td>
</tr>`;
}

const STYLE = `
:root{color-scheme:light;--ink:#1b1f24;--muted:#4a5560;--line:#c9d1d9;--bg:#ffffff;--head:#f3f5f7}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header,main,footer{padding:0.75rem 1rem}
header{border-bottom:1px solid var(--line);background:var(--head)}
h1{font-size:1.3rem;margin:0 0 0.25rem}
p{margin:0.25rem 0}
.muted{color:var(--muted)}
.why{color:#8a1116}
code{font:0.92em ui-monospace,SFMono-Regular,Menlo,monospace}
table{border-collapse:collapse;width:100%}
caption{text-align:left;font-weight:600;padding:0.5rem 0}
th,td{text-align:left;vertical-align:top;padding:0.5rem;border-bottom:1px solid var(--line)}
thead th{background:var(--head);font-size:0.85rem;text-transform:uppercase;letter-spacing:0.03em}
tbody th{font-weight:normal}
.name{font-weight:700;white-space:nowrap}
.live{min-width:13rem}
.run{min-width:15rem}
.nowrap{white-space:nowrap}
.badge{display:inline-block;padding:0 0.45rem;border-radius:0.6rem;font-weight:700;font-size:0.85rem;border:1px solid currentColor}
.b-ok{color:#0b5a1f;background:#e3f3e7}
.b-held,.b-waiting{color:#6b4200;background:#fff3d6}
.b-unknown{color:#38434f;background:#eceff2}
.b-failing{color:#8a1116;background:#fde8e8}
.b-unreachable{color:#ffffff;background:#5b2a86}
tr.h-failing th,tr.h-unreachable th{border-left:4px solid #8a1116}
tr.h-unreachable th{border-left-color:#5b2a86}
.summary span{margin-right:0.75rem;white-space:nowrap}
footer{border-top:1px solid var(--line);color:var(--muted);font-size:0.85rem}
@media (max-width: 760px){
  thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
  table,tbody,tr,th,td{display:block;width:100%}
  tr{border:1px solid var(--line);border-radius:0.5rem;margin:0 0 0.75rem;padding:0.25rem 0.5rem}
  tbody th,td{border:0;padding:0.3rem 0}
  td::before{content:attr(data-label);display:block;font-size:0.75rem;font-weight:700;text-transform:uppercase;color:var(--muted)}
  tr.h-failing th,tr.h-unreachable th{border-left:0}
  caption{display:block}
  .live,.run{min-width:0}
}`;

/** The whole page for a view; `version` is the agent's. */
export function renderFleetPage(view: FleetView, version = ''): string {
  const counts = healthCounts(view.rows);
  const summary = join(
    (Object.keys(counts) as FleetHealth[]).filter((health) => counts[health] > 0).map((health) => html`<span>${counts[health]} <span class="badge b-${health}">${HEALTH_WORDS[health]}</span></span>`),
  );
  const inventory = view.inventoryRevision
    ? html`Hosts from revision <code>${view.inventoryRevision.slice(0, 12)}</code> of the desired-state repo.`
    : html`Only this host is listed: ${view.inventoryProblem ?? 'the inventory is unknown'}.`;
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${view.refreshSeconds}">
<title>Fleet: ${view.rows.length} hosts (${counts.failing + counts.unreachable} need attention) · edge-reconciler</title>
<style>${new Safe(STYLE)}</style>
</head>
<body>
<header>
<h1>Edge fleet</h1>
<p>Served by <strong>${view.servedBy}</strong> at <time datetime="${view.generatedAt}">${view.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>. ${inventory}</p>
<p class="summary">${view.rows.length} hosts: ${summary}</p>
</header>
<main>
<table>
<caption>Every host of the inventory and what its agent reports</caption>
<thead><tr><th scope="col">Host</th><th scope="col">Health</th><th scope="col">Live commit</th><th scope="col">Last run</th><th scope="col">Drift</th><th scope="col">Suspended / pinned</th><th scope="col">Wave</th><th scope="col">Apps</th></tr></thead>
<tbody>
${join(view.rows.map((row) => hostRow(row, view.generatedAt)), '\n')}
</tbody>
</table>
</main>
<footer>
<p>This page reloads every ${view.refreshSeconds} s. Peers are read from their agents' /status over the mesh; the same table: <code>edge-reconciler status --fleet</code>.${version ? ` edge-reconciler ${version}.` : ''}</p>
</footer>
</body>
</html>
`;
  return page.text;
}
