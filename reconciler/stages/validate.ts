/**
 * The validate stage: stages a host's rendered files in a private temp dir that mirrors the host, then runs every
 * kind's real validator on them. Never touches the live host; all problems of all kinds are reported together.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidRevisionError, type Problem } from '../errors.js';
import type { DesiredState, ResourceKind } from '../model.js';
import { contentHash, type InventoryEntry } from '../state/inventory.js';
import { RENDERERS } from '../../renderers/registry.js';
import type { RenderedFile } from '../../renderers/types.js';
import { runTempPrefix } from '../host/run-temp.js';
import { writeFileTree } from '../host/file-tree.js';
import type { Redactor } from '../secrets/redact.js';
import type { VerdictCache, VerdictContext } from '../cache/verdict-cache.js';

/** Options of one validation run. */
export interface ValidateOptions {
  signal?: AbortSignal;
  /**
   * The live generation's inventory: a kind none of whose files changed against it is not validated again (those
   * exact bytes passed before). Absent (`check`, a fresh host): every kind is validated.
   */
  previous?: readonly InventoryEntry[];
  /**
   * Takes the removal of the validators' temp trees (the staging dir, caddy's copy) to run when the run ends; without
   * it they are removed before the validation returns. A reconcile defers them: on ext4 without a journal, removing
   * 2000 files just before the apply creates 6000 made each creation scan the freed inodes (~0.3 s CPU cold at 1000
   * apps); removed after the apply, they cost only their unlinks.
   */
  defer?: (cleanup: () => Promise<void>) => void;
  /**
   * Hides the host's secret values. Every problem passes through it before it is shown or stored: a tool may echo
   * what it read (a rendered env file, an imported file) in its error.
   */
  redact?: Redactor;
  /** Passing verdicts of earlier runs: a kind whose exact file set passed before is not validated again. */
  verdicts?: VerdictCache;
}

/** Validates a host's files with the real tools; throws InvalidRevisionError('validate') with every problem. */
export async function validateHost(state: DesiredState, files: RenderedFile[], options: ValidateOptions = {}): Promise<void> {
  const problems = await collectValidationProblems(state, files, options);
  if (problems.length > 0) throw new InvalidRevisionError('validate', problems);
}

/** The problems the real validators find in a host's files (empty when all pass). */
export async function collectValidationProblems(
  state: DesiredState,
  files: RenderedFile[],
  options: ValidateOptions = {},
): Promise<Problem[]> {
  const kinds = changedKinds(files, options.previous);
  const pending = pendingValidation(files, kinds, { guards: state.edge.guards, externalExecPrefixes: state.edge.externalExecPrefixes }, options.verdicts);
  if (pending.size === 0) return [];
  const stagingDir = await mkdtemp(join(tmpdir(), runTempPrefix('staging')));
  try {
    const staged = RENDERERS.filter((renderer) => renderer.readsStaging).flatMap((renderer) => pending.get(renderer.kind)?.files ?? []);
    await stageFiles(stagingDir, staged);
    const results = await Promise.all(
      RENDERERS.map((renderer) => {
        const work = pending.get(renderer.kind);
        if (!work) return Promise.resolve([]);
        return renderer
          .validate({
            files: work.files,
            allFiles: files,
            stagingDir,
            guards: state.edge.guards,
            externalExecPrefixes: state.edge.externalExecPrefixes,
            templates: state.templates,
            signal: options.signal,
            ...(options.defer ? { defer: options.defer } : {}),
          })
          .then((problems) => {
            if (problems.length === 0) for (const key of work.keys) options.verdicts?.pass(key);
            return problems;
          });
      }),
    );
    const redact = options.redact ?? ((text: string) => text);
    return results.flat().map((problem) => ({ ...problem, message: redact(problem.message), ...(problem.path ? { path: redact(problem.path) } : {}) }));
  } finally {
    const remove = () => rm(stagingDir, { recursive: true, force: true });
    if (options.defer) options.defer(remove);
    else await remove();
  }
}

/** The files a kind's validator is given in this run, and the verdict keys its pass records. */
interface PendingValidation {
  files: RenderedFile[];
  keys: string[];
}

/**
 * What is left to validate once the verdict cache answered: per kind of `kinds` with files, all of its files (scope
 * `kind` or `host`, one key), or only the files that never passed on their own (scope `file`, a key each).
 */
function pendingValidation(files: RenderedFile[], kinds: Set<ResourceKind>, context: VerdictContext, verdicts: VerdictCache | undefined): Map<ResourceKind, PendingValidation> {
  const pending = new Map<ResourceKind, PendingValidation>();
  for (const renderer of RENDERERS) {
    const ofKind = files.filter((file) => file.kind === renderer.kind);
    if (ofKind.length === 0 || !kinds.has(renderer.kind)) continue;
    if (!verdicts) {
      pending.set(renderer.kind, { files: ofKind, keys: [] });
    } else if (renderer.verdictScope === 'file') {
      const open = ofKind.map((file) => ({ file, key: verdicts.keyFor(renderer.kind, [file], context, 'kind') })).filter(({ key }) => !verdicts.passed(key));
      if (open.length > 0) pending.set(renderer.kind, { files: open.map(({ file }) => file), keys: open.map(({ key }) => key) });
    } else {
      const key = verdicts.keyFor(renderer.kind, files, context, renderer.verdictScope);
      if (!verdicts.passed(key)) pending.set(renderer.kind, { files: ofKind, keys: [key] });
    }
  }
  return pending;
}

/** The kinds with a file that is new, changed or gone against `previous` (every kind when there is none). */
export function changedKinds(files: readonly RenderedFile[], previous: readonly InventoryEntry[] | undefined): Set<ResourceKind> {
  if (!previous || previous.length === 0) return new Set(files.map((file) => file.kind));
  const before = new Map(previous.map((entry) => [entry.path, entry]));
  const kinds = new Set<ResourceKind>();
  const desired = new Set<string>();
  for (const file of files) {
    desired.add(file.path);
    const entry = before.get(file.path);
    if (!entry || entry.kind !== file.kind || entry.sha256 !== contentHash(file)) kinds.add(file.kind);
  }
  for (const entry of previous) if (!desired.has(entry.path)) kinds.add(entry.kind);
  return kinds;
}

/** Writes each file under `stagingDir` at its target path; private modes (a kind's files may hold secrets). */
export async function stageFiles(stagingDir: string, files: RenderedFile[]): Promise<void> {
  writeFileTree(stagingDir, files, { dirMode: 0o700, fileMode: 0o600 });
}
