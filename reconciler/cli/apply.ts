/**
 * `edge-reconciler apply`: one reconcile of this host: fetch, load, render, validate, plan, apply, activate,
 * health, record, or roll back. Exit 0 when applied, nothing to do, or held back on purpose (suspended, outside
 * the maintenance windows: the poll timer must not fail for that); 3 when refused or pinned; 1 otherwise (a
 * rollback is a failure, never a success).
 */
import type { Command } from 'commander';
import { EdgeError } from '../errors.js';
import { reconcile, type ReconcileOutcome } from '../reconcile.js';
import type { RunResult } from '../state/status.js';
import { applyingContext, wholeNumber, withHostOptions, type ApplyingOptions } from './context.js';
import { out, printError } from './io.js';

interface ApplyOptions extends ApplyingOptions {
  repo: string;
  json?: boolean;
  wait?: string;
}

/** Registers the `apply` command. */
export function registerApply(program: Command): void {
  withHostOptions(
    program
      .command('apply')
      .description('reconcile this host once: apply a revision of the desired-state repo, or roll back if it fails')
      .requiredOption('--repo <dir|url>', 'the desired-state repo: a URL, a bare repo, a checkout (its committed tree) or a plain dir')
      .requiredOption('--host <name>', 'this host\'s name (hosts/<name>.yaml)'),
  )
    .option('--ref <ref>', 'branch, tag or commit to apply (default: HEAD)')
    .option('--secrets-dir <dir>', 'host-local secrets, one 0600 file per secret (with --root /: /etc/edge-reconciler/secrets when it exists); without one, a template that asks for a secret fails, never a stand-in')
    .option('--deadman-seconds <n>', 'seconds before a new firewall reverts unless health passes', '120')
    .option('--keep <n>', 'generations to keep', '10')
    .option('--wait <seconds>', 'wait this long for another run\'s lock', '0')
    .option('--app-instead-of <prefix=replacement>', 'fetch app repos whose URL starts with prefix from replacement instead (as the host config\'s apps.insteadOf; repeatable)', collect, [])
    .option('--json', 'print the outcome as JSON')
    .addHelpText('after', '\nExit status: 0 applied, nothing to do, or held (suspended, outside the maintenance windows), 3 refused (bad revision) or pinned, 1 failed or rolled back.')
    .action(async (options: ApplyOptions) => {
      process.exitCode = await runApply(options);
    });
}

async function runApply(options: ApplyOptions): Promise<number> {
  let ctx;
  let lockWaitMs: number;
  try {
    lockWaitMs = wholeNumber('--wait', options.wait, 0) * 1000;
    ctx = await applyingContext(options);
  } catch (error) {
    if (options.json && error instanceof EdgeError) out(JSON.stringify({ result: 'failed', error: errorJson(error) }, null, 2), (text) => text);
    return printError(error);
  }
  const outcome = await reconcile(ctx, { lockWaitMs });
  if (options.json) {
    out(JSON.stringify(summarize(outcome), null, 2), ctx.redact);
  } else {
    out(describeOutcome(outcome, options.dryActivate === true), ctx.redact);
  }
  if (outcome.error && !options.json && !HELD.has(outcome.result)) printError(outcome.error, ctx.redact);
  if (outcome.result === 'applied' || outcome.result === 'unchanged' || HELD.has(outcome.result)) return 0;
  if (outcome.result === 'refused' || outcome.result === 'pinned') return 3;
  return 1;
}

/** The JSON form of an outcome. */
export function summarize(outcome: ReconcileOutcome) {
  const { plan } = outcome.state;
  return {
    result: outcome.result,
    revision: outcome.revision,
    generation: outcome.generation,
    durationMs: outcome.durationMs,
    durations: outcome.state.durations,
    recovery: outcome.recovery,
    changes: plan?.changes.filter((change) => change.action !== 'unchanged').map(({ path, action }) => ({ path, action })) ?? [],
    activation: plan?.activation,
    commands: outcome.state.commands,
    health: outcome.state.health?.results,
    error: outcome.error ? errorJson(outcome.error) : undefined,
    ...(plan?.notes ? { notes: plan.notes } : {}),
    ...(outcome.state.releases ? { releases: outcome.state.releases } : {}),
    ...(outcome.apps ? { apps: outcome.apps } : {}),
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The JSON form of an error. */
function errorJson(error: EdgeError) {
  return { code: error.code, stage: error.stage, message: error.message, problems: error.problems };
}

/** Results that held the revision back on purpose: not a failure, and said on stdout (not as an error). */
const HELD: ReadonlySet<RunResult> = new Set(['suspended', 'outside-window']);

/** A command on one line: a script argument shows its first line and how many follow (--json has them all). */
function oneLine(argv: string[]): string {
  return argv
    .map((arg) => {
      const [first, ...rest] = arg.split('\n');
      return rest.length > 0 ? `${first} … (+${rest.length} lines)` : arg;
    })
    .join(' ');
}

function describeOutcome(outcome: ReconcileOutcome, dry: boolean): string {
  const rev = outcome.revision ? outcome.revision.slice(0, 12) : '?';
  const lines: string[] = [];
  if (outcome.recovery) lines.push(`recovered generation ${outcome.recovery.generation} after a crash (${outcome.recovery.outcome})`);
  const changed = outcome.state.plan?.changes.filter((change) => change.action !== 'unchanged') ?? [];
  switch (outcome.result) {
    case 'applied':
      lines.push(`applied ${rev} as generation ${outcome.generation}: ${changed.length} file(s) changed in ${outcome.durationMs} ms`);
      break;
    case 'unchanged':
      lines.push(`${rev} is live (generation ${outcome.generation}): nothing to do`);
      break;
    case 'suspended':
    case 'outside-window':
      lines.push(`${outcome.result}: ${rev} not applied: ${outcome.error?.message ?? 'held back'}${outcome.result === 'suspended' ? ' (run edge-reconciler resume)' : ''}`);
      if (changed.length > 0) lines.push('waiting to change:');
      break;
    case 'pinned':
      lines.push(`pinned to generation ${outcome.generation} by a rollback; waiting for a newer commit than ${rev} (or run unpin)`);
      break;
    default:
      lines.push(`${outcome.result}: ${rev}`);
  }
  for (const change of changed) lines.push(`  ${change.action.padEnd(6)} ${change.path}`);
  if (outcome.state.commands.length > 0) {
    lines.push(dry ? 'activation (recorded, not run: --dry-activate):' : 'activation:');
    for (const command of outcome.state.commands) lines.push(`  ${oneLine(command)}`);
  }
  for (const result of outcome.state.health?.results ?? []) lines.push(`  health ${result.name}: ${result.status} ${result.message}`);
  return lines.join('\n');
}
