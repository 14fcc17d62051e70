/**
 * Validates a host's staged units with the real `systemd-analyze verify`: the staged unit dir comes first in the
 * search path, the default path after it (so the host's own units such as multi-user.target resolve), generators
 * never run, and nothing outside the staging dir is written.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import type { Problem } from '../../reconciler/errors.js';
import { inLanes } from '../../reconciler/lanes.js';
import type { RenderedFile, ValidateInput } from '../types.js';
import { UNIT_DIR, unitOfName } from './render.js';
import { activatedUnit } from './unit-file.js';
import { originOf, verifyProblems, type VerifyContext, type VerifyTarget } from './verify-output.js';

/** How long one `systemd-analyze verify` may take. */
export const VERIFY_TIMEOUT_MS = 30_000;

/**
 * Units per `systemd-analyze verify` run. Verify queues a start job for each unit it is given and every new job is
 * weighed against the queued ones, so one run's cost grows with the square of its units: 1000 units cost 1.3 s of
 * CPU in one run, 0.65 s in five runs of 200 (each run pays ~35 ms to start).
 */
export const VERIFY_BATCH = 200;

/** Runs of verify at once: the machine's two cores. */
const VERIFY_PARALLEL = 2;

export interface VerifyOptions {
  /** The systemd-analyze executable (tests point it elsewhere). */
  binary?: string;
  /** Units per run ({@link VERIFY_BATCH}). */
  batch?: number;
}

/** Validates the staged unit files. */
export async function validateSystemdUnits(input: ValidateInput, options: VerifyOptions = {}): Promise<Problem[]> {
  const { binary = 'systemd-analyze', batch = VERIFY_BATCH } = options;
  const targets = verifyTargets(input.files);
  if (targets.size === 0) return [];
  const units = [...targets.keys()].sort();
  const batches: string[][] = [];
  for (let start = 0; start < units.length; start += batch) batches.push(units.slice(start, start + batch));
  const context: VerifyContext = {
    stagingDir: input.stagingDir,
    byPath: new Map(input.allFiles.map((file) => [file.path, file])),
    targets,
    externalExecPrefixes: input.externalExecPrefixes,
  };
  const verdicts: Problem[][] = [];
  await inLanes(batches, VERIFY_PARALLEL, async (some, index) => {
    verdicts[index] = await verifyBatch(input, binary, some, context);
  });
  return distinct(verdicts.flat());
}

/** One `systemd-analyze verify` run over some of the units. */
async function verifyBatch(input: ValidateInput, binary: string, units: string[], context: VerifyContext): Promise<Problem[]> {
  const result = await execa(binary, ['verify', '--man=no', '--generators=no', '--', ...units], {
    reject: false,
    all: true,
    timeout: VERIFY_TIMEOUT_MS,
    cancelSignal: input.signal,
    extendEnv: false,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      // The trailing colon appends systemd's default search path after the staged units.
      SYSTEMD_UNIT_PATH: `${join(input.stagingDir, UNIT_DIR)}:`,
      SYSTEMD_LOG_COLOR: '0',
      SYSTEMD_PAGER: '',
      LC_ALL: 'C',
    },
    cwd: input.stagingDir,
  });
  if (result.failed && result.exitCode === undefined) return [runFailure(result, binary, units, input.files[0])];
  return verifyProblems(result.all ?? '', context);
}

/**
 * The problems without repeats: a unit that units of several runs depend on is loaded, and its lines printed, by
 * each of those runs.
 */
function distinct(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = JSON.stringify([problem.code, problem.file, problem.line, problem.message]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The units to verify, each with the file that answers for it: every unit file; the parent of drop-ins whose unit
 * the repo does not hold; the unit a timer, path or socket activates when the repo does not hold it (verify itself
 * does not notice a timer without its service).
 */
export function verifyTargets(files: RenderedFile[]): Map<string, VerifyTarget> {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const targets = new Map<string, VerifyTarget>();
  const named = (file: RenderedFile) => unitOfName(file.path.slice(UNIT_DIR.length + 1));
  for (const file of sorted) {
    const { unit, dropIn } = named(file);
    if (!dropIn) targets.set(unit, { unit, file });
  }
  for (const file of sorted) {
    const { unit, dropIn } = named(file);
    if (dropIn && !targets.has(unit)) targets.set(unit, { unit, file, reason: `the parent of drop-in ${file.path}` });
  }
  for (const file of sorted) {
    const { unit, dropIn } = named(file);
    const activated = dropIn ? undefined : activatedUnit(unit, file.content);
    if (activated && !targets.has(activated)) {
      targets.set(activated, { unit: activated, file, reason: `which ${unit} activates` });
    }
  }
  return targets;
}

/** A run that produced no verdict: the binary is missing, it timed out, or it was cancelled. */
function runFailure(
  result: { code?: string; timedOut: boolean; isCanceled: boolean; shortMessage?: string },
  binary: string,
  units: string[],
  first: RenderedFile | undefined,
): Problem {
  const file = first ? { file: originOf(first) } : {};
  const subject = units.join(', ');
  if (result.code === 'ENOENT') {
    return { code: 'VALIDATOR_MISSING', ...file, message: `cannot verify ${subject}: ${binary} is not installed` };
  }
  if (result.timedOut) {
    return {
      code: 'VALIDATOR_TIMEOUT',
      ...file,
      message: `systemd-analyze verify of ${subject} took longer than ${VERIFY_TIMEOUT_MS / 1000} s`,
    };
  }
  if (result.isCanceled) {
    return { code: 'VALIDATOR_CANCELLED', ...file, message: `systemd-analyze verify of ${subject} was cancelled` };
  }
  return {
    code: 'VALIDATOR_FAILED',
    ...file,
    message: `systemd-analyze verify of ${subject} did not run: ${result.shortMessage ?? 'unknown error'}`,
  };
}
