/**
 * The validate stage: stages a host's rendered files in a private temp dir that mirrors the host, then runs every
 * kind's real validator on them. Never touches the live host; all problems of all kinds are reported together.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { InvalidRevisionError, type Problem } from '../errors.js';
import type { DesiredState } from '../model.js';
import { RENDERERS } from '../../renderers/registry.js';
import type { RenderedFile } from '../../renderers/types.js';

/** Options of one validation run. */
export interface ValidateOptions {
  signal?: AbortSignal;
  /** Keep the staging dir (for debugging); it is removed otherwise. */
  keepStaging?: boolean;
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
  const stagingDir = await mkdtemp(join(tmpdir(), 'edge-validate-'));
  try {
    await stageFiles(stagingDir, files);
    const results = await Promise.all(
      RENDERERS.map((renderer) => {
        const ofKind = files.filter((file) => file.kind === renderer.kind);
        if (ofKind.length === 0) return Promise.resolve([]);
        return renderer.validate({
          files: ofKind,
          allFiles: files,
          stagingDir,
          guards: state.edge.guards,
          externalExecPrefixes: state.edge.externalExecPrefixes,
          signal: options.signal,
        });
      }),
    );
    return results.flat();
  } finally {
    if (!options.keepStaging) await rm(stagingDir, { recursive: true, force: true });
  }
}

/** Writes each file under `stagingDir` at its target path; private modes, since env files hold secrets. */
export async function stageFiles(stagingDir: string, files: RenderedFile[]): Promise<void> {
  for (const file of files) {
    const staged = join(stagingDir, file.path);
    await mkdir(dirname(staged), { recursive: true, mode: 0o700 });
    await writeFile(staged, file.content, { mode: 0o600 });
  }
}
