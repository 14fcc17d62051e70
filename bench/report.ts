/**
 * The benchmark's figures and report: the stages and scenarios it measures, the result types a worker sends back
 * to run.ts, the statistics over a scenario's samples (median, nearest-rank p95, rounding) and the Markdown report.
 */
import type { Stage } from '../reconciler/errors.js';
import { RENDERERS } from '../renderers/registry.js';

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
export type WorkerMode = 'stages' | 'apply';

/** One measured reconcile. */
export interface RunSample {
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

/** The figures of one scenario from its samples; peak RSS defaults to this process's so far. */
export function summarize(scenario: Scenario, samples: RunSample[], peakRssMb = process.resourceUsage().maxRSS / 1024): ScenarioResult {
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

/** The median (nearest rank, as percentile). */
export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (with 5 runs, p95 is the slowest run). */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (p === 50 && sorted.length % 2 === 0) return ((sorted[sorted.length / 2 - 1] ?? 0) + (sorted[sorted.length / 2] ?? 0)) / 2;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** Rounds to one decimal, as every figure in the results is. */
export function round(value: number): number {
  return Math.round(value * 10) / 10;
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
