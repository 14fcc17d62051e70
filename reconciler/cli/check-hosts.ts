/**
 * `check` of many hosts: each host is rendered and validated with the caches of its thread (a resource whose
 * inputs another host already rendered is not rendered again; a kind whose exact files another host already passed
 * is not validated again), a few hosts at a time; past PARALLEL_FROM hosts the list is split into contiguous slices
 * over worker threads (hosts of one group, which share roles, stay together), at most one per core.
 */
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EdgeError, type Problem } from '../errors.js';
import { DEFAULT_PATH_POLICY } from '../host/path-policy.js';
import type { DesiredState } from '../model.js';
import { memoryCaches } from '../cache/caches.js';
import { renderHost } from '../stages/render.js';
import { collectValidationProblems } from '../stages/validate.js';
import { setupSecrets } from '../secrets/secrets.js';
import { inLanes } from '../lanes.js';

/** The verdict for one host. */
export interface HostVerdict {
  host: string;
  files: number;
  problems: Problem[];
}

/** Below this many hosts a worker's start costs more than it saves. */
export const PARALLEL_FROM = 16;

/** How many hosts one thread renders and validates at once (their validators run side by side). */
const HOSTS_AT_ONCE = 4;

/** What a check worker is given. */
export interface CheckSlice {
  state: DesiredState;
  hosts: string[];
  secretsDir?: string;
}

/** Checks `slice.hosts` in this thread. */
export async function checkSlice(slice: CheckSlice): Promise<HostVerdict[]> {
  const { state, hosts } = slice;
  const secrets = await setupSecrets(slice.secretsDir);
  const caches = memoryCaches();
  const verdicts: HostVerdict[] = new Array<HostVerdict>(hosts.length);
  await inLanes(hosts, HOSTS_AT_ONCE, async (name, index) => {
    try {
      const { files } = renderHost(state, name, secrets.source, DEFAULT_PATH_POLICY, { cache: caches.render });
      verdicts[index] = { host: name, files: files.length, problems: await collectValidationProblems(state, files, { redact: secrets.redact, verdicts: caches.verdicts }) };
    } catch (error) {
      if (!(error instanceof EdgeError) || error.problems.length === 0) throw error;
      verdicts[index] = { host: name, files: 0, problems: error.problems };
    }
  });
  return verdicts;
}

/** The worker script (check-worker.js beside this module); absent in the single executable, which checks in-thread. */
function workerScript(): string | undefined {
  try {
    const script = fileURLToPath(new URL('./check-worker.js', import.meta.url));
    return existsSync(script) ? script : undefined;
  } catch {
    // The single executable has no module URL (and no file beside it).
    return undefined;
  }
}

/** Checks every host of `names`, over `jobs` threads (default: the cores, at most 2) when there are many. */
export async function checkHosts(state: DesiredState, names: string[], options: { secretsDir?: string; jobs?: number } = {}): Promise<HostVerdict[]> {
  const jobs = Math.max(1, Math.min(options.jobs ?? Math.min(2, availableParallelism()), names.length));
  const script = workerScript();
  if (jobs === 1 || names.length < PARALLEL_FROM || !script) return checkSlice({ state, hosts: names, secretsDir: options.secretsDir });
  const size = Math.ceil(names.length / jobs);
  const slices = Array.from({ length: jobs }, (_, k) => names.slice(k * size, (k + 1) * size)).filter((slice) => slice.length > 0);
  const results = await Promise.all(slices.map((hosts) => runWorker(script, { state, hosts, secretsDir: options.secretsDir })));
  return results.flat();
}

function runWorker(script: string, slice: CheckSlice): Promise<HostVerdict[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: slice });
    let result: HostVerdict[] | undefined;
    worker.once('message', (message: { verdicts?: HostVerdict[]; error?: string }) => {
      if (message.verdicts) result = message.verdicts;
      else reject(new Error(`check worker failed: ${message.error ?? 'unknown error'}`));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => (result ? resolve(result) : reject(new Error(`check worker exited with ${code} before its verdicts`))));
  });
}
