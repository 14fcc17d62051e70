/**
 * The plan stage: compares a host's rendered files with what is live under the root and with the inventory of the
 * last generation, and derives the activation that the change implies: which units start, restart or stop,
 * whether systemd reloads, Caddy reloads or the firewall changes. Env values never appear in a plan. Owners and
 * groups the host does not have are refused here, the first stage that sees the host (apply would give root).
 */
import { throwIfProblems, type Problem } from '../errors.js';
import type { Host, LiveFile } from '../host/host.js';
import type { InventoryEntry } from '../state/inventory.js';
import type { Activation, FileChange, Guards, Plan, UpdateReason } from '../model.js';
import type { RenderedFile, UnitIntent } from '../../renderers/types.js';
import { maskEnvDiff } from '../../renderers/env-file/mask.js';
import { lockoutProblems } from '../../renderers/ufw/lockout.js';

/** What activation needs to know of a file: a rendered file or a generation's inventory entry. */
export type ActivationSource = Pick<RenderedFile, 'path' | 'unit' | 'onChange'>;

/** Compares `files` with the live host and the previous generation's inventory. */
export async function planHost(
  hostName: string,
  files: readonly RenderedFile[],
  host: Host,
  previous: readonly InventoryEntry[] = [],
  options: { knownUnchanged?: (file: RenderedFile) => Promise<boolean> } = {},
): Promise<Plan> {
  throwIfProblems('plan', unknownOwners(files, host));
  // Loaded on first use: the no-op path and crash recovery (which import this module) never diff anything.
  diffModule ??= await import('diff');
  const desired = new Set(files.map((file) => file.path));
  const changes: FileChange[] = [];
  for (const file of files) {
    // A file the caller can vouch for (same bytes as the live generation, stat unchanged) is not read.
    if (await options.knownUnchanged?.(file)) changes.push({ path: file.path, kind: file.kind, resource: file.resource, sensitive: file.sensitive, action: 'unchanged', reasons: [], diff: '' });
    else changes.push(compareFile(file, await host.read(file.path), host));
  }
  for (const entry of previous) {
    if (desired.has(entry.path)) continue;
    const live = await host.read(entry.path);
    if (!live) continue;
    const old = live.type === 'file' ? live.content.toString('utf8') : '';
    changes.push({
      path: entry.path,
      action: 'delete',
      kind: entry.kind,
      resource: entry.resource,
      sensitive: entry.sensitive,
      reasons: [],
      diff: entry.sensitive ? maskEnvDiff(old, '').join('\n') : unifiedDiff(entry.path, old, ''),
    });
  }
  changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const activation = planActivation(changes, files, previous);
  return { host: hostName, changes, activation, changed: changes.some((change) => change.action !== 'unchanged') };
}

/**
 * Refuses a firewall change that would lock the live host out (renderers/ufw/lockout.ts): it would refuse an SSH
 * connection established now, or allows SSH only over a management interface the host lacks.
 */
export async function checkFirewallLockout(files: readonly RenderedFile[], guards: Guards, host: Host, plan: Plan): Promise<void> {
  if (!plan.activation.firewall || guards.allowHostLockout) return;
  const ufw = files.filter((file) => file.kind === 'ufw');
  if (ufw.length === 0) return;
  const [sessions, interfaces] = await Promise.all([host.network.sshSessions(), host.network.interfaces()]);
  throwIfProblems('plan', lockoutProblems(ufw, guards, { ...(sessions ? { sessions } : {}), ...(interfaces ? { interfaces } : {}) }));
}

/** Owners and groups that do not exist on this host: applying would silently give the file to root. */
function unknownOwners(files: readonly RenderedFile[], host: Host): Problem[] {
  const problems: Problem[] = [];
  for (const file of files) {
    const missing = [
      ...(host.ids.uid(file.owner) === undefined ? [`user "${file.owner}"`] : []),
      ...(host.ids.gid(file.group) === undefined ? [`group "${file.group}"`] : []),
    ];
    if (missing.length === 0) continue;
    problems.push({
      code: 'OWNER_UNKNOWN',
      file: file.source.file,
      ...(file.source.line ? { line: file.source.line } : {}),
      ...(file.source.path ? { path: file.source.path } : {}),
      message: `${file.path} is owned by ${missing.join(' and ')}, which this host does not have: create it first, or use one it has`,
    });
  }
  return problems;
}

function compareFile(file: RenderedFile, live: LiveFile | undefined, host: Host): FileChange {
  const base = { path: file.path, kind: file.kind, resource: file.resource, sensitive: file.sensitive };
  if (!live) {
    return { ...base, action: 'create', reasons: [], diff: file.link ? `+> ${file.content}` : describeDiff(file, undefined) };
  }
  if (file.link) return compareLink(file, live, base);
  const reasons: UpdateReason[] = [];
  if (live.type !== 'file') reasons.push('type');
  const old = live.type === 'file' ? live.content.toString('utf8') : undefined;
  if (live.type === 'file' && !live.content.equals(Buffer.from(file.content))) reasons.push('content');
  if (live.mode !== file.mode) reasons.push('mode');
  const uid = host.ids.uid(file.owner);
  const gid = host.ids.gid(file.group);
  if ((uid !== undefined && uid !== live.uid) || (gid !== undefined && gid !== live.gid)) reasons.push('owner');
  if (reasons.length === 0) return { ...base, action: 'unchanged', reasons, diff: '' };
  return { ...base, action: 'update', reasons, diff: reasons.includes('content') || reasons.includes('type') ? describeDiff(file, old) : '' };
}

/** A managed symlink: only what it points at counts (a link has no mode or owner of its own). */
function compareLink(file: RenderedFile, live: LiveFile, base: Pick<FileChange, 'path' | 'kind' | 'resource' | 'sensitive'>): FileChange {
  const old = live.type === 'symlink' ? live.content.toString('utf8') : undefined;
  if (old === file.content) return { ...base, action: 'unchanged', reasons: [], diff: '' };
  const reasons: UpdateReason[] = [old === undefined ? 'type' : 'content'];
  return { ...base, action: 'update', reasons, diff: `-> ${old ?? `(a ${live.type})`}\n+> ${file.content}` };
}

function describeDiff(file: RenderedFile, old: string | undefined): string {
  return file.sensitive ? maskEnvDiff(old, file.content).join('\n') : unifiedDiff(file.path, old ?? '', file.content);
}

let diffModule: typeof import('diff') | undefined;

function unifiedDiff(path: string, old: string, next: string): string {
  let patch: string;
  if (old === '') {
    patch = creationPatch(path, next);
  } else {
    if (!diffModule) throw new Error('plan bug: the diff module is not loaded');
    patch = diffModule.createTwoFilesPatch(`a${path}`, `b${path}`, old, next, '', '', { context: 3 });
  }
  return patch.replace(/^=+\n/, '').replace(/^((?:---|\+\+\+) \S+)\t$/gm, '$1').trimEnd();
}

/**
 * The patch jsdiff's createTwoFilesPatch prints for a file that had no content, without diffing: every line added.
 * A fresh host's plan is all creations (3000 at 1000 apps), where jsdiff's diff of "" against each file cost ~80 ms.
 */
export function creationPatch(path: string, next: string): string {
  const header = `${'='.repeat(67)}\n--- a${path}\t\n+++ b${path}\t\n`;
  if (next === '') return header;
  const lines = next.split('\n');
  const ended = lines[lines.length - 1] === '';
  if (ended) lines.pop();
  return `${header}@@ -0,0 +1,${lines.length} @@\n+${lines.join('\n+')}\n${ended ? '' : '\\ No newline at end of file\n'}`;
}

interface UnitFiles {
  main?: UnitIntent;
  /** The path of its unit file (the first, as listed). */
  mainPath?: string;
  /** Managed paths of the unit (its file and drop-ins) and the files it reads. */
  watches: Set<string>;
  changed: string[];
}

/**
 * Derives the activation from the file changes: a unit restarts when its unit file, a drop-in, an
 * `EnvironmentFile=` or a declared `restartOn` path changed; new units start; removed units stop.
 */
export function planActivation(
  changes: readonly FileChange[],
  files: readonly ActivationSource[],
  previous: readonly InventoryEntry[],
): Activation {
  const changed = new Map(changes.filter((c) => c.action !== 'unchanged').map((c) => [c.path, c]));
  const activation: Activation = {
    daemonReload: false,
    stop: [],
    disable: [],
    enable: [],
    start: [],
    restart: [],
    reload: [],
    caddyReload: false,
    firewall: false,
    run: [],
    because: {},
  };
  const units = new Map<string, UnitFiles>();
  for (const file of files) {
    if (!file.unit) continue;
    const entry = units.get(file.unit.unit) ?? { watches: new Set<string>(), changed: [] };
    units.set(file.unit.unit, entry);
    if (!file.unit.dropIn) {
      entry.main = file.unit;
      entry.mainPath ??= file.path;
    }
    for (const path of [file.path, ...file.unit.environmentFiles, ...file.unit.restartOn]) entry.watches.add(path);
  }
  for (const [name, unit] of units) {
    unit.changed = [...unit.watches].filter((path) => changed.has(path)).sort();
    if (unit.changed.length === 0) continue;
    const created = unit.main !== undefined && changed.get(unit.mainPath ?? '')?.action === 'create';
    const runs = unit.main ? unit.main.start : true;
    if (created) {
      if (unit.main?.enable) activation.enable.push(name);
      if (runs) activation.start.push(name);
    } else if (runs) {
      activation.restart.push(name);
    }
    if (created || runs) activation.because[name] = unit.changed;
  }
  for (const change of changed.values()) {
    if (change.kind === 'systemd-unit') activation.daemonReload = true;
    if (change.kind === 'caddy') activation.caddyReload = true;
    if (change.kind === 'ufw') activation.firewall = true;
  }
  for (const entry of previous) {
    if (!entry.unit || entry.unit.dropIn || changed.get(entry.path)?.action !== 'delete') continue;
    activation.stop.push(entry.unit.unit);
    if (entry.unit.enable) activation.disable.push(entry.unit.unit);
    activation.because[entry.unit.unit] = [entry.path];
  }
  for (const file of files) {
    if (!file.onChange || !changed.has(file.path)) continue;
    activation.restart.push(...file.onChange.restart.filter((unit) => !activation.start.includes(unit)));
    activation.reload.push(...file.onChange.reload);
    if (file.onChange.run) activation.run.push(file.onChange.run);
    for (const unit of [...file.onChange.restart, ...file.onChange.reload]) {
      activation.because[unit] = [...new Set([...(activation.because[unit] ?? []), file.path])].sort();
    }
  }
  for (const key of ['stop', 'disable', 'enable', 'start', 'restart', 'reload'] as const) {
    activation[key] = [...new Set(activation[key])].sort();
  }
  return activation;
}
