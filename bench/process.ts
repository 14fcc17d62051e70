/**
 * Whole-process figures (DESIGN.md §8, the shipping issue): what a VM pays per command, start-up included, with the
 * bundled executable (dist-bin/edge-reconciler, `npm run dist`) and with `node dist/...` side by side:
 * `status`, a no-op `apply` of the generated host with N apps (100 by default), the agent's start to serving with
 * nothing to recover, and its idle RSS. Wall and CPU (user + sys) per run, from bash's `time`; medians of R runs.
 *
 *   npm run bench:process            (= npm run build && npm run dist && node dist/bench/process.js)
 *   node dist/bench/process.js --apps 100 --runs 10
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_HOST, generateWorkloadRepo, writeWorkloadSecrets } from './generate.js';
import { median } from './report.js';
import { timed, UNIT_ENV, type Timing } from './timed.js';

const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXECUTABLE = join(PROJECT, 'dist-bin', 'edge-reconciler');
const NODE_CLI = join(PROJECT, 'dist', 'reconciler', 'cli', 'main.js');

/** The figures of one way of running the agent. */
interface Figures {
  how: string;
  status: Timing;
  noOp: Timing;
  startToServing: number;
  idleRssMb: number;
}

function medianTiming(samples: Timing[]): Timing {
  return { wall: median(samples.map((s) => s.wall)), cpu: median(samples.map((s) => s.cpu)) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts `serve`, times spawn to the first answer of /healthz, reads its RSS after `idleMs` of idling, stops it. */
async function serveFigures(command: readonly string[], config: string, idleMs: number): Promise<{ startToServing: number; idleRssMb: number }> {
  const text = await readFile(config, 'utf8');
  const port = Number(/^listen: 127\.0\.0\.1:(\d+)$/m.exec(text)?.[1]);
  const started = performance.now();
  const child = spawn(command[0] as string, [...command.slice(1), 'serve', '--config', config, '--dry-activate'], { stdio: 'ignore', env: { ...UNIT_ENV } });
  try {
    let serving = 0;
    for (let attempt = 0; attempt < 2000 && serving === 0; attempt++) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
      if (ok) serving = (performance.now() - started) / 1000;
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (serving === 0) throw new Error(`${command.join(' ')} serve did not answer /healthz`);
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
    return { startToServing: serving, idleRssMb: rssKb / 1024 };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const at = argv.indexOf(name);
    return at >= 0 ? Number(argv[at + 1]) : fallback;
  };
  const apps = arg('--apps', 100);
  const runs = arg('--runs', 10);
  if (!existsSync(EXECUTABLE)) throw new Error(`no ${EXECUTABLE}: run npm run dist first`);
  const base = await mkdtemp(join(tmpdir(), 'edge-bench-process-'));
  try {
    const repo = join(base, 'repo');
    const secretsDir = join(base, 'secrets');
    await generateWorkloadRepo(repo, apps);
    await writeWorkloadSecrets(secretsDir, apps);

    const results: Figures[] = [];
    for (const [how, command] of [
      ['executable', [EXECUTABLE]],
      ['node dist/…', [process.execPath, NODE_CLI]],
    ] as const) {
      const sandbox = join(base, how.replace(/\W/g, ''));
      const root = join(sandbox, 'root');
      const stateDir = join(sandbox, 'state');
      await mkdir(root, { recursive: true });
      const apply = [...command, 'apply', '--repo', repo, '--host', BENCH_HOST, '--root', root, '--state-dir', stateDir, '--secrets-dir', secretsDir, '--dry-activate', '--quiet'];
      timed(apply); // cold: brings the sandbox to the revision
      const noOp = medianTiming(Array.from({ length: runs }, () => timed(apply)));
      const status = medianTiming(Array.from({ length: runs }, () => timed([...command, 'status', '--state-dir', stateDir])));
      // The agent on the same state: nothing to recover, the revision already live.
      const config = join(sandbox, 'config.yaml');
      await writeFile(
        config,
        [`repo: ${repo}`, 'ref: main', `host: ${BENCH_HOST}`, `root: ${root}`, `stateDir: ${stateDir}`, `secretsDir: ${secretsDir}`,
          `listen: 127.0.0.1:${await freePort()}`, 'poll: { enabled: false }', 'drift: { watch: true }'].join('\n') + '\n',
        { mode: 0o600 },
      );
      const serve = await serveFigures(command, config, 5_000);
      results.push({ how, status, noOp, ...serve });
    }
    const nodeFloor = medianTiming(Array.from({ length: runs }, () => timed([process.execPath, '-e', '0'])));
    const lines = [
      `Whole-process figures, ${apps} apps, medians of ${runs} runs (wall s / CPU s); \`node -e 0\`: ${nodeFloor.wall.toFixed(3)} / ${nodeFloor.cpu.toFixed(3)}`,
      '',
      '| how | `status` | no-op `apply` | `serve` start to serving | `serve` idle RSS |',
      '|---|---:|---:|---:|---:|',
      ...results.map((r) => `| ${r.how} | ${r.status.wall.toFixed(3)} / ${r.status.cpu.toFixed(3)} | ${r.noOp.wall.toFixed(3)} / ${r.noOp.cpu.toFixed(3)} | ${r.startToServing.toFixed(3)} s | ${r.idleRssMb.toFixed(0)} MB |`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    await writeFile(join(PROJECT, 'bench', 'process-results.json'), `${JSON.stringify({ apps, runs, nodeFloor, results, at: new Date().toISOString() }, null, 2)}\n`);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
