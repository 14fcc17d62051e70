/** The env-file resource kind: EnvironmentFile= files with host-local secrets, mode 0600, values never shown. */
import type { Renderer } from '../types.js';
import { renderEnvFile } from './render.js';
import { envFileSchema } from './schema.js';
import { validateEnvFiles } from './validate.js';

export { maskEnvDiff } from './mask.js';
export { findLiteralSecrets } from './secret-scan.js';

/** Renders and validates env-file resources. */
export const envFileRenderer: Renderer = {
  kind: 'env-file',
  schema: envFileSchema,
  render: renderEnvFile,
  validate: (input) => validateEnvFiles(input),
  // A pure syntax check of each env file alone: a file that passed is not validated again.
  verdictScope: 'file',
};
