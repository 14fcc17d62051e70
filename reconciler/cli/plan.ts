/**
 * `edge-reconciler plan --repo DIR --host NAME`: what applying the revision would change under `--root`, file by
 * file with diffs (env values masked), and the activation it implies. Exit 0 = no changes, 2 = changes, 1 = error.
 */
import type { Command } from 'commander';
import { Host } from '../host/host.js';
import { DEFAULT_PATH_POLICY } from '../host/path-policy.js';
import { PLAN_PIPELINE, runStages } from '../pipeline.js';
import { silentLogger } from '../run-context.js';
import { StateStore } from '../state/state-store.js';
import { liveGeneration } from '../state/status.js';
import { refuseOtherHost } from '../state/host-binding.js';
import { requireLocalRepo } from '../source/repo-path.js';
import type { Activation, FileChange, Plan } from '../model.js';
import { out, printError } from './io.js';
import { setupSecrets } from '../secrets/secrets.js';

interface PlanOptions {
  repo: string;
  host: string;
  root: string;
  secretsDir?: string;
  stateDir?: string;
  json?: boolean;
}

/** Registers the `plan` command. */
export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('show what applying the repo would change on a host, and which units would start, restart or stop')
    .requiredOption('--repo <dir>', 'the desired-state repo (a checkout or an exported tree)')
    .requiredOption('--host <name>', 'the host to plan (hosts/<name>.yaml)')
    .option('--root <dir>', 'the host\'s filesystem root to compare with', '/')
    .option('--secrets-dir <dir>', 'the host-local secrets (default: placeholders)')
    .option('--state-dir <dir>', 'compare with the live generation of this state dir too (shows deletions)')
    .option('--json', 'print the plan as JSON')
    .addHelpText('after', '\nExit status: 0 no changes, 2 changes, 1 error.')
    .action(async (options: PlanOptions) => {
      process.exitCode = await runPlan(options);
    });
}

async function runPlan(options: PlanOptions): Promise<number> {
  let redact = (text: string) => text;
  try {
    const secrets = await setupSecrets(options.secretsDir);
    redact = secrets.redact;
    await requireLocalRepo(options.repo, 'load');
    const store = options.stateDir ? new StateStore(options.stateDir) : undefined;
    if (store) await refuseOtherHost(store, options.host);
    const previous = store ? await liveGeneration(store, options.host) : undefined;
    const state = await runStages(
      PLAN_PIPELINE,
      {
        hostName: options.host,
        host: new Host(options.root),
        secrets: secrets.source,
        redact,
        policy: DEFAULT_PATH_POLICY,
        log: silentLogger,
      },
      { tree: options.repo, previous: previous?.inventory ?? [], commands: [], durations: {} },
    );
    const plan = state.plan as Plan;
    out(options.json ? JSON.stringify({ ...plan, durations: state.durations }, null, 2) : formatPlan(plan, options.root), redact);
    return plan.changed ? 2 : 0;
  } catch (error) {
    return printError(error, redact);
  }
}

const SIGN: Record<FileChange['action'], string> = { create: '+', update: '~', delete: '-', unchanged: '=' };

/** The human form of a plan. */
export function formatPlan(plan: Plan, root: string): string {
  const count = (action: FileChange['action']) => plan.changes.filter((change) => change.action === action).length;
  const lines = [
    `plan for ${plan.host} (root ${root}): ${count('create')} to create, ${count('update')} to update, ` +
      `${count('delete')} to delete, ${count('unchanged')} unchanged`,
  ];
  for (const change of plan.changes) {
    if (change.action === 'unchanged') continue;
    const why = change.reasons.length > 0 ? ` (${change.reasons.join(', ')})` : '';
    const masked = change.sensitive ? ' [values masked]' : '';
    lines.push('', `${SIGN[change.action]} ${change.path}  ${change.kind} ${change.resource}${why}${masked}`);
    if (change.diff) lines.push(...change.diff.split('\n').map((line) => `    ${line}`));
  }
  lines.push('', ...formatActivation(plan.activation));
  if (plan.notes && plan.notes.length > 0) lines.push('', 'app releases:', ...plan.notes.map((note) => `  ${note}`));
  return lines.join('\n');
}

function formatActivation(activation: Activation): string[] {
  const lines: string[] = [];
  const units = (verb: string, list: string[], explain = true) => {
    for (const unit of list) {
      const because = explain ? activation.because[unit] : undefined;
      lines.push(`  ${verb} ${unit}${because ? `  (${because.join(', ')})` : ''}`);
    }
  };
  if (activation.daemonReload) lines.push('  systemctl daemon-reload');
  units('stop', activation.stop);
  units('disable', activation.disable, false);
  units('enable', activation.enable, false);
  units('start', activation.start);
  units('restart', activation.restart);
  units('reload', activation.reload);
  if (activation.caddyReload) lines.push('  caddy reload');
  if (activation.firewall) lines.push('  ufw: apply the new rule set (with dead-man switch)');
  for (const command of activation.run) lines.push(`  run ${command.join(' ')}`);
  return lines.length > 0 ? ['activation:', ...lines] : ['activation: nothing to do'];
}
