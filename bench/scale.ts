/**
 * Whole-process scale figures (issue 14): what a reconcile costs as a fresh `node dist/reconciler/cli/main.js`
 * process, start-up and children (git, validators) included, wall and CPU (user + sys from bash's `time`), in
 * the environment a systemd unit gives it (timed.ts), on
 *
 * - the generated single host with N apps (generate.ts; 100 and 1000 by default): cold (empty root and state dir),
 *   no-op (the same commit again), one change (one app's release bumped and committed);
 * - one agent's view of the fleet repo (generate-fleet.ts) with 5 and with 500 app hosts (plus the router): the
 *   agent of `edge-001` cold, no-op and one change (an app it runs);
 * - `check` of every host of those fleet repos (worker threads, at most 2).
 *
 * CPU seconds are the steady figure on a shared machine: wall time grows with other load, CPU time much less.
 *
 *   node dist/bench/scale.js [--apps 100,1000] [--fleet 5,500] [--runs 3] [--out bench/scale-results.json]
 *                            [--cli OTHER/dist/reconciler/cli/main.js | --executable [PATH]] [--check-max HOSTS]
 *
 * `--executable` measures the single executable (dist-bin/edge-reconciler, `npm run dist`; or another build's):
 * what a VM runs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { appName, BENCH_HOST, changeOneApp, generateWorkloadRepo, writeWorkloadSecrets } from './generate.js';
import { fleetHostApps, fleetHostName, generateFleetRepo, writeFleetSecrets } from './generate-fleet.js';
import { median } from './report.js';
import { timed, type Timing } from './timed.js';

const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/**
 * The command measured: this build's CLI under node, another build's (`--cli`, to compare with an older commit on
 * the same load), or the single executable (`--executable`).
 */
let COMMAND: readonly string[] = [process.execPath, join(PROJECT, 'dist', 'reconciler', 'cli', 'main.js')];

/** One row of the scale table. */
export interface ScaleRow {
  workload: string;
  scenario: string;
  runs: number;
  wall: number;
  cpu: number;
  /** Every sample, for the JSON. */
  samples: Timing[];
}

function row(workload: string, scenario: string, samples: Timing[]): ScaleRow {
  return { workload, scenario, runs: samples.length, wall: median(samples.map((s) => s.wall)), cpu: median(samples.map((s) => s.cpu)), samples };
}

function commit(repo: string, message: string): void {
  execFileSync('git', ['-C', repo, '-c', 'user.name=bench', '-c', 'user.email=bench@example.com', 'commit', '-q', '-a', '-m', message], { stdio: 'ignore' });
}

/** How long a big workload's cold run waits first: past ext4's 30 s window for recently freed inodes. */
const SETTLE_SECONDS = 35;

/** From this many apps a cold run waits SETTLE_SECONDS (the temp trees of a run before are thousands of files). */
const SETTLE_FROM_APPS = 1000;

/** Cold, no-op and one-change apply processes of `host` from `repo`; `change` makes and commits one change. */
async function applyRows(workload: string, base: string, repo: string, secrets: string, host: string, runs: number, change: () => Promise<void>, settleSeconds = 0): Promise<ScaleRow[]> {
  const apply = (sandbox: string) => [...COMMAND, 'apply', '--repo', repo, '--host', host, '--root', join(sandbox, 'root'), '--state-dir', join(sandbox, 'state'), '--secrets-dir', secrets, '--dry-activate', '--quiet'];
  const fresh = async () => {
    const sandbox = await mkdtemp(join(base, 'sandbox-'));
    await mkdir(join(sandbox, 'root'));
    return sandbox;
  };
  const cold: Timing[] = [];
  let sandbox = '';
  // Each cold run in a fresh sandbox; the earlier ones stay until the end: removing thousands of files just before
  // a cold run slows its file creation in the kernel (ext4 without a journal skips inodes freed in the last 30 s),
  // which no fresh VM pays. For the same reason a big workload's cold runs wait `settleSeconds` first: the run
  // before (or the workload before) removed its validators' temp trees, thousands of files, as it ended.
  for (let k = 0; k < runs; k++) {
    if (settleSeconds > 0) await sleep(settleSeconds * 1000);
    sandbox = await fresh();
    cold.push(timed(apply(sandbox)));
  }
  // The first no-op after an apply reads and hashes the files the apply wrote once; the runs after it only stat.
  const firstNoOp = timed(apply(sandbox));
  const noOp = Array.from({ length: runs }, () => timed(apply(sandbox)));
  const oneChange: Timing[] = [];
  for (let k = 0; k < runs; k++) {
    await change();
    oneChange.push(timed(apply(sandbox)));
  }
  return [row(workload, 'cold', cold), row(workload, 'no-op, first after an apply', [firstNoOp]), row(workload, 'no-op', noOp), row(workload, 'one change', oneChange)];
}

/** Measures the single-host and fleet workloads; returns the rows. */
export async function measureScale(options: { apps: number[]; fleet: number[]; runs: number; checkMax?: number; log?: (line: string) => void }): Promise<ScaleRow[]> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rows: ScaleRow[] = [];
  const base = await mkdtemp(join(tmpdir(), 'edge-bench-scale-'));
  try {
    for (const apps of options.apps) {
      log(`scale: one host with ${apps} apps...`);
      const dir = await mkdtemp(join(base, `apps-${apps}-`));
      const repo = join(dir, 'repo');
      await generateWorkloadRepo(repo, apps);
      await writeWorkloadSecrets(join(dir, 'secrets'), apps);
      const changed = Math.ceil(apps / 2);
      rows.push(
        ...(await applyRows(
          `1 host × ${apps} apps`,
          dir,
          repo,
          join(dir, 'secrets'),
          BENCH_HOST,
          options.runs,
          async () => {
            const release = await changeOneApp(repo, changed);
            commit(repo, `${appName(changed)}: release ${release}`);
          },
          apps >= SETTLE_FROM_APPS ? SETTLE_SECONDS : 0,
        )),
      );
    }
    for (const hosts of options.fleet) {
      log(`scale: fleet of ${hosts} hosts × 5 apps...`);
      const dir = await mkdtemp(join(base, `fleet-${hosts}-`));
      const repo = join(dir, 'repo');
      await generateFleetRepo(repo, hosts);
      await writeFleetSecrets(join(dir, 'secrets'));
      const app = fleetHostApps(1)[0] as number;
      const workload = `fleet ${hosts} hosts × 5 apps`;
      rows.push(
        ...(await applyRows(`${workload}: agent of ${fleetHostName(1)}`, dir, repo, join(dir, 'secrets'), fleetHostName(1), options.runs, async () => {
          const release = await changeOneApp(repo, app);
          commit(repo, `${appName(app)}: release ${release}`);
        })),
      );
      if (hosts > (options.checkMax ?? Infinity)) continue;
      log(`scale: check of ${hosts + 1} hosts...`);
      rows.push(row(workload, `check of all ${hosts + 1} hosts`, [timed([...COMMAND, 'check', '--repo', repo, '--secrets-dir', join(dir, 'secrets')])]));
    }
  } finally {
    // Everything goes at the end (see the cold runs above).
    await rm(base, { recursive: true, force: true });
  }
  return rows;
}

/** The Markdown table of the rows. */
export function formatScale(rows: readonly ScaleRow[]): string {
  return [
    '| workload | scenario | runs | CPU s (user+sys) | wall s |',
    '|---|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.workload} | ${r.scenario} | ${r.runs} | ${r.cpu.toFixed(2)} | ${r.wall.toFixed(2)} |`),
  ].join('\n');
}

function listArg(argv: string[], name: string, fallback: number[]): number[] {
  const at = argv.indexOf(name);
  if (at < 0) return fallback;
  const text = argv[at + 1] ?? '';
  return text === '' || text === 'none' ? [] : text.split(',').map(Number);
}

async function main(argv: string[]): Promise<void> {
  const cli = argv.indexOf('--cli');
  if (cli >= 0) COMMAND = [process.execPath, argv[cli + 1] as string];
  const executableAt = argv.indexOf('--executable');
  if (executableAt >= 0) {
    const given = argv[executableAt + 1];
    const executable = given && !given.startsWith('--') ? given : join(PROJECT, 'dist-bin', 'edge-reconciler');
    if (!existsSync(executable)) throw new Error(`no ${executable}: run npm run dist first`);
    COMMAND = [executable];
  }
  const runs = Number(argv[argv.indexOf('--runs') + 1] ?? 3);
  const at = argv.indexOf('--out');
  const out = at >= 0 ? (argv[at + 1] as string) : join(PROJECT, 'bench', 'scale-results.json');
  const checkMax = argv.includes('--check-max') ? Number(argv[argv.indexOf('--check-max') + 1]) : undefined;
  const rows = await measureScale({ apps: listArg(argv, '--apps', [100, 1000]), fleet: listArg(argv, '--fleet', [5, 500]), runs: argv.includes('--runs') ? runs : 3, checkMax });
  process.stdout.write(`${formatScale(rows)}\n`);
  await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
