/**
 * Validates a host's env files against systemd's EnvironmentFile= syntax. No external tool: the check is pure and
 * reads the staged content; problems name the target, line and KEY, never a value.
 */
import type { Problem } from '../../reconciler/errors.js';
import type { RenderedFile, ValidateInput } from '../types.js';
import { findEnvSyntaxProblems } from './env-syntax.js';

/** Every syntax problem of the host's env files. */
export async function validateEnvFiles(input: ValidateInput): Promise<Problem[]> {
  return input.files.flatMap((file) =>
    findEnvSyntaxProblems(file.content).map((finding) => ({
      code: finding.code,
      ...origin(file),
      message: `${file.path} line ${finding.line}: ${finding.reason}`,
    })),
  );
}

/** The template a file came from, or its declaration for inline content. */
function origin(file: RenderedFile): Pick<Problem, 'file' | 'line' | 'path'> {
  return file.template ? { file: file.template } : { ...file.source };
}
