/**
 * The commands that read or steer a host's state: `status`, `history`, `rollback`, `unpin`.
 */
import type { Command } from 'commander';
import { StateStore } from '../state/state-store.js';
import { readStatus, type RunRecord } from '../state/status.js';
import { readStatusView } from '../state/status-view.js';
import type { AppStatus } from '../state/app-status.js';
import { applyGate, readSuspension } from '../state/suspend.js';
import { EdgeError } from '../errors.js';
import { DEFAULT_CONFIG_PATH, loadHostConfig } from '../config/host-config.js';
import { applyingContext, DEFAULT_STATE_DIR, wholeNumber, withHostOptions, type ApplyingOptions } from './context.js';
import { out, printError } from './io.js';

const plain = (text: string) => text;

function short(revision: string | undefined): string {
  return revision ? revision.slice(0, 12) : '-';
}

function describeRun(run: RunRecord): string {
  // A reason built from a problem ends with its code already: say the code once, up front.
  const reason = run.code ? (run.reason ?? '').split(` [${run.code}]`).join('') : '';
  const why = run.code ? ` [${run.code}] ${reason}` : '';
  const gen = run.generation !== undefined ? ` generation ${run.generation}` : '';
  return `${run.at}  ${run.result.padEnd(11)} ${short(run.revision)}${gen} (${run.durationMs} ms)${why}`;
}

/** An app's lines in `status`: its live release, the one before, its last failure. */
function describeApp(app: AppStatus): string[] {
  const ref = app.ref ? ` (${app.ref})` : '';
  const previous = app.previous ? `, previous ${short(app.previous)}` : '';
  const lines = [`app ${app.app}:`.padEnd(16) + `${short(app.sha)}${ref} built ${app.builtAt} in ${app.buildSeconds} s${previous}`];
  if (app.failed) lines.push(`  failed:       ${short(app.failed.sha)}: ${app.failed.reason}`);
  return lines;
}

/** Registers status, history, rollback and unpin. */
export function registerStateCommands(program: Command): void {
  program
    .command('status')
    .description('what is live on this host, what was last attempted and why it ended as it did')
    .option('--state-dir <dir>', 'the agent\'s state dir', DEFAULT_STATE_DIR)
    .option('--host <name>', 'the host name (for a state dir that has no status yet)', 'unknown')
    .option('--json', 'print the status document as JSON')
    .option('--fleet', 'every host of the inventory: this one and its peers\' /status over the mesh (as the fleet page)')
    .option('--config <path>', 'with --fleet: the host config (repo, state dir, listen port, fleet settings)', DEFAULT_CONFIG_PATH)
    .action(async (options: { stateDir: string; host: string; json?: boolean; fleet?: boolean; config: string }) => {
      if (options.fleet) {
        process.exitCode = await printFleet(options.config, options.json === true);
        return;
      }
      const store = new StateStore(options.stateDir);
      const status = await readStatusView(store, options.host);
      if (options.json) {
        out(JSON.stringify(status, null, 2), plain);
        return;
      }
      const { pinned, suspended: suspension, badRevisions: bad } = status;
      const lines = [`host:           ${status.host}`];
      lines.push(
        status.lastApplied
          ? `live:           ${short(status.lastApplied.revision)} (generation ${status.lastApplied.generation}, since ${status.lastApplied.at})`
          : 'live:           nothing applied yet',
      );
      if (suspension) {
        const by = suspension.by ? ` by ${suspension.by}` : '';
        lines.push(`suspended:      since ${suspension.at}${by}: ${suspension.reason} (run edge-reconciler resume)`);
      }
      if (pinned) lines.push(`pinned:         generation ${pinned.generation}: ${pinned.reason} (until a commit newer than ${short(pinned.pinnedAgainst)}; or run unpin)`);
      if (status.lastAttempted) {
        lines.push(`last attempt:   ${describeRun(status.lastAttempted)}`);
        if (status.lastAttempted.failedCheck) {
          const check = status.lastAttempted.failedCheck;
          lines.push(`failed check:   ${check.name} (${check.status}): ${check.message}`);
        }
        const stages = Object.entries(status.lastAttempted.durations).map(([stage, ms]) => `${stage} ${ms} ms`);
        if (stages.length > 0) lines.push(`stages:         ${stages.join(', ')}`);
      }
      for (const app of status.apps ?? []) lines.push(...describeApp(app));
      if (bad.length > 0) lines.push(`bad revisions:  ${bad.map((entry) => short(entry.revision) + (entry.releases ? ` (${entry.releases.map((r) => `${r.app}@${short(r.sha)}`).join(', ')})` : '')).join(', ')}`);
      out(lines.join('\n'), plain);
    });

  program
    .command('history')
    .description('the generations kept on this host, newest first, and the recent runs')
    .option('--state-dir <dir>', 'the agent\'s state dir', DEFAULT_STATE_DIR)
    .option('--json', 'print as JSON')
    .action(async (options: { stateDir: string; json?: boolean }) => {
      const store = new StateStore(options.stateDir);
      const generations = (await store.history()).map(({ generation, revision, result, createdAt, reason, restoredFrom, releases }) => ({
        generation,
        revision,
        result,
        createdAt,
        ...(reason ? { reason } : {}),
        ...(restoredFrom !== undefined ? { restoredFrom } : {}),
        ...(releases && releases.length > 0 ? { releases } : {}),
      }));
      const runs = (await readStatus(store, 'unknown')).history;
      if (options.json) {
        out(JSON.stringify({ generations, runs }, null, 2), plain);
        return;
      }
      const lines = ['generations:'];
      for (const g of generations) {
        const from = g.restoredFrom !== undefined ? ` (restored from ${g.restoredFrom})` : '';
        const apps = g.releases ? `  ${g.releases.map((r) => `${r.app}@${short(r.sha)}${r.ref ? ` (${r.ref})` : ''}`).join(' ')}` : '';
        lines.push(`  ${String(g.generation).padStart(4)}  ${g.result.padEnd(11)} ${short(g.revision)}  ${g.createdAt}${from}${apps}${g.reason ? `  ${g.reason}` : ''}`);
      }
      lines.push('runs:', ...runs.map((run) => `  ${describeRun(run)}`));
      out(lines.join('\n'), plain);
    });

  withHostOptions(
    program
      .command('rollback')
      .description('emergency switch to the previous good generation (no git needed); pins the host there until a newer commit arrives')
      .requiredOption('--host <name>', 'this host\'s name'),
  )
    .option('--to <generation>', 'roll back to this generation instead of the previous good one')
    .option('--deadman-seconds <n>', 'seconds before a changed firewall reverts unless health passes', '120')
    .option('--json', 'print the outcome as JSON')
    .action(async (options: ApplyingOptions & { to?: string; json?: boolean }) => {
      try {
        const ctx = await applyingContext(options);
        await refuseWhileSuspended(options.stateDir);
        const target = options.to === undefined ? undefined : wholeNumber('--to', options.to, 0, 1);
        // Loaded here, not at the top: `status` and `history`, run from timers and hooks, need none of the engine.
        const { rollbackToGeneration } = await import('../reconcile.js');
        const { summarize } = await import('./apply.js');
        const outcome = await rollbackToGeneration(ctx, target);
        if (options.json) out(JSON.stringify(summarize(outcome), null, 2), ctx.redact);
        else if (outcome.result === 'applied') out(`rolled back: generation ${outcome.generation} now holds ${short(outcome.revision)}; pinned until a newer commit arrives`, ctx.redact);
        if (outcome.error) printError(outcome.error, ctx.redact);
        process.exitCode = outcome.result === 'applied' ? 0 : 1;
      } catch (error) {
        process.exitCode = printError(error);
      }
    });

  withHostOptions(
    program
      .command('recover')
      .description('resolve what a crash left behind (undo a half-done transaction), then exit; apply does this first too')
      .option('--config <path>', 'take the host, root, state and secrets dirs from the host config (as the service does)')
      .option('--host <name>', 'this host\'s name (without --config)'),
  ).action(async (options: ApplyingOptions & { config?: string }) => {
      try {
        const ctx = await applyingContext(await recoverOptions(options));
        const { recoverOnly } = await import('../reconcile.js');
        const outcome = await recoverOnly(ctx);
        if (outcome.recovery) out(`recovered generation ${outcome.recovery.generation}: ${outcome.recovery.outcome}`, ctx.redact);
        if (outcome.error) process.exitCode = printError(outcome.error, ctx.redact);
        else if (!outcome.recovery) out('nothing to recover', ctx.redact);
      } catch (error) {
        process.exitCode = printError(error);
      }
    });

  program
    .command('unpin')
    .description('lift a rollback pin: the next reconcile applies the repo\'s revision again')
    .option('--state-dir <dir>', 'the agent\'s state dir', DEFAULT_STATE_DIR)
    .action(async (options: { stateDir: string }) => {
      const store = new StateStore(options.stateDir);
      const pin = await store.pin();
      await store.setPin(undefined);
      out(pin ? `unpinned generation ${pin.generation}` : 'not pinned', plain);
    });
}

/** A rollback changes files like any apply: a suspended host refuses it until `resume`. */
async function refuseWhileSuspended(stateDir: string): Promise<void> {
  const suspension = await readSuspension(stateDir);
  if (!suspension) return;
  const gate = applyGate({ suspension, maintenance: { timezone: 'UTC', windows: [] }, now: new Date() });
  throw new EdgeError('SUSPENDED', `refusing to roll back: ${gate.reason}; run edge-reconciler resume first`, { stage: 'rollback', retry: 'refused' });
}

/** `recover`'s options: with `--config`, the host config's host and dirs win (the service's ExecStartPre). */
async function recoverOptions(options: ApplyingOptions & { config?: string }): Promise<ApplyingOptions> {
  if (options.config) {
    const config = await loadHostConfig(options.config);
    return { ...options, host: config.host, root: config.root, stateDir: config.stateDir, secretsDir: config.secretsDir };
  }
  if (!options.host) throw new EdgeError('USAGE', 'recover needs --host <name> or --config <path>', { stage: 'fetch', retry: 'invalid' });
  return options;
}

/**
 * `status --fleet`: the fleet page's table in the terminal, from the same gathering. Exit 0 when every host is
 * ok, held or waiting; 1 when one fails, does not answer or has nothing live; 2 when the config cannot be read.
 */
async function printFleet(configPath: string, json: boolean): Promise<number> {
  try {
    const config = await loadHostConfig(configPath);
    // Loaded here, not at the top: a plain `status` stays quick.
    const [{ fleetSourceFromConfig }, { gatherFleet }, { renderFleetTable }, { setupSecrets }] = await Promise.all([
      import('../fleet/fleet-config.js'),
      import('../fleet/fleet-gather.js'),
      import('../fleet/fleet-table.js'),
      import('../secrets/secrets.js'),
    ]);
    const secrets = await setupSecrets(config.secretsDir).catch(() => undefined);
    const webhookSecret = config.webhook.secret;
    const redact = (text: string): string => {
      const redacted = secrets ? secrets.redact(text) : text;
      return webhookSecret ? redacted.split(webhookSecret).join('[redacted]') : redacted;
    };
    const store = new StateStore(config.stateDir);
    const view = await gatherFleet(fleetSourceFromConfig(config, () => readStatusView(store, config.host), redact));
    out(json ? JSON.stringify(view, null, 2) : renderFleetTable(view), redact);
    return view.rows.every((row) => ['ok', 'held', 'waiting'].includes(row.health)) ? 0 : 1;
  } catch (error) {
    printError(error);
    return 2;
  }
}
