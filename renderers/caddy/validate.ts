/**
 * Validates a host's Caddy config with the real `caddy validate`, confined (reconciler/host/sandbox.ts: no network,
 * an unprivileged user, every path read-only but its scratch dir) on a copy of the staged tree whose absolute
 * imports point into the copy. Imports that reach outside /etc/caddy are refused before caddy runs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Problem } from '../../reconciler/errors.js';
import { makeScratchDir, runConfined, type ConfinedResult } from '../../reconciler/host/sandbox.js';
import type { RenderedFile, ValidateInput } from '../types.js';
import { importProblems } from './import-policy.js';
import { wrapperCaddyfile, writeValidationTree } from './imports.js';
import { caddyProblems, originOf } from './output.js';
import { MAIN_CADDYFILE_PATH } from './schema.js';

/** How long one `caddy validate` may take. */
export const CADDY_TIMEOUT_MS = 30_000;

/**
 * Validates the staged caddy files: the main Caddyfile when the repo manages it, else a wrapper that imports every
 * site file. `binary` is the caddy executable (tests point it elsewhere).
 */
export async function validateCaddy(input: ValidateInput, binary = 'caddy'): Promise<Problem[]> {
  if (input.files.length === 0) return [];
  const confinedImports = importProblems(input.allFiles);
  if (confinedImports.length > 0) return confinedImports;
  const scratch = await makeScratchDir('caddy');
  const workDir = scratch.path;
  try {
    const tree = join(workDir, 'tree');
    await writeValidationTree(tree, input.allFiles);
    const main = input.files.find((file) => file.path === MAIN_CADDYFILE_PATH);
    const wrapper = main ? undefined : join(workDir, 'wrapper', 'Caddyfile');
    if (wrapper) {
      await mkdir(join(workDir, 'wrapper'));
      await writeFile(wrapper, wrapperCaddyfile(tree, input.files));
    }
    const config = wrapper ?? join(tree, MAIN_CADDYFILE_PATH);
    await scratch.handOver();
    const result = await runConfined({
      argv: [binary, 'validate', '--adapter', 'caddyfile', '--config', config],
      scratchDir: workDir,
      timeoutMs: CADDY_TIMEOUT_MS,
      signal: input.signal,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        XDG_DATA_HOME: join(workDir, 'data'),
        XDG_CONFIG_HOME: join(workDir, 'config'),
      },
    });
    const subject = main ? MAIN_CADDYFILE_PATH : `the site files (${input.files.map((f) => f.path).sort().join(', ')})`;
    const fallback = main ?? (input.files.length === 1 ? input.files[0] : undefined);
    if (result.exitCode === undefined) return [runFailure(result, binary, subject, fallback)];
    return caddyProblems(result, {
      prefixes: [tree, workDir, input.stagingDir],
      wrapper,
      byPath: new Map(input.allFiles.map((file) => [file.path, file])),
      fallback,
      subject,
      ...(input.templates ? { templates: input.templates } : {}),
    });
  } finally {
    if (input.defer) input.defer(scratch.remove);
    else await scratch.remove();
  }
}

/** A run that produced no verdict: the binary is missing, it timed out, or it was cancelled. */
function runFailure(
  result: ConfinedResult,
  binary: string,
  subject: string,
  fallback: RenderedFile | undefined,
): Problem {
  const file = fallback ? { file: originOf(fallback) } : {};
  if (result.startError) {
    return { code: 'VALIDATOR_MISSING', ...file, message: `cannot validate ${subject}: ${binary} is not installed` };
  }
  if (result.timedOut) {
    return {
      code: 'VALIDATOR_TIMEOUT',
      ...file,
      message: `caddy validate of ${subject} took longer than ${CADDY_TIMEOUT_MS / 1000} s`,
    };
  }
  if (result.cancelled) {
    return { code: 'VALIDATOR_CANCELLED', ...file, message: `caddy validate of ${subject} was cancelled` };
  }
  return { code: 'VALIDATOR_FAILED', ...file, message: `caddy validate of ${subject} did not run: ${result.signal ? `killed by ${result.signal}` : 'no exit status'}` };
}
