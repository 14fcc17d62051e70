/**
 * The benchmark's measurements, run in a worker process: the stage-function scenarios (a timed reconcile through
 * load, render, validate, plan and a minimal apply) and the real apply path (in-process, then the CLI in a fresh
 * process), each summarized per scenario, plus each kind's validator timed alone.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Host, RecordingRunner } from '../reconciler/host/host.js';
import { readSecretsDir } from '../reconciler/host/secrets-dir.js';
import { inventoryOf, type InventoryEntry } from '../reconciler/state/inventory.js';
import type { Activation, DesiredState, Plan } from '../reconciler/model.js';
import { DEFAULT_PATH_POLICY } from '../reconciler/host/path-policy.js';
import { loadDesiredState } from '../reconciler/stages/load.js';
import { planHost } from '../reconciler/stages/plan.js';
import { renderHost } from '../reconciler/stages/render.js';
import { collectValidationProblems, stageFiles } from '../reconciler/stages/validate.js';
import { RENDERERS } from '../renderers/registry.js';
import type { SecretSource } from '../renderers/template.js';
import type { RenderedFile } from '../renderers/types.js';
import { applyingContext, type ApplyingOptions } from '../reconciler/cli/context.js';
import type { Stage } from '../reconciler/errors.js';
import { reconcile, type ReconcileOutcome } from '../reconciler/reconcile.js';
import { appName, BENCH_HOST, changeOneApp, FILES_PER_APP, generateWorkload, generateWorkloadRepo, SHARED_FILES, writeWorkloadSecrets } from './generate.js';
import { round, summarize, type BenchStage, type RunSample, type Scenario, type ScenarioResult, type WorkloadResult } from './report.js';

interface Workload {
  repoDir: string;
  secrets: SecretSource;
  apps: number;
}

/** One reconcile: load → render → [compare] → validate → plan → apply → activate (recorded), timed per stage. */
async function reconcileWithStages(
  workload: Workload,
  root: string,
  previous: InventoryEntry[],
  options: { skipValidatorsWhenUnchanged?: boolean } = {},
): Promise<{ sample: RunSample; files: RenderedFile[] }> {
  const stages: Partial<Record<BenchStage, number>> = {};
  // In-process figures: the workload's secrets were read once, outside the timing.
  const timed = async <T>(stage: BenchStage, work: () => Promise<T> | T): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      stages[stage] = performance.now() - started;
    }
  };
  const started = performance.now();
  const state = await timed('load', () => loadDesiredState(workload.repoDir));
  const { files } = await timed('render', () => renderHost(state, BENCH_HOST, workload.secrets, DEFAULT_PATH_POLICY));
  const unchanged = options.skipValidatorsWhenUnchanged
    ? await timed('compare', () => sameGeneration(inventoryOf(files), previous))
    : false;
  if (!unchanged) {
    const problems = await timed('validate', () => collectValidationProblems(state, files));
    if (problems.length > 0) throw new Error(`workload does not validate: ${JSON.stringify(problems.slice(0, 3))}`);
  }
  const host = new Host(root);
  const plan = await timed('plan', () => planHost(BENCH_HOST, files, host, previous));
  await timed('apply', () => applyToRoot(plan, files, host));
  await timed('activate', () => recordActivation(plan.activation));
  const changedFiles = plan.changes.filter((change) => change.action !== 'unchanged').length;
  return { sample: { totalMs: performance.now() - started, stages, changedFiles }, files };
}

/** True when two inventories name the same paths with the same bytes, modes and owners. */
function sameGeneration(next: InventoryEntry[], previous: InventoryEntry[]): boolean {
  if (next.length !== previous.length || previous.length === 0) return false;
  return next.every((entry, k) => {
    const old = previous[k];
    return (
      old !== undefined &&
      entry.path === old.path &&
      entry.sha256 === old.sha256 &&
      entry.mode === old.mode &&
      entry.owner === old.owner &&
      entry.group === old.group
    );
  });
}

/**
 * Stand-in for the apply stage until `reconciler/pipeline.ts` has one: writes each created or updated file under
 * the sandbox root the way apply must (temp file, mode and owner, rename), removes deleted ones.
 */
async function applyToRoot(plan: Plan, files: RenderedFile[], host: Host): Promise<void> {
  const byPath = new Map(files.map((file) => [file.path, file]));
  for (const change of plan.changes) {
    const target = host.resolve(change.path);
    if (change.action === 'delete') await rm(target, { force: true });
    if (change.action !== 'create' && change.action !== 'update') continue;
    const file = byPath.get(change.path);
    if (!file) throw new Error(`plan names ${change.path}, which was not rendered`);
    await mkdir(dirname(target), { recursive: true });
    const temp = join(dirname(target), `.${change.path.split('/').pop()}.edge-new`);
    await writeFile(temp, file.content, { mode: file.mode });
    await chmod(temp, file.mode);
    const uid = host.ids.uid(file.owner);
    const gid = host.ids.gid(file.group);
    if (uid !== undefined && gid !== undefined && process.getuid?.() === 0) await chown(temp, uid, gid);
    await rename(temp, target);
  }
}

/** The activation commands a plan implies, recorded and not run (`--dry-activate`). */
async function recordActivation(activation: Activation): Promise<string[][]> {
  const runner = new RecordingRunner();
  if (activation.daemonReload) await runner.run(['systemctl', 'daemon-reload']);
  for (const [verb, units] of [
    ['stop', activation.stop],
    ['disable', activation.disable],
    ['enable', activation.enable],
    ['start', activation.start],
    ['restart', activation.restart],
    ['reload', activation.reload],
  ] as const) {
    if (units.length > 0) await runner.run(['systemctl', verb, ...units]);
  }
  if (activation.caddyReload) await runner.run(['caddy', 'reload', '--config', '/etc/caddy/Caddyfile']);
  if (activation.firewall) await runner.run(['ufw', 'reload']);
  for (const command of activation.run) await runner.run(command);
  return runner.commands;
}

/** How many runs one scenario gets: `runs`, fewer when `scenarios` × the first run would pass the time budget. */
function affordableRuns(runs: number, firstMs: number, scenarios: number, budgetSeconds: number): { runs: number; note?: string } {
  const affordable = Math.max(1, Math.floor((budgetSeconds * 1000) / (scenarios * firstMs)));
  if (affordable >= runs) return { runs };
  return { runs: affordable, note: `${affordable} runs instead of ${runs}: one reconcile took ${Math.round(firstMs)} ms` };
}

/** Runs every stage-function scenario for one N; called in the worker process. */
export async function measureStages(apps: number, runs: number, budgetSeconds: number): Promise<WorkloadResult> {
  const base = await mkdtemp(join(tmpdir(), `edge-bench-${apps}-`));
  try {
    const repoDir = join(base, 'repo');
    const secretsDir = join(base, 'secrets');
    await generateWorkload(repoDir, apps);
    await writeWorkloadSecrets(secretsDir, apps);
    const values = await readSecretsDir(secretsDir);
    const workload: Workload = { repoDir, apps, secrets: { get: (name) => values.get(name), description: secretsDir } };

    const first = await reconcileWithStages(workload, await mkdtemp(join(base, 'root-')), []);
    const { runs: measuredRuns, note: runsNote } = affordableRuns(runs, first.sample.totalMs, 4, budgetSeconds);

    const scenarios: ScenarioResult[] = [];
    const measure = async (scenario: Scenario, once: () => Promise<RunSample>) => {
      const samples: RunSample[] = [];
      for (let k = 0; k < measuredRuns; k++) samples.push(await once());
      scenarios.push(summarize(scenario, samples));
    };

    let root = '';
    let previous: InventoryEntry[] = [];
    let files: RenderedFile[] = [];
    await measure('stages: cold', async () => {
      if (root) await rm(root, { recursive: true, force: true });
      root = await mkdtemp(join(base, 'root-'));
      const run = await reconcileWithStages(workload, root, []);
      files = run.files;
      return run.sample;
    });
    previous = inventoryOf(files);
    await measure('stages: no-op', async () => (await reconcileWithStages(workload, root, previous)).sample);
    await measure('stages: no-op, validators skipped', async () => {
      return (await reconcileWithStages(workload, root, previous, { skipValidatorsWhenUnchanged: true })).sample;
    });
    const changed = Math.ceil(apps / 2);
    await measure('stages: one-change', async () => {
      await changeOneApp(repoDir, changed);
      const run = await reconcileWithStages(workload, root, previous);
      previous = inventoryOf(run.files);
      files = run.files;
      return run.sample;
    });

    const validatorsByKindMs = await timeValidatorsByKind(await loadDesiredState(repoDir), files);
    (globalThis as { gc?: () => void }).gc?.();
    const rssAfterMb = process.memoryUsage().rss / 1024 / 1024;
    return { mode: 'stages', apps, files: files.length, runs: measuredRuns, runsNote, firstRun: first.sample, scenarios, validatorsByKindMs, rssAfterMb };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/**
 * The real apply path, in-process: `reconcile()` with the context `apply --dry-activate` builds, from a git
 * checkout of the workload (one commit per change), into a sandbox root with its own state dir. Then one no-op
 * through the CLI in a fresh process, the way a timer-driven agent (or ansible-pull) runs.
 */
export async function measureApplyPath(apps: number, runs: number, budgetSeconds: number): Promise<WorkloadResult> {
  const base = await mkdtemp(join(tmpdir(), `edge-bench-apply-${apps}-`));
  try {
    const repoDir = join(base, 'repo');
    const secretsDir = join(base, 'secrets');
    await generateWorkloadRepo(repoDir, apps);
    await writeWorkloadSecrets(secretsDir, apps);
    const git = (...args: string[]) => execFileSync('git', ['-C', repoDir, '-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], { stdio: 'ignore' });
    const options = (sandbox: string): ApplyingOptions & { repo: string } => ({
      host: BENCH_HOST,
      root: join(sandbox, 'root'),
      stateDir: join(sandbox, 'state'),
      secretsDir,
      dryActivate: true,
      repo: repoDir,
      quiet: true,
    });
    const once = async (sandbox: string, expected: ReconcileOutcome['result']): Promise<RunSample> => {
      const started = performance.now();
      const ctx = await applyingContext(options(sandbox));
      const context = performance.now() - started;
      const outcome = await reconcile(ctx);
      const totalMs = performance.now() - started;
      if (outcome.result !== expected) {
        throw new Error(`apply of ${apps} apps: ${outcome.result} instead of ${expected}: ${outcome.error?.message ?? ''} ${JSON.stringify(outcome.error?.problems?.slice(0, 3) ?? [])}`);
      }
      const changedFiles = outcome.state.plan?.changes.filter((change) => change.action !== 'unchanged').length ?? 0;
      return { totalMs, stages: { context, ...outcome.state.durations }, changedFiles };
    };
    const freshSandbox = async () => {
      const sandbox = await mkdtemp(join(base, 'sandbox-'));
      await mkdir(join(sandbox, 'root'));
      return sandbox;
    };

    const first = await once(await freshSandbox(), 'applied');
    const { runs: measuredRuns, note: runsNote } = affordableRuns(runs, first.totalMs, 3, budgetSeconds);
    const scenarios: ScenarioResult[] = [];
    const measure = async (scenario: Scenario, run: () => Promise<RunSample>) => {
      const samples: RunSample[] = [];
      for (let k = 0; k < measuredRuns; k++) samples.push(await run());
      scenarios.push(summarize(scenario, samples));
    };
    let sandbox = '';
    await measure('apply: cold', async () => {
      if (sandbox) await rm(sandbox, { recursive: true, force: true });
      sandbox = await freshSandbox();
      return once(sandbox, 'applied');
    });
    await measure('apply: no-op', () => once(sandbox, 'unchanged'));
    const changed = Math.ceil(apps / 2);
    await measure('apply: one-change', async () => {
      const release = await changeOneApp(repoDir, changed);
      git('commit', '-q', '-a', '-m', `${appName(changed)}: release ${release}`);
      return once(sandbox, 'applied');
    });
    const cli = await cliNoOp(options(sandbox), base);
    scenarios.push(summarize('apply: no-op, CLI in a fresh process', [cli.sample], cli.peakRssMb));
    (globalThis as { gc?: () => void }).gc?.();
    const rssAfterMb = process.memoryUsage().rss / 1024 / 1024;
    return { mode: 'apply', apps, files: apps * FILES_PER_APP + SHARED_FILES, runs: measuredRuns, runsNote, firstRun: first, scenarios, rssAfterMb };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/**
 * One `edge-reconciler apply --dry-activate --json` that finds nothing to do, timed from spawn to exit; its peak
 * RSS comes from GNU time when installed (`/usr/bin/time` adds ~1 ms).
 */
async function cliNoOp(options: ApplyingOptions & { repo: string }, base: string): Promise<{ sample: RunSample; peakRssMb?: number }> {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'reconciler', 'cli', 'main.js');
  const argv = [cli, 'apply', '--repo', options.repo, '--host', options.host, '--root', options.root, '--state-dir', options.stateDir];
  argv.push('--secrets-dir', options.secretsDir ?? '', '--dry-activate', '--quiet', '--json');
  const timeFile = join(base, 'cli-time');
  const gnuTime = existsSync('/usr/bin/time');
  const [file, args] = gnuTime ? ['/usr/bin/time', ['-f', '%M', '-o', timeFile, process.execPath, ...argv]] : [process.execPath, argv];
  const started = performance.now();
  const stdout = execFileSync(file, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const totalMs = performance.now() - started;
  const summary = JSON.parse(stdout) as { result: string; durations: Partial<Record<Stage, number>> };
  if (summary.result !== 'unchanged') throw new Error(`CLI no-op: ${summary.result} instead of unchanged`);
  const peakRssMb = gnuTime ? Number((await readFile(timeFile, 'utf8')).trim()) / 1024 : undefined;
  return { sample: { totalMs, stages: summary.durations, changedFiles: 0 }, peakRssMb };
}

/** Staging, then each kind's validator alone on the staged copy (in a reconcile they run concurrently). */
async function timeValidatorsByKind(state: DesiredState, files: RenderedFile[]): Promise<Record<string, number>> {
  const stagingDir = await mkdtemp(join(tmpdir(), 'edge-bench-validate-'));
  try {
    const times: Record<string, number> = {};
    const staged = performance.now();
    await stageFiles(stagingDir, files);
    times.staging = round(performance.now() - staged);
    for (const renderer of RENDERERS) {
      const ofKind = files.filter((file) => file.kind === renderer.kind);
      const started = performance.now();
      await renderer.validate({
        files: ofKind,
        allFiles: files,
        stagingDir,
        guards: state.edge.guards,
        externalExecPrefixes: state.edge.externalExecPrefixes,
      });
      times[renderer.kind] = round(performance.now() - started);
    }
    return times;
  } finally {
    await rm(stagingDir, { recursive: true, force: true });
  }
}
