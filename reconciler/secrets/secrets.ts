/**
 * A run's secrets: the source templates read them from (the host's secrets dir, or placeholders when there is
 * none) and the redactor that hides their values in every output.
 */
import { EdgeError } from '../errors.js';
import { readSecretsDir, SecretsDirError } from '../host/secrets-dir.js';
import { redactorFor, type Redactor } from './redact.js';
import type { SecretSource } from '../../renderers/template.js';

/** The secrets of a run and the redactor that hides their values. */
export interface SecretsSetup {
  source: SecretSource;
  redact: Redactor;
}

/** Reads `--secrets-dir` when given; without it, templates see placeholders and nothing needs redacting. */
export async function setupSecrets(dir: string | undefined): Promise<SecretsSetup> {
  if (!dir) {
    // Loaded only here: template.ts brings handlebars, which a run with a secrets dir may never need (a no-op).
    const { placeholderSecrets } = await import('../../renderers/template.js');
    return { source: placeholderSecrets, redact: (text) => text };
  }
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

