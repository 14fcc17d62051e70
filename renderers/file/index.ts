/** The file resource kind: any other config file, with owner, mode, a validate command and an onChange action. */
import type { Renderer } from '../types.js';
import { renderFile } from './render.js';
import { fileSchema } from './schema.js';
import { validateFiles } from './validate.js';

/** Renders and validates file resources. */
export const fileRenderer: Renderer = {
  kind: 'file',
  schema: fileSchema,
  render: renderFile,
  validate: (input) => validateFiles(input),
  // Each validate command runs on a copy of its one file in a scratch dir: a file that passed is not validated again.
  verdictScope: 'file',
};
