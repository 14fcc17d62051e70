/**
 * The app-release figures of the benchmark (issue 8, item 10), on the generated workload with N apps:
 * - the no-op of a host whose N apps all have a live release (one `kind: app` resource per app, each pinned to a
 *   commit of a local app repo), against the same no-op without app resources: the fast path must cover releases;
 * - a release bump (a desired-state commit moves one app to the next commit) to the switch of its `current` link:
 *   the real apply path up to the end of the apply stage, minus the build command's own time.
 * In-process through `reconcile()` with the context `apply --dry-activate` builds, into sandbox roots.
 *
 *   node dist/bench/releases.js [--apps 10,100] [--runs 5] [--out bench/releases-results.json]
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { applyingContext, type ApplyingOptions } from '../reconciler/cli/context.js';
import { reconcile, type ReconcileOutcome } from '../reconciler/reconcile.js';
import { appName, BENCH_HOST, generateWorkloadRepo, writeWorkloadSecrets } from './generate.js';
import { median, round } from './report.js';

/** One row of the release figures. */
interface ReleaseRow {
  apps: number;
  scenario: string;
  runs: number;
  medianMs: number;
  p95Ms: number;
  samplesMs: number[];
  /** Median ms per stage (the bump). */
  stages?: Record<string, number>;
}

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], { encoding: 'utf8' }).trim();

/** An app repo with `count` commits (VERSION = v1..v<count>); returns its dir and the SHAs in order. */
async function appRepo(dir: string, count: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  const shas: string[] = [];
  for (let k = 1; k <= count; k++) {
    await writeFile(join(dir, 'VERSION'), `v${k}\n`);
    await writeFile(join(dir, 'server.py'), `print("v${k}")\n`);
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', `v${k}`);
    shas.push(git(dir, 'rev-parse', 'HEAD'));
  }
  return shas;
}

/** Gives app `i`'s role an app resource pinned to `sha` (its unit restarts when the release changes). */
async function pinApp(repoDir: string, i: number, appDir: string, sha: string): Promise<void> {
  const path = join(repoDir, 'roles', appName(i), 'role.yaml');
  const role = parse(await readFile(path, 'utf8')) as { resources: Record<string, unknown>[] };
  const resource = { kind: 'app', name: appName(i), repo: appDir, rev: sha, user: 'nobody', build: { command: ['true'] }, units: [`${appName(i)}.service`] };
  role.resources = [...role.resources.filter((r) => r.kind !== 'app'), resource];
  await writeFile(path, stringify(role));
}

function percentile95(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(0.95 * sorted.length) - 1)] ?? 0;
}

function row(apps: number, scenario: string, samples: number[]): ReleaseRow {
  return { apps, scenario, runs: samples.length, medianMs: round(median(samples)), p95Ms: round(percentile95(samples)), samplesMs: samples.map(round) };
}

/** Measures the release figures for N apps. */
export async function measureReleases(apps: number, runs: number): Promise<ReleaseRow[]> {
  const base = await mkdtemp(join(tmpdir(), `edge-bench-releases-${apps}-`));
  try {
    const secretsDir = join(base, 'secrets');
    await writeWorkloadSecrets(secretsDir, apps);
    const appDir = join(base, 'app');
    const shas = await appRepo(appDir, runs + 2);
    const plainRepo = join(base, 'plain');
    const releaseRepo = join(base, 'releases');
    await generateWorkloadRepo(plainRepo, apps);
    await generateWorkloadRepo(releaseRepo, apps);
    for (let i = 1; i <= apps; i++) await pinApp(releaseRepo, i, appDir, shas[0] as string);
    git(releaseRepo, 'commit', '-q', '-a', '-m', 'every app gets a release');
    const options = (repo: string, sandbox: string): ApplyingOptions & { repo: string } => ({
      host: BENCH_HOST,
      root: join(sandbox, 'root'),
      stateDir: join(sandbox, 'state'),
      secretsDir,
      dryActivate: true,
      repo,
      quiet: true,
    });
    const once = async (repo: string, sandbox: string, expected: ReconcileOutcome['result']) => {
      const started = performance.now();
      const outcome = await reconcile(await applyingContext(options(repo, sandbox)));
      const totalMs = performance.now() - started;
      if (outcome.result !== expected) throw new Error(`releases bench, ${apps} apps: ${outcome.result} instead of ${expected}: ${outcome.error?.message ?? ''}`);
      return { totalMs, outcome };
    };
    const plain = join(base, 'sandbox-plain');
    const withReleases = join(base, 'sandbox-releases');
    await once(plainRepo, plain, 'applied');
    await once(releaseRepo, withReleases, 'applied');
    // The two no-ops alternate, one warm-up each first, so a busy moment of the machine hits both alike.
    await once(plainRepo, plain, 'unchanged');
    await once(releaseRepo, withReleases, 'unchanged');
    const plainSamples: number[] = [];
    const releaseSamples: number[] = [];
    for (let k = 0; k < runs * 2; k++) {
      plainSamples.push((await once(plainRepo, plain, 'unchanged')).totalMs);
      releaseSamples.push((await once(releaseRepo, withReleases, 'unchanged')).totalMs);
    }
    const rows = [row(apps, 'apply: no-op, no app releases', plainSamples), row(apps, `apply: no-op, ${apps} live app releases`, releaseSamples)];
    const bumped = Math.ceil(apps / 2);
    const toSwitch: number[] = [];
    const perStage: Record<string, number[]> = {};
    for (let k = 1; k <= runs; k++) {
      await pinApp(releaseRepo, bumped, appDir, shas[k] as string);
      git(releaseRepo, 'commit', '-q', '-a', '-m', `${appName(bumped)}: v${k + 1}`);
      const { outcome } = await once(releaseRepo, withReleases, 'applied');
      const d = outcome.state.durations;
      const upToSwitch = ['fetch', 'load', 'render', 'validate', 'prepare', 'plan', 'apply'] as const;
      const buildMs = (outcome.state.releases?.find((release) => release.app === appName(bumped))?.buildSeconds ?? 0) * 1000;
      toSwitch.push(upToSwitch.reduce((sum, stage) => sum + (d[stage] ?? 0), 0) - buildMs);
      for (const stage of upToSwitch) (perStage[stage] ??= []).push(d[stage] ?? 0);
      (perStage.build ??= []).push(buildMs);
    }
    const stages = Object.fromEntries(Object.entries(perStage).map(([stage, values]) => [stage, round(median(values))]));
    rows.push({ ...row(apps, 'release bump → switch (without the build command)', toSwitch), stages });
    return rows;
  } finally {
    if (!process.env.EDGE_BENCH_KEEP) await rm(base, { recursive: true, force: true });
  }
}

/** The Markdown table of the release figures. */
export function formatReleaseRows(rows: ReleaseRow[]): string {
  const lines = ['| N apps | scenario | runs | median ms | p95 ms |', '|---:|---|---:|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.apps} | ${r.scenario} | ${r.runs} | ${r.medianMs.toFixed(1)} | ${r.p95Ms.toFixed(1)} |`);
  for (const r of rows) {
    if (r.stages) lines.push('', `N=${r.apps}, the bump by stage (median ms): ${Object.entries(r.stages).map(([stage, ms]) => `${stage} ${ms}`).join(', ')}`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const value = (flag: string) => {
    const k = argv.indexOf(flag);
    return k >= 0 ? argv[k + 1] : undefined;
  };
  const apps = (value('--apps') ?? '10,100').split(',').map(Number);
  const runs = Number(value('--runs') ?? 5);
  const out = value('--out') ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'releases-results.json');
  const rows: ReleaseRow[] = [];
  for (const n of apps) {
    process.stderr.write(`bench: app releases, ${n} apps...\n`);
    rows.push(...(await measureReleases(n, runs)));
  }
  process.stdout.write(`${formatReleaseRows(rows)}\n`);
  await writeFile(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, rows }, null, 2) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
