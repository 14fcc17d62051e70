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
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { measureApplyPath, measureStages } from './measure.js';
import { formatReport, type WorkerMode, type WorkloadResult } from './report.js';
import { formatReleaseRows, measureReleases } from './releases.js';

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
  // App releases (issue 8): the no-op with N live releases against none, and a release bump to the switch.
  const releaseRows = [];
  for (const apps of options.apps.filter((n) => n <= 100)) {
    process.stderr.write(`bench: ${apps} apps, app releases...\n`);
    releaseRows.push(...(await measureReleases(apps, options.runs)));
  }
  const report = `${formatReport(results)}\n\nApp releases (bench/releases.ts):\n\n${formatReleaseRows(releaseRows)}`;
  process.stdout.write(`${report}\n\nmachine: ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, ${machine.caddy}, ${machine.systemd}\n`);
  process.stdout.write(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  await writeFile(options.out, JSON.stringify({ date: new Date().toISOString(), machine, runsRequested: options.runs, results, releases: releaseRows }, null, 2) + '\n');
  process.stderr.write(`bench: wrote ${options.out}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
