/**
 * The benchmark: reconciles of a generated host with N apps (bench/generate.ts), in-process through the stage
 * functions, into a sandbox root. Scenarios: cold (empty root), no-op (root matches), no-op that skips the
 * validators because the rendered generation equals the last applied one, and one-change (one env var changed).
 * Each N runs in its own child process, so peak RSS is per workload. The validators are the real tools; the agent's
 * own time (everything else) is reported separately, since that is what DESIGN.md §8 budgets.
 *
 *   node dist/bench/run.js [--apps 10,100,1000] [--runs 5] [--out bench/results.json] [--budget-seconds 150]
 */
import { execFileSync, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Host, readSecretsDir, RecordingRunner } from '../reconciler/host.js';
import { inventoryOf, type InventoryEntry } from '../reconciler/inventory.js';
import type { DesiredState } from '../reconciler/model.js';
import { DEFAULT_PATH_POLICY } from '../reconciler/path-policy.js';
import { loadDesiredState } from '../reconciler/stages/load.js';
import { planHost, type Activation, type Plan } from '../reconciler/stages/plan.js';
import { renderHost } from '../reconciler/stages/render.js';
import { collectValidationProblems, stageFiles } from '../reconciler/stages/validate.js';
import { RENDERERS } from '../renderers/registry.js';
import type { SecretSource } from '../renderers/template.js';
import type { RenderedFile } from '../renderers/types.js';
import { applyingContext, type ApplyingOptions } from '../reconciler/cli/context.js';
import type { Stage } from '../reconciler/errors.js';
import { reconcile, type ReconcileOutcome } from '../reconciler/reconcile.js';
import { appName, BENCH_HOST, changeOneApp, FILES_PER_APP, generateWorkload, SHARED_FILES, writeWorkloadSecrets } from './generate.js';

/**
 * The stages a measured reconcile may run: the pipeline's own, plus `context` (building the run's context: reading
 * the secrets dir) and `compare` (the generation check of the skip-validators no-op).
 */
export type BenchStage = 'context' | 'compare' | Stage;

const STAGES: readonly BenchStage[] = ['context', 'fetch', 'load', 'render', 'compare', 'validate', 'plan', 'apply', 'activate', 'health', 'record'];

/**
 * The scenarios, in the order they run (each one's root is what the previous one left). `stages:` ones call the
 * stage functions directly, with a minimal apply; `apply:` ones are the real `apply --dry-activate` path
 * (fetch from a git checkout, journaled apply, generations, status), in-process; the CLI one is a fresh process.
 */
export type Scenario =
  | 'stages: cold'
  | 'stages: no-op'
  | 'stages: no-op, validators skipped'
  | 'stages: one-change'
  | 'apply: cold'
  | 'apply: no-op'
  | 'apply: one-change'
  | 'apply: no-op, CLI in a fresh process';

/** What a worker measures: the stage functions, or the real apply path. */
type WorkerMode = 'stages' | 'apply';

/** One measured reconcile. */
interface RunSample {
  totalMs: number;
  stages: Partial<Record<BenchStage, number>>;
  changedFiles: number;
}

/** The figures of one scenario at one N. */
export interface ScenarioResult {
  scenario: Scenario;
  runs: number;
  medianMs: number;
  p95Ms: number;
  /** Median of (total − validate): load, render, plan, apply, activation recording. */
  agentMedianMs: number;
  validatorsMedianMs: number;
  stageMediansMs: Partial<Record<BenchStage, number>>;
  /** Peak RSS of the worker process so far (it only grows: the scenarios run in order); of the CLI for its row. */
  peakRssMb?: number;
  /** What one run changed, as a sanity check (cold: every file, no-op: 0, one-change: 1). */
  changedFiles: number;
  samplesMs: number[];
}

/** Everything measured for one N and one mode, in one child process. */
export interface WorkloadResult {
  mode: WorkerMode;
  apps: number;
  files: number;
  runs: number;
  /** Why fewer runs than asked, when so. */
  runsNote?: string;
  /** The very first reconcile of the process (cold, nothing compiled or cached yet), by stage. */
  firstRun: RunSample;
  scenarios: ScenarioResult[];
  /** Staging and each kind's validator alone, once, on the final files: who dominates the validate stage. */
  validatorsByKindMs?: Record<string, number>;
  /** RSS after the runs, once the garbage collector had the chance. */
  rssAfterMb: number;
}

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
async function measureStages(apps: number, runs: number, budgetSeconds: number): Promise<WorkloadResult> {
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
async function measureApplyPath(apps: number, runs: number, budgetSeconds: number): Promise<WorkloadResult> {
  const base = await mkdtemp(join(tmpdir(), `edge-bench-apply-${apps}-`));
  try {
    const repoDir = join(base, 'repo');
    const secretsDir = join(base, 'secrets');
    await generateWorkload(repoDir, apps);
    await writeWorkloadSecrets(secretsDir, apps);
    const git = (...args: string[]) => execFileSync('git', ['-C', repoDir, '-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], { stdio: 'ignore' });
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('commit', '-q', '-m', `bench workload: ${apps} apps`);
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

function summarize(scenario: Scenario, samples: RunSample[], peakRssMb = process.resourceUsage().maxRSS / 1024): ScenarioResult {
  const totals = samples.map((sample) => sample.totalMs);
  const stageMediansMs: Partial<Record<BenchStage, number>> = {};
  for (const stage of STAGES) {
    const values = samples.map((sample) => sample.stages[stage]).filter((value): value is number => value !== undefined);
    if (values.length > 0) stageMediansMs[stage] = round(median(values));
  }
  return {
    scenario,
    runs: samples.length,
    medianMs: round(median(totals)),
    p95Ms: round(percentile(totals, 95)),
    agentMedianMs: round(median(samples.map((sample) => sample.totalMs - (sample.stages.validate ?? 0)))),
    validatorsMedianMs: round(median(samples.map((sample) => sample.stages.validate ?? 0))),
    stageMediansMs,
    peakRssMb: peakRssMb === undefined ? undefined : round(peakRssMb),
    changedFiles: samples[samples.length - 1]?.changedFiles ?? 0,
    samplesMs: totals.map(round),
  };
}

function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (with 5 runs, p95 is the slowest run). */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (p === 50 && sorted.length % 2 === 0) return ((sorted[sorted.length / 2 - 1] ?? 0) + (sorted[sorted.length / 2] ?? 0)) / 2;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Runs one N and mode in a child process (so its peak RSS is its own) and returns what it measured. */
function runWorker(mode: WorkerMode, apps: number, runs: number, budgetSeconds: number): Promise<WorkloadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--worker', mode, String(apps), String(runs), String(budgetSeconds)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result: WorkloadResult | undefined;
    child.on('message', (message) => (result = message as WorkloadResult));
    child.on('error', reject);
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`${mode} worker for ${apps} apps exited with ${code}`))));
  });
}

function toolVersion(argv: string[]): string {
  try {
    return execFileSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8' }).split('\n')[0]?.trim() ?? '';
  } catch {
    return 'missing';
  }
}

/** The Markdown report: the main table, then stage medians and the validators by kind. */
export function formatReport(results: WorkloadResult[]): string {
  const ms = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(1));
  const lines = [
    '| N apps | files | scenario | runs | median ms | p95 ms | agent ms | validators ms | peak RSS MB |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const w of results) {
    lines.push(
      `| ${w.apps} | ${w.files} | ${w.mode}: first reconcile of the process (cold) | 1 | ${ms(w.firstRun.totalMs)} | - | ` +
        `${ms(w.firstRun.totalMs - (w.firstRun.stages.validate ?? 0))} | ${ms(w.firstRun.stages.validate)} | - |`,
    );
    for (const s of w.scenarios) {
      lines.push(
        `| ${w.apps} | ${w.files} | ${s.scenario} | ${s.runs} | ${ms(s.medianMs)} | ${ms(s.p95Ms)} | ${ms(s.agentMedianMs)} | ` +
          `${ms(s.validatorsMedianMs)} | ${s.peakRssMb === undefined ? '-' : s.peakRssMb.toFixed(0)} |`,
      );
    }
  }
  lines.push('', 'Median ms per stage:', '', `| N apps | scenario | ${STAGES.join(' | ')} |`, `|---:|---|${STAGES.map(() => '---:').join('|')}|`);
  for (const w of results) {
    for (const s of w.scenarios) lines.push(`| ${w.apps} | ${s.scenario} | ${STAGES.map((stage) => ms(s.stageMediansMs[stage])).join(' | ')} |`);
  }
  const kinds = ['staging', ...RENDERERS.map((renderer) => renderer.kind)];
  lines.push('', 'The validate stage in parts, each alone, one run on the final files (ms; staging = writing the files into the');
  lines.push('private temp dir; in a reconcile the validators run concurrently after it):', '');
  lines.push(`| N apps | ${kinds.join(' | ')} |`, `|---:|${kinds.map(() => '---:').join('|')}|`);
  for (const w of results) {
    if (w.validatorsByKindMs) lines.push(`| ${w.apps} | ${kinds.map((kind) => ms(w.validatorsByKindMs?.[kind])).join(' | ')} |`);
  }
  lines.push('', ...results.map((w) => `N=${w.apps}, ${w.mode}: RSS after the runs ${w.rssAfterMb.toFixed(0)} MB${w.runsNote ? `; ${w.runsNote}` : ''}`));
  return lines.join('\n');
}

function parseArgs(argv: string[]): { apps: number[]; runs: number; out: string; budgetSeconds: number } {
  const value = (flag: string) => {
    const k = argv.indexOf(flag);
    return k >= 0 ? argv[k + 1] : undefined;
  };
  const apps = (value('--apps') ?? '10,100,1000').split(',').map(Number);
  const runs = Number(value('--runs') ?? 5);
  const budgetSeconds = Number(value('--budget-seconds') ?? 150);
  if (apps.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(runs) || runs < 1 || !(budgetSeconds > 0)) {
    throw new Error('usage: run.js [--apps 10,100,1000] [--runs 5] [--out FILE] [--budget-seconds 150]');
  }
  const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return { apps, runs, budgetSeconds, out: value('--out') ?? join(projectRoot, 'bench', 'results.json') };
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--worker') {
    const [mode, apps, runs, budget] = [argv[1] as WorkerMode, Number(argv[2]), Number(argv[3]), Number(argv[4])];
    const result = mode === 'apply' ? await measureApplyPath(apps, runs, budget) : await measureStages(apps, runs, budget);
    process.send?.(result);
    return;
  }
  const options = parseArgs(argv);
  const started = performance.now();
  const results: WorkloadResult[] = [];
  for (const apps of options.apps) {
    for (const mode of ['stages', 'apply'] as const) {
      process.stderr.write(`bench: ${apps} apps, ${mode}...\n`);
      results.push(await runWorker(mode, apps, options.runs, options.budgetSeconds));
    }
  }
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    caddy: toolVersion(['caddy', 'version']),
    systemd: toolVersion(['systemd-analyze', '--version']),
  };
  const report = formatReport(results);
  process.stdout.write(`${report}\n\nmachine: ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, ${machine.caddy}, ${machine.systemd}\n`);
  process.stdout.write(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  await writeFile(options.out, JSON.stringify({ date: new Date().toISOString(), machine, runsRequested: options.runs, results }, null, 2) + '\n');
  process.stderr.write(`bench: wrote ${options.out}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
