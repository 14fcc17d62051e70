/**
 * Validates a host's Caddy config with the real `caddy validate`, on a copy of the staged tree whose absolute
 * imports point into the copy, with HOME and the XDG dirs inside the staging dir (caddy must not touch the live
 * host's storage).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Problem } from '../../reconciler/errors.js';
import type { RenderedFile, ValidateInput } from '../types.js';
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
  const workDir = await mkdtemp(join(input.stagingDir, '.caddy-validate-'));
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
    const home = join(workDir, 'home');
    await mkdir(home);
    const result = await execa(binary, ['validate', '--adapter', 'caddyfile', '--config', config], {
      reject: false,
      timeout: CADDY_TIMEOUT_MS,
      cancelSignal: input.signal,
      extendEnv: false,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        XDG_DATA_HOME: join(home, 'data'),
        XDG_CONFIG_HOME: join(home, 'config'),
      },
      cwd: workDir,
    });
    const subject = main ? MAIN_CADDYFILE_PATH : `the site files (${input.files.map((f) => f.path).sort().join(', ')})`;
    const fallback = main ?? (input.files.length === 1 ? input.files[0] : undefined);
    if (result.failed && result.exitCode === undefined) return [runFailure(result, binary, subject, fallback)];
    return caddyProblems(result, {
      prefixes: [tree, input.stagingDir],
      wrapper,
      byPath: new Map(input.allFiles.map((file) => [file.path, file])),
      fallback,
      subject,
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** A run that produced no verdict: the binary is missing, it timed out, or it was cancelled. */
function runFailure(
  result: { code?: string; timedOut: boolean; isCanceled: boolean; shortMessage?: string },
  binary: string,
  subject: string,
  fallback: RenderedFile | undefined,
): Problem {
  const file = fallback ? { file: originOf(fallback) } : {};
  if (result.code === 'ENOENT') {
    return { code: 'VALIDATOR_MISSING', ...file, message: `cannot validate ${subject}: ${binary} is not installed` };
  }
  if (result.timedOut) {
    return {
      code: 'VALIDATOR_TIMEOUT',
      ...file,
      message: `caddy validate of ${subject} took longer than ${CADDY_TIMEOUT_MS / 1000} s`,
    };
  }
  if (result.isCanceled) {
    return { code: 'VALIDATOR_CANCELLED', ...file, message: `caddy validate of ${subject} was cancelled` };
  }
  return { code: 'VALIDATOR_FAILED', ...file, message: `caddy validate of ${subject} did not run: ${result.shortMessage ?? "unknown error"}` };
}
