/**
 * What every command shares: building the secret source and redactor from `--secrets-dir`, and printing errors
 * as `file:line: message [CODE]` lines, redacted.
 */
import { EdgeError, formatProblem } from '../errors.js';
import { readSecretsDir, SecretsDirError } from '../host.js';
import { redactorFor, type Redactor } from '../redact.js';
import { placeholderSecrets, type SecretSource } from '../../renderers/template.js';

/** The secrets of a run and the redactor that hides their values. */
export interface SecretsSetup {
  source: SecretSource;
  redact: Redactor;
}

/** Reads `--secrets-dir` when given; without it, templates see placeholders and nothing needs redacting. */
export async function setupSecrets(dir: string | undefined): Promise<SecretsSetup> {
  if (!dir) return { source: placeholderSecrets, redact: (text) => text };
  let values: Map<string, string>;
  try {
    values = await readSecretsDir(dir);
  } catch (error) {
    if (error instanceof SecretsDirError) {
      throw new EdgeError(error.code, error.message, {
        stage: 'render',
        retry: 'invalid',
        problems: [{ code: error.code, file: error.file, message: error.message }],
      });
    }
    throw error;
  }
  return {
    source: { get: (name) => values.get(name), description: `the secrets dir ${dir}` },
    redact: redactorFor(values.values()),
  };
}

/** Prints an error to stderr: a headline, then every problem on its own line. Returns the exit code (1). */
export function printError(error: unknown, redact: Redactor = (text) => text): number {
  if (error instanceof EdgeError) {
    const lines = error.problems.length > 0 ? error.problems.map(formatProblem) : [error.message];
    const head = `error: ${error.stage} failed${error.problems.length > 1 ? ` with ${error.problems.length} problems` : ''} [${error.code}]`;
    process.stderr.write(redact([head, ...lines.map((line) => `  ${line}`)].join('\n')) + '\n');
  } else {
    process.stderr.write(redact(`error: ${error instanceof Error ? error.message : String(error)}`) + '\n');
  }
  return 1;
}

/** Writes one line (or block) to stdout, redacted. */
export function out(text: string, redact: Redactor): void {
  process.stdout.write(redact(text) + '\n');
}
